// Fuzz target: strict JSON request bodies (src/http/json_input.h): parse_body(), parse_json(),
// FieldReader and query_int(), the way write handlers use them. Input: a query value for
// "limit", "\n---\n", then the body.
// Properties: parse_body accepts exactly the JSON objects within kMaxDepth that Boost.JSON
// reads; an accepted body serializes to JSON again (no NaN or Infinity); a FieldReader's
// getters agree with the value's kinds; query_int stays in range.
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/json.hpp>

#include "fuzz_util.h"
#include "http/json_input.h"

namespace json = boost::json;
using namespace factory::http;
using factory::fuzz::next_part;

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
