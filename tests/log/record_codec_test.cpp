#include "log/record_codec.h"

#include <random>

#include "test_util.h"

using namespace factory;

TEST_CASE("record encoding round-trips keys, values and headers", "[log]") {
  ProducerRecord r;
  r.key = std::string("k\0ey", 4);
  r.value = std::string(300, '\xff');
  r.headers = {{"trace", "00-abc"}, {"", ""}, {"bin", std::string("\0\1", 2)}};
  std::string bytes;
  log::encode_record(r, -5, &bytes);
  Record out;
  REQUIRE_OK(log::decode_record(bytes, &out));
  CHECK(out.timestamp_ms == -5);
  CHECK(out.key == r.key);
  CHECK(out.value == r.value);
  CHECK(out.headers == r.headers);
  int64_t ts;
  REQUIRE(log::decode_record_timestamp(bytes, &ts));
  CHECK(ts == -5);
}

TEST_CASE("null key and value stay distinct from empty ones", "[log]") {
  for (int mask = 0; mask < 4; ++mask) {
    ProducerRecord r;
    if (mask & 1) r.key = "";
    if (mask & 2) r.value = "";
    std::string bytes;
    log::encode_record(r, 1, &bytes);
    Record out;
    REQUIRE_OK(log::decode_record(bytes, &out));
    CHECK(out.key.has_value() == ((mask & 1) != 0));
    CHECK(out.value.has_value() == ((mask & 2) != 0));
  }
}

TEST_CASE("truncated or garbled encodings are corruption, never a crash", "[log]") {
  ProducerRecord r;
  r.key = "key";
  r.value = "value";
  r.headers = {{"h", "v"}};
  std::string bytes;
  log::encode_record(r, 1234567, &bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Record out;
    Status s = log::decode_record(std::string_view(bytes).substr(0, n), &out);
    CHECK(s.code() == Status::Code::kCorruption);
  }
  std::string bad = bytes;
  bad[0] = 9;
  Record out;
  CHECK(log::decode_record(bad, &out).code() == Status::Code::kCorruption);
  CHECK(log::decode_record(bytes + "x", &out).code() == Status::Code::kCorruption);
}

TEST_CASE("record keys sort in offset order and time-index keys in timestamp order", "[log]") {
  const uint64_t seed = factory::test::test_seed();
  INFO("seed " << seed << " (set FACTORY_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  std::vector<int64_t> offsets;
  for (int i = 0; i < 200; ++i) offsets.push_back(static_cast<int64_t>(rng() >> 2));
  for (int64_t a : offsets) {
    for (int64_t b : {offsets[0], offsets[1], int64_t{0}, int64_t{255}, int64_t{256}}) {
      CHECK((log::record_key(7, 3, a) < log::record_key(7, 3, b)) == (a < b));
    }
    CHECK(log::record_key_offset(log::record_key(1, 2, a)) == a);
  }
  CHECK(log::record_key(1, 2, 0).size() == log::kRecordKeySize);
  CHECK(log::record_key(1, 1, INT64_MAX) < log::record_key(1, 2, 0));
  for (int64_t ts : {int64_t{-100}, int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{1764300000000}}) {
    CHECK(log::time_index_key(1, 0, ts, 5) < log::time_index_key(1, 0, ts + 1, 0));
    int64_t t2, o2;
    REQUIRE(log::parse_time_index_key(log::time_index_key(1, 0, ts, 5), &t2, &o2));
    CHECK(t2 == ts);
    CHECK(o2 == 5);
  }
}

TEST_CASE("decoding into a used record overwrites every field and reuses its strings", "[log]") {
  ProducerRecord big;
  big.key = "key-1";
  big.value = std::string(200, 'v');
  big.headers = {{"a", std::string(40, 'h')}, {"b", "2"}};
  ProducerRecord small;  // null key, short value, one header
  small.value = "tiny";
  small.headers = {{"c", "3"}};
  ProducerRecord bare;  // null key and value, no headers
  std::string big_bytes, small_bytes, bare_bytes;
  log::encode_record(big, 1, &big_bytes);
  log::encode_record(small, 2, &small_bytes);
  log::encode_record(bare, 3, &bare_bytes);

  Record reused;
  REQUIRE_OK(log::decode_record(big_bytes, &reused));
  const char* value_buffer = reused.value->data();
  REQUIRE_OK(log::decode_record(small_bytes, &reused));
  Record fresh;
  REQUIRE_OK(log::decode_record(small_bytes, &fresh));
  CHECK(reused == fresh);
  CHECK(reused.value->data() == value_buffer);  // the 200-byte buffer was reused, not replaced
  REQUIRE_OK(log::decode_record(bare_bytes, &reused));
  Record fresh_bare;
  REQUIRE_OK(log::decode_record(bare_bytes, &fresh_bare));
  CHECK(reused == fresh_bare);
  CHECK(!reused.key.has_value());
  CHECK(!reused.value.has_value());
  CHECK(reused.headers.empty());
}
