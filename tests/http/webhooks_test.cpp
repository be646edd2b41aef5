// The webhook routes (src/http/webhooks.cpp), called through a Router the way the server calls
// them, over a real log and store in a temp dir.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "factory/log.h"
#include "http/api.h"
#include "http/router.h"
#include "http/server.h"
#include "obs/metrics.h"
#include "store/meta_store.h"
#include "test_util.h"

namespace factory::http {
namespace {

using test::TempDir;

const std::string kSecret = "It's a Secret to Everybody";
const std::string kTopic = "jira-events";
const std::string kBody = R"({"action":"opened","issue":{"key":"PROJ-1","title":"Add login"}})";

// The log, the store and the routes of one "daemon run" over a data dir.
class Daemon {
 public:
  explicit Daemon(const TempDir& dir, bool create_topic = true) {
    auto log = open_log({.dir = dir.str() + "/log", .sync = false, .retention_interval_ms = 0});
    REQUIRE_OK(log);
    log_ = std::move(*log);
    if (create_topic) {
      Status s = log_->create_topic({.name = kTopic, .partitions = 2});
      REQUIRE((s.ok() || s.code() == Status::Code::kAlreadyExists));
    }
    auto store = store::open_sqlite_store({.dir = dir.str() + "/store", .sync = false});
    REQUIRE_OK(store);
    store_ = std::move(*store);
    ctx_.log = log_.get();
    ctx_.store = store_.get();
    ctx_.metrics = &metrics_;
    ctx_.github = {.enabled = true, .topic = kTopic, .secret = kSecret};
    ctx_.jira = {.enabled = true, .topic = kTopic, .secret = "jira-secret"};
  }

  ApiContext& ctx() { return ctx_; }
  Log* log() { return log_.get(); }

  // Adds the routes; call after changing ctx().github/jira.
  void start() { add_webhook_routes(&router_, &ctx_); }

  // Called from several threads at once by the concurrency test, so it asserts nothing (Catch2
  // v2's assertions are not thread-safe): a path with no route answers status 0.
  Response post(const std::string& path, const std::string& body, const Headers& headers) {
    auto m = router_.match("POST", path);
    if (m.route == nullptr) return Response{.status = 0, .body = "no route for " + path};
    Request req;
    req.method = "POST";
    req.path = path;
    req.body = body;
    for (const auto& [k, v] : headers) req.headers.push_back({lower(k), v});
    req.request_id = "test";
    return m.route->handler(req);
  }

  Response github(const std::string& body, const std::string& delivery,
                  std::optional<std::string> signature, const std::string& event = "issues") {
    Headers h = {{"X-GitHub-Delivery", delivery}, {"X-GitHub-Event", event}};
    if (signature) h.push_back({"X-Hub-Signature-256", *signature});
    return post("/hooks/github", body, h);
  }

  int64_t records() {
    int64_t n = 0;
    auto info = log_->describe_topic(kTopic);
    REQUIRE_OK(info);
    for (const PartitionInfo& p : info->partitions) n += p.log_end.value() - p.log_start.value();
    return n;
  }

  uint64_t outcomes(std::string_view source, std::string_view outcome) {
    return metrics_.counter("factory_webhook_deliveries_total", "", {"source", "outcome"})
        .labels({source, outcome})
        ->value();
  }

  const Router& router() const { return router_; }

 private:
  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  std::unique_ptr<Log> log_;
  std::unique_ptr<store::MetaStore> store_;
  obs::Registry metrics_;
  ApiContext ctx_;
  Router router_;
};

std::string sign(const std::string& secret, const std::string& body) {
  return "sha256=" + hmac_sha256_hex(secret, body);
}

boost::json::object json_of(const Response& r) { return boost::json::parse(r.body).as_object(); }

std::string error_message(const Response& r) {
  return std::string(json_of(r).at("error").at("message").as_string());
}

std::optional<std::string> header(const Record& r, std::string_view name) {
  for (const Header& h : r.headers) {
    if (h.key == name) return h.value;
  }
  return std::nullopt;
}

TEST_CASE("webhooks: GitHub's published test vector", "[http][webhooks]") {
  CHECK(hmac_sha256_hex(kSecret, "Hello, World!") ==
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  TempDir dir;
  Daemon d(dir);
  d.start();
  Response r = d.github("Hello, World!", "d-vector",
                        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  // Authentic, but not a JSON object: refused after the signature check, with 400 (not 401).
  CHECK(r.status == 400);
  CHECK(d.records() == 0);
  CHECK(d.outcomes("github", "invalid") == 1);
}

TEST_CASE("webhooks: the routes are public, audited, with the configured body limit",
          "[http][webhooks]") {
  TempDir dir;
  Daemon d(dir);
  d.ctx().github.body_limit = 4096;
  d.start();
  auto m = d.router().match("POST", "/hooks/github");
  REQUIRE(m.route != nullptr);
  CHECK(m.route->role == Role::kPublic);
  CHECK(m.route->audited);  // a delivery is a write; the audit row's actor is "anonymous"
  CHECK(m.route->action == "webhook.github");
  CHECK(m.route->body_limit == 4096);
  CHECK(d.router().match("POST", "/hooks/jira").route != nullptr);
}

TEST_CASE("webhooks: a signed GitHub delivery is produced", "[http][webhooks]") {
  TempDir dir;
  Daemon d(dir);
  d.start();
  Response r = d.github(kBody, "72d3162e-cc78-11e3-81ab-4c9367dc0958", sign(kSecret, kBody));
  INFO(r.body);
  REQUIRE(r.status == 202);
  auto o = json_of(r);
  CHECK(o.at("topic").as_string() == kTopic);
  CHECK(o.at("delivery").as_string() == "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  int32_t partition = static_cast<int32_t>(o.at("partition").as_int64());
  int64_t offset = o.at("offset").as_int64();
  CHECK(d.records() == 1);

  auto fetched = d.log()->read(kTopic, partition, Offset(offset), {});
  REQUIRE_OK(fetched);
  REQUIRE(fetched->records.size() == 1);
  const Record& rec = fetched->records[0];
  CHECK(rec.key == "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  CHECK(rec.value == kBody);  // the raw bytes
  CHECK(header(rec, "factory.webhook.source") == "github");
  CHECK(header(rec, "factory.webhook.event") == "issues");
  CHECK(header(rec, "factory.webhook.delivery") == "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  CHECK(d.outcomes("github", "accepted") == 1);
}

TEST_CASE("webhooks: wrong, missing and re-serialised-body signatures fail and produce nothing",
          "[http][webhooks]") {
  TempDir dir;
  Daemon d(dir);
  d.start();
  std::string good = sign(kSecret, kBody);

  SECTION("wrong secret") {
    Response r = d.github(kBody, "d1", sign("another secret", kBody));
    CHECK(r.status == 401);
    CHECK(json_of(r).at("error").at("code").as_string() == "unauthenticated");
    CHECK(error_message(r).find("does not match the body") != std::string::npos);
    CHECK(d.outcomes("github", "bad_signature") == 1);
  }
  SECTION("one hex digit changed") {
    std::string bad = good;
    bad.back() = bad.back() == '0' ? '1' : '0';
    CHECK(d.github(kBody, "d1", bad).status == 401);
  }
  SECTION("truncated, or without the sha256= prefix") {
    CHECK(d.github(kBody, "d1", good.substr(0, good.size() - 2)).status == 401);
    CHECK(d.github(kBody, "d1", good.substr(7)).status == 401);
    CHECK(d.github(kBody, "d1", "sha1=" + good.substr(7)).status == 401);
  }
  SECTION("missing") {
    Response r = d.github(kBody, "d1", std::nullopt);
    CHECK(r.status == 401);
    CHECK(error_message(r).find("missing X-Hub-Signature-256") != std::string::npos);
    CHECK(d.outcomes("github", "bad_signature") == 1);
  }
  SECTION("the same JSON re-serialised with other whitespace") {
    std::string pretty = boost::json::serialize(boost::json::parse(kBody));
    pretty.insert(1, "\n  ");
    REQUIRE(boost::json::parse(pretty) == boost::json::parse(kBody));
    REQUIRE(pretty != kBody);
    CHECK(d.github(pretty, "d1", good).status == 401);
  }
  CHECK(d.records() == 0);
  // The refused delivery id was not recorded: the genuine delivery still goes through.
  CHECK(d.github(kBody, "d1", good).status == 202);
  CHECK(d.records() == 1);
}

TEST_CASE(
    "webhooks: a replayed delivery id answers 200 and produces nothing new, also after a "
    "restart",
    "[http][webhooks]") {
  TempDir dir;
  {
    Daemon d(dir);
    d.start();
    REQUIRE(d.github(kBody, "delivery-1", sign(kSecret, kBody)).status == 202);
    Response again = d.github(kBody, "delivery-1", sign(kSecret, kBody));
    CHECK(again.status == 200);
    CHECK(json_of(again).at("duplicate").as_bool());
    CHECK(d.records() == 1);
    CHECK(d.outcomes("github", "duplicate") == 1);
    // Another body under the same id is still the same delivery.
    std::string other = R"({"action":"edited"})";
    CHECK(d.github(other, "delivery-1", sign(kSecret, other)).status == 200);
    CHECK(d.records() == 1);
  }
  Daemon reopened(dir);
  reopened.start();
  Response r = reopened.github(kBody, "delivery-1", sign(kSecret, kBody));
  CHECK(r.status == 200);
  CHECK(json_of(r).at("duplicate").as_bool());
  CHECK(reopened.records() == 1);
  // A new id with a new payload is produced.
  std::string next = R"({"action":"closed","issue":{"key":"PROJ-1"}})";
  CHECK(reopened.github(next, "delivery-2", sign(kSecret, next)).status == 202);
  CHECK(reopened.records() == 2);
}

TEST_CASE("webhooks: a captured delivery replayed under a new delivery id produces nothing",
          "[http][webhooks]") {
  // The signature covers the body, not X-GitHub-Delivery: a replay with a fresh id verifies.
  TempDir dir;
  {
    Daemon d(dir);
    d.start();
    REQUIRE(d.github(kBody, "captured-1", sign(kSecret, kBody)).status == 202);
    Response replay = d.github(kBody, "forged-2", sign(kSecret, kBody));
    CHECK(replay.status == 200);
    CHECK(json_of(replay).at("duplicate").as_bool());
    CHECK(d.records() == 1);
    CHECK(d.outcomes("github", "duplicate") == 1);
  }
  // Across a restart, and when only the log knows the payload (the store's row is the fast path;
  // the log's idempotency key is the guarantee).
  Daemon reopened(dir);
  reopened.start();
  CHECK(reopened.github(kBody, "forged-3", sign(kSecret, kBody)).status == 200);
  CHECK(reopened.records() == 1);
  TempDir other;
  {
    Daemon first(other);
    first.start();
    REQUIRE(first.github(kBody, "captured-1", sign(kSecret, kBody)).status == 202);
  }
  std::filesystem::remove_all(other.str() + "/store");  // the processed rows are gone
  Daemon log_only(other);
  log_only.start();
  Response r = log_only.github(kBody, "forged-4", sign(kSecret, kBody));
  CHECK(r.status == 200);
  CHECK(log_only.records() == 1);
}

TEST_CASE("webhooks: concurrent copies of one delivery produce one record", "[http][webhooks]") {
  TempDir dir;
  Daemon d(dir);
  d.start();
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;  // a fresh delivery id per round
  for (int round = 0; round < kRounds; ++round) {
    std::string id = "delivery-" + std::to_string(round);
    std::string body = R"({"action":"opened","round":)" + std::to_string(round) + "}";
    std::latch go(kThreads);
    std::vector<int> status(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        go.arrive_and_wait();
        status[i] = d.github(body, id, sign(kSecret, body)).status;
      });
    }
    for (auto& t : threads) t.join();
    INFO("round " << round);
    REQUIRE(std::count(status.begin(), status.end(), 202) == 1);
    REQUIRE(std::count(status.begin(), status.end(), 200) == kThreads - 1);
  }
  CHECK(d.records() == kRounds);
}

TEST_CASE("webhooks: JIRA deliveries", "[http][webhooks]") {
  TempDir dir;
  Daemon d(dir);
  d.start();
  std::string body = R"({"webhookEvent":"jira:issue_created","issue":{"key":"PROJ-7"}})";
  auto jira = [&](const std::string& b, const std::string& id, const std::string& sig) {
    return d.post("/hooks/jira", b,
                  {{"X-Atlassian-Webhook-Identifier", id}, {"X-Hub-Signature", sig}});
  };
  Response r = jira(body, "4711", sign("jira-secret", body));
  INFO(r.body);
  REQUIRE(r.status == 202);
  auto o = json_of(r);
  auto fetched = d.log()->read(kTopic, static_cast<int32_t>(o.at("partition").as_int64()),
                               Offset(o.at("offset").as_int64()), {});
  REQUIRE_OK(fetched);
  CHECK(header(fetched->records.at(0), "factory.webhook.source") == "jira");
  CHECK(header(fetched->records.at(0), "factory.webhook.event") == "jira:issue_created");
  CHECK(jira(body, "4711", sign("jira-secret", body)).status == 200);
  CHECK(jira(body, "4712", sign(kSecret, body)).status == 401);  // GitHub's secret
  CHECK(d.records() == 1);
  CHECK(d.outcomes("jira", "accepted") == 1);
}

TEST_CASE("webhooks: refusals that explain themselves", "[http][webhooks]") {
  TempDir dir;

  SECTION("disabled: 404") {
    Daemon d(dir);
    d.ctx().github.enabled = false;
    d.start();
    Response r = d.github(kBody, "d1", sign(kSecret, kBody));
    CHECK(r.status == 404);
    CHECK(error_message(r).find("webhooks.github.enabled: true") != std::string::npos);
    CHECK(d.records() == 0);
    CHECK(d.outcomes("github", "rejected") == 1);
  }
  SECTION("no secret configured: 401 with how to configure one") {
    Daemon d(dir);
    d.ctx().github.secret.clear();
    d.start();
    Response r = d.github(kBody, "d1", sign("", kBody));  // signed with the empty key
    CHECK(r.status == 401);
    CHECK(error_message(r).find("webhooks.github.secret_env") != std::string::npos);
    CHECK(d.records() == 0);
    CHECK(d.outcomes("github", "rejected") == 1);
  }
  SECTION("malformed JSON, after the signature check: 400") {
    Daemon d(dir);
    d.start();
    std::string bad = R"({"action": )";
    CHECK(d.github(bad, "d1", sign("wrong", bad)).status == 401);
    Response r = d.github(bad, "d1", sign(kSecret, bad));
    CHECK(r.status == 400);
    CHECK(json_of(r).at("error").at("code").as_string() == "invalid_argument");
    CHECK(d.records() == 0);
  }
  SECTION("no delivery id: 400") {
    Daemon d(dir);
    d.start();
    Response r = d.post("/hooks/github", kBody, {{"X-Hub-Signature-256", sign(kSecret, kBody)}});
    CHECK(r.status == 400);
    CHECK(error_message(r).find("X-GitHub-Delivery") != std::string::npos);
    CHECK(d.records() == 0);
  }
  SECTION("GitHub's ping is answered, not produced") {
    Daemon d(dir);
    d.start();
    std::string ping = R"({"zen":"Keep it logically awesome.","hook_id":1})";
    Response r = d.github(ping, "p1", sign(kSecret, ping), "ping");
    CHECK(r.status == 200);
    CHECK(json_of(r).at("ping").as_bool());
    CHECK(d.records() == 0);
  }
  SECTION("the topic does not exist: 503, and the delivery can be retried") {
    Daemon d(dir, /*create_topic=*/false);
    d.start();
    Response r = d.github(kBody, "d1", sign(kSecret, kBody));
    CHECK(r.status == 503);
    CHECK(error_message(r).find("factoryd topics create jira-events") != std::string::npos);
    REQUIRE_OK(d.log()->create_topic({.name = kTopic, .partitions = 1}));
    CHECK(d.github(kBody, "d1", sign(kSecret, kBody)).status == 202);
  }
}

}  // namespace
}  // namespace factory::http
