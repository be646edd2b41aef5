// The simdjson fast paths of the API's JSON reads (http/json_fast.h, http/produce_body.h)
// against the Boost.JSON path they stand in for: wherever a fast path answers, the Boost.JSON
// path accepts the same input and reads the same thing. Inputs: the JSON fuzz corpora,
// generated produce bodies and webhook payloads, and byte mutations of them (seeded).
#include "http/json_fast.h"

#include <optional>
#include <string>

#include <boost/json.hpp>

#include "http/json_input.h"
#include "http/produce_body.h"
#include "json_gen.h"
#include "test_util.h"

namespace {

using factory::http::ProduceBody;
using factory::testing::corpus_inputs;
using factory::testing::JsonGenerator;

factory::http::Request request_with(const std::string& body) {
  factory::http::Request req;
  req.body = body;
  return req;
}

// A produce body: mostly well-formed records of every field, now and then a wrong one.
std::string produce_body(JsonGenerator* gen) {
  std::string out = "{\"records\":[";
  size_t n = gen->pick(4);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ",";
    out += "{";
    bool first = true;
    auto field = [&](const std::string& name, const std::string& value) {
      if (!first) out += ",";
      first = false;
      out += "\"" + name + "\":" + value;
    };
    if (gen->pick(2)) field("key", gen->pick(5) ? "\"k\\u00e9y\"" : "null");
    switch (gen->pick(5)) {
      case 0:
        field("value", gen->document());
        break;
      case 1: {
        std::string s;
        gen->string(&s);
        field("value", s);
        break;
      }
      case 2:
        field("value_b64", gen->pick(4) ? "\"aGVsbG8=\"" : "\"aGVsbG8\"");
        break;
      case 3:
        field("value", "{\"a\":[1,\"x\",true,null,{\"b\":-2}],\"c\":\"\\u0001\\b\\/\"}");
        break;
      default:
        break;
    }
    if (gen->pick(3) == 0) field("partition", gen->pick(5) ? "1" : gen->number());
    if (gen->pick(3) == 0) field("timestamp", gen->pick(5) ? "1700000000000" : gen->number());
    if (gen->pick(3) == 0) {
      field("headers", gen->pick(2) ? "{\"h\":\"v\",\"i\":\"\"}"
                                    : "[{\"name\":\"h\",\"value_b64\":\"AP8=\"},{\"name\":\"h\"}]");
    }
    if (gen->pick(20) == 0) field("value", "1");  // a repeated field
    out += "}";
  }
  out += "]";
  if (gen->pick(3) == 0) out += gen->pick(4) ? ",\"sync\":false" : ",\"sync\":1";
  out += "}";
  return out;
}

bool same_records(const ProduceBody& a, const ProduceBody& b) {
  if (a.sync != b.sync || a.records.size() != b.records.size()) return false;
  for (size_t i = 0; i < a.records.size(); ++i) {
    const auto &x = a.records[i], &y = b.records[i];
    if (x.key != y.key || x.value != y.value || x.headers != y.headers ||
        x.partition != y.partition || x.timestamp_ms != y.timestamp_ms) {
      return false;
    }
  }
  return true;
}

// Each fast path against its reference; returns how many answered.
int check_all(const std::string& input) {
  INFO("input: " << input);
  int answered = 0;
  ProduceBody fast;
  if (factory::http::read_produce_body_simd(input, &fast)) {
    ++answered;
    ProduceBody ref;
    std::optional<size_t> failed;
    factory::Status s = factory::http::read_produce_body(request_with(input), &ref, &failed);
    REQUIRE(s.ok());
    REQUIRE(same_records(fast, ref));
  }
  {
    // The handler's reader (fast path, then reference; skipping after a decline) answers as
    // the reference does, error and record index included.
    ProduceBody got, ref;
    std::optional<size_t> got_failed, ref_failed;
    factory::Status g =
        factory::http::read_produce_body_fast(request_with(input), &got, &got_failed);
    factory::Status r = factory::http::read_produce_body(request_with(input), &ref, &ref_failed);
    REQUIRE(g.to_string() == r.to_string());
    REQUIRE(got_failed == ref_failed);
    if (r.ok()) REQUIRE(same_records(got, ref));
  }
  std::optional<std::string> event;
  if (factory::http::simd_check_object_body(input, "webhookEvent", &event)) {
    ++answered;
    auto ref = factory::http::parse_body(request_with(input));
    REQUIRE(ref.ok());
    const boost::json::value* v = ref->if_contains("webhookEvent");
    std::optional<std::string> ref_event;
    if (v != nullptr && v->is_string()) ref_event = std::string(v->get_string());
    REQUIRE(event == ref_event);
  }
  std::optional<simdjson::dom::parser> own;
  if (auto root = factory::http::simd_parse(input, &own);
      root && factory::http::simd_parse_json_would_accept(*root)) {
    ++answered;
    auto ref = factory::http::parse_json(input, "body");
    REQUIRE(ref.ok());
    std::string text;
    if (factory::http::append_boost_serialization(*root, 0, &text)) {
      REQUIRE(text == boost::json::serialize(*ref));
    }
  }
  return answered;
}

}  // namespace

TEST_CASE("the API's simdjson reads agree with Boost.JSON on every fuzz corpus", "[http]") {
  std::vector<std::string> inputs = corpus_inputs();
  REQUIRE(inputs.size() > 20);
  int answered = 0;
  for (const std::string& in : inputs) answered += check_all(in);
  CHECK(answered > 0);
}

TEST_CASE("the API's simdjson reads agree with Boost.JSON on generated bodies", "[http]") {
  const uint32_t seed = 13;
  INFO("seed " << seed);
  JsonGenerator gen(seed);
  size_t produce_fast = 0, produce_ok = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string body = produce_body(&gen);
    ProduceBody ref, fast;
    std::optional<size_t> failed;
    produce_ok += factory::http::read_produce_body(request_with(body), &ref, &failed).ok() ? 1 : 0;
    produce_fast += factory::http::read_produce_body_simd(body, &fast) ? 1 : 0;
    check_all(body);
    check_all(gen.mutate(body));
    std::string doc = gen.document();
    check_all(doc);
    check_all("{\"webhookEvent\":" + doc + ",\"webhookEvent\":\"jira:issue_updated\",\"x\":" + doc +
              "}");
    check_all(gen.mutate(doc));
  }
  // The fast path carries most accepted bodies (the rest hold doubles or repeated fields).
  CHECK(produce_fast * 2 >= produce_ok);
}

TEST_CASE("the API's fast reads leave the edges to Boost.JSON", "[http]") {
  ProduceBody out;
  for (const char* body : {"{\"records\":[{\"value\":1.5}]}", "{\"records\":[{\"value\":0e400}]}",
                           "{\"records\":[],\"records\":[]}", "{\"records\":[{\"key\":1}]}", "[]",
                           "", "{\"records\":[{\"value\":{\"a\":1,\"a\":2}}]}"}) {
    INFO(body);
    CHECK_FALSE(factory::http::read_produce_body_simd(body, &out));
  }
  std::optional<std::string> event;
  for (const char* body : {"{\"a\":0e400}", "{\"a\":1.7976931348623158e308}", "[1]", "{", ""}) {
    INFO(body);
    CHECK_FALSE(factory::http::simd_check_object_body(body, "webhookEvent", &event));
  }
  REQUIRE(factory::http::read_produce_body_simd(
      "{\"records\":[{\"key\":\"k\",\"value\":{\"b\":[1,\"\\u0007\"]},\"headers\":{\"h\":\"v\"},"
      "\"partition\":2,\"timestamp\":5}],\"sync\":false}",
      &out));
  REQUIRE(out.records.size() == 1);
  CHECK(*out.records[0].value == "{\"b\":[1,\"\\u0007\"]}");
  CHECK(out.records[0].partition == 2);
  CHECK_FALSE(out.sync);
}
