// MarkPruner: when a binding's processed marks are safe to forget.
//
// The processed table (store/meta_store.h) gets one mark per (binding, event id) and would grow
// without bound. A mark is needed while the binding can be handed a record with that event id
// that it already processed: a redelivery (a crash before the offset commit, a rewound batch, a
// group reset to earlier offsets) of a record still in its input topic, a dead letter of the
// event still in its dead-letter topic that `dlq replay` can append again, or the same content
// appended again (a producer's retry, the topic re-created and filled again). The rule takes
// both the log's state and the retention settings, because neither alone bounds a record's life
// (retention stops at a record stamped in the future, and a deleted topic drops everything at
// once):
//
//   1. At time T the pruner notes the log end of every partition of the input and dead-letter
//      topics. Every mark written before T belongs to a record appended before T, so below those
//      ends. Once every such partition's log start has reached its noted end (retention dropped
//      everything appended before T), or the topic was re-created (its old id is gone), no record
//      of a mark older than T can be delivered again.
//   2. And a mark is kept at least keep_ms, the longer retention.ms of the two topics: the same
//      content appended again within that window is still a duplicate, as it was before pruning
//      (Kafka's producer-id expiry plays the same part for its idempotent producer).
//   Marks with processed_at < min(T - kClockMarginMs, now - keep_ms) go.
//
// A topic that never drops records by time (retention.ms -1) keeps its binding's marks forever
// (the engine does not prune it). The margin covers the wall clock stepping back between a mark's
// processed_at and the snapshot's time; the store's clock and the engine's must be the same one.
//
// Thread-safety: not thread-safe; one worker of the binding owns it. Pure (no log, no store).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>

namespace factory::runtime {

class MarkPruner {
 public:
  // (topic id, partition) -> offset.
  using Positions = std::map<std::pair<uint64_t, int32_t>, int64_t>;

  static constexpr int64_t kClockMarginMs = 60'000;
  // Snapshots waiting for retention; the oldest are dropped past this (pruning only waits longer).
  static constexpr size_t kMaxSnapshots = 64;

  // Called every prune interval with the clock, the current log starts and ends of the binding's
  // input and dead-letter partitions (read after now_ms was taken) and keep_ms (>= 0). Returns
  // the cutoff: marks processed before it may be deleted (nullopt: none yet). Rule 1's part only
  // grows, so marks a step left behind go at a later one. Notes `ends` as a new snapshot.
  std::optional<int64_t> observe(int64_t now_ms, const Positions& starts, const Positions& ends,
                                 int64_t keep_ms);

  // The slice of the id space (MetaStore::prune_processed) to prune next, round-robin.
  uint8_t next_slice() { return slice_++; }

  size_t snapshots_for_test() const { return snapshots_.size(); }

 private:
  struct Snapshot {
    int64_t at_ms;
    Positions ends;
  };
  std::deque<Snapshot> snapshots_;  // oldest first
  std::optional<int64_t> cutoff_;   // rule 1 alone
  uint8_t slice_ = 0;
};

}  // namespace factory::runtime
