#include "http/json_fast.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "http/json_input.h"

namespace factory::http {

namespace {

// parse_json counts depth its own way; well before its limit, it decides.
constexpr size_t kMaxSimdDepth = kMaxDepth - 2;

// A double that Boost surely reads as finite, as simdjson did: not zero (0e400 is NaN to Boost
// 1.81, and an exponent past 2^31 is an error to it) and not near either end of the range
// (1.7976931348623158e308 is Infinity to it).
bool double_is_plain(double d) {
  double m = std::fabs(d);
  return m >= 1e-300 && m <= 1e300;
}

bool accept(simdjson::dom::element e, size_t depth) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      if (depth + 1 > kMaxSimdDepth) return false;
      for (simdjson::dom::element v : simdjson::dom::array(e.get_array().value_unsafe())) {
        if (!accept(v, depth + 1)) return false;
      }
      return true;
    case simdjson::dom::element_type::OBJECT:
      if (depth + 1 > kMaxSimdDepth) return false;
      for (simdjson::dom::key_value_pair kv :
           simdjson::dom::object(e.get_object().value_unsafe())) {
        if (!accept(kv.value, depth + 1)) return false;
      }
      return true;
    case simdjson::dom::element_type::DOUBLE:
      return double_is_plain(e.get_double().value_unsafe());
    default:
      return true;
  }
}

}  // namespace

bool simd_has_duplicate_key(simdjson::dom::object o) {
  size_t n = o.size();
  if (n < 2) return false;
  if (n <= 8) {
    std::string_view keys[8];
    size_t i = 0;
    for (simdjson::dom::key_value_pair kv : o) {
      for (size_t j = 0; j < i; ++j) {
        if (keys[j] == kv.key) return true;
      }
      keys[i++] = kv.key;
    }
    return false;
  }
  std::vector<std::string_view> keys;
  keys.reserve(n);
  for (simdjson::dom::key_value_pair kv : o) keys.push_back(kv.key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

namespace {

template <typename Int>
void append_int(std::string* out, Int v) {
  char buf[24];
  auto [end, err] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

}  // namespace

std::optional<simdjson::dom::element> simd_parse(std::string_view text,
                                                 std::optional<simdjson::dom::parser>* own) {
  thread_local simdjson::dom::parser kept;
  simdjson::dom::parser* parser = &kept;
  if (text.size() > kMaxKeptParserBytes) parser = &own->emplace();
  simdjson::dom::element root;
  // Copies the text into the parser's padded buffer (simdjson reads past the end).
  if (parser->parse(text.data(), text.size(), true).get(root) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  return root;
}

bool simd_parse_json_would_accept(simdjson::dom::element e) { return accept(e, 0); }

bool append_boost_serialization(simdjson::dom::element e, size_t depth, std::string* out) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      if (depth + 1 > kMaxSimdDepth) return false;
      out->push_back('[');
      bool first = true;
      for (simdjson::dom::element v : simdjson::dom::array(e.get_array().value_unsafe())) {
        if (!first) out->push_back(',');
        first = false;
        if (!append_boost_serialization(v, depth + 1, out)) return false;
      }
      out->push_back(']');
      return true;
    }
    case simdjson::dom::element_type::OBJECT: {
      if (depth + 1 > kMaxSimdDepth) return false;
      simdjson::dom::object o = e.get_object().value_unsafe();
      if (simd_has_duplicate_key(o)) return false;
      out->push_back('{');
      bool first = true;
      for (simdjson::dom::key_value_pair kv : o) {
        if (!first) out->push_back(',');
        first = false;
        base::append_boost_json_string(out, kv.key);
        out->push_back(':');
        if (!append_boost_serialization(kv.value, depth + 1, out)) return false;
      }
      out->push_back('}');
      return true;
    }
    case simdjson::dom::element_type::INT64:
      append_int(out, e.get_int64().value_unsafe());
      return true;
    case simdjson::dom::element_type::UINT64:
      append_int(out, e.get_uint64().value_unsafe());
      return true;
    case simdjson::dom::element_type::DOUBLE:
      return false;
    case simdjson::dom::element_type::STRING:
      base::append_boost_json_string(out, e.get_string().value_unsafe());
      return true;
    case simdjson::dom::element_type::BOOL:
      out->append(e.get_bool().value_unsafe() ? "true" : "false");
      return true;
    case simdjson::dom::element_type::NULL_VALUE:
      out->append("null");
      return true;
  }
  return false;
}

bool simd_check_object_body(std::string_view body, std::string_view field,
                            std::optional<std::string>* field_value) {
  std::optional<simdjson::dom::parser> own;
  std::optional<simdjson::dom::element> root = simd_parse(body, &own);
  if (!root || !root->is_object() || !simd_parse_json_would_accept(*root)) return false;
  field_value->reset();
  // Boost.JSON keeps the last of duplicate keys.
  for (simdjson::dom::key_value_pair kv :
       simdjson::dom::object(root->get_object().value_unsafe())) {
    if (kv.key != field) continue;
    if (kv.value.is_string()) {
      *field_value = std::string(kv.value.get_string().value_unsafe());
    } else {
      field_value->reset();
    }
  }
  return true;
}

}  // namespace factory::http
