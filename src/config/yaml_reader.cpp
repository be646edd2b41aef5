// YamlReader (yaml_reader.h): the one YAML scaffold every config parser reads with.
#include "config/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "config/yaml_load.h"

namespace factory::config {
namespace {

namespace json = boost::json;

// A config block is small; these stop an alias bomb (`&a [*a, *a]` nested) from expanding into
// gigabytes of JSON, and a self-referencing alias from recursing forever.
constexpr int kMaxJsonDepth = 64;
constexpr int kMaxJsonNodes = 100'000;

std::string join(const YamlKeys& keys) {
  std::string s;
  for (std::string_view k : keys) {
    if (!s.empty()) s += ", ";
    s += k;
  }
  return s;
}

std::string last_part(std::string_view field) {
  size_t dot = field.rfind('.');
  return std::string(dot == std::string_view::npos ? field : field.substr(dot + 1));
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so "inptu" is
// one edit from "input".
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The text of 0-based line `line`, for hints about a syntax error.
std::string_view line_at(std::string_view text, int line) {
  size_t start = 0;
  for (int i = 0; i < line; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::string_view drop_sign(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return s;
}

std::string_view drop_plus(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema forms (not 1.1's yes/no/on/off, which turn `country: NO` into false).
bool is_yaml_null(std::string_view s) {
  return s == "~" || s == "null" || s == "Null" || s == "NULL";
}

bool yaml_bool(std::string_view s, bool* out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    *out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    *out = false;
    return true;
  }
  return false;
}

// [-+]?[0-9]+ without a leading zero: "0123" stays a string (a zip code, an id), where YAML
// would make it 123 and lose the zero.
bool looks_like_int(std::string_view s) {
  s = drop_sign(s);
  return all_digits(s) && (s.size() == 1 || s[0] != '0');
}

// YAML 1.2 core float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, and no leading zero.
bool looks_like_float(std::string_view s) {
  s = drop_sign(s);
  size_t e = s.find_first_of("eE");
  std::string_view mantissa = s.substr(0, e);
  if (e != std::string_view::npos && !all_digits(drop_sign(s.substr(e + 1)))) return false;
  size_t dot = mantissa.find('.');
  std::string_view whole = mantissa.substr(0, dot);
  if (whole.size() > 1 && whole[0] == '0') return false;
  if (dot == std::string_view::npos) return all_digits(whole);
  std::string_view fraction = mantissa.substr(dot + 1);
  if (whole.empty()) return all_digits(fraction);
  return all_digits(whole) && (fraction.empty() || all_digits(fraction));
}

bool is_yaml_special_float(std::string_view s) {
  s = drop_sign(s);
  return s == ".inf" || s == ".Inf" || s == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN";
}

bool parse_double(std::string_view text, double* out) {
  if (!looks_like_float(text)) return false;
  std::string_view t = drop_plus(text);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), *out);
  return ec == std::errc() && p == t.data() + t.size() && std::isfinite(*out);
}

// Converts one node; `nodes` counts values across the whole conversion.
Status convert(const YamlReader& reader, const YAML::Node& node, const std::string& path, int depth,
               int* nodes, json::value* out) {
  if (depth > kMaxJsonDepth || ++*nodes > kMaxJsonNodes) {
    std::string at = path.size() > 60 ? path.substr(0, 60) + "..." : path;
    return reader.error(node.Mark(), at + " is nested too deeply or expands to too many values "
                                          "(check for a recursive YAML alias); flatten it");
  }
  if (node.IsNull()) {
    *out = nullptr;
    return Status::ok_status();
  }
  if (node.IsSequence()) {
    json::array& a = out->emplace_array();
    size_t i = 0;
    for (const YAML::Node& item : node) {
      json::value v;
      FACTORY_RETURN_IF_ERROR(
          convert(reader, item, path + "[" + std::to_string(i++) + "]", depth + 1, nodes, &v));
      a.push_back(std::move(v));
    }
    return Status::ok_status();
  }
  if (node.IsMap()) {
    std::vector<YamlEntry> fields;
    FACTORY_RETURN_IF_ERROR(reader.entries(node, path, nullptr, &fields));
    json::object& o = out->emplace_object();
    for (const YamlEntry& f : fields) {
      json::value v;
      FACTORY_RETURN_IF_ERROR(convert(reader, f.value, path + "." + f.key, depth + 1, nodes, &v));
      o[f.key] = std::move(v);
    }
    return Status::ok_status();
  }
  const std::string& s = node.Scalar();
  // "?" is yaml-cpp's tag for a plain scalar; quoted and block scalars get "!", and an
  // explicitly tagged one (`!!str 5`) its tag: all of those stay strings.
  bool b = false;
  double d = 0;
  if (node.Tag() != "?") {
    *out = s;
  } else if (is_yaml_null(s)) {
    *out = nullptr;
  } else if (yaml_bool(s, &b)) {
    *out = b;
  } else if (looks_like_int(s)) {
    std::string_view digits = drop_plus(s);
    int64_t i = 0;
    uint64_t u = 0;
    if (std::from_chars(digits.data(), digits.data() + digits.size(), i).ec == std::errc()) {
      *out = i;
    } else if (std::from_chars(digits.data(), digits.data() + digits.size(), u).ec == std::errc()) {
      *out = u;
    } else {
      return reader.error(node.Mark(), path + ": " + s +
                                           " is too large for a JSON integer; quote it to pass "
                                           "it as a string");
    }
  } else if (looks_like_float(s)) {
    if (!parse_double(s, &d)) {
      return reader.error(node.Mark(), path + ": " + s +
                                           " is out of range for a JSON number; quote it to "
                                           "pass it as a string");
    }
    *out = d;
  } else if (is_yaml_special_float(s)) {
    return reader.error(node.Mark(), path + ": " + s +
                                         " (infinity or NaN) has no JSON form; quote it to pass "
                                         "it as a string");
  } else {
    *out = s;
  }
  return Status::ok_status();
}

}  // namespace

std::string in_quotes(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

YamlReader::YamlReader(std::string source, const YamlAliases* aliases)
    : source_(std::move(source)), aliases_(aliases) {}

Status YamlReader::load(std::string_view text, YAML::Node* doc) const {
  std::vector<YAML::Node> docs;
  FACTORY_RETURN_IF_ERROR(load_all(text, &docs));
  if (docs.size() > 1) {
    return error(docs[1].Mark(),
                 "this file holds more than one YAML document; move what follows `---` to a "
                 "file of its own");
  }
  *doc = docs.empty() ? YAML::Node() : docs[0];
  return Status::ok_status();
}

Status YamlReader::load_all(std::string_view text, std::vector<YAML::Node>* docs) const {
  try {
    *docs = load_all_yaml(std::string(text));
  } catch (const YAML::Exception& e) {  // ParserException and the rest: all carry a mark
    return syntax_error(text, e.mark, e.msg);
  }
  return Status::ok_status();
}

Status YamlReader::error(const YAML::Mark& mark, std::string_view what) const {
  std::string msg = source_;
  if (!mark.is_null() && mark.line >= 0) {
    msg += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  msg += ": ";
  msg += what;
  return Status::invalid_argument(msg);
}

Status YamlReader::syntax_error(std::string_view text, const YAML::Mark& mark,
                                const std::string& msg) const {
  std::string what = "YAML syntax error: " + msg + "; ";
  std::string_view line = mark.is_null() ? std::string_view() : line_at(text, mark.line);
  size_t indent_end = line.find_first_not_of(" \t");
  if (line.substr(0, indent_end).find('\t') != std::string_view::npos) {
    what += "YAML indents with spaces, not tabs: replace the tabs at the start of this line";
  } else {
    what += "check the indentation, brackets and quoting on this line and the one before it";
  }
  return error(mark, what);
}

YAML::Mark YamlReader::where(const YamlEntry& e) {
  return e.value.IsNull() ? e.key_node.Mark() : e.value.Mark();
}

Status YamlReader::entries(const YAML::Node& map, std::string_view what, const YamlKeys* allowed,
                           std::vector<YamlEntry>* out) const {
  out->clear();
  if (!map.IsMap()) {
    return error(map.Mark(), std::string(what) + " must be a mapping of key: value lines");
  }
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) {
      return error(it->first.Mark(),
                   "a key in " + std::string(what) + " is not plain text; write key: value");
    }
    YamlEntry e{it->first.Scalar(), it->first, it->second};
    if (const YamlEntry* first = find(*out, e.key)) {
      return error(e.key_node.Mark(), in_quotes(e.key) + " appears twice in " + std::string(what) +
                                          " (first at line " +
                                          std::to_string(first->key_node.Mark().line + 1) +
                                          "); keep one of them");
    }
    if (allowed != nullptr &&
        std::find(allowed->begin(), allowed->end(), e.key) == allowed->end()) {
      std::string msg = "unknown key " + in_quotes(e.key) + " in " + std::string(what);
      std::string_view guess = suggest(e.key, *allowed);
      if (!guess.empty()) {
        msg += "; did you mean " + in_quotes(guess) + "?";
      } else {
        msg += "; it takes " + join(*allowed) + "; fix the spelling or remove it";
      }
      return error(e.key_node.Mark(), msg);
    }
    out->push_back(std::move(e));
  }
  return Status::ok_status();
}

const YamlEntry* YamlReader::find(const std::vector<YamlEntry>& entries, std::string_view key) {
  for (const YamlEntry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

Status YamlReader::text(const YamlEntry& e, std::string_view field, std::string* out) const {
  if (e.value.IsNull()) {
    return error(where(e), std::string(field) +
                               " has no value; write one after the colon, or remove the line");
  }
  if (!e.value.IsScalar()) {
    return error(where(e), std::string(field) + " must be a single value, not a " +
                               (e.value.IsMap() ? "mapping" : "list") + ", e.g. " +
                               last_part(field) + ": value");
  }
  *out = e.value.Scalar();
  return Status::ok_status();
}

Status YamlReader::integer(const YamlEntry& e, std::string_view field, int64_t min, int64_t max,
                           int64_t* out) const {
  std::string s;
  FACTORY_RETURN_IF_ERROR(text(e, field, &s));
  std::string_view digits = drop_plus(s);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || p != digits.data() + digits.size() ||
      (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    return error(where(e), std::string(field) + ": " + in_quotes(s) +
                               " is not a whole number; write it as digits, e.g. " +
                               last_part(field) + ": " + std::to_string(std::max<int64_t>(min, 1)));
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    std::string range = max == std::numeric_limits<int64_t>::max()
                            ? "use " + std::to_string(min) + " or more"
                            : "use " + std::to_string(min) + " to " + std::to_string(max);
    return error(where(e), std::string(field) + ": " + s + " is out of range; " + range);
  }
  *out = v;
  return Status::ok_status();
}

Status YamlReader::integer(const YamlEntry& e, std::string_view field, int min, int max,
                           int* out) const {
  int64_t v = 0;
  FACTORY_RETURN_IF_ERROR(integer(e, field, int64_t{min}, int64_t{max}, &v));
  *out = static_cast<int>(v);
  return Status::ok_status();
}

Status YamlReader::number(const YamlEntry& e, std::string_view field, double* out) const {
  std::string s;
  FACTORY_RETURN_IF_ERROR(text(e, field, &s));
  if (!parse_double(s, out)) {
    return error(where(e), std::string(field) + ": " + in_quotes(s) +
                               " is not a number; write it as digits, e.g. " + last_part(field) +
                               ": 0.5");
  }
  return Status::ok_status();
}

Status YamlReader::boolean(const YamlEntry& e, std::string_view field, bool* out) const {
  std::string s;
  FACTORY_RETURN_IF_ERROR(text(e, field, &s));
  if (!yaml_bool(s, out)) {
    return error(where(e), std::string(field) + ": " + in_quotes(s) +
                               " is not true or false; write " + last_part(field) + ": true");
  }
  return Status::ok_status();
}

Status YamlReader::to_json(const YAML::Node& node, const std::string& path,
                           std::string* json) const {
  json::value v;
  int nodes = 0;
  FACTORY_RETURN_IF_ERROR(convert(*this, node, path, 0, &nodes, &v));
  *json = json::serialize(v);
  return Status::ok_status();
}

std::string_view YamlReader::suggest(std::string_view key, const YamlKeys& allowed) const {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
    return c == '-' ? '_' : static_cast<char>(std::tolower(c));
  });
  if (aliases_ != nullptr) {
    auto alias = aliases_->find(lower);
    if (alias != aliases_->end() &&
        std::find(allowed.begin(), allowed.end(), alias->second) != allowed.end()) {
      return alias->second;
    }
  }
  std::string_view best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : allowed) {
    size_t d = edit_distance(lower, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  // Close means a typo, not another word: at most 2 edits, and at most a third of the length.
  if (best_distance <= 2 && best_distance * 3 <= std::max(lower.size(), best.size())) return best;
  return {};
}

}  // namespace factory::config
