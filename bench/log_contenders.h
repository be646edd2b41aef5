// The systems `factory-bench log` compares, behind two small interfaces so the benchmark can
// interleave them round by round (a shared disk's speed drifts; interleaving gives every
// contender the same conditions):
//   Appender  factoryd (Log::append), raw RocksDB (WriteBatch, sync), Redis Streams (XADD).
//   Reader    factoryd (a consumer group's poll_into, and its poll), raw RocksDB (an iterator
//             over the same keys).
//
// Every record of a workload is addressed by its index i; its value is
// PayloadPool::get(i, value_bytes). Batches go to one partition each.
//
// Thread-safety: not thread-safe; one thread drives each contender. The Log, DB and
// RedisServer passed in are borrowed and must outlive the contender.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/db.h>

#include "bench/bench_util.h"
#include "bench/redis_peer.h"
#include "factory/consumer.h"
#include "factory/log.h"

namespace factory::bench {

inline constexpr int32_t kPartitions = 12;
inline constexpr int32_t kBatch = 1000;    // records per append call / WriteBatch / pipeline
inline constexpr int32_t kPollMax = 1000;  // records per consumer poll

struct Workload {
  std::string label;      // "100 B"
  std::string topic;      // factoryd topic; redis streams are "<topic>:<partition>"
  uint32_t raw_topic_id;  // the raw baseline's 4-byte topic id
  int64_t records;
  size_t value_bytes;
};

class Appender {
 public:
  virtual ~Appender() = default;
  // Appends records [first, first + n) of w to `partition`; durable (fsynced) on return.
  virtual Status append_batch(const Workload& w, int32_t partition, int64_t first, int64_t n) = 0;
};

class Reader {
 public:
  virtual ~Reader() = default;
  // Reads on until at least `n` more records were read or the workload is exhausted. Adds what
  // it read to *records and the value bytes to *payload_bytes. Checks per-partition offset order.
  virtual Status read_at_least(int64_t n, int64_t* records, int64_t* payload_bytes) = 0;
  // Called once after the last read (the consumer commits here).
  virtual Status finish() = 0;
};

std::unique_ptr<Appender> factoryd_appender(Log* log, const PayloadPool* pool);
std::unique_ptr<Appender> raw_appender(rocksdb::DB* db, const PayloadPool* pool);
std::unique_ptr<Appender> redis_appender(RedisServer* redis, const PayloadPool* pool);

// How the factoryd reader takes its batches.
enum class PollStyle {
  kInto,   // Consumer::poll_into, one batch vector reused from poll to poll
  kFresh,  // Consumer::poll, a new vector (and a new string per value) every poll
};
// Joins the group "bench-consume-<topic>" (kInto) or "bench-consume-fresh-<topic>" (kFresh)
// from the earliest offset.
Result<std::unique_ptr<Reader>> factoryd_reader(Log* log, const Workload& w, PollStyle style);
std::unique_ptr<Reader> raw_reader(rocksdb::DB* db, const Workload& w);

// A plain RocksDB with exactly the log's engine options (log/rocks_options.h), one column
// family where the log uses three. IOError when it cannot be opened.
Result<std::unique_ptr<rocksdb::DB>> raw_open(const std::string& dir);
// A single synced Put of a record-shaped key and value (the single-record latency baseline).
Status raw_put(rocksdb::DB* db, uint32_t topic_id, int32_t partition, int64_t offset,
               std::string_view payload);

Status with_context(const Status& s, std::string_view what);

}  // namespace factory::bench
