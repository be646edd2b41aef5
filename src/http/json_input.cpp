#include "http/json_input.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <string>

#include <fmt/format.h>

namespace factory::http {

std::string_view json_kind_name(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
      return "integer";
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "value";
}

namespace {

// The JSON pointer of the first double in `v` that is not finite, or nullopt. Boost.JSON 1.81
// reads 1e400 as Infinity and 0e400 as NaN, and serializes them as the words Infinity and NaN:
// a value holding one would go on as text that is not JSON. Depth is bounded by kMaxDepth.
std::optional<std::string> non_finite_at(const boost::json::value& v) {
  if (v.is_double()) {
    if (std::isfinite(v.get_double())) return std::nullopt;
    return std::string();
  }
  if (v.is_array()) {
    const auto& a = v.get_array();
    for (size_t i = 0; i < a.size(); ++i) {
      if (auto at = non_finite_at(a[i])) return "/" + std::to_string(i) + *at;
    }
  } else if (v.is_object()) {
    for (const auto& [key, member] : v.get_object()) {
      if (auto at = non_finite_at(member)) {
        std::string escaped;  // RFC 6901: '~' as ~0, '/' as ~1
        for (char c : key) escaped += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
        return "/" + escaped + *at;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Result<boost::json::value> parse_json(std::string_view text, std::string_view what) {
  boost::json::parse_options opts;
  opts.max_depth = kMaxDepth;
  boost::system::error_code ec;
  boost::json::stream_parser parser({}, opts);
  size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    std::string why = ec.message();
    if (ec == boost::json::error::too_deep) {
      why = fmt::format("nested deeper than {} levels", kMaxDepth);
    } else if (ec == boost::json::error::syntax && used < text.size() &&
               static_cast<unsigned char>(text[used]) >= 0x80) {
      why = "invalid UTF-8";
    }
    return Status::invalid_argument(
        fmt::format("{} is not valid JSON: {} at byte {}; send a JSON document encoded as UTF-8",
                    what, why, used));
  }
  boost::json::value v = parser.release();
  if (auto at = non_finite_at(v)) {
    return Status::invalid_argument(fmt::format(
        "{} holds a number at '{}' that does not fit a double (its magnitude is over 1.8e308, "
        "or it is 0 with an exponent that large); send such numbers as strings",
        what, at->empty() ? "/" : *at));
  }
  return v;
}

Result<boost::json::object> parse_body(const Request& req) {
  if (req.body.empty()) {
    return Status::invalid_argument(
        "request body is empty; send a JSON object with Content-Type: application/json");
  }
  auto v = parse_json(req.body, "request body");
  if (!v.ok()) return v.status();
  if (!v->is_object()) {
    return Status::invalid_argument(
        fmt::format("request body must be a JSON object, got {}", json_kind_name(*v)));
  }
  return std::move(v->as_object());
}

FieldReader::FieldReader(const boost::json::object& obj, std::string where,
                         std::initializer_list<std::string_view> allowed)
    : obj_(obj), where_(std::move(where)), allowed_(allowed) {}

Status FieldReader::check_unknown() const {
  for (const auto& [key, value] : obj_) {
    bool known = false;
    for (std::string_view a : allowed_) known = known || a == key;
    if (known) continue;
    std::string list;
    for (std::string_view a : allowed_) {
      if (!list.empty()) list += ", ";
      list += a;
    }
    return Status::invalid_argument(
        fmt::format("unknown field '{}' in {}; allowed: {}", std::string_view(key), where_, list));
  }
  return Status::ok_status();
}

void FieldReader::type_error(std::string_view name, std::string_view want,
                             const boost::json::value& got) {
  if (!status_.ok()) return;
  status_ = Status::invalid_argument(
      fmt::format("{}.{} must be {}, got {}", where_, name, want, json_kind_name(got)));
}

void FieldReader::require(std::string_view name) {
  if (status_.ok() && !obj_.contains(name)) {
    status_ = Status::invalid_argument(fmt::format("{}.{} is required", where_, name));
  }
}

const boost::json::value* FieldReader::any(std::string_view name) { return obj_.if_contains(name); }

std::optional<std::string> FieldReader::string(std::string_view name) {
  const boost::json::value* v = obj_.if_contains(name);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    type_error(name, "a string", *v);
    return std::nullopt;
  }
  return std::string(v->get_string());
}

std::optional<int64_t> FieldReader::int64(std::string_view name) {
  const boost::json::value* v = obj_.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  type_error(name, "an integer", *v);
  return std::nullopt;
}

std::optional<bool> FieldReader::boolean(std::string_view name) {
  const boost::json::value* v = obj_.if_contains(name);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    type_error(name, "a boolean", *v);
    return std::nullopt;
  }
  return v->get_bool();
}

const boost::json::object* FieldReader::object(std::string_view name) {
  const boost::json::value* v = obj_.if_contains(name);
  if (!v) return nullptr;
  if (!v->is_object()) {
    type_error(name, "an object", *v);
    return nullptr;
  }
  return &v->get_object();
}

const boost::json::array* FieldReader::array(std::string_view name) {
  const boost::json::value* v = obj_.if_contains(name);
  if (!v) return nullptr;
  if (!v->is_array()) {
    type_error(name, "an array", *v);
    return nullptr;
  }
  return &v->get_array();
}

Result<int64_t> query_int(const Request& req, std::string_view name, int64_t def, int64_t min,
                          int64_t max) {
  auto v = req.query_value(name);
  if (!v) return def;
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size() || out < min || out > max) {
    return Status::invalid_argument(
        fmt::format("query parameter {}={} must be an integer from {} to {}", name, *v, min, max));
  }
  return out;
}

}  // namespace factory::http
