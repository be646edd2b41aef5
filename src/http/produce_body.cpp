#include "http/produce_body.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include <boost/json.hpp>

#include "http/json_fast.h"
#include "http/json_input.h"
#include "http/log_views.h"

namespace factory::http {

namespace json = boost::json;

namespace {

constexpr int32_t kMaxPartition = std::numeric_limits<int32_t>::max();

// --- The reference: Boost.JSON ---

std::optional<int64_t> as_int64(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

// A produce record's headers: {"name": "value", ...} or [{"name"|"name_b64", "value"|"value_b64"}]
// (the array keeps order, repeated names and bytes that are not UTF-8).
Status read_headers(const json::value& v, const std::string& where, ProducerRecord* out) {
  if (v.is_object()) {
    for (const auto& [k, hv] : v.get_object()) {
      if (!hv.is_string()) {
        return Status::invalid_argument(where + ".headers." + std::string(k) +
                                        " must be a string, got " +
                                        std::string(json_kind_name(hv)));
      }
      out->headers.push_back({std::string(k), std::string(hv.get_string())});
    }
    return Status();
  }
  if (!v.is_array()) {
    return Status::invalid_argument(where +
                                    ".headers must be an object {name: value} or an array of "
                                    "{name, value}, got " +
                                    std::string(json_kind_name(v)));
  }
  const json::array& a = v.get_array();
  for (size_t i = 0; i < a.size(); ++i) {
    std::string hw = where + ".headers[" + std::to_string(i) + "]";
    const json::object* ho = a[i].if_object();
    if (!ho) return Status::invalid_argument(hw + " must be an object {name, value}");
    FieldReader hr(*ho, hw, {"name", "name_b64", "value", "value_b64"});
    FACTORY_RETURN_IF_ERROR(hr.check_unknown());
    std::optional<std::string> name, hvalue;
    FACTORY_RETURN_IF_ERROR(read_bytes(*ho, "name", hw, false, &name));
    FACTORY_RETURN_IF_ERROR(read_bytes(*ho, "value", hw, false, &hvalue));
    if (!name) return Status::invalid_argument(hw + ".name is required");
    out->headers.push_back({std::move(*name), hvalue.value_or("")});
  }
  return Status();
}

// One record of a produce body, read in one pass over its members: the hot path of
// `factory-bench http`, so nothing is allocated beyond the record's own bytes unless there is
// an error, whose message names records[index] and the field.
Status read_producer_record(const json::value& v, size_t index, ProducerRecord* out) {
  auto where = [index] { return "records[" + std::to_string(index) + "]"; };
  const json::object* o = v.if_object();
  if (!o) {
    return Status::invalid_argument(where() + " must be an object, got " +
                                    std::string(json_kind_name(v)));
  }
  auto wrong = [&](std::string_view field, std::string_view want, const json::value& got) {
    return Status::invalid_argument(where() + "." + std::string(field) + " must be " +
                                    std::string(want) + ", got " +
                                    std::string(json_kind_name(got)));
  };
  auto both = [&](std::string_view field) {
    return Status::invalid_argument(where() + " has both " + std::string(field) + " and " +
                                    std::string(field) + "_b64; send one");
  };
  bool have_key = false;
  bool have_value = false;
  for (const auto& [k, val] : *o) {
    std::string_view name = k;
    if (name == "value") {
      if (have_value) return both("value");
      have_value = true;
      // Any JSON: a string is its own text; other values are stored serialized.
      if (val.is_string()) {
        const json::string& s = val.get_string();
        out->value.emplace(s.data(), s.size());
      } else if (!val.is_null()) {
        out->value = json::serialize(val);
      }
    } else if (name == "key") {
      if (have_key) return both("key");
      have_key = true;
      if (val.is_string()) {
        const json::string& s = val.get_string();
        out->key.emplace(s.data(), s.size());
      } else if (!val.is_null()) {
        return wrong("key", "a string or null", val);
      }
    } else if (name == "value_b64" || name == "key_b64") {
      bool is_value = name == "value_b64";
      if (is_value ? have_value : have_key) return both(is_value ? "value" : "key");
      (is_value ? have_value : have_key) = true;
      std::optional<std::string> decoded;
      if (val.is_string()) decoded = base64_decode(val.get_string());
      if (!decoded) {
        return Status::invalid_argument(where() + "." + std::string(name) +
                                        " must be a padded base64 string (RFC 4648)");
      }
      (is_value ? out->value : out->key) = std::move(decoded);
    } else if (name == "partition") {
      auto p = as_int64(val);
      if (!p) return wrong("partition", "an integer", val);
      if (*p < 0 || *p > kMaxPartition) {
        return Status::invalid_argument(where() + ".partition must be a partition number (>= 0)");
      }
      out->partition = static_cast<int32_t>(*p);
    } else if (name == "timestamp") {
      auto t = as_int64(val);
      if (!t) return wrong("timestamp", "an integer", val);
      if (*t < 0) {
        return Status::invalid_argument(where() + ".timestamp must be ms since the epoch (>= 0)");
      }
      out->timestamp_ms = *t;
    } else if (name == "headers") {
      FACTORY_RETURN_IF_ERROR(read_headers(val, where(), out));
    } else {
      return Status::invalid_argument("unknown field '" + std::string(name) + "' in " + where() +
                                      "; allowed: key, key_b64, value, value_b64, headers, "
                                      "partition, timestamp");
    }
  }
  return Status();
}

// --- The fast path: simdjson's DOM. Every branch that the reference would refuse, or that
// reads something the fast path cannot reproduce, returns false. ---

using simdjson::dom::element;

std::optional<int64_t> simd_int64(element e) {
  if (e.is_int64()) return e.get_int64().value_unsafe();
  if (e.is_uint64()) {
    uint64_t u = e.get_uint64().value_unsafe();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

// The members of `e`, an object without duplicate keys (the reference keeps the last of them,
// which the fast path does not reproduce), or nullopt.
std::optional<simdjson::dom::object> plain_object(element e) {
  if (!e.is_object()) return std::nullopt;
  simdjson::dom::object o = e.get_object().value_unsafe();
  if (simd_has_duplicate_key(o)) return std::nullopt;
  return o;
}

// read_bytes() (log_views.h) with nullable = false, fast: a string `name` or a base64 string
// `name_b64`, not both.
bool simd_bytes(simdjson::dom::object o, std::string_view name, std::string_view b64_name,
                std::optional<std::string>* out) {
  out->reset();
  bool seen = false;
  for (simdjson::dom::key_value_pair kv : o) {
    bool text = kv.key == name;
    if (!text && kv.key != b64_name) continue;
    if (seen || !kv.value.is_string()) return false;
    seen = true;
    std::string_view s = kv.value.get_string().value_unsafe();
    if (text) {
      out->emplace(s);
    } else {
      *out = base64_decode(s);
      if (!*out) return false;
    }
  }
  return true;
}

bool simd_headers(element v, ProducerRecord* out) {
  if (v.is_object()) {
    auto o = plain_object(v);
    if (!o) return false;
    for (simdjson::dom::key_value_pair kv : *o) {
      if (!kv.value.is_string()) return false;
      out->headers.push_back(
          {std::string(kv.key), std::string(kv.value.get_string().value_unsafe())});
    }
    return true;
  }
  if (!v.is_array()) return false;
  for (element item : simdjson::dom::array(v.get_array().value_unsafe())) {
    auto o = plain_object(item);
    if (!o) return false;
    for (simdjson::dom::key_value_pair kv : *o) {
      if (kv.key != "name" && kv.key != "name_b64" && kv.key != "value" && kv.key != "value_b64") {
        return false;
      }
    }
    std::optional<std::string> name, value;
    if (!simd_bytes(*o, "name", "name_b64", &name) ||
        !simd_bytes(*o, "value", "value_b64", &value) || !name) {
      return false;
    }
    out->headers.push_back({std::move(*name), value.value_or("")});
  }
  return true;
}

bool simd_record(element v, ProducerRecord* out) {
  auto o = plain_object(v);
  if (!o) return false;
  bool have_key = false;
  bool have_value = false;
  for (simdjson::dom::key_value_pair kv : *o) {
    std::string_view name = kv.key;
    element val = kv.value;
    if (name == "value") {
      if (have_value) return false;
      have_value = true;
      if (val.is_string()) {
        out->value.emplace(val.get_string().value_unsafe());
      } else if (!val.is_null()) {
        std::string text;
        // The record's value sits three levels down: body, records, the record.
        if (!append_boost_serialization(val, 3, &text)) return false;
        out->value = std::move(text);
      }
    } else if (name == "key") {
      if (have_key) return false;
      have_key = true;
      if (val.is_string()) {
        out->key.emplace(val.get_string().value_unsafe());
      } else if (!val.is_null()) {
        return false;
      }
    } else if (name == "value_b64" || name == "key_b64") {
      bool is_value = name == "value_b64";
      if (is_value ? have_value : have_key) return false;
      (is_value ? have_value : have_key) = true;
      if (!val.is_string()) return false;
      std::optional<std::string> decoded = base64_decode(val.get_string().value_unsafe());
      if (!decoded) return false;
      (is_value ? out->value : out->key) = std::move(decoded);
    } else if (name == "partition") {
      auto p = simd_int64(val);
      if (!p || *p < 0 || *p > kMaxPartition) return false;
      out->partition = static_cast<int32_t>(*p);
    } else if (name == "timestamp") {
      auto t = simd_int64(val);
      if (!t || *t < 0) return false;
      out->timestamp_ms = *t;
    } else if (name == "headers") {
      if (!simd_headers(val, out)) return false;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

Status read_produce_body(const Request& req, ProduceBody* out,
                         std::optional<size_t>* failed_record) {
  failed_record->reset();
  auto body = parse_body(req);
  if (!body.ok()) return body.status();
  FieldReader top(*body, "body", {"records", "sync"});
  top.require("records");
  const json::array* items = top.array("records");
  out->sync = top.boolean("sync").value_or(true);
  if (Status s = top.check_unknown(); !s.ok()) return s;
  if (!top.status().ok()) return top.status();
  out->records.assign(items->size(), ProducerRecord());
  for (size_t i = 0; i < items->size(); ++i) {
    Status s = read_producer_record((*items)[i], i, &out->records[i]);
    if (!s.ok()) {
      *failed_record = i;
      return s;
    }
  }
  return Status();
}

bool read_produce_body_simd(std::string_view body, ProduceBody* out) {
  std::optional<simdjson::dom::parser> own;
  std::optional<element> root = simd_parse(body, &own);
  if (!root) return false;
  auto top = plain_object(*root);
  if (!top) return false;
  std::optional<simdjson::dom::array> records;
  out->sync = true;
  for (simdjson::dom::key_value_pair kv : *top) {
    if (kv.key == "records") {
      if (!kv.value.is_array()) return false;
      records = kv.value.get_array().value_unsafe();
    } else if (kv.key == "sync") {
      if (!kv.value.is_bool()) return false;
      out->sync = kv.value.get_bool().value_unsafe();
    } else {
      return false;
    }
  }
  if (!records) return false;
  out->records.assign(records->size(), ProducerRecord());
  size_t i = 0;
  for (element item : *records) {
    if (!simd_record(item, &out->records[i++])) return false;
  }
  return true;
}

Status read_produce_body_fast(const Request& req, ProduceBody* out,
                              std::optional<size_t>* failed_record) {
  thread_local int skip = 0;
  if (skip > 0) {
    --skip;
  } else if (read_produce_body_simd(req.body, out)) {
    failed_record->reset();
    return Status();
  } else {
    *out = ProduceBody();
    Status s = read_produce_body(req, out, failed_record);
    if (s.ok()) skip = kSkipAfterDecline;
    return s;
  }
  return read_produce_body(req, out, failed_record);
}

}  // namespace factory::http
