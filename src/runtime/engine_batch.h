// Batch: one polled batch of one worker through the steps engine.h documents, each step one
// method. Internal to src/runtime; the worker loop (engine.cpp, Engine::Impl::run_worker) polls,
// builds a Batch, calls run(), then finish() when it succeeded or rewind() when it did not.
//
// Operation:
//   run()      classify()        event ids, input contract, duplicates inside the batch
//              claim()           the binding's in-flight set (a copy another worker runs waits)
//              check_processed() the idempotency table, once for the batch
//              fence()           intents of a fenced stage, one transaction
//              run_stage()       the stage per event, partition by partition in offset order
//              append_outputs(), append_dead_letters()   one append per destination topic
//              mark_processed()  the batch's marks in one store transaction (group-committed
//                                with other batches: MetaStore::commit_processed)
//   finish()   schedule_retries(), count(), commit_offsets() — after run() succeeded
//   rewind()   the ONE way out of a failed run(): seek every partition back to its first polled
//              offset and release the claims, so the next poll reads the batch again with
//              nothing of it acknowledged. A fenced event that ran keeps its intent open, so the
//              next read asks recover() before acting again.
//
// Concurrency: not thread-safe; owned by the one worker that polled it. Shares the binding's
// claims and counters (BindingRuntime, under its mutex or atomic) with the other workers.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "factory/consumer.h"
#include "factory/event.h"
#include "factory/stage.h"
#include "runtime/engine_impl.h"

namespace factory::runtime {

// What one worker keeps from one batch to the next.
struct WorkerState {
  std::unique_ptr<Consumer> consumer;
  std::map<std::pair<int32_t, int64_t>, int> attempts;  // failed attempts so far per event
  std::map<TopicPartition, std::chrono::steady_clock::time_point> retry_due;  // paused partitions
};

// One polled record on its way through a batch.
struct Item {
  enum class Outcome {
    kPending,
    kDuplicate,  // already processed, or the same event earlier in this batch
    kOutputs,
    kDead,
    kRoute,
    kRetry,
    kDeferred,  // another worker of the binding holds the same event id: re-read it shortly
    kBlocked,   // behind a retried or deferred event of its partition
  };
  ConsumerRecord* rec;
  EventId id;
  std::string reject;  // set: dead-letter without running the stage
  Outcome outcome = Outcome::kPending;
  std::vector<Output> outputs;
  std::string reason;  // dead-letter or route reason
  std::string route_topic;
  int attempt = 1;
  bool intent_open = false;  // fenced: an earlier try's intent is open, so recover() comes first
};

class Batch {
 public:
  // *engine, *b, *w and *polled must outlive the Batch.
  Batch(Engine::Impl* engine, BindingRuntime* b, WorkerState* w,
        std::vector<ConsumerRecord>* polled);
  ~Batch() { release_claims(); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // From the polled records to durable outcomes. OK, or the failure of the log or the store
  // that stopped it (I/O, disk full, a failed transaction): the caller then calls rewind().
  Status run();

  // After run() failed with `why`: logs and counts the failure, seeks every partition back to its
  // first polled offset and releases the claims. Nothing of the batch is acknowledged.
  void rewind(const Status& why);

  // After run() succeeded: pause and seek back the partitions of retried and deferred events,
  // count outcomes, commit offsets.
  void finish();

 private:
  void classify();
  void claim();
  Status check_processed();
  Status fence();
  void run_stage();
  void run_one(Item& it);
  Status append_outputs();
  Status append_dead_letters();
  void refuse(Item& it, const std::string& topic, const Status& why);
  Status mark_processed();
  void schedule_retries();
  void count();
  void commit_offsets();
  void release_claims();

  Engine::Impl* const e_;
  BindingRuntime* const b_;
  const Binding& bind_;
  WorkerState* const w_;
  std::vector<ConsumerRecord>* const polled_;
  const bool fenced_;
  std::vector<Item> items_;
  std::vector<EventId> claimed_;  // ids this batch holds in b_->in_flight
};

}  // namespace factory::runtime
