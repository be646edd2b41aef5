#include "factory/event.h"

// factory/event.h is included first, above, to prove it self-contained.
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <unordered_set>

#include "test_util.h"

using factory::canonical_json;
using factory::event_id_for;
using factory::event_id_for_bytes;
using factory::EventId;

namespace {

std::string canon(std::string_view json) {
  auto r = canonical_json(json);
  INFO(json);
  REQUIRE_OK(r);
  return *r;
}

std::string id_hex(std::string_view json) {
  auto r = event_id_for(json);
  INFO(json);
  REQUIRE_OK(r);
  return r->hex();
}

std::string error_of(std::string_view json) {
  auto r = canonical_json(json);
  INFO(json);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  return r.status().message();
}

}  // namespace

TEST_CASE("key order and whitespace do not change the id", "[event]") {
  const std::string a = id_hex(R"({"ticket":"PROJ-1","priority":2,"tags":["a","b"]})");
  CHECK(id_hex(R"({"priority":2,"tags":["a","b"],"ticket":"PROJ-1"})") == a);
  CHECK(
      id_hex(
          " {\n  \"tags\" : [ \"a\" ,\t\"b\" ],\r\n  \"ticket\":\"PROJ-1\", \"priority\": 2 }\n") ==
      a);
  CHECK(canon(R"({ "b" : 1 , "a" : 2 })") == R"({"a":2,"b":1})");
}

TEST_CASE("different values give different ids", "[event]") {
  std::unordered_set<std::string> ids;
  for (const char* json :
       {R"({"a":1})", R"({"a":2})", R"({"a":"1"})", R"({"a":1.0})", R"({"b":1})", R"({"a":[1]})",
        R"({"a":[1,2]})", R"({"a":[2,1]})", R"({"a":null})", R"({"a":true})", R"({"a":false})",
        R"({"a":{}})", R"({"a":[]})", R"({"a":""})", R"("a")", R"([])", R"({})", "null"}) {
    CHECK(ids.insert(id_hex(json)).second);
  }
}

TEST_CASE("objects are sorted recursively by UTF-8 bytes and arrays keep their order", "[event]") {
  CHECK(canon(R"({"z":{"y":1,"x":[{"b":1,"a":2},3]},"a":0})") ==
        R"({"a":0,"z":{"x":[{"a":2,"b":1},3],"y":1}})");
  // Byte order: upper case before lower case, a prefix before its extensions, non-ASCII
  // (0xc3.. for é) after ASCII, and U+FFFD (ef bf bd) before U+1F600 (f0 9f 98 80), which
  // UTF-16 order (JCS) would put the other way round.
  CHECK(canon(R"({"é":1,"b":2,"ab":3,"a":4,"B":5,"😀":6,"�":7})") ==
        R"({"B":5,"a":4,"ab":3,"b":2,"é":1,"�":7,"😀":6})");
  CHECK(canon(R"([3,1,2])") == "[3,1,2]");
}

TEST_CASE("unicode is written as raw UTF-8 whether or not the input escaped it", "[event]") {
  CHECK(canon(R"({"name":"größe 日本 😀"})") == R"({"name":"größe 日本 😀"})");
  CHECK(canon(R"({"name":"gr\u00f6\u00dfe \u65e5\u672c \ud83d\ude00"})") ==
        R"({"name":"größe 日本 😀"})");
  CHECK(id_hex(R"({"k\u00e9y":"v"})") == id_hex(R"({"kéy":"v"})"));
  // Escaped and raw forms of the same key are the same key.
  CHECK(error_of(R"({"é":1,"\u00e9":2})").find("duplicate key") != std::string::npos);
  // Invalid UTF-8 and lone surrogates are not JSON strings.
  CHECK(error_of("{\"a\":\"\xff\"}").find("at byte 6") != std::string::npos);
  error_of(R"(["\ud800"])");
  error_of(R"(["\udc00"])");
}

TEST_CASE("strings escape only quote, backslash and control characters", "[event]") {
  CHECK(canon(R"(["\"\\\/\b\f\n\r\t"])") == R"(["\"\\/\b\f\n\r\t"])");
  CHECK(canon(R"(["\u0000\u0001\u001f\u0020\u007f"])") == "[\"\\u0000\\u0001\\u001f \x7f\"]");
  CHECK(canon(R"(["\u001A\u00e9"])") == "[\"\\u001a\xc3\xa9\"]");
  CHECK(canon(R"({"a\nb":"c"})") == R"({"a\nb":"c"})");
  // A raw control character is invalid JSON; only its escaped form is allowed.
  error_of("[\"a\x01\"]");
}

TEST_CASE("numbers: integers in decimal and doubles in Boost.JSON's shortest form", "[event]") {
  CHECK(canon("[0,-0,1,-42,9223372036854775807,-9223372036854775808,18446744073709551615]") ==
        "[0,0,1,-42,9223372036854775807,-9223372036854775808,18446744073709551615]");
  CHECK(
      canon("[1.0,1.00,10e-1,0.5,-0.0,123.456,1e21,1E2,1e-7,0.1,5e-324,1.7976931348623157e308]") ==
      "[1E0,1E0,1E0,5E-1,-0E0,1.23456E2,1E21,1E2,1E-7,1E-1,5E-324,1.7976931348623157E308]");
  // Beyond uint64 an integer becomes a double; below the smallest double, a signed zero.
  CHECK(canon("[18446744073709551616,-9223372036854775809,1e-400,-1e-400]") ==
        "[1.8446744073709552E19,-9.223372036854776E18,0E0,-0E0]");
  CHECK(id_hex("1") != id_hex("1.0"));
  CHECK(id_hex("[1.5]") == id_hex("[15e-1]"));
  CHECK(error_of("[1e400]").find("out of the range of a double") != std::string::npos);
  error_of("[-1e400]");
  error_of("[NaN]");
  error_of("[01]");
  error_of("[1.]");
  error_of("[+1]");
}

TEST_CASE("doubles round-trip: the canonical form of the canonical form is itself", "[event]") {
  const uint64_t seed = factory::test::test_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    double d;
    do {
      uint64_t bits = rng();
      std::memcpy(&d, &bits, sizeof d);
    } while (!std::isfinite(d));
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    // %.17g may print an integral double without '.' or 'e': keep it a double.
    const bool looks_integral = !std::strchr(buf, 'e') && !std::strchr(buf, '.');
    std::string once = canon(std::string("[") + buf + (looks_integral ? ".0" : "") + "]");
    CHECK(canon(once) == once);
    // And it names the same double.
    double back = std::strtod(once.c_str() + 1, nullptr);
    CHECK(std::memcmp(&back, &d, sizeof d) == 0);
  }
}

TEST_CASE("duplicate keys are rejected at any depth", "[event]") {
  std::string m = error_of(R"({"a":1,"b":2,"a":3})");
  CHECK(m.find("duplicate key \"a\"") != std::string::npos);
  CHECK(m.find("at byte 18") != std::string::npos);
  error_of(R"({"x":[{"k":1,"k":1}]})");
  error_of(R"({"":1,"":2})");
  // Same key in different objects is fine.
  CHECK(canon(R"({"a":{"a":1},"b":{"a":2}})") == R"({"a":{"a":1},"b":{"a":2}})");
}

TEST_CASE("invalid JSON names the byte offset and the parser's reason", "[event]") {
  CHECK(error_of("[1,,2]") == "invalid JSON at byte 3: syntax error");
  CHECK(error_of("[1,2") == "invalid JSON at byte 4: incomplete JSON");
  CHECK(error_of("") == "invalid JSON at byte 0: incomplete JSON");
  CHECK(error_of(R"({"a":1} x)") == "invalid JSON at byte 8: extra data after the JSON value");
  CHECK(error_of(R"({"a":1}{})") == "invalid JSON at byte 7: extra data after the JSON value");
  error_of("[1,]");         // no trailing commas
  error_of("[1] // note");  // no comments
  error_of("{'a':1}");
  // Nesting: 64 levels are fine, 65 are not.
  CHECK(canon(std::string(64, '[') + std::string(64, ']')).size() == 128);
  CHECK(error_of(std::string(65, '[') + std::string(65, ']')).find("too deep") !=
        std::string::npos);
  // Whitespace around the document is not data.
  CHECK(canon(" \n[true] \t\r\n") == "[true]");
  CHECK(canon("\"top-level string\"") == "\"top-level string\"");
}

TEST_CASE("known vector: the id is sha256 of the canonical bytes", "[event]") {
  // Expected digest obtained in a shell with:
  //   printf '%s' '{"a":1,"b":[true,null,"x"]}' | sha256sum
  const char* kExpected = "eca8cfb31ab74533e1eb2f4c74d2d55dfe3c79ac704787e54be8647ea7777eb1";
  CHECK(canon(R"({ "b": [true, null, "x"], "a": 1 })") == R"({"a":1,"b":[true,null,"x"]})");
  CHECK(id_hex(R"({ "b": [true, null, "x"], "a": 1 })") == kExpected);
  CHECK(event_id_for_bytes(R"({"a":1,"b":[true,null,"x"]})").hex() == kExpected);
  // printf '%s' '' | sha256sum; printf '%s' hello | sha256sum
  CHECK(event_id_for_bytes("").hex() ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(event_id_for_bytes("hello").hex() ==
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  // The example in docs/event-ids.md:
  //   jq -jcS . example.json | sha256sum
  CHECK(id_hex(R"({"ticket":"PROJ-42","title":"Add \"dark mode\" toggle","labels":["ui","größe"],)"
               R"("priority":2,"meta":{"source":"jira","attempt":1}})") ==
        "0e2f96643ac6530109b6321bb1553fbb6600c6e8b9ae3ed2d15f49c6f14acf62");
}

TEST_CASE("EventId hex round-trips and ids order by bytes and hash", "[event]") {
  EventId a = event_id_for_bytes("a");
  auto parsed = EventId::from_hex(a.hex());
  REQUIRE_OK(parsed);
  CHECK(*parsed == a);
  std::string upper = a.hex();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto parsed_upper = EventId::from_hex(upper);
  REQUIRE_OK(parsed_upper);
  CHECK(*parsed_upper == a);

  auto short_hex = EventId::from_hex("abc");
  REQUIRE_FALSE(short_hex.ok());
  CHECK(short_hex.status().is_invalid_argument());
  CHECK(short_hex.status().message().find("64 hex digits, got 3") != std::string::npos);
  std::string bad = a.hex();
  bad[10] = 'g';
  auto bad_hex = EventId::from_hex(bad);
  REQUIRE_FALSE(bad_hex.ok());
  CHECK(bad_hex.status().message().find("position 10") != std::string::npos);

  EventId lo, hi;
  hi.digest[0] = 1;
  CHECK(lo < hi);
  lo.digest[31] = 0xff;
  CHECK(lo < hi);  // the first byte decides
  CHECK(lo != hi);
  std::unordered_set<EventId> set{a, event_id_for_bytes("b"), a};
  CHECK(set.size() == 2);
}
