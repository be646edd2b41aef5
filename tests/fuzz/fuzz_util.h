// Helpers for the fuzz harnesses (tests/fuzz/*_fuzz.cpp): property checks that abort with a
// message (libFuzzer then saves the input as a crash; a replay run fails), and small
// predicates the properties need.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts, printing the broken property, when `cond` is false.
#define FUZZ_CHECK(cond, what)                                                            \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: property broken: %s: %s\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                            \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace factory::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The next part of *rest up to `sep` (the whole rest when there is none), consumed with the
// separator: how a harness cuts one input into several arguments.
inline std::string_view next_part(std::string_view* rest, std::string_view sep = "\n---\n") {
  size_t at = rest->find(sep);
  std::string_view part = rest->substr(0, at);
  *rest = at == std::string_view::npos ? std::string_view() : rest->substr(at + sep.size());
  return part;
}

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF),
// the rule Boost.JSON's parser applies to strings.
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace factory::fuzz
