// The browser-attack guards (src/http/request_guard.h) and the refusal audit limiter
// (src/http/refusal_audit.h) as pure functions.
#include "http/request_guard.h"

#include <string>

#include "http/refusal_audit.h"
#include "test_util.h"

namespace factory::http {
namespace {

const HostPolicy kLoopback{.listen_address = "127.0.0.1", .port = 7070};

bool host_ok(const HostPolicy& p, std::string_view host, std::string_view local = "127.0.0.1") {
  return !check_host(p, host, local).has_value();
}

TEST_CASE("guard: Host must be the listen address, a loopback spelling, or allowed",
          "[http][guard]") {
  for (const char* ok :
       {"127.0.0.1:7070", "localhost:7070", "LOCALHOST:7070", "[::1]:7070", "127.0.0.2:7070"}) {
    INFO(ok);
    CHECK(host_ok(kLoopback, ok));
  }
  for (const char* bad :
       {"evil.example:7070", "evil.example", "127.0.0.1:7071", "127.0.0.1", "0.0.0.0:7070",
        "localhost.evil.example:7070", "127.0.0.1:7070@x", "", "[::1", "a b:7070"}) {
    INFO(bad);
    CHECK(!host_ok(kLoopback, bad));
  }
  auto r = check_host(kLoopback, "rebind.attacker.example:7070", "127.0.0.1");
  REQUIRE(r);
  CHECK(r->status == 421);
  CHECK(r->message.find("server.allowed_hosts") != std::string::npos);
  CHECK(check_host(kLoopback, std::nullopt, "127.0.0.1")->status == 421);

  SECTION("configured names, with or without a port") {
    HostPolicy p = kLoopback;
    p.allowed_hosts = {"factory.example.com", "ci.internal:8443"};
    CHECK(host_ok(p, "factory.example.com"));
    CHECK(host_ok(p, "Factory.Example.Com:443"));
    CHECK(host_ok(p, "ci.internal:8443"));
    CHECK(!host_ok(p, "ci.internal:7070"));
    CHECK(!host_ok(p, "ci.internal"));
  }
  SECTION("a wildcard listen address answers to the address the connection arrived on") {
    HostPolicy p{.listen_address = "0.0.0.0", .port = 7070};
    CHECK(host_ok(p, "10.1.2.3:7070", "10.1.2.3"));
    CHECK(!host_ok(p, "10.9.9.9:7070", "10.1.2.3"));
    CHECK(!host_ok(p, "0.0.0.0:7070", "10.1.2.3"));
  }
  SECTION("the default port follows the scheme") {
    HostPolicy p{.listen_address = "127.0.0.1", .port = 443, .tls = true};
    CHECK(host_ok(p, "127.0.0.1"));
    CHECK(host_ok(p, "localhost:443"));
  }
}

TEST_CASE("guard: a foreign Origin is refused, the server's own is not", "[http][guard]") {
  CHECK(!check_origin(kLoopback, std::nullopt, "127.0.0.1"));
  CHECK(!check_origin(kLoopback, "http://127.0.0.1:7070", "127.0.0.1"));
  CHECK(!check_origin(kLoopback, "http://localhost:7070", "127.0.0.1"));
  for (const char* bad : {"https://evil.example", "http://evil.example:7070", "null",
                          "https://127.0.0.1:7070", "http://127.0.0.1:8080", "http://127.0.0.1"}) {
    INFO(bad);
    auto r = check_origin(kLoopback, bad, "127.0.0.1");
    REQUIRE(r);
    CHECK(r->status == 403);
    CHECK(r->code == "forbidden_origin");
  }
}

TEST_CASE("guard: writes need application/json", "[http][guard]") {
  CHECK(!check_content_type("GET", std::nullopt));
  CHECK(!check_content_type("HEAD", "text/plain"));
  CHECK(!check_content_type("POST", "application/json"));
  CHECK(!check_content_type("POST", "Application/JSON; charset=utf-8"));
  CHECK(!check_content_type("DELETE", " application/json "));
  for (const char* bad : {"text/plain", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x", "application/jsonx", ""}) {
    INFO(bad);
    auto r = check_content_type("POST", bad);
    REQUIRE(r);
    CHECK(r->status == 415);
    CHECK(r->message.find("-H 'Content-Type: application/json'") != std::string::npos);
  }
  CHECK(check_content_type("DELETE", std::nullopt)->status == 415);
}

TEST_CASE("guard: allowed_hosts entries are normalized or refused", "[http][guard]") {
  CHECK(normalize_allowed_host("Factory.Example.com") == "factory.example.com");
  CHECK(normalize_allowed_host("h:8443") == "h:8443");
  CHECK(normalize_allowed_host("[::1]:7070") == "[::1]:7070");
  CHECK(!normalize_allowed_host("http://h"));
  CHECK(!normalize_allowed_host("h:0"));
  CHECK(!normalize_allowed_host("h:99999"));
  CHECK(!normalize_allowed_host(""));
}

TEST_CASE("refusal audit: one row per address per window, with the count left out",
          "[http][guard]") {
  RefusalAuditLimiter limiter(60'000, /*max_addresses=*/3);
  CHECK(limiter.admit("10.0.0.1", 0) == 0);
  for (int i = 0; i < 1000; ++i) CHECK(!limiter.admit("10.0.0.1", 10 + i));
  CHECK(limiter.admit("10.0.0.2", 20) == 0);  // another address has its own window
  CHECK(limiter.admit("10.0.0.1", 60'000) == 1000);
  CHECK(!limiter.admit("10.0.0.1", 60'001));
  // Bounded memory: when full, expired windows go (10.0.0.2's), then new addresses share one
  // overflow bucket.
  CHECK(limiter.admit("10.0.0.3", 60'010) == 0);
  CHECK(limiter.admit("10.0.0.4", 60'020) == 0);  // took 10.0.0.2's place
  CHECK(limiter.admit("10.0.0.5", 60'030) == 0);  // the overflow bucket's first row
  CHECK(!limiter.admit("10.0.0.6", 60'040));      // shares it
  CHECK(audit_object("topics/x\n\x1b[2J\x7f/records") == "topics/x%0A%1B[2J%7F/records");
  RefusalAuditLimiter off(0);
  CHECK(off.admit("x", 0) == 0);
  CHECK(off.admit("x", 0) == 0);
}

}  // namespace
}  // namespace factory::http
