// A strict parser for the Prometheus text exposition format 0.0.4, written independently of
// src/obs so that it checks what the registry renders rather than agreeing with it. Tests use
// it on Registry::render() and on a running daemon's GET /metrics:
//
//   factory::test::Exposition e = factory::test::parse_exposition(body);
//   INFO(e.error_text());
//   REQUIRE(e.ok());
//   CHECK(e.value("factory_log_end_offset", {{"topic", "t"}, {"partition", "0"}}) == 3);
//   CHECK(factory::test::check_factory_conventions(e).empty());
//
// Checked, per line: HELP (valid name, only \\ and \n escapes, at most once per family), TYPE
// (valid name and type, at most once, before the family's first sample), samples (metric name,
// label names, label values with only \\ \" \n escapes and valid UTF-8, no repeated label, a
// float value, an optional integer timestamp), families contiguous (never interleaved), no
// duplicate series, counters neither negative nor NaN, every line ended by "\n". Per histogram
// series: _bucket samples carry a float `le`, strictly increasing, with non-decreasing counts,
// ending in le="+Inf" whose count equals _count; _sum and _count are present.
//
// Header-only; not thread-safe (plain values).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace factory::test {

struct ParsedSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped, in order
  double value = 0;
  int line = 0;
};

struct Exposition {
  std::vector<std::string> errors;           // "line N: what"
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|...
  std::map<std::string, std::string> help;   // family -> help text (unescaped)
  std::vector<ParsedSample> samples;

  bool ok() const { return errors.empty(); }
  std::string error_text() const {
    std::string s;
    for (const auto& e : errors) s += e + "\n";
    return s;
  }
  // The value of the sample with exactly this name and label set (any order); nullopt when
  // there is none.
  std::optional<double> value(std::string_view name,
                              std::vector<std::pair<std::string, std::string>> labels = {}) const {
    std::map<std::string, std::string> want(labels.begin(), labels.end());
    for (const auto& s : samples) {
      if (s.name != name) continue;
      std::map<std::string, std::string> got(s.labels.begin(), s.labels.end());
      if (got == want) return s.value;
    }
    return std::nullopt;
  }
  // Every sample of that name (e.g. to sum over a label).
  std::vector<const ParsedSample*> all(std::string_view name) const {
    std::vector<const ParsedSample*> out;
    for (const auto& s : samples)
      if (s.name == name) out.push_back(&s);
    return out;
  }
};

namespace exposition_detail {

inline bool is_name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
inline bool is_name_char(char c, bool colon) {
  return is_name_start(c, colon) || (c >= '0' && c <= '9');
}
inline bool valid_name(std::string_view s, bool colon) {
  if (s.empty() || !is_name_start(s[0], colon)) return false;
  for (char c : s)
    if (!is_name_char(c, colon)) return false;
  return true;
}

inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Go's strconv.ParseFloat as Prometheus uses it, minus hex and underscores: decimal or
// scientific, or Inf/+Inf/-Inf/NaN.
inline std::optional<double> parse_float(std::string_view s) {
  if (s == "NaN") return std::nan("");
  if (s == "+Inf" || s == "Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp;
    if (exp == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return std::strtod(std::string(s).c_str(), nullptr);
}

inline bool parse_int(std::string_view s) {
  size_t i = s.size() > 0 && s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// Unescapes HELP text; nullopt on an escape other than \\ and \n.
inline std::optional<std::string> unescape_help(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 1 == s.size()) return std::nullopt;
    char n = s[++i];
    if (n == '\\') {
      out.push_back('\\');
    } else if (n == 'n') {
      out.push_back('\n');
    } else {
      return std::nullopt;
    }
  }
  return out;
}

struct Series {
  struct Bucket {
    double le;
    double count;
    int line;
  };
  std::vector<Bucket> buckets;
  std::optional<double> sum, count;
  int first_line = 0;
};

}  // namespace exposition_detail

inline Exposition parse_exposition(std::string_view text) {
  using namespace exposition_detail;
  Exposition e;
  auto err = [&](int line, const std::string& what) {
    e.errors.push_back("line " + std::to_string(line) + ": " + what);
  };
  std::string current;            // the family of the lines being read
  std::set<std::string> closed;   // families whose lines ended (must not come back)
  std::set<std::string> sampled;  // families with a sample already
  std::set<std::string> series_seen;
  // Histogram series: family + "\x1f" + labels without le.
  std::map<std::string, Series> histograms;
  auto enter = [&](int line, const std::string& family) {
    if (family == current) return;
    if (closed.count(family)) err(line, "family '" + family + "' is interleaved with another");
    if (!current.empty()) closed.insert(current);
    current = family;
  };

  if (!text.empty() && text.back() != '\n') {
    e.errors.push_back("the text does not end with a newline");
  }
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? text.size() - pos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text", "# TYPE name type"; any other comment is ignored.
      std::string_view rest = line.substr(1);
      if (!rest.starts_with(" HELP ") && !rest.starts_with(" TYPE ")) continue;
      bool is_help = rest.starts_with(" HELP ");
      rest.remove_prefix(6);
      size_t sp = rest.find(' ');
      std::string name(rest.substr(0, sp));
      std::string_view arg = sp == std::string_view::npos ? "" : rest.substr(sp + 1);
      if (!valid_name(name, true)) {
        err(line_no, "invalid metric name '" + name + "'");
        continue;
      }
      enter(line_no, name);
      if (is_help) {
        if (e.help.count(name)) err(line_no, "second HELP for '" + name + "'");
        auto h = unescape_help(arg);
        if (!h) {
          err(line_no, "HELP of '" + name + "' has an escape other than \\\\ and \\n");
        } else {
          e.help[name] = *h;
        }
      } else {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (e.types.count(name)) err(line_no, "second TYPE for '" + name + "'");
        if (sampled.count(name)) err(line_no, "TYPE for '" + name + "' after its samples");
        if (!kTypes.count(std::string(arg))) {
          err(line_no, "unknown type '" + std::string(arg) + "' for '" + name + "'");
        }
        e.types[name] = std::string(arg);
      }
      continue;
    }

    // A sample: name{labels} value [timestamp]
    ParsedSample s;
    s.line = line_no;
    size_t i = 0;
    while (i < line.size() && is_name_char(line[i], true)) ++i;
    s.name = std::string(line.substr(0, i));
    if (!valid_name(s.name, true)) {
      err(line_no, "invalid metric name at the start of '" + std::string(line) + "'");
      continue;
    }
    bool bad = false;
    if (i < line.size() && line[i] == '{') {
      ++i;
      std::set<std::string> names;
      for (;;) {
        while (i < line.size() && line[i] == ' ') ++i;
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        size_t start = i;
        while (i < line.size() && is_name_char(line[i], false)) ++i;
        std::string lname(line.substr(start, i - start));
        if (!valid_name(lname, false) || lname.starts_with("__")) {
          err(line_no, "invalid label name '" + lname + "'");
          bad = true;
          break;
        }
        if (!names.insert(lname).second) {
          err(line_no, "label '" + lname + "' repeated");
          bad = true;
          break;
        }
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          err(line_no, "label '" + lname + "' is not followed by =\"");
          bad = true;
          break;
        }
        i += 2;
        std::string value;
        bool closed_quote = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') {
            closed_quote = true;
            break;
          }
          if (c != '\\') {
            value.push_back(c);
            continue;
          }
          if (i == line.size()) break;
          char n = line[i++];
          if (n == '\\') {
            value.push_back('\\');
          } else if (n == '"') {
            value.push_back('"');
          } else if (n == 'n') {
            value.push_back('\n');
          } else {
            err(line_no, std::string("label '") + lname + "' has an invalid escape \\" + n);
            bad = true;
            break;
          }
        }
        if (bad) break;
        if (!closed_quote) {
          err(line_no, "label '" + lname + "' value is not terminated");
          bad = true;
          break;
        }
        if (!valid_utf8(value)) {
          err(line_no, "label '" + lname + "' value is not valid UTF-8");
          bad = true;
          break;
        }
        s.labels.emplace_back(lname, value);
        while (i < line.size() && line[i] == ' ') ++i;
        if (i < line.size() && line[i] == ',') {
          ++i;
          continue;
        }
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        err(line_no, "expected , or } after label '" + lname + "'");
        bad = true;
        break;
      }
    }
    if (bad) continue;
    if (i >= line.size() || (line[i] != ' ' && line[i] != '\t')) {
      err(line_no, "expected a space and a value after '" + s.name + "'");
      continue;
    }
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t vend = line.find_first_of(" \t", i);
    std::string_view vtext = line.substr(i, vend == std::string_view::npos ? line.npos : vend - i);
    auto v = parse_float(vtext);
    if (!v) {
      err(line_no, "value '" + std::string(vtext) + "' is not a float");
      continue;
    }
    s.value = *v;
    if (vend != std::string_view::npos) {
      size_t t = line.find_first_not_of(" \t", vend);
      if (t != std::string_view::npos && !parse_int(line.substr(t))) {
        err(line_no, "timestamp '" + std::string(line.substr(t)) + "' is not an integer");
        continue;
      }
    }

    // Which family the sample belongs to.
    std::string family = s.name;
    std::string suffix;
    if (!e.types.count(s.name)) {
      for (std::string_view suf : {"_bucket", "_sum", "_count"}) {
        if (!s.name.ends_with(suf)) continue;
        std::string base = s.name.substr(0, s.name.size() - suf.size());
        auto t = e.types.find(base);
        if (t != e.types.end() &&
            (t->second == "histogram" || (t->second == "summary" && suf != "_bucket"))) {
          family = base;
          suffix = std::string(suf);
        }
      }
    }
    enter(line_no, family);
    sampled.insert(family);
    const std::string type = e.types.count(family) ? e.types[family] : "untyped";
    if (type == "histogram" && suffix.empty()) {
      err(line_no, "histogram '" + family + "' has a sample named '" + s.name +
                       "' (only _bucket, _sum, _count)");
    }
    if (type == "counter" && (std::isnan(s.value) || s.value < 0)) {
      err(line_no, "counter '" + s.name + "' is negative or NaN");
    }
    std::map<std::string, std::string> sorted(s.labels.begin(), s.labels.end());
    std::string key = s.name;
    for (const auto& [k, val] : sorted) key += "\x1f" + k + "=" + val;
    if (!series_seen.insert(key).second) err(line_no, "duplicate series " + s.name);

    if (type == "histogram" && !suffix.empty()) {
      std::string skey = family;
      std::optional<std::string> le;
      for (const auto& [k, val] : sorted) {
        if (k == "le") {
          le = val;
        } else {
          skey += "\x1f" + k + "=" + val;
        }
      }
      Series& hs = histograms[skey];
      if (hs.first_line == 0) hs.first_line = line_no;
      if (suffix == "_bucket") {
        if (!le) {
          err(line_no, "bucket of '" + family + "' without an le label");
        } else if (auto lev = parse_float(*le); !lev || std::isnan(*lev)) {
          err(line_no, "bucket of '" + family + "' has le=\"" + *le + "\", not a float");
        } else {
          hs.buckets.push_back({*lev, s.value, line_no});
        }
      } else if (le) {
        err(line_no, s.name + " must not have an le label");
      } else if (suffix == "_sum") {
        hs.sum = s.value;
      } else {
        hs.count = s.value;
      }
    }
    e.samples.push_back(std::move(s));
  }

  for (const auto& [key, hs] : histograms) {
    std::string name = key.substr(0, key.find('\x1f'));
    int line = hs.first_line;
    if (hs.buckets.empty()) {
      err(line, "histogram '" + name + "' series has no buckets");
      continue;
    }
    for (size_t k = 1; k < hs.buckets.size(); ++k) {
      if (!(hs.buckets[k].le > hs.buckets[k - 1].le)) {
        err(hs.buckets[k].line, "histogram '" + name + "' le values are not increasing");
      }
      if (hs.buckets[k].count < hs.buckets[k - 1].count) {
        err(hs.buckets[k].line, "histogram '" + name + "' bucket counts decrease");
      }
    }
    const auto& last = hs.buckets.back();
    if (!std::isinf(last.le) || last.le < 0) {
      err(line, "histogram '" + name + "' series has no le=\"+Inf\" bucket (last)");
    }
    if (!hs.count) {
      err(line, "histogram '" + name + "' series has no _count");
    } else if (std::isinf(last.le) && *hs.count != last.count) {
      err(line, "histogram '" + name + "' +Inf bucket (" + std::to_string(last.count) +
                    ") differs from _count (" + std::to_string(*hs.count) + ")");
    }
    if (!hs.sum) err(line, "histogram '" + name + "' series has no _sum");
  }
  return e;
}

// factoryd's naming rules on a parsed exposition: every family starts with factory_, counters
// (and only counters) end in _total, histograms of durations end in _seconds, and no label is
// one of the unbounded identifiers (run_id, ticket, path, ...). Returns the violations.
inline std::vector<std::string> check_factory_conventions(const Exposition& e) {
  static const std::set<std::string> kUnbounded = {"run_id",     "ticket",   "ticket_id", "path",
                                                   "request_id", "event_id", "task_id"};
  std::vector<std::string> out;
  for (const auto& [name, type] : e.types) {
    if (!name.starts_with("factory_")) out.push_back(name + ": no factory_ prefix");
    bool total = name.ends_with("_total");
    if (type == "counter" && !total) out.push_back(name + ": a counter must end in _total");
    if (type != "counter" && total) out.push_back(name + ": only counters end in _total");
    if (name.find("duration") != std::string::npos && !name.ends_with("_seconds")) {
      out.push_back(name + ": a duration must be in _seconds");
    }
  }
  for (const auto& s : e.samples) {
    for (const auto& [k, v] : s.labels) {
      if (kUnbounded.count(k)) out.push_back(s.name + ": unbounded label '" + k + "'");
    }
  }
  return out;
}

}  // namespace factory::test
