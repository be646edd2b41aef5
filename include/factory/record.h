// Records: what producers append and consumers read. Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "factory/types.h"

namespace factory {

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

// One record to append. Partition choice: `partition` when set; else Kafka's murmur2 of the key
// (the Java client's default partitioner, so a key lands where Kafka would put it); else a sticky
// partition for null keys that moves round-robin from one append call to the next.
struct ProducerRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  std::optional<int32_t> partition;
  std::optional<int64_t> timestamp_ms;  // unset: the append time (ms since the epoch)
};

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
  bool operator==(const RecordPosition&) const = default;
};

}  // namespace factory
