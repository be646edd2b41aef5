// factory::Log — the durable, partitioned, replayable log that stands in for Kafka.
//
// Topics hold N partitions; each partition is an ordered sequence of records addressed by
// contiguous offsets from its log start to its log end. An append returns only after its write
// is synced to disk (concurrent appenders share one sync: group commit), so an acknowledged
// record survives kill -9 and power loss. Per partition, offset order equals acknowledgement
// order. Consumer-group offsets are stored in the same log, synced the same way.
//
// Log is the seam for scale-out: open_log() returns the embedded RocksDB implementation; a Kafka
// implementation can sit behind the same interface later.
//
// Thread-safety: all methods are safe to call concurrently. A data dir is held by one process at
// a time; a second open returns Busy.
//
// Example:
//   factory::LogOptions options;
//   options.dir = "data/log";
//   auto log = factory::open_log(options);
//   if (!log.ok()) return log.status();
//   (*log)->create_topic({.name = "jira-events", .partitions = 3});
//   factory::ProducerRecord r{.key = "PROJ-1", .value = R"({"title":"..."})"};
//   auto pos = (*log)->append("jira-events", {&r, 1});   // synced when this returns
//   auto fetched = (*log)->read("jira-events", pos->at(0).partition, pos->at(0).offset, {});
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "factory/record.h"
#include "factory/status.h"
#include "factory/topic.h"
#include "factory/types.h"

namespace factory {

class Consumer;
struct ConsumerOptions;

struct LogOptions {
  std::string dir;                  // created when missing
  bool sync = true;                 // fsync every group commit (false only for tests/benchmarks)
  std::function<int64_t()> now_ms;  // wall clock for timestamps and retention; null = system
  int64_t retention_interval_ms =
      30'000;  // how often the background retention step runs; 0 = never
  int64_t retention_step_records = 10'000;  // records deleted per partition per step, at most
  size_t block_cache_bytes = 8 << 20;
  size_t write_buffer_bytes = 32 << 20;
};

struct ReadOptions {
  int32_t max_records = 500;
  int64_t max_bytes = 1 << 20;  // at least one record is returned even when it is larger
  int64_t wait_ms = 0;          // long-poll: wait up to this long for a record at `from`
};

struct FetchResult {
  std::vector<Record> records;
  Offset log_start;
  Offset log_end;  // high watermark at the time of the read
};

struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  Offset offset;  // the next offset to consume (Kafka's committed-offset convention)
};

// One row of `groups describe`.
struct GroupPartitionLag {
  std::string topic;
  int32_t partition = 0;
  std::optional<Offset> committed;  // unset: the group never committed here
  Offset log_end;
  int64_t lag = 0;     // log_end - committed (or - log_start when unset)
  std::string member;  // in-process member that owns the partition, or ""
};

struct GroupDescription {
  std::string group;
  std::string state;  // "Stable" when members are active, else "Empty"
  std::vector<GroupPartitionLag> partitions;
};

// How to move a group's committed offsets (kafka-consumer-groups --reset-offsets).
struct OffsetResetSpec {
  enum class Kind { kEarliest, kLatest, kOffset, kTimestamp } kind = Kind::kEarliest;
  int64_t value = 0;  // the offset for kOffset (clamped to the log), ms since epoch for kTimestamp
};

// Outcome of one retention step.
struct RetentionStats {
  int64_t records_deleted = 0;
  int64_t bytes_deleted = 0;
  bool more = false;  // a partition still has expired records: run another step
};

class Log {
 public:
  virtual ~Log() = default;

  // --- Topics ---
  // Returns AlreadyExists when the topic exists, InvalidArgument for a bad spec.
  virtual Status create_topic(const TopicSpec& spec) = 0;
  // Creates the topic, or updates its config and raises its partition count. Lowering the
  // partition count returns InvalidArgument (Kafka cannot either).
  virtual Result<TopicChange> apply_topic(const TopicSpec& spec) = 0;
  // Deletes the topic, its records and every group's offsets for it. NotFound when absent.
  virtual Status delete_topic(std::string_view name) = 0;
  virtual std::vector<std::string> list_topics() = 0;  // sorted by name
  virtual Result<TopicInfo> describe_topic(std::string_view name) = 0;

  // --- Producing ---
  // Appends records to one topic as one atomic, synced write and returns each record's position
  // in input order. InvalidArgument (naming the record's index) for an oversize record or a
  // partition out of range, a missing/non-increasing producer sequence, an idempotency key over
  // kMaxIdempotencyKeyBytes or a record with both; NotFound for a missing topic; IOError when
  // the disk fails.
  virtual Result<std::vector<RecordPosition>> append(std::string_view topic,
                                                     std::span<const ProducerRecord> records,
                                                     const AppendOptions& options) = 0;
  Result<std::vector<RecordPosition>> append(std::string_view topic,
                                             std::span<const ProducerRecord> records) {
    return append(topic, records, AppendOptions{});
  }

  // --- Consuming ---
  // Reads records from `from` on. OutOfRange (with the log start and end) when `from` is below
  // the log start or above the log end; from == log end returns no records (after waiting up to
  // options.wait_ms for one).
  virtual Result<FetchResult> read(std::string_view topic, int32_t partition, Offset from,
                                   const ReadOptions& options) = 0;
  virtual Result<PartitionInfo> partition_info(std::string_view topic, int32_t partition) = 0;
  // The first offset whose record timestamp is >= timestamp_ms; the log end when there is none.
  virtual Result<Offset> offset_for_timestamp(std::string_view topic, int32_t partition,
                                              int64_t timestamp_ms) = 0;
  // Blocks until a record is appended anywhere after `seen` (from append_sequence()) or the
  // deadline passes. Returns the current sequence. Used by consumers that poll many partitions.
  virtual uint64_t wait_for_append(uint64_t seen, int64_t wait_ms) = 0;
  virtual uint64_t append_sequence() = 0;
  // Wakes every wait_for_append() and long-poll now (they re-check and may wait again); for a
  // loop that also waits for work that is not an append (e.g. scheduler commands).
  virtual void wake_waiters() = 0;
  // Whether appends and commits can be written now: OK, or the error that stops them, e.g.
  // NoSpace naming the disk while the last write failed for lack of space and space has not
  // come back. When writes had failed, tries to resume them first. For readiness checks.
  virtual Status writable() { return Status(); }

  // --- Consumer groups ---
  // Joins options.group as a new member (see factory/consumer.h). The Log must outlive it.
  // InvalidArgument for an empty group or topic list; NotFound for a missing topic.
  virtual Result<std::unique_ptr<Consumer>> subscribe(const ConsumerOptions& options) = 0;
  // Stores offsets for a group, group-committed with appends. sync=true: durable against power
  // loss when it returns. sync=false: written to the log's WAL without waiting for an fsync —
  // survives kill -9, and the next synced write makes it durable; for consumers whose
  // processing is idempotent, where a lost commit only means a harmless redelivery.
  // InvalidArgument for an empty group, a negative offset or a partition out of range; NotFound
  // for a missing topic, also one deleted while the commit waited to be written (nothing of the
  // call is committed then, so a topic recreated under the name starts without its offsets).
  virtual Status commit_offsets(std::string_view group,
                                std::span<const TopicPartitionOffset> offsets,
                                bool sync = true) = 0;
  // The committed offset, or nullopt when the group never committed on that partition.
  virtual Result<std::optional<Offset>> committed_offset(std::string_view group,
                                                         std::string_view topic,
                                                         int32_t partition) = 0;
  virtual std::vector<std::string> list_groups() = 0;  // groups with commits or live members
  // NotFound when the group has neither commits nor members.
  virtual Result<GroupDescription> describe_group(std::string_view group) = 0;
  // Computes (and with execute=true stores) new committed offsets for every partition of
  // `topic`. FailedPrecondition when the group has active members.
  virtual Result<std::vector<TopicPartitionOffset>> reset_offsets(std::string_view group,
                                                                  std::string_view topic,
                                                                  const OffsetResetSpec& spec,
                                                                  bool execute) = 0;

  // --- Maintenance ---
  // Runs one bounded retention step over all partitions now (the background thread calls this).
  virtual Result<RetentionStats> enforce_retention() = 0;
};

// Opens (creating when missing) the embedded log in options.dir. Returns Busy naming the dir when
// another process holds it, Corruption when the data cannot be read, InvalidArgument for bad
// options.
Result<std::unique_ptr<Log>> open_log(const LogOptions& options);

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): the same 32 bits as Java's
// signed int result, returned unsigned.
uint32_t murmur2(std::string_view data);
// Kafka's default partitioner for a keyed record: (murmur2(key) & 0x7fffffff) % partitions.
// Requires partitions > 0 (aborts otherwise).
int32_t partition_for_key(std::string_view key, int32_t partitions);

}  // namespace factory
