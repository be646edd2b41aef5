#include "scheduler/cron.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <system_error>

namespace factory::scheduler {
namespace {

constexpr int64_t kSecPerDay = 86400;
// Supported instants: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z.
constexpr int64_t kMinMs = -62135596800000;
constexpr int64_t kMaxMs = 253402300799999;
// How far a wall-time search scans. parse() rejects day/month combinations that never occur,
// so every accepted schedule fires at least every 8 years (Feb 29 across 2100) or, with
// weekdays restricted too, well within one 28-year weekday cycle.
constexpr int64_t kHorizonDays = 50 * 366;
// next_after/last_at_or_before step over matches that are inside a fall-back overlap; the
// largest overlap in tzdata is a day (Alaska, 1867), so two days of minutes bound the loop.
constexpr int kMaxOverlapSteps = 2 * 1440 + 10;

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Howard Hinnant's civil-calendar algorithms: proleptic Gregorian, day 0 = 1970-01-01.
int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t y;
  int m;
  int d;
};

Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2), m, d};
}

int weekday_of(int64_t day) { return static_cast<int>(((day + 4) % 7 + 7) % 7); }  // 0 = Sunday

bool is_leap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int days_in_month(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

int64_t year_of(int64_t utc_s) { return civil_from_days(floor_div(utc_s, kSecPerDay)).y; }

}  // namespace

namespace internal {

// A zone's UTC offset over time: the TZif file's transitions and, after the last one, the
// POSIX TZ rule in the file's footer (RFC 8536). Debian ships "fat" files that list transitions
// to 2037, but slim files stop at the last rule change, so the footer is always honoured.
// Offsets are seconds east of UTC, |offset| < 1 day (checked on load). Immutable; thread-safe.
class ZoneRules {
 public:
  struct Transition {
    int64_t at_s;
    int32_t before;
    int32_t after;
  };

  static Result<std::unique_ptr<ZoneRules>> load(std::string_view name);
  static Result<std::unique_ptr<ZoneRules>> from_tzif(std::string name, std::string_view bytes);

  const std::string& name() const { return name_; }
  int32_t offset_at(int64_t utc_s) const;
  // Offset changes with at_s in (lo, hi], ascending; *off_lo is the offset in effect at lo.
  void transitions(int64_t lo, int64_t hi, int32_t* off_lo, std::vector<Transition>* out) const;
  // The UTC second at which wall time `local_s` fires: its only or first occurrence; for a
  // wall time inside a spring-forward gap, the end of the gap.
  int64_t resolve(int64_t local_s) const;
  // When UTC second `utc_s` lies in the second occurrence of a fall-back overlap, sets
  // *local_end to the local second at which the overlap ends and returns true.
  bool in_repeat(int64_t utc_s, int64_t* local_end) const;

 private:
  // A POSIX TZ rule date: Jn (1-365, Feb 29 never counted), n (0-365) or Mm.w.d.
  struct RuleDate {
    char kind = 'M';
    int month = 0, week = 0, day = 0;
    int32_t time_s = 7200;
  };
  friend class PosixRuleParser;

  int64_t rule_day(const RuleDate& d, int64_t year) const;
  void rule_year(int64_t year, Transition out[2]) const;
  int32_t rule_offset(int64_t utc_s) const;

  std::string name_;
  std::vector<int64_t> at_;   // explicit transitions, UTC seconds, strictly ascending
  std::vector<int32_t> off_;  // offset from at_[i] on
  int32_t first_off_ = 0;     // before at_[0] (RFC 8536: time type 0)
  bool has_rule_ = false;     // after at_.back(), the footer rule decides
  bool has_dst_ = false;
  bool all_year_dst_ = false;
  int32_t std_off_ = 0;
  int32_t dst_off_ = 0;
  RuleDate start_, end_;
};

// Parses a TZif footer such as "EST5EDT,M3.2.0,M11.1.0" or "<+0330>-3:30" (POSIX signs: hours
// WEST of UTC are positive), with RFC 8536's extension of rule times to -167..167 hours.
class PosixRuleParser {
 public:
  explicit PosixRuleParser(std::string_view s) : s_(s) {}

  bool parse(ZoneRules* z) {
    int32_t off;
    if (!name() || !hms(24, &off)) return false;
    z->std_off_ = -off;
    z->has_rule_ = true;
    if (i_ == s_.size()) return true;
    if (!name()) return false;
    z->has_dst_ = true;
    z->dst_off_ = z->std_off_ + 3600;
    if (i_ < s_.size() && s_[i_] != ',') {
      if (!hms(24, &off)) return false;
      z->dst_off_ = -off;
    }
    if (i_ == s_.size()) {  // no rule: glibc's default, the US rule
      z->start_ = {'M', 3, 2, 0, 7200};
      z->end_ = {'M', 11, 1, 0, 7200};
      return true;
    }
    return eat(',') && date(&z->start_) && eat(',') && date(&z->end_) && i_ == s_.size();
  }

 private:
  bool eat(char c) {
    if (i_ >= s_.size() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  bool name() {
    if (eat('<')) {
      size_t close = s_.find('>', i_);
      if (close == std::string_view::npos) return false;
      i_ = close + 1;
      return true;
    }
    size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ > start;
  }
  bool num(int lo, int hi, int* out) {
    size_t start = i_;
    int v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) && i_ - start < 4) {
      v = v * 10 + (s_[i_++] - '0');
    }
    *out = v;
    return i_ > start && v >= lo && v <= hi;
  }
  // [+-]h[:mm[:ss]] in seconds.
  bool hms(int max_h, int32_t* out) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int h, m = 0, sec = 0;
    if (!num(0, max_h, &h)) return false;
    if (eat(':') && !num(0, 59, &m)) return false;
    if (eat(':') && !num(0, 59, &sec)) return false;
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool date(ZoneRules::RuleDate* d) {
    if (eat('J')) {
      d->kind = 'J';
      if (!num(1, 365, &d->day)) return false;
    } else if (eat('M')) {
      d->kind = 'M';
      if (!num(1, 12, &d->month) || !eat('.') || !num(1, 5, &d->week) || !eat('.') ||
          !num(0, 6, &d->day)) {
        return false;
      }
    } else {
      d->kind = 'N';
      if (!num(0, 365, &d->day)) return false;
    }
    d->time_s = 7200;
    return !eat('/') || hms(167, &d->time_s);
  }

  std::string_view s_;
  size_t i_ = 0;
};

int64_t ZoneRules::rule_day(const RuleDate& d, int64_t year) const {
  const int64_t jan1 = days_from_civil(year, 1, 1);
  if (d.kind == 'J') return jan1 + d.day - 1 + (is_leap(year) && d.day >= 60 ? 1 : 0);
  if (d.kind == 'N') return jan1 + d.day;
  const int64_t first = days_from_civil(year, d.month, 1);
  int64_t day = first + (d.day - weekday_of(first) + 7) % 7 + 7 * (d.week - 1);
  while (day >= first + days_in_month(year, d.month)) day -= 7;  // week 5 = the last one
  return day;
}

void ZoneRules::rule_year(int64_t year, Transition out[2]) const {
  // The start is given in standard time and the end in daylight time.
  out[0] = {rule_day(start_, year) * kSecPerDay + start_.time_s - std_off_, std_off_, dst_off_};
  out[1] = {rule_day(end_, year) * kSecPerDay + end_.time_s - dst_off_, dst_off_, std_off_};
  if (out[1].at_s < out[0].at_s) std::swap(out[0], out[1]);  // southern hemisphere
}

int32_t ZoneRules::rule_offset(int64_t utc_s) const {
  if (!has_dst_) return std_off_;
  if (all_year_dst_) return dst_off_;
  int32_t off = std_off_;
  for (int64_t y = year_of(utc_s) - 1; y <= year_of(utc_s); ++y) {
    Transition t[2];
    rule_year(y, t);
    for (const auto& tr : t) {
      if (tr.at_s <= utc_s) off = tr.after;
    }
  }
  return off;
}

int32_t ZoneRules::offset_at(int64_t utc_s) const {
  if (has_rule_ && (at_.empty() || utc_s > at_.back())) return rule_offset(utc_s);
  auto it = std::upper_bound(at_.begin(), at_.end(), utc_s);
  return it == at_.begin() ? first_off_ : off_[it - at_.begin() - 1];
}

void ZoneRules::transitions(int64_t lo, int64_t hi, int32_t* off_lo,
                            std::vector<Transition>* out) const {
  *off_lo = offset_at(lo);
  int32_t cur = *off_lo;
  auto push = [&](int64_t at, int32_t after) {
    if (after != cur) out->push_back({at, cur, after});  // skip abbreviation-only changes
    cur = after;
  };
  for (auto it = std::upper_bound(at_.begin(), at_.end(), lo); it != at_.end() && *it <= hi; ++it) {
    push(*it, off_[it - at_.begin()]);
  }
  if (!has_rule_ || !has_dst_ || all_year_dst_) return;
  const int64_t from = at_.empty() ? lo : std::max(lo, at_.back());
  for (int64_t y = year_of(from) - 1; hi > from && y <= year_of(hi) + 1; ++y) {
    Transition t[2];
    rule_year(y, t);
    for (const auto& tr : t) {
      if (tr.at_s > from && tr.at_s <= hi) push(tr.at_s, tr.after);
    }
  }
}

int64_t ZoneRules::resolve(int64_t local_s) const {
  // Offsets are under a day, so every instant showing local_s lies within a day of it.
  const int64_t lo = local_s - 2 * kSecPerDay, hi = local_s + 2 * kSecPerDay;
  int32_t off;
  std::vector<Transition> trs;
  transitions(lo, hi, &off, &trs);
  int64_t begin = lo;
  for (size_t i = 0; i <= trs.size(); ++i) {  // segments in time order: the first fit is first
    const int64_t end = i < trs.size() ? trs[i].at_s : hi + 1;
    const int64_t u = local_s - off;
    if (u >= begin && u < end) return u;
    if (i < trs.size()) begin = trs[i].at_s, off = trs[i].after;
  }
  for (const auto& tr : trs) {  // no instant shows local_s: it is in a gap
    if (tr.at_s + tr.before <= local_s && local_s < tr.at_s + tr.after) return tr.at_s;
  }
  return local_s - off;  // unreachable for offsets under a day
}

bool ZoneRules::in_repeat(int64_t utc_s, int64_t* local_end) const {
  int32_t off;
  std::vector<Transition> trs;
  transitions(utc_s - 2 * kSecPerDay, utc_s, &off, &trs);
  if (trs.empty()) return false;
  const Transition& tr = trs.back();
  if (tr.before <= tr.after || utc_s + tr.after >= tr.at_s + tr.before) return false;
  *local_end = tr.at_s + tr.before;
  return true;
}

Result<std::unique_ptr<ZoneRules>> ZoneRules::from_tzif(std::string name, std::string_view b) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("time zone '" + name + "': " + std::string(why));
  };
  auto be = [&](size_t pos, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(b[pos + i]);
    // Sign-extend 32-bit fields.
    return bytes == 4 ? static_cast<int64_t>(static_cast<int32_t>(v)) : static_cast<int64_t>(v);
  };
  // Header (RFC 8536 3.1): "TZif", version, 15 unused bytes, then six 32-bit counts.
  constexpr size_t kHeader = 44;
  struct Counts {
    int64_t isut, isstd, leap, time, type, chars;
  } c{};
  auto header = [&](size_t pos) {
    if (b.size() < pos + kHeader || b.substr(pos, 4) != "TZif") return false;
    c = {be(pos + 20, 4), be(pos + 24, 4), be(pos + 28, 4),
         be(pos + 32, 4), be(pos + 36, 4), be(pos + 40, 4)};
    return c.isut >= 0 && c.isstd >= 0 && c.leap >= 0 && c.time >= 0 && c.type >= 0 && c.chars >= 0;
  };
  if (!header(0)) return bad("not a TZif file");
  const bool v2 = b[4] >= '2';
  size_t pos = kHeader;
  int tsize = 4;
  if (v2) {  // skip the 32-bit block; the 64-bit one follows with its own header
    pos += c.time * 5 + c.type * 6 + c.chars + c.leap * 8 + c.isstd + c.isut;
    if (!header(pos)) return bad("truncated TZif file");
    pos += kHeader;
    tsize = 8;
  }
  const size_t len =
      c.time * (tsize + 1) + c.type * 6 + c.chars + c.leap * (tsize + 4) + c.isstd + c.isut;
  if (b.size() < pos + len) return bad("truncated TZif file");
  if (c.type == 0) return bad("TZif file has no local time types");
  if (c.leap != 0) return bad("TZif file counts leap seconds (a right/ zone); use the plain one");

  auto z = std::make_unique<ZoneRules>();
  z->name_ = name;
  const size_t types_pos = pos + c.time * (tsize + 1);
  auto type_off = [&](int64_t i) { return static_cast<int32_t>(be(types_pos + i * 6, 4)); };
  for (int64_t i = 0; i < c.type; ++i) {
    if (type_off(i) <= -kSecPerDay || type_off(i) >= kSecPerDay) return bad("offset over a day");
  }
  z->first_off_ = type_off(0);
  for (int64_t i = 0; i < c.time; ++i) {
    const int64_t at = be(pos + i * tsize, tsize);
    const uint8_t idx = static_cast<uint8_t>(b[pos + c.time * tsize + i]);
    if (idx >= c.type || (!z->at_.empty() && at <= z->at_.back())) return bad("bad transitions");
    z->at_.push_back(at);
    z->off_.push_back(type_off(idx));
  }
  pos += len;
  if (v2) {  // footer: "\n" POSIX-TZ-string "\n"; empty means the last type holds forever
    size_t end = b.find('\n', pos + 1);
    if (pos >= b.size() || b[pos] != '\n' || end == std::string_view::npos) {
      return bad("TZif footer missing");
    }
    std::string_view rule = b.substr(pos + 1, end - pos - 1);
    if (!rule.empty()) {
      if (!PosixRuleParser(rule).parse(z.get()) || z->std_off_ <= -kSecPerDay ||
          z->std_off_ >= kSecPerDay || z->dst_off_ <= -kSecPerDay || z->dst_off_ >= kSecPerDay) {
        return bad("unsupported TZ rule '" + std::string(rule) + "'");
      }
      if (z->has_dst_) {  // RFC 8536 3.3.1: DST all year when it spans Jan 1 to Dec 31 24:00
        Transition t[2];
        const int64_t y = 2001;
        z->rule_year(y, t);
        z->all_year_dst_ = t[0].after == z->dst_off_ &&
                           t[0].at_s <= days_from_civil(y, 1, 1) * kSecPerDay - z->std_off_ &&
                           t[1].at_s >= days_from_civil(y + 1, 1, 1) * kSecPerDay - z->std_off_;
      }
    }
  }
  return z;
}

Result<std::unique_ptr<ZoneRules>> ZoneRules::load(std::string_view name) {
  const std::string n(name);
  // Names are paths under the tz database; refuse anything that could step outside it.
  bool valid = !n.empty() && n.front() != '/' && n.find("..") == std::string::npos;
  for (char ch : n) {
    valid = valid && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' ||
                      ch == '-' || ch == '+' || ch == '.');
  }
  if (!valid) return Status::invalid_argument("time zone '" + n + "' is not an IANA zone name");
  const char* env_dir = std::getenv("TZDIR");
  const std::string dir = env_dir && *env_dir ? env_dir : "/usr/share/zoneinfo";
  const std::filesystem::path path = std::filesystem::path(dir) / n;
  std::error_code ec;
  std::ifstream in;
  if (std::filesystem::is_regular_file(path, ec)) in.open(path, std::ios::binary);
  if (!in.is_open()) {
    if (n == "UTC" || n == "Etc/UTC") {  // works without tzdata: the default must not fail
      auto z = std::make_unique<ZoneRules>();
      z->name_ = n;
      return z;
    }
    return Status::invalid_argument("unknown time zone '" + n + "': no file " + path.string() +
                                    " (IANA names like 'Europe/Berlin' need package tzdata)");
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return from_tzif(n, bytes);
}

}  // namespace internal

namespace {

struct FieldSpec {
  const char* name;
  int lo, hi;
  int star_hi;  // `*` spans lo..star_hi (day-of-week: 0-6, 7 is Sunday again)
  const char* allowed;
  const char* const* names;  // 3-letter names for lo, lo+1, ...; or null
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
constexpr FieldSpec kMinute{"minute", 0, 59, 59, "0-59", nullptr};
constexpr FieldSpec kHour{"hour", 0, 23, 23, "0-23", nullptr};
constexpr FieldSpec kDom{"day-of-month", 1, 31, 31, "1-31", nullptr};
constexpr FieldSpec kMonth{"month", 1, 12, 12, "1-12 or JAN-DEC", kMonthNames};
constexpr FieldSpec kDow{"day-of-week", 0, 7, 6, "0-7 or SUN-SAT", kDayNames};

Status field_error(const FieldSpec& f, std::string_view token, std::string_view what) {
  return Status::invalid_argument(std::string(f.name) + " field '" + std::string(token) + "' " +
                                  std::string(what));
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isdigit(static_cast<unsigned char>(ch));
  });
}

Status parse_value(const FieldSpec& f, std::string_view tok, int* out) {
  if (all_digits(tok)) {
    *out = tok.size() > 4 ? 99999 : std::atoi(std::string(tok).c_str());
    if (*out < f.lo || *out > f.hi)
      return field_error(f, tok, "is out of range " + std::string(f.allowed));
    return Status::ok_status();
  }
  for (int i = 0; f.names && i <= f.star_hi - f.lo; ++i) {
    const std::string_view n = f.names[i];
    if (tok.size() == 3 && std::equal(tok.begin(), tok.end(), n.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        })) {
      *out = f.lo + i;
      return Status::ok_status();
    }
  }
  return field_error(f, tok,
                     std::string(f.names ? "is not a number or name" : "is not a number") +
                         "; allowed " + f.allowed);
}

// One field: comma-separated items, each `*`, `a`, `a-b`, optionally `/step` (`a/step` runs
// to the field's end, as in cronie and croniter).
Status parse_field(const FieldSpec& f, std::string_view text, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) return field_error(f, text, "has an empty list item");
    const size_t slash = item.find('/');
    const std::string_view base = item.substr(0, slash);
    int step = 1;
    if (slash != std::string_view::npos) {
      const std::string_view st = item.substr(slash + 1);
      const int span = f.star_hi - f.lo;
      step = all_digits(st) && st.size() <= 4 ? std::atoi(std::string(st).c_str()) : -1;
      if (step < 1 || step > span) {
        return Status::invalid_argument(std::string(f.name) + " field step '" + std::string(st) +
                                        "' in '" + std::string(item) + "' is out of range 1-" +
                                        std::to_string(span));
      }
    }
    int a = f.lo, b = f.star_hi;
    if (base != "*") {
      const size_t dash = base.find('-');
      if (dash != std::string_view::npos && (dash == 0 || dash + 1 == base.size())) {
        return field_error(f, base, "is not a value or range; allowed " + std::string(f.allowed));
      }
      FACTORY_RETURN_IF_ERROR(parse_value(f, base.substr(0, dash), &a));
      b = a;
      if (dash != std::string_view::npos) {
        FACTORY_RETURN_IF_ERROR(parse_value(f, base.substr(dash + 1), &b));
        if (a > b)
          return field_error(f, base, "is a reversed range; allowed " + std::string(f.allowed));
      } else if (slash != std::string_view::npos) {
        b = f.star_hi;
      }
    }
    for (int v = a; v <= b; v += step) *bits |= uint64_t{1} << v;
  }
  return Status::ok_status();
}

// "1-5", "0,15,30,45", "MON-FRI": runs of three or more become ranges.
std::string render_set(uint64_t bits, const FieldSpec& f) {
  std::string out;
  auto label = [&](int v) { return f.names ? std::string(f.names[v - f.lo]) : std::to_string(v); };
  for (int v = f.lo; v <= f.star_hi;) {
    if (!(bits >> v & 1)) {
      ++v;
      continue;
    }
    int e = v;
    while (e + 1 <= f.star_hi && (bits >> (e + 1) & 1)) ++e;
    if (!out.empty()) out += ',';
    out += label(v);
    if (e - v >= 2) out += "-" + label(e);
    if (e - v == 1) out += "," + label(e);
    v = e + 1;
  }
  return out;
}

uint64_t full_set(const FieldSpec& f) {
  return ((uint64_t{1} << (f.star_hi + 1)) - 1) & ~((uint64_t{1} << f.lo) - 1);
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view expr, std::string_view tz) {
  std::vector<std::string> fields;
  std::istringstream words{std::string(expr)};
  for (std::string w; words >> w;) fields.push_back(w);
  CronSchedule s;
  for (size_t i = 0; i < fields.size(); ++i) s.expr_ += (i ? " " : "") + fields[i];
  if (fields.size() == 1 && fields[0][0] == '@') {
    std::string p = fields[0];
    std::transform(p.begin(), p.end(), p.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    const char* expansion = p == "@yearly" || p == "@annually"  ? "0 0 1 1 *"
                            : p == "@monthly"                   ? "0 0 1 * *"
                            : p == "@weekly"                    ? "0 0 * * 0"
                            : p == "@daily" || p == "@midnight" ? "0 0 * * *"
                            : p == "@hourly"                    ? "0 * * * *"
                                                                : nullptr;
    if (!expansion) {
      return Status::invalid_argument("unknown cron preset '" + fields[0] +
                                      "'; expected @yearly, @annually, @monthly, @weekly, "
                                      "@daily, @midnight or @hourly");
    }
    fields.clear();
    std::istringstream ex{std::string(expansion)};
    for (std::string w; ex >> w;) fields.push_back(w);
  }
  if (fields.size() != 5) {
    return Status::invalid_argument(
        "cron expression '" + s.expr_ + "' has " + std::to_string(fields.size()) +
        " fields; expected 5 (minute hour day-of-month month day-of-week) or a preset like "
        "@daily");
  }
  uint64_t bits[5];
  const FieldSpec* specs[5] = {&kMinute, &kHour, &kDom, &kMonth, &kDow};
  for (int i = 0; i < 5; ++i) FACTORY_RETURN_IF_ERROR(parse_field(*specs[i], fields[i], &bits[i]));
  if (bits[4] >> 7 & 1) bits[4] = (bits[4] | 1) & 0x7f;  // 7 is Sunday
  s.minutes_ = bits[0];
  s.hours_ = static_cast<uint32_t>(bits[1]);
  s.days_of_month_ = static_cast<uint32_t>(bits[2]);
  s.months_ = static_cast<uint16_t>(bits[3]);
  s.days_of_week_ = static_cast<uint8_t>(bits[4]);
  s.dom_star_ = fields[2][0] == '*';
  s.dow_star_ = fields[4][0] == '*';
  // When the day-of-month must match (AND), it must exist in some chosen month; Feb has 29.
  if (s.dom_star_ || s.dow_star_) {
    bool occurs = false;
    for (int m = 1; m <= 12; ++m) {
      const uint32_t days = (uint32_t{2} << days_in_month(2000, m)) - 2;  // bits 1..len
      occurs = occurs || ((s.months_ >> m & 1) && (s.days_of_month_ & days));
    }
    if (!occurs) {
      return Status::invalid_argument("day-of-month field '" + fields[2] +
                                      "' never occurs in month field '" + fields[3] +
                                      "': the schedule would never fire");
    }
  }
  auto zone = internal::ZoneRules::load(tz);
  if (!zone.ok()) return zone.status();
  s.zone_ = std::move(*zone);
  return s;
}

CronSchedule::CronSchedule(const CronSchedule& o) { *this = o; }

CronSchedule& CronSchedule::operator=(const CronSchedule& o) {
  if (this == &o) return *this;
  expr_ = o.expr_;
  minutes_ = o.minutes_;
  hours_ = o.hours_;
  days_of_month_ = o.days_of_month_;
  months_ = o.months_;
  days_of_week_ = o.days_of_week_;
  dom_star_ = o.dom_star_;
  dow_star_ = o.dow_star_;
  zone_ = o.zone_ ? std::make_unique<internal::ZoneRules>(*o.zone_) : nullptr;
  return *this;
}

CronSchedule::CronSchedule(CronSchedule&&) noexcept = default;
CronSchedule& CronSchedule::operator=(CronSchedule&&) noexcept = default;
CronSchedule::~CronSchedule() = default;

const std::string& CronSchedule::time_zone() const { return zone_->name(); }

bool CronSchedule::day_matches(int64_t day) const {
  const bool dom = days_of_month_ >> civil_from_days(day).d & 1;
  const bool dow = days_of_week_ >> weekday_of(day) & 1;
  return dom_star_ || dow_star_ ? dom && dow : dom || dow;
}

bool CronSchedule::next_wall_match(int64_t wall_min, int64_t* out) const {
  int64_t day = floor_div(wall_min, 1440);
  int mod = static_cast<int>(wall_min - day * 1440);
  for (const int64_t limit = day + kHorizonDays; day <= limit; ++day, mod = 0) {
    const Civil c = civil_from_days(day);
    if (c.y > 9999) return false;
    if (!(months_ >> c.m & 1)) {  // to the last day of this month; the loop steps past it
      day += days_in_month(c.y, c.m) - c.d;
      continue;
    }
    if (!day_matches(day)) continue;
    for (int h = mod / 60; h < 24; ++h) {
      if (!(hours_ >> h & 1)) continue;
      const uint64_t m = minutes_ & (~uint64_t{0} << (h == mod / 60 ? mod % 60 : 0));
      if (m) {
        *out = day * 1440 + h * 60 + std::countr_zero(m);
        return true;
      }
    }
  }
  return false;
}

bool CronSchedule::prev_wall_match(int64_t wall_min, int64_t* out) const {
  int64_t day = floor_div(wall_min, 1440);
  int mod = static_cast<int>(wall_min - day * 1440);
  for (const int64_t limit = day - kHorizonDays; day >= limit; --day, mod = 1439) {
    const Civil c = civil_from_days(day);
    if (c.y < 1) return false;
    if (!(months_ >> c.m & 1)) {  // to the 1st of this month; the loop steps before it
      day -= c.d - 1;
      continue;
    }
    if (!day_matches(day)) continue;
    for (int h = mod / 60; h >= 0; --h) {
      if (!(hours_ >> h & 1)) continue;
      const int to = h == mod / 60 ? mod % 60 : 59;
      const uint64_t m = minutes_ & ((uint64_t{2} << to) - 1);
      if (m) {
        *out = day * 1440 + h * 60 + 63 - std::countl_zero(m);
        return true;
      }
    }
  }
  return false;
}

int64_t CronSchedule::next_after(int64_t epoch_ms) const {
  if (epoch_ms >= kMaxMs) return kNever;
  const int64_t t = std::max(epoch_ms, kMinMs - 1);
  const int64_t s = floor_div(t, 1000);
  int64_t wall = floor_div((s + zone_->offset_at(s)) * 1000 + (t - s * 1000), 60000) + 1;
  // Wall times are fired in order; a match can still be <= t only when t is in the second
  // occurrence of a repeated hour, whose wall times fired at their first occurrence.
  for (int i = 0; i < kMaxOverlapSteps; ++i) {
    int64_t m;
    if (!next_wall_match(wall, &m)) return kNever;
    const int64_t at = zone_->resolve(m * 60) * 1000;
    if (at > t) return at <= kMaxMs ? at : kNever;
    wall = m + 1;
  }
  return kNever;
}

int64_t CronSchedule::last_at_or_before(int64_t epoch_ms) const {
  if (epoch_ms < kMinMs) return kNone;
  const int64_t t = std::min(epoch_ms, kMaxMs);
  const int64_t s = floor_div(t, 1000);
  int64_t wall = floor_div((s + zone_->offset_at(s)) * 1000 + (t - s * 1000), 60000);
  // In the second occurrence of a repeated hour, the rest of that hour already fired (at
  // its first occurrence), so the latest fire may be a wall time later than now's.
  int64_t repeat_end;
  if (zone_->in_repeat(s, &repeat_end)) wall = std::max(wall, floor_div(repeat_end - 1, 60));
  for (int i = 0; i < kMaxOverlapSteps; ++i) {
    int64_t m;
    if (!prev_wall_match(wall, &m)) return kNone;
    const int64_t at = zone_->resolve(m * 60) * 1000;
    if (at <= t) return at >= kMinMs ? at : kNone;
    wall = m - 1;
  }
  return kNone;
}

std::vector<int64_t> CronSchedule::fires_between(int64_t after_ms, int64_t until_ms,
                                                 size_t max) const {
  std::vector<int64_t> out;
  // Walk back from until_ms so the cost is `max` steps however long the clock was away.
  for (int64_t t = until_ms; out.size() < max && t > after_ms;) {
    const int64_t at = last_at_or_before(t);
    if (at == kNone || at <= after_ms) break;
    out.push_back(at);
    t = at - 1;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string CronSchedule::describe() const {
  const int minute_count = std::popcount(minutes_), hour_count = std::popcount(hours_);
  const bool every_hour = hours_ == full_set(kHour);
  std::string when;
  int step = 0;  // minutes_ = {0, k, 2k, ...} with k dividing 60
  for (int k = 2; k <= 30 && !step; ++k) {
    uint64_t want = 0;
    for (int v = 0; v < 60; v += k) want |= uint64_t{1} << v;
    if (60 % k == 0 && minutes_ == want) step = k;
  }
  if (minute_count == 1 && hour_count == 1) {
    char buf[8];  // "% 100" shows -Wformat-truncation that both fields fit
    std::snprintf(buf, sizeof buf, "%02d:%02d", std::countr_zero(hours_) % 100,
                  std::countr_zero(minutes_) % 100);
    when = std::string("at ") + buf;
  } else {
    when = minutes_ == full_set(kMinute) ? "every minute"
           : step                        ? "every " + std::to_string(step) + " minutes"
           : minute_count == 1           ? "at minute " + render_set(minutes_, kMinute)
                                         : "at minutes " + render_set(minutes_, kMinute);
    if (!every_hour) {
      when += (hour_count == 1 ? " of hour " : " of hours ") + render_set(hours_, kHour);
    } else if (when.rfind("at ", 0) == 0) {
      when += " of every hour";
    }
  }
  const bool all_dom = days_of_month_ == full_set(kDom), all_dow = days_of_week_ == full_set(kDow);
  const std::string dom = (std::popcount(days_of_month_) == 1 ? "day " : "days ") +
                          render_set(days_of_month_, kDom) + " of the month";
  const std::string dow = render_set(days_of_week_, kDow);
  std::string days = all_dom && all_dow       ? "every day"
                     : all_dow                ? "on " + dom
                     : all_dom                ? "on " + dow
                     : dom_star_ || dow_star_ ? "on " + dom + " that fall on " + dow
                                              : "on " + dom + " or on " + dow;
  if (months_ != full_set(kMonth)) days += " in " + render_set(months_, kMonth);
  return when + ", " + days + " (" + zone_->name() + ")";
}

}  // namespace factory::scheduler
