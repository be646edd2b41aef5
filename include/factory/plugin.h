// Stage plugins: shared libraries loaded with dlopen from a plugin directory.
//
// A plugin exports one C symbol, `factory_plugin_v1`, returning a static descriptor that
// carries the ABI version it was built against and its stage factories. factoryd refuses a
// plugin whose ABI version differs from its own (the C++ types in factory/stage.h cross the
// boundary, so plugins must be built against the same headers and compiler).
//
// Example (a plugin with one stage):
//   #include "factory/plugin.h"
//   class Shout final : public factory::Stage { ... };
//   FACTORY_PLUGIN("shout-plugin", []() -> std::unique_ptr<factory::Stage> {
//     return std::make_unique<Shout>();
//   });
#pragma once

#include <cstddef>
#include <cstdint>

#include "factory/stage.h"

// Bump whenever factory/stage.h, event.h, record.h or status.h change in a way that breaks
// binary compatibility.
#define FACTORY_PLUGIN_ABI_VERSION 2u  // 2: StageContext::data_dir()

extern "C" {

struct FactoryPluginV1 {
  uint32_t abi_version;  // FACTORY_PLUGIN_ABI_VERSION at build time
  const char* name;      // the plugin's name, for messages
  size_t stage_count;
  const factory::StageFactory* stages;
};

// The one exported entry point.
typedef const FactoryPluginV1* (*FactoryPluginEntry)(void);
}

#define FACTORY_PLUGIN(plugin_name, ...)                                                      \
  extern "C" __attribute__((visibility("default"))) const FactoryPluginV1* factory_plugin_v1( \
      void) {                                                                                 \
    static const ::factory::StageFactory kStages[] = {__VA_ARGS__};                           \
    static const FactoryPluginV1 kPlugin = {FACTORY_PLUGIN_ABI_VERSION, plugin_name,          \
                                            sizeof(kStages) / sizeof(kStages[0]), kStages};   \
    return &kPlugin;                                                                          \
  }
