// The stage registry: built-in stages (registered statically with FACTORY_REGISTER_STAGE) and
// stages from plugins (load_plugin). Thread-safe; plugins stay loaded until process exit.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "factory/stage.h"
#include "factory/status.h"

namespace factory::runtime {

// A new instance of the stage registered as `name`. NotFound listing the known stages.
Result<std::unique_ptr<Stage>> create_stage(const std::string& name);
// Registered stage names, sorted.
std::vector<std::string> registered_stages();

// dlopens `path` and registers its stages. InvalidArgument naming the file for a library that
// cannot be opened, lacks the `factory_plugin_v1` symbol, or has another ABI version;
// AlreadyExists when one of its stage names is taken. Returns the names it registered.
Result<std::vector<std::string>> load_plugin(const std::string& path);
// Loads every *.so in `dir` in name order.
Result<std::vector<std::string>> load_plugin_dir(const std::string& dir);

}  // namespace factory::runtime
