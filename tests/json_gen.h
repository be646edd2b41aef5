// Inputs for the differential tests of the simdjson fast paths against Boost.JSON
// (tests/base/canonical_json_test.cpp, tests/http/json_fast_test.cpp): the JSON fuzz corpora,
// and seeded random documents, number literals and byte mutations.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace factory::testing {

// Every file of the fuzz corpora of the JSON parsers (tests/fuzz/corpus/<name>/).
inline std::vector<std::string> corpus_inputs() {
  std::vector<std::string> out;
  for (const char* name : {"event_id", "json_input", "webhook", "templates", "http_request"}) {
    std::filesystem::path dir =
        std::filesystem::path(FACTORY_SOURCE_DIR) / "tests/fuzz/corpus" / name;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      // json_input inputs put parts before the body, after "\n---\n", and webhook inputs
      // headers, up to a blank line: the body alone is an input too.
      if (size_t at = text.rfind("\n---\n"); at != std::string::npos) {
        out.push_back(text.substr(at + 5));
      } else if (size_t blank = text.find("\n\n"); blank != std::string::npos) {
        out.push_back(text.substr(blank + 2));
      }
      out.push_back(std::move(text));
    }
  }
  return out;
}

// A random JSON document: nested objects and arrays, escapes, unicode, numbers of every kind.
class JsonGenerator {
 public:
  explicit JsonGenerator(uint32_t seed) : rng_(seed) {}

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
                                   "+1",
                                   "0e21973790275807",
                                   "-0e2147483648",
                                   "1e-2147483649",
                                   "0.0e-2147483647"};
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

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  // A JSON string literal with escapes, raw UTF-8 and surrogate pairs.
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

 private:
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

}  // namespace factory::testing
