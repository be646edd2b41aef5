#include "scheduler/cron.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

using namespace factory;
using scheduler::CronSchedule;

namespace {

// "2024-03-10T07:00:00Z" <-> epoch ms, through <chrono>'s calendar rather than the code under
// test. Expected instants in this file were reasoned out by hand and the DST ones cross-checked
// with `TZ=America/New_York date -u -d 'TZ="America/New_York" 2024-03-10 03:00' +%FT%TZ`.
int64_t ms(const std::string& iso) {
  int y, mo, d, h, mi, s;
  REQUIRE(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s) == 6);
  const std::chrono::sys_days day{std::chrono::year{y} / mo / d};
  return (int64_t{day.time_since_epoch().count()} * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

std::string iso(int64_t t) {
  if (t == CronSchedule::kNever) return "never";
  if (t == CronSchedule::kNone) return "none";
  const std::chrono::sys_time<std::chrono::milliseconds> tp{std::chrono::milliseconds{t}};
  const auto day = std::chrono::floor<std::chrono::days>(tp);
  const std::chrono::year_month_day ymd{day};
  const int64_t secs = (t - int64_t{day.time_since_epoch().count()} * 86400000) / 1000;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", int{ymd.year()},
                unsigned{ymd.month()}, unsigned{ymd.day()}, static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buf;
}

CronSchedule cron(std::string_view expr, std::string_view tz = "UTC") {
  auto r = CronSchedule::parse(expr, tz);
  REQUIRE_OK(r);
  return *r;
}

// The first n fires strictly after `from`, as ISO strings.
std::vector<std::string> next_n(const CronSchedule& s, const std::string& from, int n) {
  std::vector<std::string> out;
  for (int64_t t = ms(from); n-- > 0;) {
    t = s.next_after(t);
    out.push_back(iso(t));
  }
  return out;
}

std::vector<std::string> isos(const std::vector<int64_t>& v) {
  std::vector<std::string> out;
  for (int64_t t : v) out.push_back(iso(t));
  return out;
}

using Fires = std::vector<std::string>;

}  // namespace

TEST_CASE("cron test helpers agree with known epoch values", "[scheduler]") {
  CHECK(ms("1970-01-01T00:00:00Z") == 0);
  CHECK(ms("2024-03-10T07:00:00Z") == 1710054000000);  // `date -d ... +%s`
  CHECK(iso(1730617200000) == "2024-11-03T07:00:00Z");
  CHECK(iso(ms("1969-12-31T23:59:59Z")) == "1969-12-31T23:59:59Z");
}

TEST_CASE("cron fields: star lists ranges steps names and 7 as Sunday", "[scheduler]") {
  // 2024-05-01 is a Wednesday.
  const std::string from = "2024-05-01T10:07:30Z";
  struct Row {
    const char* expr;
    Fires want;
  };
  const Row rows[] = {
      {"* * * * *", {"2024-05-01T10:08:00Z", "2024-05-01T10:09:00Z", "2024-05-01T10:10:00Z"}},
      {"*/15 * * * *", {"2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z"}},
      {"5,10,50 * * * *", {"2024-05-01T10:10:00Z", "2024-05-01T10:50:00Z", "2024-05-01T11:05:00Z"}},
      {"1-10/3 * * * *",  // 1,4,7,10
       {"2024-05-01T10:10:00Z", "2024-05-01T11:01:00Z", "2024-05-01T11:04:00Z"}},
      {"5/20 * * * *",  // 5-59/20: 5,25,45
       {"2024-05-01T10:25:00Z", "2024-05-01T10:45:00Z", "2024-05-01T11:05:00Z"}},
      {"0,30 0-1,22 * * *",
       {"2024-05-01T22:00:00Z", "2024-05-01T22:30:00Z", "2024-05-02T00:00:00Z"}},
      {"0 9-17/4 * * *",  // 9,13,17
       {"2024-05-01T13:00:00Z", "2024-05-01T17:00:00Z", "2024-05-02T09:00:00Z"}},
      {"30 8 * * MON-FRI",
       {"2024-05-02T08:30:00Z", "2024-05-03T08:30:00Z", "2024-05-06T08:30:00Z"}},
      {"0 0 * * 0", {"2024-05-05T00:00:00Z", "2024-05-12T00:00:00Z", "2024-05-19T00:00:00Z"}},
      {"0 0 * * 7", {"2024-05-05T00:00:00Z", "2024-05-12T00:00:00Z", "2024-05-19T00:00:00Z"}},
      {"0 0 * * sat,Sun", {"2024-05-04T00:00:00Z", "2024-05-05T00:00:00Z", "2024-05-11T00:00:00Z"}},
      {"0 0 * * 5-7", {"2024-05-03T00:00:00Z", "2024-05-04T00:00:00Z", "2024-05-05T00:00:00Z"}},
      {"0 0 * * */3",  // 0,3,6: SUN, WED, SAT
       {"2024-05-04T00:00:00Z", "2024-05-05T00:00:00Z", "2024-05-08T00:00:00Z"}},
      {"0 0 1 jan,JUL *", {"2024-07-01T00:00:00Z", "2025-01-01T00:00:00Z", "2025-07-01T00:00:00Z"}},
      {"0 0 1 Feb-apr *", {"2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"}},
      {"0 0 1 */6 *", {"2024-07-01T00:00:00Z", "2025-01-01T00:00:00Z", "2025-07-01T00:00:00Z"}},
      {"59 23 31 12 *", {"2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z", "2026-12-31T23:59:00Z"}},
      {"  7   10\t1 5  * ",  // extra whitespace; 10:07 on 2024-05-01 is already past
       {"2025-05-01T10:07:00Z", "2026-05-01T10:07:00Z", "2027-05-01T10:07:00Z"}},
  };
  for (const auto& row : rows) {
    INFO(row.expr);
    CHECK(next_n(cron(row.expr), from, 3) == row.want);
  }
  CHECK(cron("  7   10\t1 5  * ").expression() == "7 10 1 5 *");
}

TEST_CASE("cron presets expand to their five fields case-insensitively", "[scheduler]") {
  const std::string from = "2024-05-01T10:07:30Z";
  const std::pair<const char*, const char*> presets[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},
  };
  for (const auto& [preset, fields] : presets) {
    INFO(preset);
    CHECK(next_n(cron(preset), from, 4) == next_n(cron(fields), from, 4));
    CHECK(cron(preset).expression() == preset);
  }
  CHECK(next_n(cron("@yearly"), from, 2) == Fires{"2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"});
  CHECK(next_n(cron("@monthly"), from, 2) == Fires{"2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z"});
  CHECK(next_n(cron("@weekly"), from, 2) == Fires{"2024-05-05T00:00:00Z", "2024-05-12T00:00:00Z"});
  CHECK(next_n(cron("@daily"), from, 2) == Fires{"2024-05-02T00:00:00Z", "2024-05-03T00:00:00Z"});
  CHECK(next_n(cron("@hourly"), from, 2) == Fires{"2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"});
}

TEST_CASE("cron parse errors name the field and token and the allowed range", "[scheduler]") {
  const std::pair<const char*, const char*> rows[] = {
      {"61 * * * *", "minute field '61' is out of range 0-59"},
      {"* 24 * * *", "hour field '24' is out of range 0-23"},
      {"* * 0 * *", "day-of-month field '0' is out of range 1-31"},
      {"* * 32 * *", "day-of-month field '32' is out of range 1-31"},
      {"* * * 13 *", "month field '13' is out of range 1-12 or JAN-DEC"},
      {"* * * * 8", "day-of-week field '8' is out of range 0-7 or SUN-SAT"},
      {"99999 * * * *", "minute field '99999' is out of range 0-59"},
      {"1,2,61 * * * *", "minute field '61' is out of range 0-59"},
      {"x * * * *", "minute field 'x' is not a number; allowed 0-59"},
      {"* * * FOO *", "month field 'FOO' is not a number or name; allowed 1-12 or JAN-DEC"},
      {"* * * * MONDAY",
       "day-of-week field 'MONDAY' is not a number or name; allowed 0-7 or SUN-SAT"},
      {"* * * * MON-FUN",
       "day-of-week field 'FUN' is not a number or name; allowed 0-7 or SUN-SAT"},
      {"* * 1-40 * *", "day-of-month field '40' is out of range 1-31"},
      {"5-2 * * * *", "minute field '5-2' is a reversed range; allowed 0-59"},
      {"* * * * FRI-MON",
       "day-of-week field 'FRI-MON' is a reversed range; allowed 0-7 or SUN-SAT"},
      {"-5 * * * *", "minute field '-5' is not a value or range; allowed 0-59"},
      {"* 3- * * *", "hour field '3-' is not a value or range; allowed 0-23"},
      {"*/0 * * * *", "minute field step '0' in '*/0' is out of range 1-59"},
      {"*/60 * * * *", "minute field step '60' in '*/60' is out of range 1-59"},
      {"* 1-10/x * * *", "hour field step 'x' in '1-10/x' is out of range 1-23"},
      {"* * * * */7", "day-of-week field step '7' in '*/7' is out of range 1-6"},
      {"1,,2 * * * *", "minute field '1,,2' has an empty list item"},
      {"* * * * 1,", "day-of-week field '1,' has an empty list item"},
      {"* * * *",
       "cron expression '* * * *' has 4 fields; expected 5 (minute hour day-of-month month "
       "day-of-week) or a preset like @daily"},
      {"0 * * * * *",
       "cron expression '0 * * * * *' has 6 fields; expected 5 (minute hour day-of-month month "
       "day-of-week) or a preset like @daily"},
      {"   ",
       "cron expression '' has 0 fields; expected 5 (minute hour day-of-month month "
       "day-of-week) or a preset like @daily"},
      {"@reboot",
       "unknown cron preset '@reboot'; expected @yearly, @annually, @monthly, @weekly, @daily, "
       "@midnight or @hourly"},
      {"0 0 30 2 *",
       "day-of-month field '30' never occurs in month field '2': the schedule would never fire"},
      {"0 0 31 APR,JUN,SEP,NOV *",
       "day-of-month field '31' never occurs in month field 'APR,JUN,SEP,NOV': the schedule "
       "would never fire"},
  };
  for (const auto& [expr, message] : rows) {
    INFO(expr);
    auto r = CronSchedule::parse(expr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message() == message);
  }
  // With a restricted weekday too, Vixie's OR rule makes "30 2" fire on the weekday alone.
  REQUIRE_OK(CronSchedule::parse("0 0 30 2 MON"));
}

TEST_CASE("cron time zone errors", "[scheduler]") {
  auto unknown = CronSchedule::parse("@daily", "Mars/Olympus_Mons");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().is_invalid_argument());
  CHECK(unknown.status().message().rfind("unknown time zone 'Mars/Olympus_Mons': no file ", 0) ==
        0);
  for (const char* tz : {"", "../../etc/passwd", "/etc/localtime", "Europe/Ber lin"}) {
    INFO(tz);
    auto r = CronSchedule::parse("@daily", tz);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "time zone '" + std::string(tz) + "' is not an IANA zone name");
  }
  auto dir = CronSchedule::parse("@daily", "America");  // a directory, not a zone
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.status().is_invalid_argument());
  CHECK(cron("@daily").time_zone() == "UTC");
  CHECK(cron("@daily", "Etc/UTC").time_zone() == "Etc/UTC");
}

TEST_CASE("cron day-of-month OR day-of-week when both are restricted (Vixie)", "[scheduler]") {
  // 2024-09-01 is a Sunday; 2024-10-13 is a Sunday too.
  const std::string from = "2024-09-01T00:00:00Z";
  CHECK(next_n(cron("0 0 13 * FRI"), from, 8) ==
        Fires{"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z",
              "2024-09-27T00:00:00Z", "2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z",
              "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z"});
  // The classic surprise: "first Monday" written this way is every day 1-7 AND every Monday.
  CHECK(next_n(cron("0 0 1-7 * MON"), from, 8) ==
        Fires{"2024-09-02T00:00:00Z", "2024-09-03T00:00:00Z", "2024-09-04T00:00:00Z",
              "2024-09-05T00:00:00Z", "2024-09-06T00:00:00Z", "2024-09-07T00:00:00Z",
              "2024-09-09T00:00:00Z", "2024-09-16T00:00:00Z"});
  // A field starting with '*' is "unrestricted" to Vixie even with a step: then both must match.
  CHECK(next_n(cron("0 0 */2 * MON"), from, 4) ==
        Fires{"2024-09-09T00:00:00Z", "2024-09-23T00:00:00Z", "2024-10-07T00:00:00Z",
              "2024-10-21T00:00:00Z"});
  CHECK(next_n(cron("0 0 1 * *"), from, 2) ==
        Fires{"2024-10-01T00:00:00Z", "2024-11-01T00:00:00Z"});
  CHECK(next_n(cron("0 0 * * MON"), from, 2) ==
        Fires{"2024-09-02T00:00:00Z", "2024-09-09T00:00:00Z"});
}

TEST_CASE("cron month ends and leap years", "[scheduler]") {
  CHECK(next_n(cron("0 0 31 * *"), "2024-01-31T00:00:00Z", 3) ==
        Fires{"2024-03-31T00:00:00Z", "2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"});
  CHECK(next_n(cron("0 12 30 * *"), "2025-01-30T12:00:00Z", 2) ==
        Fires{"2025-03-30T12:00:00Z", "2025-04-30T12:00:00Z"});
  CHECK(next_n(cron("59 23 28-31 2 *"), "2023-02-27T00:00:00Z", 4) ==
        Fires{"2023-02-28T23:59:00Z", "2024-02-28T23:59:00Z", "2024-02-29T23:59:00Z",
              "2025-02-28T23:59:00Z"});
  // Feb 29: leap years only, and 2100 is not one (divisible by 100, not by 400); 2000 was.
  const CronSchedule leap = cron("0 0 29 2 *");
  CHECK(next_n(leap, "2024-03-01T00:00:00Z", 2) ==
        Fires{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"});
  CHECK(next_n(leap, "2096-03-01T00:00:00Z", 1) == Fires{"2104-02-29T00:00:00Z"});
  CHECK(next_n(leap, "1999-01-01T00:00:00Z", 1) == Fires{"2000-02-29T00:00:00Z"});
  CHECK(iso(leap.last_at_or_before(ms("2104-02-28T00:00:00Z"))) == "2096-02-29T00:00:00Z");
  CHECK(next_n(cron("0 0 1 1 *"), "2024-12-31T23:59:59Z", 1) == Fires{"2025-01-01T00:00:00Z"});
  CHECK(cron("0 0 1 1 *").next_after(ms("2024-12-31T23:59:59Z") + 999) ==
        ms("2025-01-01T00:00:00Z"));
  // The ends of the supported range: nothing after 9999, nothing before year 1.
  CHECK(leap.next_after(ms("9996-03-01T00:00:00Z")) == CronSchedule::kNever);
  CHECK(leap.last_at_or_before(ms("0003-01-01T00:00:00Z")) == CronSchedule::kNone);
}

TEST_CASE("cron DST in America/New_York: gap fires at its end and overlap fires once",
          "[scheduler]") {
  // 2024-03-10 02:00 EST -> 03:00 EDT at 07:00Z; 2024-11-03 02:00 EDT -> 01:00 EST at 06:00Z.
  SECTION("30 2 * * *") {
    const CronSchedule s = cron("30 2 * * *", "America/New_York");
    CHECK(next_n(s, "2024-03-09T00:00:00Z", 3) ==
          Fires{"2024-03-09T07:30:00Z",    // 02:30 EST
                "2024-03-10T07:00:00Z",    // 02:30 does not exist: 03:00 EDT
                "2024-03-11T06:30:00Z"});  // 02:30 EDT
    CHECK(next_n(s, "2024-11-02T00:00:00Z", 3) ==
          Fires{"2024-11-02T06:30:00Z",  // 02:30 EDT
                "2024-11-03T07:30:00Z",  // 02:30 EST (the repeated hour is 01:xx)
                "2024-11-04T07:30:00Z"});
  }
  SECTION("30 1 * * *: the repeated wall time fires at its first occurrence") {
    const CronSchedule s = cron("30 1 * * *", "America/New_York");
    CHECK(next_n(s, "2024-11-02T12:00:00Z", 2) ==
          Fires{"2024-11-03T05:30:00Z",    // 01:30 EDT; 01:30 EST (06:30Z) is skipped
                "2024-11-04T06:30:00Z"});  // 01:30 EST
    CHECK(iso(s.next_after(ms("2024-11-03T06:00:00Z"))) == "2024-11-04T06:30:00Z");
    CHECK(iso(s.last_at_or_before(ms("2024-11-03T06:45:00Z"))) == "2024-11-03T05:30:00Z");
  }
  SECTION("0 * * * *") {
    const CronSchedule s = cron("0 * * * *", "America/New_York");
    CHECK(next_n(s, "2024-03-10T05:30:00Z", 3) ==
          Fires{"2024-03-10T06:00:00Z",    // 01:00 EST
                "2024-03-10T07:00:00Z",    // 03:00 EDT; the missing 02:00 collapses into it
                "2024-03-10T08:00:00Z"});  // 04:00 EDT
    CHECK(next_n(s, "2024-11-03T03:30:00Z", 4) ==
          Fires{"2024-11-03T04:00:00Z",  // 00:00 EDT
                "2024-11-03T05:00:00Z",  // 01:00 EDT; 01:00 EST (06:00Z) is skipped
                "2024-11-03T07:00:00Z",  // 02:00 EST
                "2024-11-03T08:00:00Z"});
  }
  SECTION("*/15 * * * *") {
    const CronSchedule s = cron("*/15 * * * *", "America/New_York");
    CHECK(next_n(s, "2024-03-10T06:30:00Z", 3) ==
          Fires{"2024-03-10T06:45:00Z", "2024-03-10T07:00:00Z", "2024-03-10T07:15:00Z"});
    CHECK(next_n(s, "2024-11-03T05:30:00Z", 3) ==
          Fires{"2024-11-03T05:45:00Z",  // 01:45 EDT
                "2024-11-03T07:00:00Z",  // 02:00 EST: 01:00-01:45 EST already fired as EDT
                "2024-11-03T07:15:00Z"});
    // Asked from inside the repeated hour (01:10 EST), the next fire is still 02:00 EST and
    // the last one was 01:45 EDT, a wall time later than now's.
    CHECK(iso(s.next_after(ms("2024-11-03T06:10:00Z"))) == "2024-11-03T07:00:00Z");
    CHECK(iso(s.last_at_or_before(ms("2024-11-03T06:10:00Z"))) == "2024-11-03T05:45:00Z");
  }
  SECTION("past 2037 the TZif footer rule applies (second Sunday of March 2050)") {
    CHECK(next_n(cron("30 2 * * *", "America/New_York"), "2050-03-12T12:00:00Z", 2) ==
          Fires{"2050-03-13T07:00:00Z", "2050-03-14T06:30:00Z"});
    CHECK(next_n(cron("30 1 * * *", "America/New_York"), "2050-11-05T12:00:00Z", 2) ==
          Fires{"2050-11-06T05:30:00Z", "2050-11-07T06:30:00Z"});
  }
}

TEST_CASE("cron DST in Europe/Berlin: gap fires at its end and overlap fires once", "[scheduler]") {
  // 2024-03-31 02:00 CET -> 03:00 CEST at 01:00Z; 2024-10-27 03:00 CEST -> 02:00 CET at 01:00Z.
  SECTION("30 2 * * *") {
    const CronSchedule s = cron("30 2 * * *", "Europe/Berlin");
    CHECK(next_n(s, "2024-03-30T00:00:00Z", 3) ==
          Fires{"2024-03-30T01:30:00Z",    // 02:30 CET
                "2024-03-31T01:00:00Z",    // 02:30 does not exist: 03:00 CEST
                "2024-04-01T00:30:00Z"});  // 02:30 CEST
    CHECK(next_n(s, "2024-10-26T00:00:00Z", 3) ==
          Fires{"2024-10-26T00:30:00Z",    // 02:30 CEST
                "2024-10-27T00:30:00Z",    // 02:30 CEST; 02:30 CET (01:30Z) is skipped
                "2024-10-28T01:30:00Z"});  // 02:30 CET
  }
  SECTION("0 * * * *") {
    const CronSchedule s = cron("0 * * * *", "Europe/Berlin");
    CHECK(next_n(s, "2024-03-30T23:30:00Z", 3) ==
          Fires{"2024-03-31T00:00:00Z",    // 01:00 CET
                "2024-03-31T01:00:00Z",    // 03:00 CEST (02:00 collapses into it)
                "2024-03-31T02:00:00Z"});  // 04:00 CEST
    CHECK(next_n(s, "2024-10-26T22:30:00Z", 4) ==
          Fires{"2024-10-26T23:00:00Z",  // 01:00 CEST
                "2024-10-27T00:00:00Z",  // 02:00 CEST; 02:00 CET (01:00Z) is skipped
                "2024-10-27T02:00:00Z",  // 03:00 CET
                "2024-10-27T03:00:00Z"});
  }
  SECTION("*/15 * * * *") {
    const CronSchedule s = cron("*/15 * * * *", "Europe/Berlin");
    CHECK(next_n(s, "2024-03-31T00:30:00Z", 3) ==
          Fires{"2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z", "2024-03-31T01:15:00Z"});
    CHECK(next_n(s, "2024-10-27T00:30:00Z", 3) == Fires{"2024-10-27T00:45:00Z",  // 02:45 CEST
                                                        "2024-10-27T02:00:00Z",  // 03:00 CET
                                                        "2024-10-27T02:15:00Z"});
  }
}

TEST_CASE("cron DST in the southern hemisphere (Australia/Sydney)", "[scheduler]") {
  // 2024-10-06 02:00 AEST -> 03:00 AEDT at 2024-10-05T16:00Z.
  CHECK(next_n(cron("30 2 * * *", "Australia/Sydney"), "2024-10-04T12:00:00Z", 3) ==
        Fires{"2024-10-04T16:30:00Z", "2024-10-05T16:00:00Z", "2024-10-06T15:30:00Z"});
}

TEST_CASE("cron fires_between returns the latest fires after after_ms up to until_ms",
          "[scheduler]") {
  const CronSchedule s = cron("0 * * * *");
  const int64_t after = ms("2024-05-01T09:00:00Z"), until = ms("2024-05-01T13:00:00Z");
  CHECK(isos(s.fires_between(after, until, 100)) ==
        Fires{"2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z",
              "2024-05-01T13:00:00Z"});
  CHECK(isos(s.fires_between(after, until, 2)) ==
        Fires{"2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z"});
  CHECK(isos(s.fires_between(after, until - 1, 1)) == Fires{"2024-05-01T12:00:00Z"});
  CHECK(s.fires_between(after, until, 0).empty());
  CHECK(s.fires_between(until, after, 10).empty());
  CHECK(s.fires_between(after, after + 3599999, 10).empty());
  // A year away with a per-minute schedule costs `max` steps, not 525600.
  CHECK(isos(cron("* * * * *").fires_between(ms("2023-05-01T00:00:00Z"), until, 2)) ==
        Fires{"2024-05-01T12:59:00Z", "2024-05-01T13:00:00Z"});
  CHECK(s.last_at_or_before(until) == until);
  CHECK(s.last_at_or_before(until - 1) == ms("2024-05-01T12:00:00Z"));
}

TEST_CASE("cron fires_between matches next_after across zones and DST (seeded)", "[scheduler]") {
  const uint64_t seed = test::test_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const char* zones[] = {"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"};
  const char* exprs[] = {"*/15 * * * *", "0 * * * *", "30 1,2 * * *", "7 3 * * 1-5",
                         "0 0 13 * FRI"};
  for (const char* tz : zones) {
    for (const char* expr : exprs) {
      const CronSchedule s = cron(expr, tz);
      for (int i = 0; i < 10; ++i) {
        // Windows of up to 3 days, anywhere in 2023-2026.
        const int64_t after =
            ms("2023-01-01T00:00:00Z") + static_cast<int64_t>(rng() % (4ULL * 365 * 86400000));
        const int64_t until = after + static_cast<int64_t>(rng() % (3ULL * 86400000));
        std::vector<int64_t> forward;
        for (int64_t t = s.next_after(after); t <= until; t = s.next_after(t)) {
          forward.push_back(t);
        }
        INFO(tz << " '" << expr << "' after " << iso(after) << " until " << iso(until));
        CHECK(s.fires_between(after, until, 100000) == forward);
      }
    }
  }
}

// Clock jumps (backwards, forward days, a fall-back night with catchup) are tested on the real
// scheduler with a ManualClock: tests/scheduler/scheduler_test.cpp, "cron on the scheduler: ...".

TEST_CASE("cron describe() is for people", "[scheduler]") {
  CHECK(cron("30 2 * * *", "America/New_York").describe() ==
        "at 02:30, every day (America/New_York)");
  CHECK(cron("*/15 * * * 1-5").describe() == "every 15 minutes, on MON-FRI (UTC)");
  CHECK(cron("@hourly").describe() == "at minute 0 of every hour, every day (UTC)");
  CHECK(cron("@weekly").describe() == "at 00:00, on SUN (UTC)");
  CHECK(cron("* 9-17 * * *").describe() == "every minute of hours 9-17, every day (UTC)");
  CHECK(cron("0,45 9 1 JAN,JUL *").describe() ==
        "at minutes 0,45 of hour 9, on day 1 of the month in JAN,JUL (UTC)");
  CHECK(cron("0,30 9 * * *").describe() == "every 30 minutes of hour 9, every day (UTC)");
  CHECK(cron("0 0 13 * FRI").describe() == "at 00:00, on day 13 of the month or on FRI (UTC)");
  CHECK(cron("0 0 */10 * MON").describe() ==
        "at 00:00, on days 1,11,21,31 of the month that fall on MON (UTC)");
}

TEST_CASE("cron schedules copy and move", "[scheduler]") {
  const CronSchedule a = cron("30 2 * * *", "Europe/Berlin");
  CronSchedule b = a;
  CronSchedule c = cron("@hourly");
  c = b;
  CronSchedule d = std::move(b);
  for (const CronSchedule* s :
       {&a, static_cast<const CronSchedule*>(&c), static_cast<const CronSchedule*>(&d)}) {
    CHECK(s->time_zone() == "Europe/Berlin");
    CHECK(iso(s->next_after(ms("2024-03-30T12:00:00Z"))) == "2024-03-31T01:00:00Z");
  }
}
