// Binding: how one stage runs in a pipeline — what it consumes, what it produces, and the
// policies around it. Parsed from config/pipelines/*.yaml (pipeline_config.h). Plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "factory/stage.h"
#include "runtime/backpressure.h"
#include "runtime/circuit_breaker.h"
#include "runtime/retry.h"

namespace factory::runtime {

struct BreakerBinding {
  std::string name;  // the name stages pass to StageContext::breaker()
  CircuitBreakerConfig config;
  std::string fallback_topic;  // where an event goes while the breaker is open ("" = retry)
};

struct Binding {
  std::string name;   // unique across the loaded pipelines; default: the stage name
  std::string stage;  // a registered stage (built-in or plugin)
  std::string input_topic;
  std::string group;              // consumer group; default: the binding name
  std::string output_topic;       // "" for a sink stage
  std::string dead_letter_topic;  // default: "<input_topic>.dlq"
  int concurrency = 0;            // 0: the stage's default
  int max_poll_records = 0;       // 0: the stage's default batch size
  int64_t timeout_ms = 60'000;    // per event; the context's deadline
  RetryPolicy retry;
  bool backpressure_enabled = false;
  Watermarks backpressure{10'000, 5'000};  // lag of the output topic's consumer groups
  std::vector<BreakerBinding> breakers;
  std::string config_json = "{}";  // the binding's `config:` block, as JSON text

  // Set by code (not files): run this stage object instead of creating `stage` from the
  // registry — e.g. the scheduler's TaskStage adapters.
  std::shared_ptr<Stage> stage_instance;

  std::string source;  // file the binding came from, and its line, for error messages
  int line = 0;
};

}  // namespace factory::runtime
