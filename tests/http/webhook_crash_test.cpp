// Webhook exactly-once on the real daemon: `factoryd serve` SIGKILLed inside a delivery, between
// its append to the log and anything recorded after it, then restarted and redelivered to.
#include <catch2/catch.hpp>

#include "http/daemon_harness.h"
#include "http/server.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

constexpr const char* kSecret = "crash-test-secret";
constexpr const char* kDelivery = "0b4f3c2e-5d11-11ee-8c99-0242ac120002";
constexpr const char* kTriggerGroup = "factory.trigger.software_factory";

std::string webhook_yaml() {
  return std::string(
             "webhooks:\n  github:\n    enabled: true\n    topic: jira-events\n"
             "    secret: ") +
         kSecret + "\n";
}

Result<http::ClientResponse> deliver(http::Client* c, const std::string& body) {
  return c->request("POST", "/hooks/github", body,
                    {{"X-GitHub-Event", "issues"},
                     {"X-GitHub-Delivery", kDelivery},
                     {"X-Hub-Signature-256", "sha256=" + http::hmac_sha256_hex(kSecret, body)},
                     {"Content-Type", "application/json"}});
}

// The trigger group's view of jira-events: records in the topic, and whether the scheduler has
// consumed (and so turned into runs) every one of them.
struct TriggerProgress {
  int64_t records = 0;
  bool settled = false;
};

TriggerProgress trigger_progress(http::Client* c) {
  TriggerProgress p;
  auto r = c->request("GET", std::string("/api/v1/groups/") + kTriggerGroup);
  if (!r.ok() || r->status != 200) return p;
  json::value v = parse_json_or_null(r->body);
  if (!v.is_object()) return p;
  p.settled = true;
  for (const auto& row : v.at("partitions").as_array()) {
    if (row.at("topic").as_string() != "jira-events") continue;
    int64_t end = row.at("log_end_offset").as_int64();
    p.records += end;  // nothing else produces to jira-events here, and nothing expires
    const json::value& committed = row.at("current_offset");
    if (end > 0 && (committed.is_null() || committed.as_int64() != end)) p.settled = false;
  }
  return p;
}

TEST_CASE(
    "issue 11.11: a webhook redelivered after kill -9 between append and dedupe starts one run",
    "[http][e2e][crash]") {
  TempDir dir;
  std::string err;
  const std::string body =
      R"({"action":"opened","issue":{"key":"PROJ-11","title":"Exactly once","body":"x"}})";

  // 1. The delivery is appended, then the daemon SIGKILLs itself before recording it as seen.
  auto d = Daemon::start(dir.str(), webhook_yaml(), &err,
                         {"FACTORY_WEBHOOK_KILL_AFTER_APPEND_for_test=1"});
  INFO(err);
  REQUIRE(d != nullptr);
  auto c = d->client();
  auto first = deliver(c.get(), body);
  INFO((first.ok() ? "answered " + std::to_string(first->status) : first.status().to_string()));
  REQUIRE_FALSE(first.ok());  // the sender saw no answer, so it will redeliver
  ProcessResult died = d->process().wait();
  REQUIRE(died.term_signal == SIGKILL);

  // 2. Restarted without the hook, the sender redelivers the same delivery.
  auto d2 = Daemon::start(dir.str(), webhook_yaml(), &err);
  INFO(err);
  REQUIRE(d2 != nullptr);
  auto c2 = d2->client();
  auto again = deliver(c2.get(), body);
  REQUIRE(again.ok());
  INFO(again->body);
  CHECK(again->status == 200);
  json::value answer = parse_json_or_null(again->body);
  const json::value* duplicate =
      answer.is_object() ? answer.as_object().if_contains("duplicate") : nullptr;
  CHECK((duplicate != nullptr && duplicate->is_bool() && duplicate->as_bool()));

  // 3. The scheduler has turned every record of jira-events into a run: one record, one run.
  TriggerProgress progress;
  REQUIRE(eventually(
      [&] {
        progress = trigger_progress(c2.get());
        return progress.settled && progress.records > 0;
      },
      20'000));
  CHECK(progress.records == 1);
  auto runs = c2->request("GET", "/api/v1/runs?dag_id=software_factory");
  REQUIRE(runs.ok());
  REQUIRE(runs->status == 200);
  INFO(runs->body);
  CHECK(parse_json_or_null(runs->body).at("runs").as_array().size() == 1);
  CHECK(d2->stop().exit_code == 0);
}

}  // namespace
}  // namespace factory::test
