#include "config/contract.h"
// config/contract.h is included first, above, to prove it self-contained.
#include <string>

#include <boost/json.hpp>

#include "json_gen.h"
#include "test_util.h"

namespace {

using factory::config::Contract;

// What validate() answered before simdjson: Boost.JSON's default parse decides.
factory::Status boost_verdict(const std::string& json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec) return factory::Status::invalid_argument("payload is not valid JSON: " + ec.message());
  return factory::Status();
}

void check_same(const Contract& any, const std::string& json) {
  INFO("input: " << json);
  factory::Status got = any.validate(json);
  factory::Status want = boost_verdict(json);
  REQUIRE(got.ok() == want.ok());
  if (!got.ok()) REQUIRE(got.to_string() == want.to_string());
}

}  // namespace

TEST_CASE("an empty contract accepts exactly what Boost.JSON reads, with its messages",
          "[runtime]") {
  auto any = Contract::compile("", "test schema");
  REQUIRE(any.ok());
  for (const std::string& in : factory::testing::corpus_inputs()) check_same(**any, in);
  const uint32_t seed = 13;
  INFO("seed " << seed);
  factory::testing::JsonGenerator gen(seed);
  for (int i = 0; i < 5000; ++i) {
    std::string doc = gen.document();
    check_same(**any, doc);
    check_same(**any, gen.mutate(doc));
    check_same(**any, gen.number());
  }
  // Around Boost's nesting limit (32), and simdjson's (set lower).
  for (int depth = 25; depth <= 40; ++depth) {
    check_same(**any, std::string(depth, '[') + std::string(depth, ']'));
    std::string objects;
    for (int i = 0; i < depth; ++i) objects += "{\"a\":";
    check_same(**any, objects + "1" + std::string(depth, '}'));
  }
  // Numbers simdjson refuses and Boost reads.
  for (const char* in : {"1e400", "18446744073709551616", "[-1e999]", "0e400"}) {
    check_same(**any, in);
  }
}

TEST_CASE("a contract with a schema still checks payloads against it", "[runtime]") {
  auto c = Contract::compile(R"({"type":"object","required":["a"]})", "test schema");
  REQUIRE(c.ok());
  REQUIRE_OK((*c)->validate(R"({"a":1})"));
  CHECK_FALSE((*c)->validate(R"({"b":1})").ok());
  CHECK_FALSE((*c)->validate("{").ok());
}
