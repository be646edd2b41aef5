// A test plugin with one fenced stage, "count-fx", for the scheduler crash test: it appends each
// execution's params "id" ("<run>/<task>") to <scratch dir>/executions.log (effect_log_stage.h).
#include "effect_log_stage.h"

namespace {

class CountEffect final : public factory::test::EffectLogStage {
 public:
  CountEffect()
      : EffectLogStage({.name = "count-fx", .version = "1.0.0", .default_batch_size = 200},
                       "executions.log") {}

 protected:
  std::string id_of(const factory::Event& e) const override {
    auto k = e.payload.find("\"id\":\"");
    if (k == std::string::npos) return "";
    k += 6;
    return e.payload.substr(k, e.payload.find('"', k) - k);
  }
};

}  // namespace

FACTORY_PLUGIN("count-fx-test-plugin",
               []() -> std::unique_ptr<factory::Stage> { return std::make_unique<CountEffect>(); });
