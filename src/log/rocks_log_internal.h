// Private to RocksLog's implementation files (rocks_log*.cpp): the writer-queue entry and
// small helpers they share. Not part of the log's interface; include only from src/log/.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "factory/status.h"
#include "log/rocks_log.h"

namespace factory::log {

inline std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// InvalidArgument naming the topic's valid partitions.
Status partition_out_of_range(std::string_view topic, int32_t p, size_t n);

// One entry of the writer queue (see RocksLog's comment): an append, an offset commit, or an
// exclusive operation. Lives on its caller's stack until write() returns; the leader of a group
// fills `positions` and `status` for every writer of its group.
struct RocksLog::Writer {
  enum class Kind { kAppend, kCommit, kExclusive };
  explicit Writer(base::Mutex* mu, Kind k) : kind(k), cv(mu) {}

  const Kind kind;
  // kAppend: the records' chosen partitions (-1: sticky, chosen when queued), encodings, sizes.
  std::shared_ptr<Topic> topic;
  std::vector<int32_t> partitions;
  std::vector<std::string> values;
  std::vector<int64_t> timestamps;
  // Idempotent records: per record, an index into producers (-1: none) and its sequence.
  std::vector<std::string> producers;
  std::vector<int32_t> producer_of;
  std::vector<int64_t> sequences;
  // Keyed records: per record the SHA-256 of its idempotency key (empty: none; the vector is
  // empty when no record has one), and where an earlier append put that key (looked up by the
  // leader).
  std::vector<std::string> keys;
  std::vector<std::optional<RecordPosition>> key_found;
  std::vector<RecordPosition> positions;  // filled by the leader
  // kCommit: the offsets, and per offset the topic it was validated against when queued.
  std::string group;
  std::vector<TopicPartitionOffset> offsets;
  std::vector<std::shared_ptr<Topic>> offset_topics;
  // kExclusive
  const std::function<Status()>* fn = nullptr;

  size_t bytes = 0;
  bool sync = true;  // false: an offset commit that need not wait for an fsync
  Status status;
  bool done = false;
  base::CondVar cv;
};

}  // namespace factory::log
