#include "config/contract.h"

#include <string>

#include "test_util.h"

using namespace factory;
using Catch::Matchers::Contains;
using config::Contract;

TEST_CASE("a contract checks JSON against its schema and names each violation's path", "[config]") {
  auto c = Contract::compile(
      R"({"type":"object","required":["id"],"properties":{"id":{"type":"string"},
          "n":{"type":"integer","minimum":1}}})",
      "test schema");
  REQUIRE_OK(c.status());
  REQUIRE_OK((*c)->validate(R"({"id":"a","n":2})"));
  Status missing = (*c)->validate(R"({"n":2})");
  CHECK(missing.is_invalid_argument());
  CHECK_THAT(missing.message(), Contains("payload violates the schema"));
  Status low = (*c)->validate(R"({"id":"a","n":0})");
  CHECK_THAT(low.message(), Contains("at /n: "));
  CHECK_THAT((*c)->validate("{not json").message(), Contains("payload is not valid JSON"));
}

TEST_CASE("an empty schema accepts any JSON value, and a bad schema names its owner", "[config]") {
  auto any = Contract::compile("  \n", "empty");
  REQUIRE_OK(any.status());
  REQUIRE_OK((*any)->validate("42"));
  REQUIRE_OK((*any)->validate(R"(["x"])"));
  CHECK_FALSE((*any)->validate("{").ok());  // still JSON

  auto not_json = Contract::compile("{", "input schema of stage 'gate'");
  REQUIRE_FALSE(not_json.ok());
  CHECK_THAT(not_json.status().message(),
             Contains("input schema of stage 'gate' is not valid JSON"));
  auto not_schema = Contract::compile(R"({"type": 5})", "params.schema");
  REQUIRE_FALSE(not_schema.ok());
  CHECK_THAT(not_schema.status().message(), Contains("params.schema is not a valid JSON Schema"));
}
