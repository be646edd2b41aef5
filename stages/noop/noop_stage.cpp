// noop: emits its input payload unchanged. The simplest stage: wiring tests, demos, and a
// pass-through or sink in a pipeline (a binding with no output topic drops what it emits).
//
// Stateless, so thread-safe.
#include "factory/stage.h"

namespace factory::stages {
namespace {

class NoopStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "noop", .version = "1.0.0", .side_effects = SideEffects::kPure};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    ctx.emit({.payload = event.payload});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(NoopStage);

}  // namespace
}  // namespace factory::stages
