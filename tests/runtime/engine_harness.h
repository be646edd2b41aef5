// EngineHarness: a log, a store and an engine in a temp dir, for the engine's tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "factory/log.h"
#include "log/log_test_util.h"
#include "runtime/engine.h"
#include "store/failing_store.h"
#include "store/meta_store.h"

namespace factory::test {

// A binding of `stage` from `in` to `out`, with fast retries and "<in>.dlq" dead letters.
inline runtime::Binding binding(std::string stage, std::string in, std::string out) {
  runtime::Binding b;
  b.name = stage + "-" + in;
  b.stage = std::move(stage);
  b.input_topic = std::move(in);
  b.output_topic = std::move(out);
  b.group = b.name;
  b.dead_letter_topic = b.input_topic + ".dlq";
  b.retry.initial_delay_ms = 1;
  b.retry.max_delay_ms = 5;
  b.source = "test.yaml";
  b.line = 1;
  return b;
}

// The value of the first header named `name` ("" when absent).
inline std::string header(const Record& r, const std::string& name) {
  for (const auto& h : r.headers) {
    if (h.key == name) return h.value;
  }
  return "";
}

struct EngineHarness {
  TempDir dir;
  std::unique_ptr<Log> log;
  std::unique_ptr<store::MetaStore> store;  // a FailingStore over SQLite
  FailingStore* failing = nullptr;          // the same object, to inject failures
  std::unique_ptr<runtime::Engine> engine;

  EngineHarness() {
    log = open_test_log(test_log_options(dir));
    open_store();
  }
  void open_store() {
    auto s = store::open_sqlite_store({.dir = dir.str() + "/store", .sync = false});
    REQUIRE_OK(s);
    auto f = std::make_unique<FailingStore>(std::move(*s));
    failing = f.get();
    store = std::move(f);
  }
  void topic(const std::string& name, int32_t partitions = 1) {
    REQUIRE_OK(log->create_topic({.name = name, .partitions = partitions}));
  }
  void start(std::vector<runtime::Binding> bindings) {
    runtime::PipelineConfig config;
    config.bindings = std::move(bindings);
    runtime::EngineOptions eo;
    eo.data_dir = dir.str();
    eo.idle_poll_ms = 50;
    auto e = runtime::Engine::start(log.get(), store.get(), config, eo);
    REQUIRE_OK(e);
    engine = std::move(*e);
  }
  void stop() {
    if (engine) REQUIRE_OK(engine->stop(10'000));
    engine.reset();
  }
  // Every record of `topic`, all partitions.
  std::vector<Record> records(const std::string& topic) {
    std::vector<Record> all;
    auto info = log->describe_topic(topic);
    if (!info.ok()) return all;
    for (const auto& p : info->partitions) {
      auto r =
          log->read(topic, p.partition, p.log_start, {.max_records = 100000, .max_bytes = 1 << 30});
      if (r.ok()) all.insert(all.end(), r->records.begin(), r->records.end());
    }
    return all;
  }
  // Waits (on the log's append notifications) until `topic` holds n records; returns them.
  std::vector<Record> wait_records(const std::string& topic, size_t n,
                                   int64_t timeout_ms = 20'000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      uint64_t seq = log->append_sequence();
      std::vector<Record> all = records(topic);
      if (all.size() >= n || std::chrono::steady_clock::now() >= deadline) return all;
      log->wait_for_append(seq, 100);
    }
  }
  // Waits until the binding's group has committed past every record of its input topic.
  bool wait_drained(const std::string& group, const std::string& topic,
                    int64_t timeout_ms = 20'000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      uint64_t seq = log->append_sequence();
      auto info = log->describe_topic(topic);
      bool drained = info.ok();
      if (drained) {
        for (const auto& p : info->partitions) {
          auto c = log->committed_offset(group, topic, p.partition);
          if (!c.ok() || !*c || (*c)->value() < p.log_end.value()) drained = false;
        }
      }
      if (drained) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      log->wait_for_append(seq, 50);
    }
  }
  ~EngineHarness() {
    if (engine) REQUIRE_OK(engine->stop(10'000));
  }
};

}  // namespace factory::test
