#include "obs/logger.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "base/clock.h"
#include "base/coding.h"

namespace factory::obs {
namespace {

Level level_from_env() {
  const char* e = std::getenv("FACTORY_LOG_LEVEL");
  if (!e) return Level::kInfo;
  std::string_view v(e);
  if (v == "debug") return Level::kDebug;
  if (v == "warn") return Level::kWarn;
  if (v == "error") return Level::kError;
  return Level::kInfo;
}

std::atomic<int> g_min_level{static_cast<int>(level_from_env())};
std::atomic<std::FILE*> g_sink{nullptr};
std::mutex g_write_mu;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void set_min_level(Level min) { g_min_level = static_cast<int>(min); }
Level min_level() { return static_cast<Level>(g_min_level.load()); }
void set_sink(std::FILE* sink) { g_sink = sink; }

std::string format_line(int64_t now_ms, Level level, std::string_view msg,
                        std::initializer_list<Field> fields) {
  std::string line = "{\"ts\":\"";
  line += base::format_iso8601_utc(now_ms);
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"msg\":";
  base::append_json_string(&line, msg);
  for (const Field& f : fields) {
    line.push_back(',');
    base::append_json_string(&line, f.key);
    line.push_back(':');
    if (f.quoted) {
      base::append_json_string(&line, f.value);
    } else {
      line += f.value;
    }
  }
  line += "}\n";
  return line;
}

void log(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  std::string line = format_line(base::SystemClock::instance()->now_ms(), level, msg, fields);
  std::FILE* out = g_sink.load();
  if (!out) out = stderr;
  std::lock_guard<std::mutex> lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace factory::obs
