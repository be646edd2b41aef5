// Issue 12, reproduced through the real API of a real daemon in the default no-token mode
// (every caller is admin): the review's two POSTs — a codegen dispatch that creates the
// project's repository, then a deploy dispatch of git's empty tree whose command target runs
// `sh -c` — are refused with 403 internal_topic, and nothing reaches a dispatch topic, so no
// worker can run them. The CLI's produce through the daemon is refused the same way.
#include <filesystem>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "http/daemon_harness.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

std::string error_code(const http::ClientResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("error")) return "";
  return std::string(v.at("error").at("code").as_string());
}

size_t records_on(http::Client* c, const std::string& topic) {
  size_t n = 0;
  for (int p = 0; p < 4; ++p) {
    auto r = c->request(
        "GET", "/api/v1/topics/" + topic + "/records?partition=" + std::to_string(p) + "&offset=0");
    REQUIRE_OK(r.status());
    REQUIRE(r->status == 200);
    n += json::parse(r->body).at("records").as_array().size();
  }
  return n;
}

TEST_CASE("the review's two-POST attack is refused by the daemon's API", "[http][e2e][security]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err);
  INFO(err);
  REQUIRE(d);
  auto c = d->client();
  REQUIRE(c);
  const std::string marker = dir.str() + "/pwned";

  // 1. A codegen dispatch: would create the project's repository under the data dir.
  const std::string codegen =
      R"({"records":[{"key":"x/codegen_1","value":{"run_id":"x","dag_id":"software_factory",)"
      R"("task_id":"codegen_1","try":1,"params":{"spec":{"id":"X-1","project":"invoices",)"
      R"("title":"t","description":"d","acceptance_criteria":["a"]},"provider":"template"},)"
      R"("output_topic":"code-artifacts","results_topic":"factory.task-results"}}]})";
  auto first = c->request("POST", "/api/v1/topics/factory.dispatch.codegen/records", codegen);
  REQUIRE_OK(first.status());
  CHECK(first->status == 403);
  CHECK(error_code(*first) == "internal_topic");
  CHECK(first->body.find("topic 'factory.dispatch.codegen' is refused") != std::string::npos);

  // 2. A deploy dispatch of git's empty tree with a command target: `sh -c` as the daemon.
  const std::string deploy =
      R"({"records":[{"key":"x/deploy","value":{"run_id":"x","dag_id":"software_factory",)"
      R"("task_id":"deploy","try":1,"params":{"artifact":{"project":"invoices","ticket":"X-1",)"
      R"("commit":"4b825dc642cb6eb9a060e54bf8d69288fbee4904"},"target":"command",)"
      R"("command":{"argv":["sh","-c","touch )" +
      marker +
      R"("]}},"output_topic":"deployment-triggers","results_topic":"factory.task-results"}}]})";
  auto second = c->request("POST", "/api/v1/topics/factory.dispatch.deploy/records", deploy);
  REQUIRE_OK(second.status());
  CHECK(second->status == 403);
  CHECK(error_code(*second) == "internal_topic");

  // A forged result is refused at the door too.
  auto result = c->request("POST", "/api/v1/topics/factory.task-results/records",
                           R"({"records":[{"key":"x","value":{"run_id":"x"}}]})");
  REQUIRE_OK(result.status());
  CHECK(result->status == 403);

  // The CLI through the daemon (its daemon.json): refused, with the reason.
  auto produced =
      run_factoryd({"produce", "factory.dispatch.deploy", "--data-dir=" + d->data_dir()},
                   "{\"run_id\":\"x\"}\n");
  CHECK(produced.exit_code != 0);
  CHECK(produced.err.find("internal to factoryd") != std::string::npos);

  // Nothing was appended: no worker can have run either dispatch. Reading stays allowed.
  CHECK(records_on(c.get(), "factory.dispatch.codegen") == 0);
  CHECK(records_on(c.get(), "factory.dispatch.deploy") == 0);
  CHECK(records_on(c.get(), "factory.task-results") == 0);
  CHECK_FALSE(std::filesystem::exists(d->data_dir() + "/factory/repos/invoices"));
  CHECK_FALSE(std::filesystem::exists(marker));
  CHECK(d->stop().exit_code == 0);
}

}  // namespace
}  // namespace factory::test
