// The request target as the server reads it (src/http/request_target.h), without sockets.
#include "http/request_target.h"

#include <catch2/catch.hpp>

namespace factory::http {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("request target: origin form, decoded path and query in order", "[http][target]") {
  RequestTarget t =
      parse_request_target("/api/v1/runs/manual__2026%3A01/tasks?state=failed&x=%E2%9C%93&flag");
  REQUIRE(t.ok());
  CHECK(t.path == "/api/v1/runs/manual__2026:01/tasks");
  CHECK(t.query == Query{{"state", "failed"}, {"x", "\xE2\x9C\x93"}, {"flag", ""}});
  CHECK(parse_request_target("/").path == "/");
}

TEST_CASE("request target: refusals", "[http][target]") {
  SECTION("not origin form, or bad percent-encoding") {
    for (const char* bad : {"", "*", "http://example.com/api", "api/v1", "/a%zz", "/a b"}) {
      INFO(bad);
      RequestTarget t = parse_request_target(bad);
      CHECK(t.refusal_code == "invalid_argument");
      CHECK(t.refusal_message.find("percent-encode") != std::string::npos);
    }
  }
  SECTION("a token in the query, decoded or not") {
    for (const char* bad : {"/api/v1/topics?access_token=s", "/x?a=1&token=s", "/x?%74oken=s"}) {
      INFO(bad);
      RequestTarget t = parse_request_target(bad);
      CHECK(t.refusal_code == "token_in_query");
      CHECK(t.refusal_message.find("Authorization: Bearer") != std::string::npos);
      CHECK(t.query.empty());
    }
  }
}

TEST_CASE("request id: 1-64 of [A-Za-z0-9._-]", "[http][target]") {
  CHECK(sane_request_id("req-1.a_B"));
  CHECK(sane_request_id(std::string(64, 'a')));
  CHECK_FALSE(sane_request_id(""));
  CHECK_FALSE(sane_request_id(std::string(65, 'a')));
  CHECK_FALSE(sane_request_id("a\nb"));
  CHECK_FALSE(sane_request_id("a b"));
}

}  // namespace
}  // namespace factory::http
