// Engine: hosts the stages of the loaded pipelines and runs them against the log.
//
// Operation: each binding gets `concurrency` workers; each worker is one member of the
// binding's consumer group. A worker polls a batch and, for the batch as a whole:
//   1. validates every record (JSON, input schema) — a bad one goes to the dead-letter topic
//      with the reason in headers, never blocks the line;
//   2. checks the idempotency table once for the whole batch (MetaStore::is_processed);
//      (the same event twice in one batch runs once; a copy another worker of the binding is
//      running waits for it);
//   3. for a fenced stage, records intents for the rest in one transaction, learning which
//      were already open;
//   4. runs the stage for each event (recover() first where an earlier try left an intent open:
//      a crash, or a batch that failed after process() ran);
//   5. appends outputs and routes with one append per destination topic, each record keyed by
//      its identity "<binding>/<event id>/<index>" (ProducerRecord::idempotency_key) — a replay
//      appends nothing twice, and an offset reset or a re-created topic appends what it must.
//      A topic that refuses a record (missing, over max.message.bytes) dead-letters that event
//      with the reason; a letter too big for the dead-letter topic is stored by reference;
//   6. marks the batch processed in one SQLite transaction (shared with the batches other workers
//      mark at the same moment: MetaStore::commit_processed), then commits its offsets.
// A crash between any two steps replays the batch, and so does a failure of the log or the store
// (nothing of the batch is acknowledged): step 2, step 3 and step 5 recognise what was done.
// A retryable failure pauses its partition (later events of that partition wait, preserving
// per-key order) until the backoff delay passes, then the event is re-read and retried; after
// the last attempt it is dead-lettered. Back-pressure: a binding pauses polling while the lag
// of the groups consuming its output topic is above the high-water mark, until below the low.
//
// Concurrency: every worker runs on its own thread of the engine's worker pool, so a stage that
// blocks for seconds holds only its own workers; fast stages keep theirs. stats() and stop()
// are thread-safe.
//
// Processed marks are pruned once retention dropped every record they could answer for (a
// binding's first worker checks every prune_interval_ms; runtime/mark_pruner.h has the rule).
//
// Limitations: retry attempt counts are kept in memory (a restart starts counting again).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "factory/log.h"
#include "factory/status.h"
#include "runtime/circuit_breaker.h"
#include "runtime/pipeline_config.h"
#include "store/meta_store.h"

namespace factory::runtime {

struct EngineOptions {
  std::string data_dir;     // scratch dirs live in <data_dir>/scratch/<binding>
  std::string secrets_dir;  // a secret NAME is the file <secrets_dir>/NAME ("" = none)
  int64_t idle_poll_ms = 200;
  const base::Clock* clock = nullptr;  // breakers, pruning; null = system clock
  // How often each binding forgets the processed marks the log can no longer deliver again
  // (runtime/mark_pruner.h); 0 = never. The clock must be the store's (StoreOptions::now_ms).
  int64_t prune_interval_ms = 600'000;
};

struct BindingStats {
  std::string binding;
  std::string stage;
  int workers = 0;
  int64_t processed = 0;   // events whose outcome was committed
  int64_t duplicates = 0;  // skipped: already processed (redelivery)
  int64_t dead_lettered = 0;
  int64_t routed = 0;
  int64_t retries = 0;
  int64_t recovered = 0;  // fenced intents resolved by recover()
  int64_t refused = 0;    // events dead-lettered because a topic refused their output or route
  int64_t letters_by_reference = 0;  // dead letters too big for their topic, stored by reference
  int64_t batch_failures = 0;        // batches re-read after the log or the store failed
  int64_t marks_pruned = 0;          // processed marks forgotten (retention dropped their records)
  bool paused = false;               // back-pressure
  int64_t backpressure_pauses = 0;
  std::vector<CircuitBreaker::Snapshot> breakers;
  std::vector<std::string> breaker_names;
};

class Engine {
 public:
  // Creates the stages, checks the topics (creating missing output and dead-letter topics with
  // the input's partition count) and starts the workers. *log and *store must outlive the
  // Engine. NotFound for an unknown stage or input topic, InvalidArgument for a bad schema —
  // each naming the binding and the file:line it came from.
  static Result<std::unique_ptr<Engine>> start(Log* log, store::MetaStore* store,
                                               const PipelineConfig& config,
                                               const EngineOptions& options);
  ~Engine();  // stop() with a zero deadline when not stopped yet

  // Stops polling; in-flight batches finish, are committed, and workers leave their groups.
  // TimedOut when a stage is still busy at the deadline: the caller may exit anyway, since
  // nothing is acknowledged before it is durable.
  Status stop(int64_t deadline_ms);

  std::vector<BindingStats> stats() const;

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace factory::runtime
