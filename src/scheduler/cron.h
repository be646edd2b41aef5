// CronSchedule: when a DAG's `schedule:` fires, as epoch milliseconds.
//
// Expressions are 5-field cron: minute hour day-of-month month day-of-week, each a list of
// `*`, values, ranges and steps (`*/15`, `1-10/2`, `5/20` = 5-59/20), with month names JAN-DEC
// and weekday names SUN-SAT (case-insensitive); 0 and 7 are Sunday. Presets: @yearly/@annually,
// @monthly, @weekly, @daily/@midnight, @hourly. Day-of-month vs day-of-week follows Vixie cron:
// when neither field starts with `*`, a day matches if EITHER matches ("0 0 13 * FRI" is every
// Friday and every 13th); otherwise both must match ("0 0 */2 * MON": odd-dated Mondays).
//
// Fields are matched against wall time in an IANA zone, read from the system tz database
// (/usr/share/zoneinfo, or $TZDIR; Debian package tzdata). DST follows cronie and Airflow:
//   - spring forward: a wall time that does not exist fires once, at the first instant after
//     the gap. With 02:00 -> 03:00, "30 2 * * *" fires at 03:00 and "*/15 * * * *" fires
//     01:45, 03:00, 03:15: the skipped 02:xx slots collapse into the 03:00 fire.
//   - fall back: a wall time that occurs twice fires once, at its first occurrence. With
//     02:00 -> 01:00, "30 1 * * *" fires at 01:30 daylight time only, and "0 * * * *" fires
//     01:00 daylight, then 02:00 standard (two real hours later): the repeated hour is skipped.
// So every fire is a distinct instant and a schedule never fires twice for one wall time.
//
// Usage:
//   auto s = CronSchedule::parse("30 2 * * *", "America/New_York");
//   if (!s.ok()) return s.status();
//   int64_t next_ms = s->next_after(last_fire_ms);
//
// CronSchedule is an immutable value: safe to copy and to share between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::scheduler {

namespace internal {
class ZoneRules;  // a zone's UTC offsets over time (TZif transitions + rule), in cron.cpp
}

class CronSchedule {
 public:
  // next_after's answer when nothing fires before the year 9999.
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  // last_at_or_before's answer when nothing fired after the year 1.
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

  // Parses `expr` (5 fields or a preset) in zone `tz` ("UTC", "Europe/Berlin").
  // invalid_argument naming the field, token and allowed range ("minute field '61' is out of
  // range 0-59"), for a wrong field count, an unknown preset, a day that never occurs
  // ("0 0 30 2 *"), or a zone with no readable TZif file under the tz database.
  static Result<CronSchedule> parse(std::string_view expr, std::string_view tz = "UTC");

  CronSchedule(const CronSchedule& other);
  CronSchedule& operator=(const CronSchedule& other);
  CronSchedule(CronSchedule&&) noexcept;
  CronSchedule& operator=(CronSchedule&&) noexcept;
  ~CronSchedule();

  // The first fire time strictly after `epoch_ms`, or kNever.
  int64_t next_after(int64_t epoch_ms) const;

  // The last fire time at or before `epoch_ms`, or kNone.
  int64_t last_at_or_before(int64_t epoch_ms) const;

  // The LAST `max` fire times in (after_ms, until_ms], ascending; empty when until_ms <=
  // after_ms or max == 0. The scheduler calls it when it wakes at `now` with the schedule's
  // last fire time `last` (persisted) and next_after(last) <= now:
  //   catchup=false: fires_between(last, now, 1) -> only the latest missed fire runs;
  //   catchup=true:  fires_between(last, now, max_catchup) -> each missed fire runs, oldest
  //                  first, but at most max_catchup of them: older ones are skipped, so a host
  //                  that slept for a year does not start 8760 hourly runs.
  // Either way it then sets last = back(). Because fires are computed from `last` and never
  // from `now`, a clock that jumps backwards re-fires nothing (nothing is due until the clock
  // passes next_after(last) again), and a forward jump is one call, not one per missed slot.
  std::vector<int64_t> fires_between(int64_t after_ms, int64_t until_ms, size_t max) const;

  // For people: "at 02:30, every day (America/New_York)", "every 15 minutes, on MON-FRI (UTC)".
  std::string describe() const;

  // The expression as given with whitespace normalized, e.g. "*/15 * * * *" or "@daily".
  const std::string& expression() const { return expr_; }
  const std::string& time_zone() const;

 private:
  CronSchedule() = default;

  // The wall minute (minutes since 1970-01-01 00:00 local) of the first / last match at or
  // after / at or before `wall_min`, ignoring zones; false past the search horizon.
  bool next_wall_match(int64_t wall_min, int64_t* out) const;
  bool prev_wall_match(int64_t wall_min, int64_t* out) const;
  bool day_matches(int64_t day) const;

  std::string expr_;
  // Bit i set = value i matches. day-of-month uses bits 1-31, month 1-12, day-of-week 0-6.
  uint64_t minutes_ = 0;
  uint32_t hours_ = 0;
  uint32_t days_of_month_ = 0;
  uint16_t months_ = 0;
  uint8_t days_of_week_ = 0;
  // The field's text started with '*': Vixie cron's rule for AND (either star) vs OR (neither).
  bool dom_star_ = false;
  bool dow_star_ = false;
  std::unique_ptr<const internal::ZoneRules> zone_;  // never null in a parsed schedule
};

}  // namespace factory::scheduler
