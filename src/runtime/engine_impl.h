// Internal to src/runtime (engine.cpp, engine_batch.cpp): what an Engine's workers share.
// BindingRuntime is one binding's state shared by its workers (stage, contracts, breakers, the
// in-flight claims, counters); Engine::Impl is the engine's (log, store, pool, stop signal).
//
// Thread-safety: the fields set by Engine::start before the workers start are read-only after
// it; the rest are atomics or sit under their mutex (GUARDED_BY).
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "config/contract.h"
#include "factory/event.h"
#include "factory/log.h"
#include "factory/stage.h"
#include "obs/metrics.h"
#include "runtime/circuit_breaker.h"
#include "runtime/engine.h"
#include "runtime/mark_pruner.h"
#include "runtime/thread_pool.h"

namespace factory::runtime {

// Breaker handed to stages: a CircuitBreaker plus its fallback route.
class BreakerImpl final : public Breaker {
 public:
  BreakerImpl(std::unique_ptr<CircuitBreaker> cb, std::string fallback)
      : cb_(std::move(cb)), fallback_(std::move(fallback)) {}
  bool allow() override { return cb_->allow(); }
  void record_success() override { cb_->on_success(); }
  void record_failure() override { cb_->on_failure(); }
  const std::string& fallback_topic() const override { return fallback_; }
  CircuitBreaker* breaker() { return cb_.get(); }

 private:
  std::unique_ptr<CircuitBreaker> cb_;
  const std::string fallback_;
};

// Everything one binding shares between its workers.
struct BindingRuntime {
  Binding binding;
  std::shared_ptr<Stage> stage;
  StageInfo info;
  std::unique_ptr<config::Contract> input;
  std::unique_ptr<config::Contract> output;
  std::filesystem::path scratch;
  std::vector<std::string> downstream_groups;  // groups consuming the output topic
  int workers = 1;
  int batch_size = 100;

  base::Mutex mu;
  std::map<std::string, std::unique_ptr<BreakerImpl>> breakers GUARDED_BY(mu);
  std::set<EventId> in_flight GUARDED_BY(mu);              // ids a worker's batch is running
  std::map<std::string, int64_t> counters GUARDED_BY(mu);  // StageContext::count

  std::atomic<int64_t> processed{0}, duplicates{0}, dead_lettered{0}, routed{0}, retries{0},
      recovered{0}, backpressure_pauses{0}, refused{0}, letters_by_reference{0}, batch_failures{0},
      marks_pruned{0};
  std::atomic<int> paused_workers{0};
  obs::Histogram* call_seconds = nullptr;  // factory_stage_duration_seconds{binding,stage}
};

struct Engine::Impl {
  Log* log;
  store::MetaStore* store;
  EngineOptions options;
  std::filesystem::path data_dir;  // options.data_dir
  const base::Clock* clock;
  std::vector<std::unique_ptr<BindingRuntime>> bindings;
  std::unique_ptr<ThreadPool> pool;
  std::atomic<bool> stopping{false};

  base::Mutex mu;
  base::CondVar done_cv{&mu};
  int running GUARDED_BY(mu) = 0;
  bool stopped GUARDED_BY(mu) = false;

  void run_worker(BindingRuntime* b, int index);
  // One pruning round for the binding's processed marks (mark_pruner.h has the rule).
  void prune_marks(BindingRuntime* b, MarkPruner* pruner);
  // Creates `topic` for the binding when missing, with the input's partition count and a
  // max.message.bytes at least the input's (what the binding forwards must fit).
  Status ensure_topic(const BindingRuntime& b, const std::string& topic);
  Breaker& breaker(BindingRuntime* b, std::string_view name);
  std::optional<std::string> secret(std::string_view name) const;
};

}  // namespace factory::runtime
