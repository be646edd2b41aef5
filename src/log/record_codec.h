// clang-format off
// On-disk layout of the log inside RocksDB. Four column families:
//
//   "records"   key:   topic_id u32 BE | partition u32 BE | offset u64 BE        (16 bytes)
//               value: the encoded record (below)
//   "timeindex" key:   topic_id u32 BE | partition u32 BE | ts u64 BE(biased) | offset u64 BE
//               value: empty. One entry each time a partition's running maximum timestamp
//               grows: the first offset whose running max reached `ts`.
//   "default"   metadata:
//               "T" name           -> topic: "id=..\npartitions=..\n<config k=v lines>"
//               "N"                -> next topic id, u32 BE (ids are never reused)
//               "P" id u32 | p u32 -> partition state: start u64 | end u64 | bytes u64
//                                     | max_ts u64 (biased)
//               "G" group \0 topic \0 partition u32 -> committed offset u64 BE
//               "Q" topic_id u32 | producer id     -> highest appended producer sequence u64 BE
//   "dedupe"    idempotency keys (layout beside dedupe_key() below)
//
// Encoded record (format 1):
//   u8 format=1 | varsint timestamp_ms | u8 flags (bit0: key present, bit1: value present)
//   | [len-prefixed key] | [len-prefixed value] | varint header count
//   | (len-prefixed name, len-prefixed value)*
// clang-format on
// Big-endian keys sort in offset order; biased timestamps (sign bit flipped) sort numerically.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "factory/record.h"
#include "factory/status.h"

namespace factory::log {

inline constexpr size_t kRecordKeySize = 16;
inline constexpr uint8_t kRecordFormat = 1;

std::string partition_prefix(uint32_t topic_id, int32_t partition);
std::string record_key(uint32_t topic_id, int32_t partition, int64_t offset);
// record_key() into dst[0, kRecordKeySize), without allocating (the read path's seek bounds).
void encode_record_key(uint32_t topic_id, int32_t partition, int64_t offset, char* dst);
// The offset in a record key; the key must be kRecordKeySize bytes.
int64_t record_key_offset(std::string_view key);

std::string time_index_key(uint32_t topic_id, int32_t partition, int64_t ts, int64_t offset);
// Decodes a time-index key; false when it is malformed.
bool parse_time_index_key(std::string_view key, int64_t* ts, int64_t* offset);
uint64_t bias_timestamp(int64_t ts);
int64_t unbias_timestamp(uint64_t v);

// Metadata keys ("default" column family, layouts above).
std::string topic_meta_key(std::string_view name);
std::string partition_meta_key(uint32_t id, int32_t p);
std::string group_meta_key(std::string_view group, std::string_view topic, int32_t p);
std::string producer_meta_key(uint32_t topic_id, std::string_view producer);

// dedupe column family, two entries per keyed record, the key by its SHA-256 (32 bytes: a
// fixed, small entry whatever the key's length, and no collision a producer could aim for):
//   topic_id u32 BE | 'K' | sha256(idempotency key)          -> partition u32 BE | offset u64 BE
//   topic_id u32 BE | 'P' | partition u32 BE | offset u64 BE -> sha256(idempotency key)
// The first is looked up by an append that carries the key (never loaded at open, so a large
// table costs no start-up time); the second lets retention drop the keys of the records it
// deletes with one scan of the deleted range. The topic id prefix lets delete_topic drop a
// topic's keys in one range.
std::string dedupe_key(uint32_t topic_id, std::string_view key);
std::string dedupe_position_key(uint32_t topic_id, int32_t partition, int64_t offset);
// The value of a dedupe 'K' entry: partition u32 BE | offset u64 BE.
std::string encode_position(int32_t partition, int64_t offset);
// A u64 BE value (committed offsets, producer sequences).
std::string encode_u64(uint64_t v);

// Appends the encoding of r, stamped with timestamp_ms, to *dst.
void encode_record(const ProducerRecord& r, int64_t timestamp_ms, std::string* dst);
// Decodes the value fields (timestamp, key, value, headers) into *out, overwriting them in
// place (strings keep their capacity). Corruption on bad bytes (*out then partly written).
Status decode_record(std::string_view bytes, Record* out);
// Reads just the timestamp; false on bad bytes.
bool decode_record_timestamp(std::string_view bytes, int64_t* ts);

}  // namespace factory::log
