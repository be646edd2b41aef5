// Fuzz target: strict JSON request bodies (src/http/json_input.h): parse_body(), parse_json(),
// FieldReader and query_int(), the way write handlers use them. Input: a query value for
// "limit", "\n---\n", then the body.
// Properties: parse_body accepts exactly the JSON objects within kMaxDepth that Boost.JSON
// reads; an accepted body serializes to JSON again (no NaN or Infinity); a FieldReader's
// getters agree with the value's kinds; query_int stays in range. And the simdjson fast
// paths (http/json_fast.h, http/produce_body.h), wherever they answer, answer as the Boost.JSON
// path does: the produce body's records, the webhook body's verdict and event, parse_json's
// verdict and the serialization of its value.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "fuzz_util.h"
#include "http/json_fast.h"
#include "http/json_input.h"
#include "http/produce_body.h"

namespace json = boost::json;
using namespace factory::http;
using factory::fuzz::next_part;

namespace {

void check_fast_paths(const Request& req, const factory::Result<json::value>& any) {
  ProduceBody fast;
  if (read_produce_body_simd(req.body, &fast)) {
    ProduceBody ref;
    std::optional<size_t> failed;
    factory::Status s = read_produce_body(req, &ref, &failed);
    FUZZ_CHECK(s.ok(), "fast produce read accepted what the reference refuses: " + s.to_string());
    FUZZ_CHECK(fast.sync == ref.sync && fast.records.size() == ref.records.size(),
               "fast produce read differs");
    for (size_t i = 0; i < ref.records.size(); ++i) {
      const auto &x = fast.records[i], &y = ref.records[i];
      FUZZ_CHECK(x.key == y.key && x.value == y.value && x.headers == y.headers &&
                     x.partition == y.partition && x.timestamp_ms == y.timestamp_ms,
                 "fast produce read differs at record " + std::to_string(i));
    }
  }
  std::optional<std::string> event;
  if (simd_check_object_body(req.body, "webhookEvent", &event)) {
    FUZZ_CHECK(any.ok() && any->is_object(), "fast object check accepted what parse_body refuses");
    const json::value* v = any->get_object().if_contains("webhookEvent");
    std::optional<std::string> ref_event;
    if (v != nullptr && v->is_string()) ref_event = std::string(v->get_string());
    FUZZ_CHECK(event == ref_event, "fast object check read another webhookEvent");
  }
  std::optional<simdjson::dom::parser> own;
  if (auto root = simd_parse(req.body, &own); root && simd_parse_json_would_accept(*root)) {
    FUZZ_CHECK(any.ok(), "fast verdict accepted what parse_json refuses");
    std::string text;
    if (append_boost_serialization(*root, 0, &text)) {
      FUZZ_CHECK(text == json::serialize(*any), "fast serialization differs: " + text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = factory::fuzz::as_view(data, size);
  std::string_view limit = next_part(&rest);
  Request req;
  req.method = "POST";
  req.path = "/api/v1/fuzz";
  req.body = std::string(rest);
  req.query.emplace_back("limit", std::string(limit));

  auto q = query_int(req, "limit", 100, 1, 1000);
  if (q.ok()) FUZZ_CHECK(*q >= 1 && *q <= 1000, "query_int out of range");

  auto any = parse_json(req.body, "body");
  auto body = parse_body(req);
  check_fast_paths(req, any);
  if (!body.ok()) {
    FUZZ_CHECK(body.status().code() == factory::Status::Code::kInvalidArgument,
               body.status().to_string());
    return 0;
  }
  FUZZ_CHECK(any.ok() && any->is_object(), "parse_body took what parse_json refuses");
  // What handlers store or pass on is this value serialized: it must still be JSON.
  boost::system::error_code ec;
  json::value again = json::parse(json::serialize(*body), ec);
  FUZZ_CHECK(!ec,
             "an accepted body serializes to text that is not JSON: " + json::serialize(*body));
  FUZZ_CHECK(json::value(*body) == *any, "parse_body and parse_json read different values");

  FieldReader r(*body, "body", {"name", "partitions", "config", "enabled", "items"});
  (void)r.check_unknown();
  auto name = r.string("name");
  auto parts = r.int64("partitions");
  auto enabled = r.boolean("enabled");
  const json::object* config = r.object("config");
  const json::array* items = r.array("items");
  r.require("name");
  if (name) FUZZ_CHECK(body->at("name").is_string(), "string() of a non-string");
  if (parts) FUZZ_CHECK(body->at("partitions").is_number(), "int64() of a non-number");
  if (enabled) FUZZ_CHECK(body->at("enabled").is_bool(), "boolean() of a non-bool");
  if (config) FUZZ_CHECK(body->at("config").is_object(), "object() of a non-object");
  if (items) FUZZ_CHECK(body->at("items").is_array(), "array() of a non-array");
  if (r.status().ok()) FUZZ_CHECK(name.has_value(), "require() let a missing field pass");
  return 0;
}
