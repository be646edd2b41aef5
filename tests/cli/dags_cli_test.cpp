// End-to-end tests of the DAG commands (dags, runs, tasks, approvals): each runs the real binary
// (FACTORYD_BIN) on its own temp data dir, with a temp config dir of small DAGs built on the
// `noop` and `fail` stages and the `approval` task type.
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "cli/cli_checks.h"
#include "cli/run_process.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

constexpr char kChain[] =
    "dag_id: chain\n"
    "description: three noop tasks in a row\n"
    "params:\n"
    "  defaults: {x: 1}\n"
    "tasks:\n"
    "  a: {stage: noop, params: {x: \"{{ run.conf.x }}\"}}\n"
    "  b: {stage: noop, upstream: [a], params: {y: \"{{ tasks.a.output.x }}\"}}\n"
    "  c: {stage: noop, upstream: [b]}\n";

constexpr char kFailing[] =
    "dag_id: failing\n"
    "tasks:\n"
    "  ok: {stage: noop}\n"
    "  boom: {stage: fail, upstream: [ok]}\n"
    "  after: {stage: noop, upstream: [boom]}\n";

constexpr char kGated[] =
    "dag_id: gated\n"
    "tasks:\n"
    "  build: {stage: noop}\n"
    "  approve: {stage: approval, upstream: [build]}\n"
    "  deploy: {stage: noop, upstream: [approve]}\n";

constexpr char kBound[] =
    "dag_id: bound\n"
    "tasks:\n"
    "  build: {stage: noop, params: {commit: 3f9c2a1d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a}}\n"
    "  approve:\n"
    "    stage: approval\n"
    "    upstream: [build]\n"
    "    params: {bind_to: \"{{ tasks.build.output.commit }}\"}\n"
    "  deploy: {stage: noop, upstream: [approve]}\n";

// A temp dir holding a data dir (data/) and a config dir (config/dags/*.yaml).
class DagEnv {
 public:
  DagEnv() {
    std::filesystem::create_directories(dir_.path() / "config" / "dags");
    write("chain.yaml", kChain);
    write("failing.yaml", kFailing);
    write("gated.yaml", kGated);
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(config() + "/dags/" + name) << text;
  }
  std::string config() const { return (dir_.path() / "config").string(); }
  std::string data() const { return (dir_.path() / "data").string(); }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }

  // factoryd ARGS --data-dir DATA, plus `--config-dir DIR` unless with_config is false. `dags
  // test` and `tasks test` take no --data-dir: they run on a temporary one.
  ProcessResult run(std::vector<std::string> args, bool with_config = true) {
    if (with_config) {
      args.push_back("--config-dir");
      args.push_back(config());
    }
    if (args.size() < 2 || args[1] != "test") {
      args.push_back("--data-dir");
      args.push_back(data());
    }
    return run_factoryd(std::move(args));
  }
  ProcessResult ok(std::vector<std::string> args, bool with_config = true) {
    return require_ok(args, run(args, with_config));
  }
  json::value ok_json(std::vector<std::string> args, bool with_config = true) {
    args.push_back("-o");
    args.push_back("json");
    return stdout_json(ok(std::move(args), with_config));
  }
  // `factoryd run` until nothing is left to do (runs done, or parked on an approval).
  void run_until_idle() {
    ProcessResult r = run_factoryd(
        {"run", "--config-dir", config(), "--data-dir", data(), "--exit-when-idle", "300"});
    INFO("stderr: " << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0));
    REQUIRE(r.exit_code == 0);
  }
  // task_id -> state, from `runs show RUN -o json`.
  std::map<std::string, std::string> task_states(const std::string& run_id) {
    json::value v = ok_json({"runs", "show", run_id});
    std::map<std::string, std::string> out;
    for (const auto& t : v.at("tasks").as_array()) {
      out[std::string(t.at("task_id").as_string())] = std::string(t.at("state").as_string());
    }
    return out;
  }
  std::string run_state(const std::string& run_id) {
    return std::string(ok_json({"runs", "show", run_id}).at("state").as_string());
  }

 private:
  TempDir dir_;
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The table row of `task` (the line starting with it), or "".
std::string row_of(const std::string& table, const std::string& task) {
  size_t at = 0;
  while (at < table.size()) {
    size_t nl = table.find('\n', at);
    std::string line = table.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    if (line.rfind(task + " ", 0) == 0) return line;
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return "";
}

void require_error(const ProcessResult& r, int code, const std::string& part) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == code);
  CHECK(r.err.rfind("factoryd: error: ", 0) == 0);
  CHECK(contains(r.err, part));
}

TEST_CASE("dags check validates a file or a directory and names file:line", "[cli]") {
  DagEnv env;
  ProcessResult good = env.ok({"dags", "check"}, true);
  CHECK(contains(good.out, "OK: 3 DAGs"));
  CHECK(contains(row_of(good.out, "chain"), "chain.yaml"));

  json::value one = env.ok_json({"dags", "check", env.config() + "/dags/gated.yaml"});
  CHECK(one.at("ok").as_bool());
  REQUIRE(one.at("dags").as_array().size() == 1);
  CHECK(one.at("dags").at(0).at("dag_id").as_string() == "gated");
  CHECK(one.at("dags").at(0).at("tasks").as_int64() == 3);

  std::string bad = env.path("bad.yaml");
  std::ofstream(bad) << "dag_id: bad\n"
                        "tasks:\n"
                        "  a: {stage: noop}\n"
                        "  b: {stage: noop, upstream: [aa]}\n";
  ProcessResult r = env.run({"dags", "check", bad});
  require_error(r, 1, bad + ":4:");
  CHECK(contains(r.err, "unknown upstream 'aa'"));

  SECTION("an unknown stage in the config dir") {
    env.write("typo.yaml", "dag_id: typo\ntasks:\n  a: {stage: noopp}\n");
    ProcessResult t = env.run({"dags", "check"});
    require_error(t, 1, "typo.yaml:3:");
    CHECK(contains(t.err, "unknown stage 'noopp'"));
  }
  SECTION("a path that does not exist") {
    require_error(env.run({"dags", "check", env.path("nope")}), 1, "does not exist");
  }
  // check never opens the data dir.
  CHECK_FALSE(std::filesystem::exists(env.data()));
}

TEST_CASE("dags list, show, pause and unpause", "[cli]") {
  DagEnv env;
  ProcessResult list = env.ok({"dags", "list"});
  CHECK(contains(list.out, "DAG_ID"));
  CHECK(contains(list.out, "PAUSED"));
  std::string chain = row_of(list.out, "chain");
  CHECK(contains(chain, "manual"));
  CHECK(contains(chain, "3"));
  CHECK(contains(chain, "false"));
  CHECK_FALSE(std::filesystem::exists(env.data()));  // listing creates nothing

  json::value shown = env.ok_json({"dags", "show", "gated"});
  CHECK(shown.at("dag_id").as_string() == "gated");
  REQUIRE(shown.at("tasks").as_array().size() == 3);
  CHECK(shown.at("tasks").at(1).at("task_id").as_string() == "approve");
  CHECK(shown.at("tasks").at(1).at("approval").as_bool());
  CHECK(shown.at("tasks").at(2).at("upstream").at(0).as_string() == "approve");
  CHECK(contains(env.ok({"dags", "show", "chain"}).out, "three noop tasks in a row"));

  env.ok({"dags", "pause", "chain"});
  json::value dags = env.ok_json({"dags", "list"});
  std::map<std::string, bool> paused;
  for (const auto& d : dags.as_array()) {
    paused[std::string(d.at("dag_id").as_string())] = d.at("paused").as_bool();
  }
  CHECK(paused ==
        std::map<std::string, bool>{{"chain", true}, {"failing", false}, {"gated", false}});

  // A run triggered while paused waits queued; unpausing lets `run` finish it.
  ProcessResult trig = env.ok({"dags", "trigger", "chain", "-r", "while-paused"});
  CHECK(contains(trig.err, "is paused"));
  CHECK(env.run_state("while-paused") == "queued");
  env.ok({"dags", "unpause", "chain"});
  CHECK(contains(row_of(env.ok({"dags", "list"}).out, "chain"), "false"));
  env.run_until_idle();
  CHECK(env.run_state("while-paused") == "success");

  require_error(env.run({"dags", "show", "ghost"}), 1, "DAG 'ghost' not found");
  require_error(env.run({"dags", "pause", "ghost"}), 1, "DAG 'ghost' not found");
}

TEST_CASE("dags trigger then factoryd run completes the run and runs show has each task", "[cli]") {
  DagEnv env;
  json::value made = env.ok_json({"dags", "trigger", "chain", "-c", R"({"x": 7})", "-r", "r1"});
  CHECK(made.at("run_id").as_string() == "r1");
  CHECK(made.at("conf").at("x").as_int64() == 7);

  env.run_until_idle();

  ProcessResult show = env.ok({"runs", "show", "r1"});
  CHECK(contains(show.out, "TASK"));
  CHECK(contains(show.out, "DURATION"));
  for (const char* task : {"a", "b", "c"}) {
    INFO(show.out);
    CHECK(contains(row_of(show.out, task), "success"));
  }
  json::value v = env.ok_json({"runs", "show", "r1"});
  CHECK(v.at("state").as_string() == "success");
  CHECK(v.at("tasks").at(1).at("output").at("y").as_int64() == 7);  // the template saw a's output
  CHECK(v.at("tasks").at(1).at("try_number").as_int64() == 1);

  json::value runs = env.ok_json({"runs", "list", "chain"}, false);
  REQUIRE(runs.as_array().size() == 1);
  CHECK(runs.at(0).at("state").as_string() == "success");
  CHECK(env.ok_json({"runs", "list", "gated"}, false).as_array().empty());
  json::value tasks = env.ok_json({"tasks", "list", "r1"});
  REQUIRE(tasks.as_array().size() == 3);
  CHECK(tasks.at(2).at("task_id").as_string() == "c");

  SECTION("tasks clear --downstream runs b and c again") {
    json::value cleared = env.ok_json({"tasks", "clear", "r1", "b", "--downstream"});
    CHECK(json::serialize(cleared.at("cleared")) == R"(["b","c"])");
    CHECK(env.run_state("r1") == "running");
    CHECK(env.task_states("r1").at("a") == "success");
    // Nothing runs b until `factoryd run`: it waits scheduled, with no start time (not
    // `running` since the moment it was cleared).
    json::value waiting = env.ok_json({"runs", "show", "r1"});
    CHECK(waiting.at("tasks").at(1).at("state").as_string() == "scheduled");
    CHECK(waiting.at("tasks").at(1).at("started").is_null());
    CHECK(waiting.at("tasks").at(2).at("state").as_string() == "none");
    CHECK(contains(row_of(env.ok({"tasks", "list", "r1"}).out, "b"), "scheduled"));
    env.run_until_idle();
    json::value again = env.ok_json({"runs", "show", "r1"});
    CHECK(again.at("state").as_string() == "success");
    CHECK(again.at("tasks").at(0).at("try_number").as_int64() == 1);  // a did not run again
    CHECK(again.at("tasks").at(1).at("try_number").as_int64() == 2);
    CHECK(again.at("tasks").at(2).at("try_number").as_int64() == 2);
    CHECK(again.at("tasks").at(2).at("state").as_string() == "success");
  }
  SECTION("errors name the run or task") {
    require_error(env.run({"runs", "show", "ghost"}), 1, "run 'ghost' not found");
    require_error(env.run({"tasks", "clear", "r1", "zz"}), 1, "task 'zz' not found");
    require_error(env.run({"dags", "trigger", "chain", "-r", "r1"}), 1, "already exists");
    require_error(env.run({"runs", "cancel", "r1"}), 1, "already ended (success)");
  }
}

TEST_CASE("dags test runs the whole DAG in-process and prints each task's result", "[cli]") {
  DagEnv env;
  ProcessResult r = env.ok({"dags", "test", "chain", "-c", R"({"x": 5})"});
  CHECK(contains(row_of(r.out, "a"), "success"));
  CHECK(contains(row_of(r.out, "b"), R"({"y":5})"));
  CHECK(contains(row_of(r.out, "c"), "success"));
  CHECK(contains(r.out, ": success in "));
  CHECK_FALSE(std::filesystem::exists(env.data()));  // a temporary data dir, not this one

  ProcessResult failed = env.run({"dags", "test", "failing"});
  require_error(failed, 1, "boom (failed)");
  CHECK(contains(row_of(failed.out, "ok"), "success"));
  CHECK(contains(row_of(failed.out, "boom"), "planned retryable failure"));
  CHECK(contains(row_of(failed.out, "after"), "upstream_failed"));

  json::value gated = env.ok_json({"dags", "test", "gated"});
  CHECK(gated.at("state").as_string() == "success");
  CHECK(gated.at("tasks").at(1).at("output").at("approved_by").as_string() == "dags-test");
  ProcessResult rejected = env.run({"dags", "test", "gated", "--reject-approvals"});
  require_error(rejected, 1, "approve (failed)");
}

TEST_CASE("dags test runs the article's DAG", "[cli]") {
  std::string config = std::string(FACTORY_SOURCE_DIR) + "/config";
  ProcessResult r = run_factoryd({"dags", "test", "software_factory_pipeline", "--config-dir",
                                  config, "-c", R"({"key": "PROJ-1"})"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* task : {"ingest_spec", "generate_code", "quality_gate", "deploy"}) {
    CHECK(contains(row_of(r.out, task), "success"));
  }
  CHECK(contains(row_of(r.out, "deploy"), "PROJ-1"));  // the ticket flowed through every task
}

TEST_CASE("tasks test runs one task alone and saves nothing", "[cli]") {
  DagEnv env;
  ProcessResult a = env.ok({"tasks", "test", "chain", "a", "-c", R"({"x": 3})"});
  CHECK(contains(a.out, "success"));
  CHECK(contains(a.out, R"(output: {"x":3})"));

  // b reads a's output, which tasks test does not have: -t supplies it.
  ProcessResult b = env.run({"tasks", "test", "chain", "b"});
  require_error(b, 1, "-t");
  json::value bj = env.ok_json({"tasks", "test", "chain", "b", "-t", R"({"y": 9})"});
  CHECK(bj.at("state").as_string() == "success");
  CHECK(bj.at("output").at("y").as_int64() == 9);

  ProcessResult boom = env.run({"tasks", "test", "failing", "boom"});
  require_error(boom, 1, "planned retryable failure");
  CHECK(contains(boom.out, "failed"));
  require_error(env.run({"tasks", "test", "gated", "approve"}), 1, "approval task");
  require_error(env.run({"tasks", "test", "chain", "zz"}), 1, "task 'zz' not found");
  CHECK_FALSE(std::filesystem::exists(env.data()));
}

TEST_CASE("runs cancel stops an unfinished run", "[cli]") {
  DagEnv env;
  env.ok({"dags", "trigger", "chain", "-r", "c1"});
  CHECK(env.run_state("c1") == "running");
  // A one-shot command dispatches nothing (no worker would run it): a waits scheduled.
  CHECK(env.task_states("c1").at("a") == "scheduled");
  ProcessResult r = env.ok({"runs", "cancel", "c1"});
  CHECK(contains(r.out, "cancelled"));
  CHECK(env.run_state("c1") == "cancelled");
  auto states = env.task_states("c1");
  // None of them ran.
  for (const char* t : {"a", "b", "c"}) {
    INFO(t << ": " << states.at(t));
    CHECK((states.at(t) == "skipped" || states.at(t) == "upstream_failed"));
  }
  // A later `run` runs nothing of it.
  env.run_until_idle();
  CHECK(env.run_state("c1") == "cancelled");
  require_error(env.run({"runs", "cancel", "c1"}), 1, "already ended (cancelled)");
  require_error(env.run({"runs", "cancel", "ghost"}), 1, "run 'ghost' not found");
}

TEST_CASE("approvals: list pending, approve and reject with a comment", "[cli]") {
  DagEnv env;
  env.ok({"dags", "trigger", "gated", "-r", "g1"});
  env.ok({"dags", "trigger", "gated", "-r", "g2"});
  // `run --exit-when-idle` stops once both runs are parked on their approval.
  env.run_until_idle();
  CHECK(env.task_states("g1").at("approve") == "awaiting_approval");

  json::value pending = env.ok_json({"approvals", "list"}, false);
  REQUIRE(pending.as_array().size() == 2);
  CHECK(pending.at(0).at("task_id").as_string() == "approve");
  CHECK(pending.at(0).at("state").as_string() == "pending");
  ProcessResult table = env.ok({"approvals", "list"}, false);
  CHECK(contains(table.out, "REQUESTED"));
  CHECK(contains(row_of(table.out, "g1"), "approve"));

  env.ok({"approvals", "approve", "g1", "approve", "--comment", "ship it"});
  env.ok({"approvals", "reject", "g2", "approve", "--comment", "not today"});
  CHECK(env.ok_json({"approvals", "list"}, false).as_array().empty());
  require_error(env.run({"approvals", "approve", "g1", "approve"}), 1, "not awaiting approval");

  env.run_until_idle();
  CHECK(env.run_state("g1") == "success");
  CHECK(env.task_states("g1").at("deploy") == "success");
  CHECK(env.run_state("g2") == "failed");
  CHECK(env.task_states("g2").at("deploy") == "upstream_failed");

  json::value all = env.ok_json({"approvals", "list", "--all"}, false);
  std::map<std::string, std::string> comments;
  for (const auto& a : all.as_array()) {
    CHECK(std::string(a.at("decided_by").as_string()).rfind("cli:", 0) == 0);
    comments[std::string(a.at("run_id").as_string())] =
        std::string(a.at("state").as_string()) + ": " + std::string(a.at("comment").as_string());
  }
  CHECK(comments == std::map<std::string, std::string>{{"g1", "approved: ship it"},
                                                       {"g2", "rejected: not today"}});
}

TEST_CASE("approvals list shows BOUND_TO, a cancelled run has its approval closed, not pending",
          "[cli]") {
  DagEnv env;
  env.write("bound.yaml", kBound);
  const std::string commit = "3f9c2a1d8e7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
  env.ok({"dags", "trigger", "bound", "-r", "b1"});
  env.run_until_idle();
  CHECK(env.task_states("b1").at("approve") == "awaiting_approval");
  ProcessResult table = env.ok({"approvals", "list"}, false);
  CHECK(contains(table.out.substr(0, table.out.find('\n')), "BOUND_TO"));
  CHECK(contains(row_of(table.out, "b1"), commit));
  json::value pending = env.ok_json({"approvals", "list"}, false);
  REQUIRE(pending.as_array().size() == 1);
  CHECK(pending.at(0).at("bound_to") == commit.c_str());

  env.ok({"runs", "cancel", "b1"});
  CHECK(env.ok_json({"approvals", "list"}, false).as_array().empty());
  json::value all = env.ok_json({"approvals", "list", "--all"}, false);
  REQUIRE(all.as_array().size() == 1);
  CHECK(all.at(0).at("state") == "cancelled");
  std::string by(all.at(0).at("decided_by").as_string());
  CHECK(by.rfind("cli:", 0) == 0);
  CHECK(all.at(0).at("comment") == ("run cancelled by " + by).c_str());
  CHECK(all.at(0).at("bound_to") == commit.c_str());
  CHECK(contains(row_of(env.ok({"approvals", "list", "--all"}, false).out, "b1"), "cancelled"));
  // Deciding it now names its state and why.
  require_error(env.run({"approvals", "approve", "b1", "approve"}), 1,
                "approval 'approve' of run 'b1' is cancelled (run cancelled by " + by +
                    "); nothing to approve");
  require_error(env.run({"approvals", "reject", "b1", "approve"}), 1, "nothing to reject");
  // The closing is audited.
  bool audited = false;
  json::value audit = env.ok_json({"audit", "list"}, false);
  for (const json::value& row : audit.as_array()) {
    if (row.at("action") == "approval.cancelled" && row.at("object") == "run/b1/task/approve") {
      audited = row.at("actor") == by.c_str();
    }
  }
  CHECK(audited);
}

TEST_CASE("a command refused by its checks creates no data dir", "[cli]") {
  DagEnv env;
  require_error(env.run({"dags", "trigger", "nope"}), 1, "DAG 'nope' not found");
  require_error(env.run({"dags", "trigger", "chain", "-c", "[1]"}), 2, "-c:");
  require_error(env.run({"dags", "pause", "nope"}), 1, "DAG 'nope' not found");
  require_error(env.run({"runs", "cancel", "ghost"}), 1, "run 'ghost' not found");
  require_error(env.run({"tasks", "clear", "ghost", "a"}), 1, "run 'ghost' not found");
  require_error(env.run({"approvals", "approve", "ghost", "approve"}), 1, "run 'ghost' not found");
  CHECK_FALSE(std::filesystem::exists(env.data()));
  // The first accepted change makes it.
  env.ok({"dags", "trigger", "chain"});
  CHECK(std::filesystem::exists(env.data() + "/store"));
}

TEST_CASE("dags test and tasks test run the repository's software_factory DAG", "[cli]") {
  // Its error budget names the postmortem DAG, which dags test loads from the same config dir.
  // Run from the repository, as the docs do: the stages find config/projects/ from there.
  TempDir dir;
  const std::string src = FACTORY_SOURCE_DIR;
  std::ifstream in(src + "/config/samples/tickets/04-inv-104-ticket.json");
  std::string ticket((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!ticket.empty());
  auto in_repo = [&](const std::string& command) {
    return run_process({"/bin/sh", "-c", "cd \"$SRC\" && exec \"$BIN\" " + command}, "",
                       {"SRC=" + src, "BIN=" + std::string(FACTORYD_BIN), "TICKET=" + ticket,
                        "TMPDIR=" + dir.str()});
  };
  ProcessResult r = in_repo("dags test software_factory -c \"$TICKET\" --config-dir config");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.err.find("is not loaded") == std::string::npos);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, ": success in "));
  ProcessResult t =
      in_repo("tasks test software_factory ingest -c \"$TICKET\" --config-dir config");
  INFO("stdout: " << t.out << "\nstderr: " << t.err);
  CHECK(t.exit_code == 0);
  // Their temporary data dirs (under TMPDIR) are gone.
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("while factoryd run holds the data dir, reads and changes go through its local API",
          "[cli]") {
  DagEnv env;
  env.ok({"dags", "trigger", "chain", "-r", "b1"});
  ChildProcess daemon =
      spawn_factoryd({"run", "--config-dir", env.config(), "--data-dir", env.data()});
  // Once b1 succeeded, `run` certainly holds the data dir.
  CHECK(eventually([&] { return env.run_state("b1") == "success"; }));
  // A change is made by the run's scheduler (<data-dir>/api.sock, tests/cli/daemon_cli_test.cpp).
  env.ok({"dags", "trigger", "chain", "-r", "b2"});
  CHECK(eventually([&] { return env.run_state("b2") == "success"; }));
  CHECK(env.ok_json({"runs", "list"}, false).as_array().size() == 2);
  CHECK(contains(row_of(env.ok({"dags", "list"}).out, "chain"), "false"));
  daemon.kill(SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("dag command usage errors exit 2", "[cli]") {
  DagEnv env;
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"dags", "trigger", "chain", "-c", "[1]"},
           {"dags", "trigger", "chain", "-c", "{"},
           {"dags", "test", "chain", "--timeout", "soon"},
           {"tasks", "test", "chain", "a", "-t", "nope"},
           // They run on a temporary data dir: a --data-dir or --server would be ignored.
           {"dags", "test", "chain", "--data-dir", "elsewhere"},
           {"tasks", "test", "chain", "a", "--server", "http://127.0.0.1:1"},
       }) {
    ProcessResult r = env.run(args);
    INFO(args[0] << " " << args[1] << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("factoryd: error: ", 0) == 0);
  }
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"dags"},
                                             {"dags", "show"},
                                             {"runs", "show"},
                                             {"tasks", "clear", "r1"},
                                             {"approvals", "approve", "r1"},
                                             {"runs", "list", "-n", "-1"}}) {
    ProcessResult r = env.run(args, false);
    INFO(args[0] << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
  }
}

}  // namespace
}  // namespace factory::test
