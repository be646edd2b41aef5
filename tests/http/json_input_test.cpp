// Strict JSON request bodies (src/http/json_input.h).
#include "http/json_input.h"

#include <catch2/catch.hpp>

namespace factory::http {
namespace {

Request with_body(std::string body) {
  Request r;
  r.method = "POST";
  r.body = std::move(body);
  return r;
}

// Found by tests/fuzz/event_id_fuzz.cpp (corpus: regress-zero-with-huge-exponent): Boost.JSON
// 1.81 reads 0e400 as NaN and 1e400 as Infinity, and serializes them as NaN / Infinity, which
// are not JSON; a body holding one was accepted and went on into the log and run params.
TEST_CASE("json_input: numbers that do not fit a double are refused, naming where",
          "[http][json_input]") {
  for (const auto& [body, where] : std::vector<std::pair<std::string, std::string>>{
           {R"({"a": 1e400})", "'/a'"},
           {R"({"a": [1, {"b/c~": -1e400}]})", "'/a/1/b~1c~0'"},
           {R"({"n": 0e400})", "'/n'"}}) {
    INFO(body);
    auto r = parse_body(with_body(body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(r.status().message().find(where) != std::string::npos);
    CHECK(r.status().message().find("send such numbers as strings") != std::string::npos);
  }
  auto top = parse_json("1e999", "value");
  REQUIRE_FALSE(top.ok());
  CHECK(top.status().message().find("'/'") != std::string::npos);
  // Large but finite numbers, and tiny ones that round to 0, are fine.
  CHECK(parse_body(with_body(R"({"a": 1.7976931348623157e308, "b": 1e-400, "c": 0e10})")).ok());
}

TEST_CASE("json_input: the refusals it had", "[http][json_input]") {
  CHECK_FALSE(parse_body(with_body("")).ok());
  CHECK_FALSE(parse_body(with_body("[1]")).ok());
  CHECK_FALSE(parse_body(with_body(std::string(40, '[') + std::string(40, ']'))).ok());
  auto bad = parse_body(with_body("{\"a\": \"\xff\"}"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("invalid UTF-8") != std::string::npos);
}

}  // namespace
}  // namespace factory::http
