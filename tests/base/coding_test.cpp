#include "base/coding.h"

#include <random>

#include "test_util.h"

using namespace factory::base;

TEST_CASE("varints round-trip across the range", "[base]") {
  const uint64_t seed = factory::test::test_seed();
  INFO("seed " << seed << " (set FACTORY_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  std::vector<int64_t> values = {0, 1, -1, 63, -64, 64, 127, 128, INT64_MAX, INT64_MIN};
  for (int i = 0; i < 1000; ++i) values.push_back(static_cast<int64_t>(rng()));
  std::string buf;
  for (int64_t v : values) put_varsint64(&buf, v);
  std::string_view in(buf);
  for (int64_t v : values) {
    int64_t got;
    REQUIRE(get_varsint64(&in, &got));
    CHECK(got == v);
  }
  CHECK(in.empty());
  uint64_t u;
  std::string_view truncated("\x80\x80", 2);
  CHECK_FALSE(get_varint64(&truncated, &u));
}

TEST_CASE("big-endian fixed ints decode what they encode", "[base]") {
  std::string s;
  put_fixed64_be(&s, 0x0102030405060708ull);
  put_fixed32_be(&s, 0xa0b0c0d0u);
  CHECK(static_cast<unsigned char>(s[0]) == 1);
  CHECK(decode_fixed64_be(s.data()) == 0x0102030405060708ull);
  CHECK(decode_fixed32_be(s.data() + 8) == 0xa0b0c0d0u);
}

TEST_CASE("JSON strings escape controls and replace invalid UTF-8", "[base]") {
  std::string out;
  const char raw[] = "a\"b\\c\n\x01 é \xff";
  append_json_string(&out, std::string_view(raw, sizeof raw - 1));
  CHECK(out == "\"a\\\"b\\\\c\\n\\u0001 é \\ufffd\"");
  out.clear();
  append_json_string(&out, "\xed\xa0\x80");  // a UTF-16 surrogate encoded as UTF-8: invalid
  CHECK(out == "\"\\ufffd\\ufffd\\ufffd\"");
}

TEST_CASE("valid_utf8 keeps valid text and replaces each bad byte with U+FFFD", "[base]") {
  CHECK(valid_utf8("plain é ✓ 😀") == "plain é ✓ 😀");
  CHECK(valid_utf8("a\xff"
                   "b") ==
        "a\xef\xbf\xbd"
        "b");
  CHECK(valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  CHECK(valid_utf8("cut \xe2\x9c") == "cut \xef\xbf\xbd\xef\xbf\xbd");          // truncated
  CHECK(valid_utf8("") == "");
}
