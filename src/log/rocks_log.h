// RocksLog: the embedded Log on RocksDB (layout in record_codec.h).
//
// Operation: every mutation (appends, offset commits, topic changes, retention) is a Writer in
// one queue, as in leveldb's DBImpl::Write. The writer at the front is the leader: it takes the
// appends and commits queued behind it, assigns offsets under mu_, releases mu_, writes them as
// one synced WriteBatch, then publishes the new partition ends and wakes the group. So
// concurrent appenders share one fsync, offsets are contiguous, and per-partition order is the
// order of acknowledgement. Topic changes and retention run alone at the front of the queue.
// Partition state (start, end, bytes, running max timestamp) lives in memory and is written in
// the same batch as the records it describes, so a crash never separates them.
//
// Concurrency: thread-safe. Readers take mu_ only to snapshot a partition's bounds. One
// background thread runs retention every LogOptions::retention_interval_ms; it is joined in the
// destructor. The destructor must not race with calls in flight.
//
// Limitations: one process per data dir (RocksDB's LOCK file; a second open returns Busy).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "base/mutex.h"
#include "factory/consumer.h"
#include "factory/log.h"
#include "log/group_coordinator.h"

namespace factory::log {

// The one place rocksdb::Status becomes Status: "<what> in '<dir>': <RocksDB's message>";
// NoSpace for a full disk (naming it, and that writes resume once space is freed); Corruption
// naming the damaged file and the fix (restore from a backup); else IOError.
Status from_rocks(const rocksdb::Status& s, const std::string& dir, std::string_view what);

class RocksLog final : public Log {
 public:
  static Result<std::unique_ptr<Log>> open(const LogOptions& options);
  // The same on a given file layer (tests: a fault-injecting rocksdb::FileSystem wrapped in an
  // Env). *env_for_test must outlive the log; null = the default.
  static Result<std::unique_ptr<Log>> open_for_test(const LogOptions& options,
                                                    rocksdb::Env* env_for_test);
  ~RocksLog() override;

  Status create_topic(const TopicSpec& spec) override;
  Result<TopicChange> apply_topic(const TopicSpec& spec) override;
  Status delete_topic(std::string_view name) override;
  std::vector<std::string> list_topics() override;
  Result<TopicInfo> describe_topic(std::string_view name) override;

  using Log::append;
  Result<std::vector<RecordPosition>> append(std::string_view topic,
                                             std::span<const ProducerRecord> records,
                                             const AppendOptions& options) override;

  Result<FetchResult> read(std::string_view topic, int32_t partition, Offset from,
                           const ReadOptions& options) override;
  Result<PartitionInfo> partition_info(std::string_view topic, int32_t partition) override;
  Result<Offset> offset_for_timestamp(std::string_view topic, int32_t partition,
                                      int64_t timestamp_ms) override;
  uint64_t wait_for_append(uint64_t seen, int64_t wait_ms) override;
  uint64_t append_sequence() override;

  Result<std::unique_ptr<Consumer>> subscribe(const ConsumerOptions& options) override;
  Status commit_offsets(std::string_view group, std::span<const TopicPartitionOffset> offsets,
                        bool sync = true) override;
  Result<std::optional<Offset>> committed_offset(std::string_view group, std::string_view topic,
                                                 int32_t partition) override;
  std::vector<std::string> list_groups() override;
  Result<GroupDescription> describe_group(std::string_view group) override;
  Result<std::vector<TopicPartitionOffset>> reset_offsets(std::string_view group,
                                                          std::string_view topic,
                                                          const OffsetResetSpec& spec,
                                                          bool execute) override;

  Result<RetentionStats> enforce_retention() override;

  void wake_waiters() override;
  Status writable() override;

  GroupCoordinator* coordinator() { return &coordinator_; }

  // For ConsumerImpl::poll_into: read() without a long-poll wait, with ReadOptions' default
  // byte limit, decoding each record in place into the ConsumerRecord slots of *out from index
  // *used on (reusing their storage; appending slots when *out runs out), and advancing *used
  // past them. The errors of read(); *used is then unchanged (slots past it may be written).
  Status read_for_consumer(const std::string& topic, int32_t partition, Offset from,
                           int32_t max_records, std::vector<ConsumerRecord>* out, size_t* used);

  // The writers in the queue, the one at its front included; for tests that order concurrent
  // calls (e.g. a commit queued behind a topic's deletion).
  size_t queued_writers_for_test();
  // Callers blocked right now in a long-poll read() or wait_for_append(); lets a test append
  // only once a reader waits.
  int long_poll_waiters_for_test();

 private:
  struct Partition {
    int64_t start = 0;
    int64_t end = 0;  // published (acknowledged) end
    int64_t bytes = 0;
    int64_t max_ts = INT64_MIN;
  };
  struct Topic {
    uint32_t id = 0;
    TopicSpec spec;
    std::vector<std::unique_ptr<Partition>> parts;
    uint32_t sticky = 0;  // partition for the next null-key batch
    bool deleted = false;
  };
  struct Writer;
  using GroupKey = std::tuple<std::string, std::string, int32_t>;  // group, topic, partition
  using ProducerKey = std::pair<uint32_t, std::string>;            // topic id, producer id

  RocksLog(const LogOptions& options, rocksdb::DB* db,
           std::vector<rocksdb::ColumnFamilyHandle*> handles);

  Status load();
  // Queues *w and waits until it is done; the writer at the front does the work.
  Status write(Writer* w);
  Status write_group(std::vector<Writer*>& group) REQUIRES(mu_);
  // Fills each keyed writer's key_found from the dedupe column family. Called by the queue's
  // leader with mu_ released.
  Status lookup_keys(std::vector<Writer*>& group);
  // Runs fn alone at the front of the writer queue (mu_ not held while fn runs).
  Status exclusive(const std::function<Status()>& fn);

  Result<std::shared_ptr<Topic>> find_topic(std::string_view name) REQUIRES(mu_);
  // A partition's bounds for a read from `from` (after a long-poll of up to wait_ms when `from`
  // is the end). NotFound, InvalidArgument (partition), OutOfRange as read() documents.
  struct ReadBounds {
    uint32_t topic_id;
    int64_t start;
    int64_t end;
  };
  Result<ReadBounds> read_bounds(std::string_view topic, int32_t partition, Offset from,
                                 int64_t wait_ms);
  template <typename NextRecord>
  Result<size_t> scan_records(std::string_view topic, int32_t partition, const ReadBounds& bounds,
                              int64_t from, int64_t max_records, int64_t max_bytes,
                              NextRecord&& next_record);
  Status put_topic_meta(rocksdb::WriteBatch* batch, const Topic& t);
  void put_partition_meta(rocksdb::WriteBatch* batch, uint32_t id, int32_t p, const Partition& s);
  Status create_topic_locked(const TopicSpec& spec);  // caller is the exclusive writer
  Status retention_step(RetentionStats* stats);       // caller is the exclusive writer
  int64_t now_ms() const;
  Status to_status(const rocksdb::Status& s, std::string_view what) const;
  // db_->Write after resume_writes(); a failure marks the log for resuming. Caller is the
  // writer at the front of the queue.
  Status db_write(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch,
                  std::string_view what);
  Status resume_writes(std::string_view what);
  void retention_loop();

  const LogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* meta_cf_;
  rocksdb::ColumnFamilyHandle* records_cf_;
  rocksdb::ColumnFamilyHandle* index_cf_;
  rocksdb::ColumnFamilyHandle* dedupe_cf_;  // idempotency keys (ProducerRecord)
  GroupCoordinator coordinator_;

  base::Mutex mu_;
  base::CondVar data_cv_;  // signalled when ends move (or groups change)
  std::map<std::string, std::shared_ptr<Topic>, std::less<>> topics_ GUARDED_BY(mu_);
  uint32_t next_topic_id_ GUARDED_BY(mu_) = 1;
  std::map<GroupKey, int64_t> committed_ GUARDED_BY(mu_);
  std::map<ProducerKey, int64_t> producer_seqs_ GUARDED_BY(mu_);  // highest sequence appended
  std::deque<Writer*> writers_ GUARDED_BY(mu_);
  uint64_t append_seq_ GUARDED_BY(mu_) = 0;
  int long_poll_waiters_ GUARDED_BY(mu_) = 0;  // read() and wait_for_append() calls waiting
  bool closing_ GUARDED_BY(mu_) = false;
  std::atomic<bool> write_failed_{false};  // a write failed: Resume() before the next one
  base::CondVar retention_cv_;
  std::thread retention_thread_;
};

}  // namespace factory::log
