// The process logger: one JSON object per line on stderr (or any sink), e.g.
//   {"ts":"2026-11-28T09:00:00.123Z","level":"info","msg":"topic created","topic":"feature-specs"}
// Thread-safe: a line is formatted off-lock and written with one fwrite under a mutex, so lines
// never interleave. Secrets must never be passed as fields.
#pragma once

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace factory::obs {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One key/value field. Values are strings or integers; both are rendered as JSON.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v), quoted(true) {}
  Field(std::string_view k, const char* v) : key(k), value(v), quoted(true) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v), quoted(true) {}
  Field(std::string_view k, long long v) : key(k), value(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, long v) : key(k), value(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)), quoted(false) {}
  Field(std::string_view k, double v) : key(k), value(std::to_string(v)), quoted(false) {}
  std::string_view key;
  std::string value;
  bool quoted;
};

// Lines below `min` are dropped. Default: kInfo, or FACTORY_LOG_LEVEL=debug|info|warn|error.
void set_min_level(Level min);
Level min_level();
// Redirects output; *sink must stay open until reset. nullptr restores stderr.
void set_sink(std::FILE* sink);

// Formats one line; exposed for tests.
std::string format_line(int64_t now_ms, Level level, std::string_view msg,
                        std::initializer_list<Field> fields);

void log(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  log(Level::kDebug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  log(Level::kInfo, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  log(Level::kWarn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  log(Level::kError, m, f);
}

}  // namespace factory::obs
