// A test plugin with one fenced stage, "sidefx", for the pipeline crash test: it appends each
// event's id to <scratch dir>/effects.log (effect_log_stage.h).
#include "effect_log_stage.h"

namespace {

class SideEffect final : public factory::test::EffectLogStage {
 public:
  SideEffect()
      : EffectLogStage({.name = "sidefx",
                        .version = "1.0.0",
                        .input_schema = R"({"type":"object","required":["n"]})",
                        .default_batch_size = 100},
                       "effects.log") {}

 protected:
  std::string id_of(const factory::Event& e) const override { return e.id.hex(); }
};

}  // namespace

FACTORY_PLUGIN("sidefx-test-plugin",
               []() -> std::unique_ptr<factory::Stage> { return std::make_unique<SideEffect>(); });
