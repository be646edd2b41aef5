// `factoryd approvals auto [status|pause|resume]` on the real binary: through a running daemon
// (its API) and on the data dir itself once the daemon is gone, with the same output, the
// change persisted and audited either way.
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/run_process.h"
#include "http/daemon_harness.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("approvals auto: status, pause and resume through the daemon and locally",
          "[cli][error_budget]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err);
  INFO(err);
  REQUIRE(d != nullptr);
  const std::string data = "--data-dir=" + d->data_dir();
  const std::string config = std::string("--config=") + FACTORY_SOURCE_DIR + "/config";

  // Through the daemon: the switch is on, and the bundled factory keeps a budget on its gates.
  ProcessResult status = run_factoryd({"approvals", "auto", data});
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  CHECK(contains(status.out, "auto-approval: on"));
  CHECK(contains(status.out, "software_factory"));
  CHECK(contains(status.out, "MIN_SAMPLES"));
  json::value v = json::parse(run_factoryd({"approvals", "auto", "-o", "json", data}).out);
  CHECK(v.at("paused") == false);
  const json::object& budget = v.at("error_budget").at("software_factory").as_object();
  CHECK(budget.at("stage") == "gate");
  CHECK(budget.at("min_samples") == 20);
  CHECK(budget.at("samples") == 0);
  CHECK(budget.at("postmortem_dag") == "postmortem");

  ProcessResult paused = run_factoryd({"approvals", "auto", "pause", data});
  INFO(paused.err);
  REQUIRE(paused.exit_code == 0);
  CHECK(contains(paused.out, "auto-approval: paused"));
  auto c = d->client();
  auto got = c->request("GET", "/api/v1/auto-approval");
  REQUIRE_OK(got);
  CHECK(json::parse(got->body).at("paused") == true);
  const std::string through_daemon =
      run_factoryd({"approvals", "auto", "status", "-o", "json", data}).out;
  REQUIRE(d->stop().exit_code == 0);

  // On the data dir itself: the same answer (the budgets come from the DAG files in --config).
  ProcessResult local = run_factoryd({"approvals", "auto", "status", "-o", "json", data, config});
  INFO(local.err);
  REQUIRE(local.exit_code == 0);
  CHECK(local.out == through_daemon);
  ProcessResult resumed = run_factoryd({"approvals", "auto", "resume", data, config});
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(contains(resumed.out, "auto-approval: on"));

  // Both changes are in the audit trail: the daemon's (its caller) and the CLI's own.
  json::value audit = json::parse(run_factoryd({"audit", "list", "-o", "json", data}).out);
  std::vector<std::string> seen;
  for (const json::value& row : audit.as_array()) {
    const std::string action(row.at("action").as_string());
    if (action.rfind("approval.auto_", 0) != 0) continue;
    seen.push_back(action + " by " + std::string(row.at("actor").as_string()));
  }
  REQUIRE(seen.size() == 2);  // newest first
  CHECK(contains(seen[0], "approval.auto_resume by cli:"));
  CHECK(seen[1] == "approval.auto_pause by token:local");

  // The daemon starts with what the CLI left.
  d = Daemon::restart(*d, &err);
  INFO(err);
  REQUIRE(d != nullptr);
  got = d->client()->request("GET", "/api/v1/auto-approval");
  REQUIRE_OK(got);
  CHECK(json::parse(got->body).at("paused") == false);

  ProcessResult bad = run_factoryd({"approvals", "auto", "stop", data});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "stop not in {status,pause,resume}"));
  CHECK(d->stop().exit_code == 0);
}

}  // namespace factory::test
