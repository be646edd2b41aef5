// The simdjson fast path of canonical_json() against the Boost.JSON reference
// (src/base/canonical_json.h): wherever the fast path answers, the reference accepts the input
// and writes the same bytes. Inputs: every fuzz corpus of a JSON parser, generated documents and
// number literals, and byte mutations of both (seeded; the seed is printed).
#include "base/canonical_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "factory/event.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;

std::vector<std::string> corpus_inputs() {
  std::vector<std::string> out;
  for (const char* name : {"event_id", "json_input", "webhook", "templates", "http_request"}) {
    fs::path dir = fs::path(FACTORY_SOURCE_DIR) / "tests/fuzz/corpus" / name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  return out;
}

// A random JSON document: nested objects and arrays, escapes, unicode, numbers of every kind.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::string document() {
    std::string out;
    value(&out, 0);
    return out;
  }

  std::string number() {
    static const char* kFixed[] = {"0",
                                   "-0",
                                   "0.0",
                                   "-0.0",
                                   "1e-400",
                                   "-1e-400",
                                   "0e400",
                                   "-0e400",
                                   "1e400",
                                   "4.9e-324",
                                   "2.4e-324",
                                   "2.2250738585072014e-308",
                                   "1.7976931348623157e308",
                                   "1.7976931348623158e308",
                                   "9223372036854775807",
                                   "9223372036854775808",
                                   "-9223372036854775808",
                                   "-9223372036854775809",
                                   "18446744073709551615",
                                   "18446744073709551616",
                                   "1E2",
                                   "1e+2",
                                   "1.5E-2",
                                   "123456789012345678901234567890",
                                   "0.1",
                                   "1e300",
                                   "1e301",
                                   "1e-300",
                                   "1e-301",
                                   "00",
                                   "01",
                                   "1.",
                                   ".5",
                                   "-",
                                   "1e",
                                   "+1"};
    switch (pick(4)) {
      case 0:
        return kFixed[pick(std::size(kFixed))];
      case 1:
        return std::to_string(static_cast<int64_t>(rng_()) * (pick(2) ? 1 : -1));
      case 2: {
        std::string s = pick(2) ? "-" : "";
        s += std::to_string(pick(1000));
        s += "." + std::to_string(pick(100000));
        if (pick(2)) s += (pick(2) ? "e" : "E") + std::to_string(static_cast<int>(pick(700)) - 350);
        return s;
      }
      default: {
        std::uniform_real_distribution<double> d(-1e6, 1e6);
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", d(rng_));
        return buf;
      }
    }
  }

  std::string mutate(std::string s) {
    if (s.empty()) return s;
    static const char kBytes[] = "{}[],:\"\\ 0e-.\x01\x80\xff\xc3\xa9nu";
    size_t at = pick(s.size());
    switch (pick(3)) {
      case 0:
        s[at] = kBytes[pick(sizeof kBytes - 1)];
        break;
      case 1:
        s.erase(at, 1);
        break;
      default:
        s.insert(at, 1, kBytes[pick(sizeof kBytes - 1)]);
    }
    return s;
  }

 private:
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  void string(std::string* out) {
    static const char* kParts[] = {"a",           "b",
                                   "key",         "\\n",
                                   "\\\"",        "\\u00e9",
                                   "\xc3\xa9",    "\\ud83d\\ude00",
                                   "\\u0000",     "\xf0\x9f\x98\x80",
                                   "/",           "~",
                                   "\\/",         "\\t",
                                   "Z",           "\\u001f",
                                   "\xee\x80\x80"};
    out->push_back('"');
    for (size_t i = pick(4); i > 0; --i) *out += kParts[pick(std::size(kParts))];
    out->push_back('"');
  }

  void value(std::string* out, int depth) {
    size_t kind = depth > 5 ? 2 + pick(5) : pick(7);
    switch (kind) {
      case 0: {
        *out += pick(2) ? "{ " : "{";
        size_t n = pick(6);
        for (size_t i = 0; i < n; ++i) {
          if (i > 0) out->push_back(',');
          string(out);
          *out += pick(4) == 0 ? " : " : ":";
          value(out, depth + 1);
        }
        out->push_back('}');
        break;
      }
      case 1: {
        out->push_back('[');
        size_t n = pick(6);
        for (size_t i = 0; i < n; ++i) {
          if (i > 0) *out += pick(4) == 0 ? ", " : ",";
          value(out, depth + 1);
        }
        out->push_back(']');
        break;
      }
      case 2:
        string(out);
        break;
      case 3:
      case 4:
        *out += number();
        break;
      case 5:
        *out += pick(2) ? "true" : "false";
        break;
      default:
        *out += "null";
    }
  }

  std::mt19937 rng_;
};

// Returns whether the fast path answered.
bool check_same(const std::string& input) {
  std::optional<std::string> fast = factory::base::canonical_json_simd(input);
  factory::Result<std::string> ref = factory::base::canonical_json_boost(input);
  if (!fast) return false;
  INFO("input: " << input);
  REQUIRE(ref.ok());
  REQUIRE(*fast == *ref);
  return true;
}

}  // namespace

TEST_CASE("the simdjson fast path writes the reference's bytes on every fuzz corpus", "[event]") {
  std::vector<std::string> inputs = corpus_inputs();
  REQUIRE(inputs.size() > 20);
  size_t fast = 0;
  for (const std::string& in : inputs) fast += check_same(in) ? 1 : 0;
  CHECK(fast > 0);
}

TEST_CASE("the simdjson fast path matches the reference on generated and mutated documents",
          "[event]") {
  const uint32_t seed = 13;
  INFO("seed " << seed);
  Generator gen(seed);
  size_t fast = 0;
  size_t valid = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string doc = gen.document();
    valid += factory::base::canonical_json_boost(doc).ok() ? 1 : 0;
    fast += check_same(doc) ? 1 : 0;
    check_same(gen.mutate(doc));
    check_same(gen.number());
    check_same("[" + gen.number() + "]");
  }
  // The fast path must carry the common case, not leave everything to the reference.
  CHECK(fast * 10 >= valid * 9);
}

TEST_CASE("the fast path leaves refusals and the range edges to the reference", "[event]") {
  for (const char* in : {"{\"a\":1,\"a\":2}", "1e400", "[1,]", "18446744073709551616", "4.9e-324",
                         "1.7976931348623158e308", "\"\\udc00\"", "", " "}) {
    INFO(in);
    CHECK_FALSE(factory::base::canonical_json_simd(in).has_value());
  }
  std::string deep(70, '[');
  deep += std::string(70, ']');
  CHECK_FALSE(factory::base::canonical_json_simd(deep).has_value());
  // canonical_json() answers as the reference does, message included.
  auto ref = factory::base::canonical_json_boost("{\"a\":1,\"a\":2}");
  auto got = factory::canonical_json("{\"a\":1,\"a\":2}");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().to_string() == ref.status().to_string());
  CHECK(*factory::canonical_json("{\"b\":[1,2.5,\"x\"],\"a\":null}") ==
        "{\"a\":null,\"b\":[1,2.5E0,\"x\"]}");
}
