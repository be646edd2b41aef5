// The stage registry (stage_registry.h) and factory::register_stage (factory/stage.h).
//
// Built-in stages register from static initialisers in other translation units, in an order
// nobody controls, so the registry is a function-local static: constructed on first use,
// whichever initialiser comes first. Entries map a stage name to its factory and to where it
// came from (the built-in stages or a plugin path), so a clash can name both sides.
//
// Plugins are dlopen'd with RTLD_LOCAL (a plugin's symbols cannot capture another's) and never
// dlclose'd once registered: their factories and the vtables of every Stage they create live in
// the library. A plugin rejected before any of its stages were registered is closed again.
//
// Stage constructors are foreign code: every call to a factory is wrapped in try/catch, the one
// place here where exceptions are caught (STYLE: around each stage call).
#include "runtime/stage_registry.h"

#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "factory/plugin.h"
#include "obs/logger.h"

namespace factory::runtime {
namespace {

constexpr std::string_view kBuiltIn = "the built-in stages";

std::string in_quotes(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

// Thread-safe: one mutex over the map. Factories are called outside it, so a slow or
// re-entrant stage constructor cannot block or deadlock other lookups.
class Registry {
 public:
  struct Entry {
    StageFactory factory;
    std::string origin;  // kBuiltIn or "plugin '<path>'", for messages
  };

  // Adds every (name, entry) or none. AlreadyExists naming the first clash.
  Status add_all(const std::vector<std::pair<std::string, Entry>>& entries) {
    base::MutexLock lock(&mu_);
    for (const auto& [name, entry] : entries) {
      auto it = stages_.find(name);
      if (it != stages_.end()) {
        std::string msg = "stage " + in_quotes(name) + " from " + entry.origin +
                          " is already registered (from " + it->second.origin + "); ";
        if (entry.origin == kBuiltIn) {
          msg += "two built-in stages share this name: rename one (StageInfo::name)";
        } else if (entry.origin == it->second.origin) {
          msg += "this plugin is already loaded: load each plugin once";
        } else {
          msg += "stage names must be unique: rename one of the stages";
        }
        return Status::already_exists(msg);
      }
    }
    for (const auto& [name, entry] : entries) stages_.emplace(name, entry);
    return Status::ok_status();
  }

  bool find(const std::string& name, StageFactory* factory) {
    base::MutexLock lock(&mu_);
    auto it = stages_.find(name);
    if (it == stages_.end()) return false;
    *factory = it->second.factory;
    return true;
  }

  std::vector<std::string> names() {
    base::MutexLock lock(&mu_);
    std::vector<std::string> out;
    out.reserve(stages_.size());
    for (const auto& [name, entry] : stages_) out.push_back(name);  // std::map: already sorted
    return out;
  }

 private:
  base::Mutex mu_;
  std::map<std::string, Entry> stages_ GUARDED_BY(mu_);
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: stages may be created during exit
  return *r;
}

// Runs a factory and reads the stage's name. InvalidArgument (naming `origin`) when the
// factory throws, returns null or the stage has no name.
Status probe(StageFactory factory, std::string_view origin, std::string* name) {
  if (factory == nullptr) {
    return Status::invalid_argument(std::string(origin) + ": a stage factory is null");
  }
  try {
    std::unique_ptr<Stage> stage = factory();
    if (stage == nullptr) {
      return Status::invalid_argument(std::string(origin) +
                                      ": a stage factory returned no stage (null)");
    }
    *name = stage->info().name;
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string(origin) +
                                    ": a stage constructor threw: " + e.what());
  } catch (...) {
    return Status::invalid_argument(std::string(origin) +
                                    ": a stage constructor threw a non-standard exception");
  }
  if (name->empty()) {
    return Status::invalid_argument(std::string(origin) +
                                    ": a stage has an empty name; set StageInfo::name");
  }
  return Status::ok_status();
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s.empty() ? "(none)" : s;
}

}  // namespace

Result<std::unique_ptr<Stage>> create_stage(const std::string& name) {
  StageFactory factory = nullptr;
  if (!registry().find(name, &factory)) {
    return Status::not_found("no stage named " + in_quotes(name) +
                             "; registered stages: " + join(registered_stages()) +
                             "; check the spelling, or add the plugin that provides it");
  }
  try {
    std::unique_ptr<Stage> stage = factory();
    if (stage == nullptr) {
      return Status::internal("the factory of stage " + in_quotes(name) + " returned null");
    }
    return stage;
  } catch (const std::exception& e) {
    return Status::internal("creating stage " + in_quotes(name) + " threw: " + e.what());
  } catch (...) {
    return Status::internal("creating stage " + in_quotes(name) +
                            " threw a non-standard exception");
  }
}

std::vector<std::string> registered_stages() { return registry().names(); }

Result<std::vector<std::string>> load_plugin(const std::string& path) {
  // dlopen searches LD_LIBRARY_PATH for a bare name; a plugin is always a file path.
  std::string open_path = path;
  if (open_path.find('/') == std::string::npos) open_path = "./" + open_path;

  dlerror();  // clear any stale message
  void* handle = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Status::invalid_argument("cannot load plugin " + in_quotes(path) + ": " +
                                    (why ? why : "unknown dlopen error") +
                                    "; check that the file exists, is a shared library for this "
                                    "platform, and that its dependencies are installed");
  }
  // Closes the library unless it was kept (registered stages point into it).
  struct Closer {
    void* handle;
    bool keep = false;
    ~Closer() {
      if (!keep) dlclose(handle);
    }
  } closer{handle};

  dlerror();
  void* sym = dlsym(handle, "factory_plugin_v1");
  if (sym == nullptr) {
    return Status::invalid_argument("plugin " + in_quotes(path) +
                                    ": missing symbol factory_plugin_v1: build it with "
                                    "FACTORY_PLUGIN(...) from factory/plugin.h");
  }
  // POSIX guarantees a data pointer from dlsym converts to a function pointer.
  auto entry = reinterpret_cast<FactoryPluginEntry>(sym);
  const FactoryPluginV1* plugin = entry();
  if (plugin == nullptr) {
    return Status::invalid_argument("plugin " + in_quotes(path) +
                                    ": factory_plugin_v1 returned null; build it with "
                                    "FACTORY_PLUGIN(...) from factory/plugin.h");
  }
  if (plugin->abi_version != FACTORY_PLUGIN_ABI_VERSION) {
    return Status::invalid_argument("plugin " + in_quotes(path) + " was built for plugin ABI " +
                                    std::to_string(plugin->abi_version) + ", this factoryd has " +
                                    std::to_string(FACTORY_PLUGIN_ABI_VERSION) +
                                    ": rebuild the plugin against this factoryd's headers");
  }
  if (plugin->stage_count > 0 && plugin->stages == nullptr) {
    return Status::invalid_argument(
        "plugin " + in_quotes(path) + " declares " + std::to_string(plugin->stage_count) +
        " stages but no stage table; build it with FACTORY_PLUGIN(...)");
  }

  std::string origin = "plugin " + in_quotes(path);
  std::vector<std::pair<std::string, Registry::Entry>> entries;
  std::vector<std::string> names;
  for (size_t i = 0; i < plugin->stage_count; ++i) {
    std::string name;
    FACTORY_RETURN_IF_ERROR(probe(plugin->stages[i], origin, &name));
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return Status::already_exists(origin + " registers stage " + in_quotes(name) +
                                    " twice; give each stage its own name");
    }
    names.push_back(name);
    entries.push_back({name, Registry::Entry{plugin->stages[i], origin}});
  }
  FACTORY_RETURN_IF_ERROR(registry().add_all(entries));
  closer.keep = true;
  obs::info(
      "plugin loaded",
      {{"path", path}, {"plugin", plugin->name ? plugin->name : ""}, {"stages", join(names)}});
  return names;
}

Result<std::vector<std::string>> load_plugin_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (ec || !fs::exists(st)) {
    return Status::not_found("plugin directory " + in_quotes(dir) +
                             " does not exist; create it or remove it from plugins:");
  }
  if (!fs::is_directory(st)) {
    return Status::invalid_argument("plugin directory " + in_quotes(dir) +
                                    " is not a directory; list directories under plugins:");
  }
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code type_ec;
    if (p.extension() == ".so" && it->is_regular_file(type_ec)) files.push_back(p.string());
  }
  if (ec) {
    return Status::io_error("cannot list plugin directory " + in_quotes(dir) + ": " + ec.message());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> names;
  for (const std::string& file : files) {
    Result<std::vector<std::string>> loaded = load_plugin(file);
    if (!loaded.ok()) return loaded.status();
    names.insert(names.end(), loaded->begin(), loaded->end());
  }
  return names;
}

}  // namespace factory::runtime

namespace factory {

bool register_stage(StageFactory factory) {
  // Runs during static initialisation: it must not throw or abort, so a bad built-in is logged
  // and skipped (the host then reports it as an unknown stage, with the log line to explain).
  std::string name;
  Status s = runtime::probe(factory, runtime::kBuiltIn, &name);
  if (s.ok()) {
    s = runtime::registry().add_all({{name, {factory, std::string(runtime::kBuiltIn)}}});
  }
  if (!s.ok()) {
    obs::error("built-in stage not registered", {{"error", s.to_string()}});
    return false;
  }
  return true;
}

}  // namespace factory
