// factory::Consumer — a member of a consumer group, polling the partitions assigned to it.
//
// Members of one group on the same Log share the topics' partitions (Kafka's range assignor).
// When a member joins or leaves, the group rebalances cooperatively: a member gives up a
// partition only at its next poll, after committing its position there, and the new owner
// starts from that committed offset — so no record is handed to two members at once.
// Positions start at the committed offset, else per auto_offset_reset.
//
// Delivery is at-least-once: commit() (or a rebalance) stores the position after the last
// record returned by poll(); records polled but not committed are delivered again after a crash.
//
// Thread-safety: not thread-safe; one thread owns a Consumer. Different Consumers may be used
// from different threads. The Log must outlive every Consumer created from it.
//
// Example:
//   auto c = log->subscribe({.group = "codegen", .topics = {"feature-specs"}});
//   while (running) {
//     auto batch = (*c)->poll(100, /*wait_ms=*/500);
//     for (auto& r : *batch) handle(r);
//     (*c)->commit();
//   }
//   // Or, reusing one batch's buffers from poll to poll (no allocation per record):
//   std::vector<factory::ConsumerRecord> batch;
//   while (running && (*c)->poll_into(100, 500, &batch).ok()) { ... }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "factory/record.h"
#include "factory/status.h"

namespace factory {

struct ConsumerOptions {
  std::string group;
  std::vector<std::string> topics;
  enum class Reset { kEarliest, kLatest } auto_offset_reset = Reset::kEarliest;
  std::string client_id = "consumer";
  // Commit offsets without waiting for an fsync (see Log::commit_offsets); for consumers whose
  // processing is idempotent.
  bool sync_commits = true;
};

struct ConsumerRecord {
  std::string topic;
  Record record;
};

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

class Consumer {
 public:
  virtual ~Consumer() = default;  // leaves the group; uncommitted positions are not committed

  // Returns up to max_records from the owned partitions, waiting up to wait_ms for the first.
  // An empty vector when nothing arrived in time. NotFound when a subscribed topic was deleted.
  virtual Result<std::vector<ConsumerRecord>> poll(int32_t max_records, int64_t wait_ms) = 0;
  // poll() into *batch, reusing its storage: *batch is resized to the records returned, and the
  // records it already held are overwritten in place, their strings keeping their capacity. A
  // caller that polls into the same vector every time allocates nothing per record once its
  // buffers have grown (the log's own implementation; this default only moves poll()'s result
  // in). The records and errors of poll(); on an error *batch is empty.
  virtual Status poll_into(int32_t max_records, int64_t wait_ms,
                           std::vector<ConsumerRecord>* batch) {
    auto r = poll(max_records, wait_ms);
    if (!r.ok()) {
      batch->clear();
      return r.status();
    }
    *batch = std::move(*r);
    return Status();
  }
  // Commits, for each owned partition, the offset after the last record poll() returned.
  virtual Status commit() = 0;
  // Moves the position of an owned partition (the next poll reads from `offset`).
  virtual Status seek(const TopicPartition& tp, Offset offset) = 0;
  // Stops returning records from an owned partition until resume() (Kafka's pause): used to
  // hold a partition while one of its events waits for a retry. Position and ownership stay.
  virtual void pause(const TopicPartition& tp) = 0;
  virtual void resume(const TopicPartition& tp) = 0;
  virtual std::vector<TopicPartition> assignment() const = 0;
  virtual const std::string& member_id() const = 0;
};

}  // namespace factory
