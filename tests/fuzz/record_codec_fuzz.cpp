// Fuzz target: the log's record codec (src/log/record_codec.h), both ways.
//  - The bytes as a stored record value (a corrupt or hostile RocksDB value): decode_record()
//    either refuses or gives a Record whose encoding decodes to the same Record, with the
//    timestamp decode_record_timestamp() reads.
//  - The bytes cut into a ProducerRecord (key, value, headers; "\n---\n" separated, byte 0
//    picks which are present): decode(encode(r)) == r.
// Also the time-index key: parse_time_index_key() on the bytes, and its round trip.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "factory/record.h"
#include "fuzz_util.h"
#include "log/record_codec.h"

using namespace factory;
using factory::fuzz::next_part;

namespace {

ProducerRecord producer_of(const Record& r) {
  ProducerRecord p;
  p.key = r.key;
  p.value = r.value;
  p.headers = r.headers;
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes = factory::fuzz::as_view(data, size);

  Record decoded;
  if (log::decode_record(bytes, &decoded).ok()) {
    int64_t ts = 0;
    FUZZ_CHECK(log::decode_record_timestamp(bytes, &ts), "timestamp unreadable in a record");
    FUZZ_CHECK(ts == decoded.timestamp_ms, "two readings of the timestamp differ");
    std::string again;
    log::encode_record(producer_of(decoded), decoded.timestamp_ms, &again);
    Record back;
    FUZZ_CHECK(log::decode_record(again, &back).ok(), "a re-encoded record does not decode");
    FUZZ_CHECK(back == decoded, "a re-encoded record decodes differently");
  }

  int64_t ts = 0, offset = 0;
  if (log::parse_time_index_key(bytes, &ts, &offset)) {
    uint32_t topic = 0;
    int32_t partition = 0;
    if (bytes.size() >= 8) {
      std::memcpy(&topic, bytes.data(), 4);
      std::memcpy(&partition, bytes.data() + 4, 4);
    }
    std::string key = log::time_index_key(topic, partition, ts, offset);
    int64_t ts2 = 0, offset2 = 0;
    FUZZ_CHECK(log::parse_time_index_key(key, &ts2, &offset2), "a time-index key does not parse");
    FUZZ_CHECK(ts2 == ts && offset2 == offset, "a time-index key does not read back");
  }

  if (size == 0) return 0;
  uint8_t flags = data[0];
  std::string_view rest = bytes.substr(1);
  ProducerRecord r;
  std::string_view key = next_part(&rest), value = next_part(&rest);
  if (flags & 1) r.key = std::string(key);
  if (flags & 2) r.value = std::string(value);
  while (!rest.empty()) {
    std::string_view name = next_part(&rest, "=");
    r.headers.push_back({std::string(name), std::string(next_part(&rest))});
  }
  int64_t stamp = static_cast<int64_t>(flags) * 1000003 - (flags & 4 ? (int64_t{1} << 62) : 0);
  std::string encoded;
  log::encode_record(r, stamp, &encoded);
  Record got;
  Status s = log::decode_record(encoded, &got);
  FUZZ_CHECK(s.ok(), s.to_string());
  FUZZ_CHECK(got.timestamp_ms == stamp && got.key == r.key && got.value == r.value &&
                 got.headers == r.headers,
             "decode(encode(r)) != r");
  return 0;
}
