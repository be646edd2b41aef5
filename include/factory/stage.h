// factory::Stage — an agent: a narrow unit with a strict input -> processing -> output contract.
//
// A stage consumes events (JSON records) from one topic and emits outputs to another. The
// runtime (src/runtime) owns everything around it: validation of input and output against the
// stage's JSON Schemas, the idempotency table, retries with backoff, dead letters, circuit
// breakers, back-pressure and offsets. A stage only decides what one event becomes.
//
// Side-effect classes tell the runtime how careful to be on redelivery:
//   kPure        no side effects; may run any number of times.
//   kIdempotent  side effects that are safe to repeat (PUT-like).
//   kFenced      must run at most once per event: the runtime writes an intent row before
//                process() and, after a crash, calls recover() instead of running it blindly.
//
// Threading: a Stage object is shared by all workers of its binding; process() and recover()
// are called concurrently (up to the binding's concurrency) and must be thread-safe. A stage
// with `blocking = true` runs on the elastic blocking pool, so it cannot starve fast stages.
//
// Example:
//   class Upper final : public factory::Stage {
//    public:
//     factory::StageInfo info() const override {
//       return {.name = "upper", .version = "1.0.0", .side_effects = factory::SideEffects::kPure};
//     }
//     factory::StageResult process(const factory::Event& e, factory::StageContext& ctx) override {
//       ctx.emit({.payload = to_upper(e.payload)});
//       return factory::StageResult::success();
//     }
//   };
//   FACTORY_REGISTER_STAGE(Upper);
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/event.h"
#include "factory/record.h"
#include "factory/status.h"
#include "factory/types.h"

namespace factory {

enum class SideEffects { kPure, kIdempotent, kFenced };

struct StageInfo {
  std::string name;
  std::string version;
  std::string input_schema;   // JSON Schema (draft 7) text; empty: any JSON value
  std::string output_schema;  // JSON Schema text; empty: any JSON value
  SideEffects side_effects = SideEffects::kPure;
  bool blocking = false;  // waits on I/O (LLM calls, subprocesses): run on the blocking pool
  int default_concurrency = 1;
  int default_batch_size = 100;
};

// One input event, as the runtime hands it to a stage.
struct Event {
  EventId id;  // SHA-256 of the canonical payload (docs/event-ids.md)
  std::string topic;
  int32_t partition = 0;
  Offset offset;
  std::optional<std::string> key;
  std::string payload;  // JSON text, already validated against the input schema
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;
  int attempt = 1;  // 1 on the first try, 2 on the first retry, ...
};

// Header on a DAG task's event, once per commit that a granted approval of the task's run was
// bound to. The task worker sets it from the scheduler's authenticated dispatch only (a
// record's own headers of this name are dropped), so a stage that must act only on an
// approved commit (deploy) can trust it; a plain pipeline binding never has it.
inline constexpr std::string_view kApprovedCommitHeader = "factory.approved";

// One output. `topic` empty: the binding's output topic. The key defaults to the input's key.
struct Output {
  std::string payload;  // JSON text, validated against the output schema
  std::optional<std::string> key;
  std::vector<Header> headers;
  std::string topic;
};

// What process() decided.
class StageResult {
 public:
  enum class Kind { kSuccess, kRetryable, kPermanent, kRoute };

  // The emitted outputs are appended.
  static StageResult success() { return StageResult(Kind::kSuccess, "", ""); }
  // Retried with backoff per the binding's policy; dead-lettered after the last attempt.
  static StageResult retryable(std::string reason) {
    return StageResult(Kind::kRetryable, std::move(reason), "");
  }
  // Dead-lettered at once (bad data no retry can fix).
  static StageResult permanent(std::string reason) {
    return StageResult(Kind::kPermanent, std::move(reason), "");
  }
  // The input goes to `topic` unchanged, with the reason in a header (e.g. "human-review").
  static StageResult route(std::string topic, std::string reason) {
    return StageResult(Kind::kRoute, std::move(reason), std::move(topic));
  }

  Kind kind() const { return kind_; }
  const std::string& reason() const { return reason_; }
  const std::string& route_topic() const { return topic_; }

 private:
  StageResult(Kind k, std::string reason, std::string topic)
      : kind_(k), reason_(std::move(reason)), topic_(std::move(topic)) {}
  Kind kind_;
  std::string reason_;
  std::string topic_;
};

// A circuit breaker shared by every call of a stage that uses the same name (e.g. "llm").
class Breaker {
 public:
  virtual ~Breaker() = default;
  // False while the breaker is open: do not call the dependency; fail or fall back.
  virtual bool allow() = 0;
  virtual void record_success() = 0;
  virtual void record_failure() = 0;
  // The binding's configured fallback topic for this breaker ("" when none).
  virtual const std::string& fallback_topic() const = 0;
};

// What a stage may use while processing one event. Valid only during that call.
class StageContext {
 public:
  virtual ~StageContext() = default;
  virtual void emit(Output output) = 0;
  // The binding's `config:` block as JSON text ("{}" when absent).
  virtual const std::string& config() const = 0;
  // A secret from the environment or a secrets file; nullopt when absent. Never log it.
  virtual std::optional<std::string> secret(std::string_view name) const = 0;
  // Structured logs carrying the stage, topic, partition, offset and event id.
  virtual void log_info(std::string_view message) = 0;
  virtual void log_warn(std::string_view message) = 0;
  // Metrics labelled with the stage name.
  virtual void count(std::string_view metric, int64_t delta = 1) = 0;
  // The processing deadline; a stage doing long work checks it and cancelled().
  virtual std::chrono::steady_clock::time_point deadline() const = 0;
  virtual bool cancelled() const = 0;
  // A per-binding scratch directory that survives restarts.
  virtual const std::filesystem::path& scratch_dir() const = 0;
  // The data directory. State that several stages share and that must survive restarts (the
  // factory's git repositories, deploy releases) lives under <data_dir>/<a folder of its own>.
  virtual const std::filesystem::path& data_dir() const = 0;
  virtual Breaker& breaker(std::string_view name) = 0;
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual StageInfo info() const = 0;
  // Checks a binding's `config:` block (JSON text) when the pipeline starts, so a bad config
  // is refused up front instead of failing every event. InvalidArgument saying what is wrong
  // and how to fix it. Default: any config is fine.
  virtual Status check_config(std::string_view config_json) const {
    (void)config_json;
    return Status();
  }
  virtual StageResult process(const Event& event, StageContext& ctx) = 0;

  enum class Recovery { kDone, kNotDone };
  // kFenced stages only: an intent for `event` was recorded but its outcome was not (the process
  // died during or around the side effect). Return kDone when the side effect happened (emit the
  // outputs it produced again, if any), kNotDone to have process() run. Default: kNotDone.
  virtual Recovery recover(const Event& event, StageContext& ctx) {
    (void)event;
    (void)ctx;
    return Recovery::kNotDone;
  }
};

using StageFactory = std::unique_ptr<Stage> (*)();

// Registers a built-in stage under info().name at static-initialisation time. The macro takes
// an unqualified type name (use it inside the stage's namespace).
bool register_stage(StageFactory factory);

}  // namespace factory

#define FACTORY_REGISTER_STAGE(Type)                                       \
  static const bool factory_registered_##Type = ::factory::register_stage( \
      []() -> std::unique_ptr<::factory::Stage> { return std::make_unique<Type>(); })
