// A test plugin with one pure stage, "router", for the mixed-fault crash test: an event whose
// payload has "route":"<topic>" is routed there; every other event passes through.
#include "factory/plugin.h"

namespace {

class Router final : public factory::Stage {
 public:
  factory::StageInfo info() const override {
    return {.name = "router", .version = "1.0.0", .default_batch_size = 100};
  }
  factory::StageResult process(const factory::Event& e, factory::StageContext& ctx) override {
    const std::string key = "\"route\":\"";
    if (auto at = e.payload.find(key); at != std::string::npos) {
      at += key.size();
      return factory::StageResult::route(e.payload.substr(at, e.payload.find('"', at) - at),
                                         "the event asked to be routed");
    }
    ctx.emit({.payload = e.payload});
    return factory::StageResult::success();
  }
};

}  // namespace

FACTORY_PLUGIN("router-test-plugin",
               []() -> std::unique_ptr<factory::Stage> { return std::make_unique<Router>(); });
