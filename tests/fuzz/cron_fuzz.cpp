// Fuzz target: cron expressions (src/scheduler/cron.h): parse, describe, and the fire-time
// searches. Input: byte 0 picks a time zone (UTC, a DST zone each side of the equator, a
// half-hour zone), bytes 1-8 a start time (folded into 1970-2200), the rest the expression.
// Properties: next_after(t) > t; last_at_or_before(t) <= t; fires_between is ascending, within
// its bounds and at most `max` long; nothing at or after next_after(t) but before it fires.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "scheduler/cron.h"

using factory::scheduler::CronSchedule;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  static constexpr const char* kZones[] = {
      "UTC",          "Europe/Berlin",   "America/New_York", "Australia/Sydney",
      "Asia/Kolkata", "Nowhere/Atlantis"};
  const char* tz = kZones[data[0] % std::size(kZones)];
  uint64_t raw = 0;
  std::memcpy(&raw, data + 1, 8);
  constexpr int64_t kSpanMs = int64_t{230} * 365 * 24 * 3600 * 1000;  // 1970 .. ~2200
  int64_t t = static_cast<int64_t>(raw % kSpanMs);
  std::string_view expr = factory::fuzz::as_view(data + 9, size - 9);
  auto s = CronSchedule::parse(expr, tz);
  if (!s.ok()) return 0;
  (void)s->describe();
  auto reparsed = CronSchedule::parse(s->expression(), tz);
  FUZZ_CHECK(reparsed.ok(), "the normalized expression does not parse: " + s->expression());

  int64_t next = s->next_after(t);
  FUZZ_CHECK(next > t, "next_after is not after");
  int64_t last = s->last_at_or_before(t);
  FUZZ_CHECK(last <= t, "last_at_or_before is after");
  if (next != CronSchedule::kNever) {
    FUZZ_CHECK(reparsed->next_after(t) == next, "the normalized expression fires elsewhere");
    FUZZ_CHECK(s->last_at_or_before(next) == next, "next_after is not a fire time");
    FUZZ_CHECK(s->last_at_or_before(next - 1) <= t, "a fire between t and next_after(t)");
    auto fires = s->fires_between(t, next + 7 * 24 * 3600 * 1000LL, 5);
    FUZZ_CHECK(fires.size() <= 5, "fires_between over max");
    for (size_t i = 0; i < fires.size(); ++i) {
      FUZZ_CHECK(fires[i] > t, "a fire before the window");
      FUZZ_CHECK(i == 0 || fires[i] > fires[i - 1], "fires not ascending");
    }
  }
  return 0;
}
