#include "http/jwks.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/jwt_signer.h"
#include "http/server.h"
#include "store/run_rows.h"
#include "test_util.h"

namespace factory::http {
namespace {

using test::Claims;
using test::ec_key_for_test;
using test::header_for_test;
using test::KeyForTest;
using test::kNowMs;
using test::policy_for_test;
using test::rsa_key_for_test;
using test::sign_for_test;

// An identity provider's certs endpoint on a free port: serves whatever JWKS the test sets,
// with Cache-Control: max-age=3600, and counts the fetches.
struct JwksServerForTest {
  std::mutex mu;
  std::string body;
  std::atomic<int> hits{0};
  Router router;
  std::unique_ptr<Server> server;

  explicit JwksServerForTest(std::string jwks) : body(std::move(jwks)) {
    router.add({.method = "GET",
                .pattern = "/realms/factory/protocol/openid-connect/certs",
                .role = Role::kPublic,
                .handler = [this](const Request&) {
                  ++hits;
                  std::lock_guard<std::mutex> lock(mu);
                  Response r = json_response(body);
                  r.headers.emplace_back("Cache-Control", "max-age=3600");
                  return r;
                }});
    ServerOptions o;
    o.port = 0;
    auto started = Server::start(o, &router, {});
    REQUIRE_OK(started);
    server = std::move(*started);
  }
  void set(std::string jwks) {
    std::lock_guard<std::mutex> lock(mu);
    body = std::move(jwks);
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server->port()) +
           "/realms/factory/protocol/openid-connect/certs";
  }
};

TEST_CASE("jwks: a rotated key set at a URL is refetched on an unknown kid, once per interval",
          "[http][jwt]") {
  KeyForTest old_key = ec_key_for_test("2026-11");
  KeyForTest new_key = ec_key_for_test("2026-12");
  JwksServerForTest idp(test::jwks_for_test({&old_key}));
  base::ManualClock clock(kNowMs);
  JwtOptions o;
  o.jwks_url = idp.url();
  o.policy = policy_for_test();
  o.min_refresh_s = 30;
  auto started = JwtAuthenticator::start(o, &clock);
  REQUIRE_OK(started);
  JwtAuthenticator& auth = **started;
  CHECK(idp.hits == 1);
  const std::string old_token = sign_for_test(header_for_test(old_key), Claims{}.json(), old_key);
  const std::string new_token = sign_for_test(header_for_test(new_key), Claims{}.json(), new_key);
  CHECK(auth.authenticate(old_token).status == 0);

  // The provider rotates: the new key is published, tokens are signed with it.
  idp.set(test::jwks_for_test({&old_key, &new_key}));
  JwtVerdict v = auth.authenticate(new_token);
  CHECK(v.status == 401);
  CHECK(v.why.find("'2026-12' is not in the JWKS") != std::string::npos);
  CHECK(v.why.find("fetched less than 30 s ago") != std::string::npos);  // the start's fetch
  CHECK(idp.hits == 1);

  clock.advance_ms(30'000);
  v = auth.authenticate(new_token);
  CHECK(v.status == 401);
  CHECK(v.why.find("refetching the JWKS at " + idp.url()) != std::string::npos);
  REQUIRE(auth.wait_fetches_for_test(2, 10'000));
  CHECK(idp.hits == 2);
  v = auth.authenticate(new_token);
  CHECK(v.why == "");
  CHECK(v.status == 0);
  CHECK(v.role == Role::kOperator);
  CHECK(auth.authenticate(old_token).status == 0);

  // A flood of made-up kids right after: refused, and not one more fetch.
  for (int i = 0; i < 50; ++i) {
    KeyForTest fake{new_key.pkey, "fake-" + std::to_string(i), true};
    v = auth.authenticate(sign_for_test(header_for_test(fake), Claims{}.json(), fake));
    CHECK(v.status == 401);
    CHECK(v.unknown_kid);
  }
  CHECK(auth.fetches_for_test() == 2);
  CHECK(idp.hits == 2);
}

TEST_CASE("jwks: a rewritten JWKS file is re-read on an unknown kid", "[http][jwt]") {
  factory::test::TempDir dir;
  std::string path = (dir.path() / "jwks.json").string();
  KeyForTest a = rsa_key_for_test("a");
  KeyForTest b = ec_key_for_test("b");
  std::ofstream(path) << test::jwks_for_test({&a});
  base::ManualClock clock(kNowMs);
  JwtOptions o;
  o.jwks_file = path;
  o.policy = policy_for_test();
  o.min_refresh_s = 5;
  auto started = JwtAuthenticator::start(o, &clock);
  REQUIRE_OK(started);
  JwtAuthenticator& auth = **started;
  const std::string token_a = sign_for_test(header_for_test(a), Claims{}.json(), a);
  const std::string token_b = sign_for_test(header_for_test(b), Claims{}.json(), b);
  CHECK(auth.authenticate(token_a).status == 0);

  std::ofstream(path) << test::jwks_for_test({&b});  // a was retired
  clock.advance_ms(5'000);
  CHECK(auth.authenticate(token_b).status == 401);
  REQUIRE(auth.wait_fetches_for_test(2, 10'000));
  CHECK(auth.authenticate(token_b).status == 0);
  JwtVerdict v = auth.authenticate(token_a);
  CHECK(v.status == 401);
  CHECK(v.unknown_kid);
}

TEST_CASE("jwks: start refuses bad options and files, and an unreachable URL is retried",
          "[http][jwt]") {
  factory::test::TempDir dir;
  std::string path = (dir.path() / "jwks.json").string();
  std::ofstream(path) << "{\"keys\": 7}";
  JwtOptions o;
  o.jwks_file = path;
  o.policy = policy_for_test();
  auto s = JwtAuthenticator::start(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().message().find("no \"keys\" array") != std::string::npos);

  o.jwks_file = "";
  o.jwks_url = "http://sso.example.com/certs";
  s = JwtAuthenticator::start(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().message().find("plain http to another machine") != std::string::npos);

  // Port 1 on loopback: refused at once. The daemon starts; tokens wait for the keys.
  o.jwks_url = "http://127.0.0.1:1/certs";
  s = JwtAuthenticator::start(o);
  REQUIRE_OK(s);
  KeyForTest k = ec_key_for_test("k");
  JwtVerdict v = (*s)->authenticate(sign_for_test(header_for_test(k), Claims{}.json(), k));
  CHECK(v.status == 401);
  CHECK(v.why.find("no JWKS is loaded yet (the JWKS at http://127.0.0.1:1/certs") !=
        std::string::npos);
}

TEST_CASE("jwks: Cache-Control max-age is honoured within bounds", "[http][jwt]") {
  CHECK(jwks_cache_seconds("") == JwtAuthenticator::kDefaultCacheS);
  CHECK(jwks_cache_seconds("public, max-age=900") == 900);
  CHECK(jwks_cache_seconds("Max-Age=5") == JwtAuthenticator::kMinCacheS);
  CHECK(jwks_cache_seconds("no-cache") == JwtAuthenticator::kMinCacheS);
  CHECK(jwks_cache_seconds("max-age=31536000") == JwtAuthenticator::kMaxCacheS);
  CHECK(jwks_cache_seconds("max-age=junk") == JwtAuthenticator::kDefaultCacheS);
}

// The server with a static token and JWTs side by side, as the daemon runs it.
TEST_CASE("jwks: the server takes JWTs beside static tokens, with roles and the audit actor",
          "[http][jwt]") {
  factory::test::TempDir dir;
  std::string path = (dir.path() / "jwks.json").string();
  KeyForTest key = rsa_key_for_test("kc-rs256");
  std::ofstream(path) << test::jwks_for_test({&key});

  Router router;
  router.add({.method = "GET",
              .pattern = "/api/v1/things",
              .role = Role::kViewer,
              .handler = [](const Request&) { return json_response("{}"); }});
  router.add({.method = "POST",
              .pattern = "/api/v1/things",
              .role = Role::kOperator,
              .handler = [](const Request&) { return json_response("{}"); },
              .audited = true,
              .action = "thing.create"});
  std::mutex mu;
  std::condition_variable audited;
  std::vector<std::string> actors;
  // Refusals are audited off the request's path: wait for the row, with a deadline.
  auto actor_at = [&](size_t i) {
    std::unique_lock<std::mutex> lock(mu);
    audited.wait_for(lock, std::chrono::seconds(10), [&] { return actors.size() > i; });
    return actors.size() > i ? actors[i] : "(no row)";
  };
  ServerOptions o;
  o.port = 0;
  o.tokens = {{"ci", Role::kOperator, hash_token("static-secret")}};
  o.jwt.jwks_file = path;
  o.jwt.policy = policy_for_test();
  o.refusal_audit_window_ms = 0;  // every refusal is a row: the test reads each one's actor
  auto started = Server::start(o, &router, {.audit = [&](store::AuditRow row) {
                                 std::lock_guard<std::mutex> lock(mu);
                                 actors.push_back(row.actor);
                                 audited.notify_all();
                               }});
  REQUIRE_OK(started);
  std::string url = "http://127.0.0.1:" + std::to_string((*started)->port());
  auto call = [&](const std::string& token, const char* method) {
    auto c = Client::connect({.url = url, .token = token});
    REQUIRE_OK(c);
    auto r =
        (*c)->request(method, "/api/v1/things", std::string_view(method) == "POST" ? "{}" : "");
    REQUIRE_OK(r);
    CHECK(r->body.find(token) == std::string::npos);
    return *r;
  };
  int64_t now_s = base::SystemClock().now_ms() / 1000;
  auto token = [&](const std::string& roles, const std::string& header) {
    Claims c;
    c.iat = now_s;
    c.exp = now_s + 300;
    c.roles = roles;
    return sign_for_test(header, c.json(), key);
  };
  const std::string operator_jwt = token(Claims{}.roles, header_for_test(key));
  const std::string viewer_jwt = token(R"(["factory-viewer"])", header_for_test(key));
  const std::string no_role_jwt = token(R"(["offline_access"])", header_for_test(key));

  CHECK(call("static-secret", "POST").status == 200);
  CHECK(call(operator_jwt, "POST").status == 200);
  CHECK(actor_at(0) == "token:ci");
  CHECK(actor_at(1) == "jwt:0b7c-4d2e (alice)");
  CHECK(call(viewer_jwt, "GET").status == 200);
  ClientResponse r = call(viewer_jwt, "POST");
  CHECK(r.status == 403);
  CHECK(r.body.find("has role viewer; POST /api/v1/things needs operator") != std::string::npos);
  r = call(no_role_jwt, "GET");
  CHECK(r.status == 403);
  CHECK(r.body.find("carries no role factoryd maps") != std::string::npos);

  std::string none =
      base64url_encode(R"({"alg":"none"})") + "." + base64url_encode(Claims{}.json()) + ".";
  r = call(none, "GET");
  CHECK(r.status == 401);
  CHECK(r.header("www-authenticate") == "Bearer");
  CHECK(r.body.find("unsigned (alg 'none')") != std::string::npos);
  r = call("not-a-token", "GET");
  CHECK(r.status == 401);
  CHECK(r.body.find("the API token is not valid") != std::string::npos);

  // Refused writes are audited (off the request's path, so in any order): a valid JWT without
  // a role by its subject, a forged one as anonymous — its claims are unverified, and a forger
  // must not choose the audit's actor.
  CHECK(call(no_role_jwt, "POST").status == 403);
  CHECK(call(none, "POST").status == 401);
  actor_at(4);
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> refused(actors.begin() + 2, actors.end());
  std::sort(refused.begin(), refused.end());
  CHECK(refused ==
        std::vector<std::string>{"anonymous", "jwt:0b7c-4d2e (alice)", "jwt:0b7c-4d2e (alice)"});
}

}  // namespace
}  // namespace factory::http
