// fail: fails the first N attempts of every event, then emits the input unchanged. For testing
// the runtime's retry, dead-letter and breaker paths with a deterministic failure schedule.
//
// The schedule depends only on Event::attempt, so the stage keeps no state: thread-safe, and a
// redelivered event fails or succeeds exactly as it did before (pure).
#include <cstdint>
#include <string>

#include <boost/json.hpp>

#include "factory/stage.h"

namespace factory::stages {
namespace {

namespace json = boost::json;

struct FailConfig {
  int64_t failures = 1;
  bool permanent = false;
};

// Parses {"failures": N, "mode": "retryable"|"permanent"}; the reason on error.
bool parse_config(const std::string& text, FailConfig* out, std::string* why) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    *why = "config is not a JSON object";
    return false;
  }
  for (const auto& [key, value] : v.as_object()) {
    if (key == "failures") {
      if (!value.is_int64() || value.as_int64() < 0) {
        *why = "config.failures must be a whole number >= 0";
        return false;
      }
      out->failures = value.as_int64();
    } else if (key == "mode") {
      if (value.is_string() && value.get_string() == "retryable") {
        out->permanent = false;
      } else if (value.is_string() && value.get_string() == "permanent") {
        out->permanent = true;
      } else {
        *why = "config.mode must be \"retryable\" or \"permanent\"";
        return false;
      }
    } else {
      *why = "unknown config key '" + std::string(key) + "'; fail takes failures and mode";
      return false;
    }
  }
  return true;
}

class FailStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "fail", .version = "1.0.0", .side_effects = SideEffects::kPure};
  }

  Status check_config(std::string_view config_json) const override {
    FailConfig config;
    std::string why;
    if (parse_config(std::string(config_json), &config, &why)) return Status();
    return Status::invalid_argument(
        "fail stage: " + why + "; fix the binding's config, e.g. {failures: 2, mode: retryable}");
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    FailConfig config;
    std::string why;
    if (!parse_config(ctx.config(), &config, &why)) {
      return StageResult::permanent(
          "fail stage: " + why + "; fix the binding's config, e.g. {failures: 2, mode: retryable}");
    }
    if (event.attempt <= config.failures) {
      std::string reason = "fail stage: planned " +
                           std::string(config.permanent ? "permanent" : "retryable") +
                           " failure on attempt " + std::to_string(event.attempt) + " of " +
                           std::to_string(config.failures);
      ctx.count("planned_failures");
      return config.permanent ? StageResult::permanent(reason) : StageResult::retryable(reason);
    }
    ctx.emit({.payload = event.payload});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(FailStage);

}  // namespace
}  // namespace factory::stages
