// A plugin built for another plugin ABI: load_plugin must refuse it and say which versions.
// The descriptor is written by hand because FACTORY_PLUGIN always stamps the current version.
#include "factory/plugin.h"

extern "C" __attribute__((visibility("default"))) const FactoryPluginV1* factory_plugin_v1(void) {
  static const FactoryPluginV1 kPlugin = {999u, "wrong-abi", 0, nullptr};
  return &kPlugin;
}
