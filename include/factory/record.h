// Records: what producers append and consumers read. Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/types.h"

namespace factory {

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

// The value of the last header named `name`, or "" when there is none. The last, because a
// record forwarded twice (an output of stage A, dead-lettered by B) carries the headers it
// inherited first and those of the binding that forwarded it last after them.
inline std::string last_header(const std::vector<Header>& headers, std::string_view name) {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->key == name) return it->value;
  }
  return "";
}

// One record to append. Partition choice: `partition` when set; else Kafka's murmur2 of the key
// (the Java client's default partitioner, so a key lands where Kafka would put it); else a sticky
// partition for null keys that moves round-robin from one append call to the next.
struct ProducerRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  std::optional<int32_t> partition;
  std::optional<int64_t> timestamp_ms;  // unset: the append time (ms since the epoch)
  // Idempotent producer (see AppendOptions): the producer this record comes from (empty: the
  // call's AppendOptions::producer_id) and its sequence.
  std::string producer_id;
  std::optional<int64_t> sequence;
  // Keyed idempotence: a record with a non-empty key (at most kMaxIdempotencyKeyBytes) is
  // appended at most once per (topic, key). A later append of the same key, in the same call or
  // any call after it (also after a restart), is skipped and reports the first record's position
  // with `duplicate` set. The key names the record's identity (say, "<binding>/<event id>/0"),
  // so unlike a producer sequence it does not depend on offsets that an offset reset or a
  // re-created input topic can reuse. A record carries either a producer sequence or a key.
  // Keys live as long as the topic (delete_topic forgets them) and retention drops them with
  // the records they name.
  std::string idempotency_key;
};

inline constexpr size_t kMaxIdempotencyKeyBytes = 1024;

// A stored record as read back. A null key or value stays null (distinct from empty).
struct Record {
  int32_t partition = 0;
  Offset offset;
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  bool operator==(const Record&) const = default;
};

// Where an appended record landed.
struct RecordPosition {
  int32_t partition = 0;
  Offset offset;
  // True when the record was not appended because it was already: its producer sequence was
  // appended (a replay; partition and offset are then -1), or its idempotency key was (partition
  // and offset are where the first record with that key landed).
  bool duplicate = false;
  bool operator==(const RecordPosition&) const = default;
};

// Options for one append call.
struct AppendOptions {
  // Idempotent producer (Kafka's enable.idempotence, by sequence): a record with a producer id
  // (its own, else this default) carries a `sequence`, strictly increasing per producer within
  // the call. The log durably remembers the highest sequence appended per (producer, topic), in
  // the same write as the records, and skips any record whose sequence is not above it. A
  // producer that replays after a crash with the same sequences appends nothing twice.
  // Records with no producer id are never deduplicated.
  std::string producer_id;
  // false: return once the write is in the log's WAL, without waiting for its fsync. It
  // survives kill -9, and the next synced write makes it durable against power loss too; for
  // records that can be rebuilt (e.g. observer events derived from stored state).
  bool sync = true;
};

}  // namespace factory
