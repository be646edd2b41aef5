// A StageContext for driving one stage directly in tests, without a runtime: it records what
// the stage emits, logs and counts, and lets the test set the config, secrets, deadline,
// cancellation and breakers. make_event() builds the Event a runtime would hand over.
//
// Example:
//   factory::test::FakeStageContext ctx(R"({"failures": 1})");
//   auto stage = *factory::runtime::create_stage("fail");
//   auto r = stage->process(factory::test::make_event(R"({"a":1})", /*attempt=*/2), ctx);
//   REQUIRE(ctx.outputs().size() == 1);
//
// Thread-safe: a test may share one context between concurrent process() calls.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/event.h"
#include "factory/stage.h"

namespace factory::test {

// A breaker the test opens and closes by hand; counts the outcomes it is told about.
class FakeBreaker final : public Breaker {
 public:
  explicit FakeBreaker(std::string fallback_topic = "") : fallback_(std::move(fallback_topic)) {}
  bool allow() override { return allow_.load(); }
  void record_success() override { ++successes_; }
  void record_failure() override { ++failures_; }
  const std::string& fallback_topic() const override { return fallback_; }

  void set_allow(bool allow) { allow_ = allow; }
  int successes() const { return successes_.load(); }
  int failures() const { return failures_.load(); }

 private:
  const std::string fallback_;
  std::atomic<bool> allow_{true};
  std::atomic<int> successes_{0};
  std::atomic<int> failures_{0};
};

class FakeStageContext final : public StageContext {
 public:
  struct LogLine {
    std::string level;  // "info" or "warn"
    std::string message;
  };

  explicit FakeStageContext(std::string config_json = "{}",
                            std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : config_(std::move(config_json)),
        scratch_(std::filesystem::temp_directory_path()),
        deadline_(std::chrono::steady_clock::now() + timeout) {}

  // StageContext.
  void emit(Output output) override {
    std::lock_guard<std::mutex> lock(mu_);
    outputs_.push_back(std::move(output));
  }
  const std::string& config() const override { return config_; }
  // Between process() calls only (config() hands out a reference).
  void set_config(std::string config_json) { config_ = std::move(config_json); }
  std::optional<std::string> secret(std::string_view name) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = secrets_.find(std::string(name));
    if (it == secrets_.end()) return std::nullopt;
    return it->second;
  }
  void log_info(std::string_view message) override { add_log("info", message); }
  void log_warn(std::string_view message) override { add_log("warn", message); }
  void count(std::string_view metric, int64_t delta = 1) override {
    std::lock_guard<std::mutex> lock(mu_);
    counters_[std::string(metric)] += delta;
  }
  std::chrono::steady_clock::time_point deadline() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return deadline_;
  }
  bool cancelled() const override { return cancelled_.load(); }
  const std::filesystem::path& scratch_dir() const override { return scratch_; }
  const std::filesystem::path& data_dir() const override { return data_dir_; }
  Breaker& breaker(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& b = breakers_[std::string(name)];
    if (!b) b = std::make_unique<FakeBreaker>();
    return *b;
  }

  // Test controls. Set these before handing the context to a stage, except cancel().
  void set_secret(std::string name, std::string value) {
    std::lock_guard<std::mutex> lock(mu_);
    secrets_[std::move(name)] = std::move(value);
  }
  void set_deadline(std::chrono::steady_clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(mu_);
    deadline_ = deadline;
  }
  void set_scratch_dir(std::filesystem::path dir) { scratch_ = std::move(dir); }
  void set_data_dir(std::filesystem::path dir) { data_dir_ = std::move(dir); }
  void cancel() { cancelled_ = true; }
  // The breaker `name`, created with `fallback_topic` (replacing any earlier one).
  FakeBreaker& add_breaker(const std::string& name, std::string fallback_topic = "") {
    std::lock_guard<std::mutex> lock(mu_);
    auto& b = breakers_[name];
    b = std::make_unique<FakeBreaker>(std::move(fallback_topic));
    return *b;
  }

  // Observations (copies, so they stay valid while the stage keeps running).
  std::vector<Output> outputs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outputs_;
  }
  std::vector<LogLine> logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }
  int64_t counter(std::string_view metric) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = counters_.find(std::string(metric));
    return it == counters_.end() ? 0 : it->second;
  }
  void clear_outputs() {
    std::lock_guard<std::mutex> lock(mu_);
    outputs_.clear();
  }

 private:
  void add_log(const char* level, std::string_view message) {
    std::lock_guard<std::mutex> lock(mu_);
    logs_.push_back({level, std::string(message)});
  }

  std::string config_;
  std::filesystem::path scratch_;
  std::filesystem::path data_dir_;
  std::atomic<bool> cancelled_{false};

  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point deadline_;
  std::vector<Output> outputs_;
  std::vector<LogLine> logs_;
  std::map<std::string, int64_t> counters_;
  std::map<std::string, std::string> secrets_;
  std::map<std::string, std::unique_ptr<FakeBreaker>> breakers_;
};

// An input event as the runtime would deliver it: the id is the payload's event id (or the
// bytes' id for a payload that is not JSON).
inline Event make_event(std::string payload, int attempt = 1, std::string topic = "in",
                        std::optional<std::string> key = std::nullopt) {
  Event e;
  Result<EventId> id = event_id_for(payload);
  e.id = id.ok() ? *id : event_id_for_bytes(payload);
  e.topic = std::move(topic);
  e.key = std::move(key);
  e.payload = std::move(payload);
  e.attempt = attempt;
  return e;
}

}  // namespace factory::test
