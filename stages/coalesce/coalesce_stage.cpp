// coalesce: emits the first of its params' `candidates` that is not null. The join after
// branches: in a DAG whose rounds are alternative branches (the software factory's gate →
// codegen rounds), the tasks of the rounds not taken are skipped and their outputs render as
// null, so `{"candidates": ["{{ tasks.a.output }}", "{{ tasks.b.output }}"]}` hands on the one
// round that ran. No candidate: a permanent failure naming the count.
//
// Stateless, so thread-safe.
#include <boost/json.hpp>

#include "factory/stage.h"

namespace factory::stages {
namespace {

constexpr const char* kInputSchema = R"({
  "type": "object",
  "required": ["candidates"],
  "additionalProperties": false,
  "properties": {"candidates": {"type": "array", "minItems": 1}}
})";

class CoalesceStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "coalesce",
            .version = "1.0.0",
            .input_schema = kInputSchema,
            .side_effects = SideEffects::kPure};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    boost::system::error_code ec;
    boost::json::value params = boost::json::parse(event.payload, ec);
    if (ec || !params.is_object()) return StageResult::permanent("params are not a JSON object");
    const auto& candidates = params.as_object().at("candidates").as_array();
    for (const auto& c : candidates) {
      if (c.is_null()) continue;
      ctx.emit({.payload = boost::json::serialize(c)});
      return StageResult::success();
    }
    return StageResult::permanent("all " + std::to_string(candidates.size()) +
                                  " candidates are null: no upstream round produced an output");
  }
};

FACTORY_REGISTER_STAGE(CoalesceStage);

}  // namespace
}  // namespace factory::stages
