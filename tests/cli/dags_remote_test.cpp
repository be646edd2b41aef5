// The DAG commands (dags, runs, tasks, approvals, audit) against a running daemon: every
// command goes through the API (the daemon holds the data dir), changes take effect, errors
// keep their exit codes, and once the daemon is gone the same read commands on the data dir
// itself print exactly what they printed through the daemon.
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/cli_checks.h"
#include "cli/run_process.h"
#include "http/daemon_harness.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

constexpr char kChain[] =
    "dag_id: chain\n"
    "description: three noop tasks in a row\n"
    "params:\n"
    "  defaults: {x: 1}\n"
    "  schema: {type: object, properties: {x: {type: integer}}}\n"
    "tasks:\n"
    "  a: {stage: noop, params: {x: \"{{ run.conf.x }}\"}}\n"
    "  b: {stage: noop, upstream: [a], params: {y: \"{{ tasks.a.output.x }}\"}}\n"
    "  c: {stage: noop, upstream: [b]}\n";

constexpr char kGated[] =
    "dag_id: gated\n"
    "tasks:\n"
    "  build: {stage: noop}\n"
    "  approve: {stage: approval, upstream: [build]}\n"
    "  deploy: {stage: noop, upstream: [approve], retries: 2, retry_delay: 5s}\n";

constexpr char kNightly[] =
    "dag_id: nightly\n"
    "schedule: {cron: \"0 3 * * *\", timezone: Europe/Berlin}\n"
    "tasks:\n"
    "  only: {stage: noop}\n";

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class RemoteEnv {
 public:
  RemoteEnv() {
    std::filesystem::create_directories(config() + "/dags");
    std::ofstream(config() + "/dags/chain.yaml") << kChain;
    std::ofstream(config() + "/dags/gated.yaml") << kGated;
    std::ofstream(config() + "/dags/nightly.yaml") << kNightly;
  }
  std::string config() const { return dir.str() + "/config"; }
  std::string data() const { return dir.str() + "/data"; }

  // factoryd ARGS --data-dir DATA (the daemon, when one holds DATA).
  ProcessResult run(std::vector<std::string> args) {
    args.push_back("--data-dir");
    args.push_back(data());
    return run_factoryd(std::move(args));
  }
  ProcessResult ok(std::vector<std::string> args) { return require_ok(args, run(args)); }
  json::value ok_json(std::vector<std::string> args) {
    args.push_back("-o");
    args.push_back("json");
    return stdout_json(ok(std::move(args)));
  }
  std::string run_state(const std::string& run_id) {
    return std::string(ok_json({"runs", "show", run_id}).at("state").as_string());
  }
  std::string task_state(const std::string& run_id, const std::string& task) {
    json::value tasks = ok_json({"tasks", "list", run_id});
    for (const json::value& t : tasks.as_array()) {
      if (t.at("task_id") == task.c_str()) return std::string(t.at("state").as_string());
    }
    return "";
  }

  TempDir dir;
};

void require_error(const ProcessResult& r, int code, const std::string& part) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK(r.out.empty());
  CHECK(contains(r.err, part));
}

TEST_CASE("DAG commands through a running daemon print what they print locally", "[cli][e2e]") {
  RemoteEnv env;
  std::string err;
  auto daemon = Daemon::start(env.dir.str(), "", &err, {}, env.config());
  INFO(err);
  REQUIRE(daemon != nullptr);

  // Changes, through the API.
  ProcessResult trig = env.ok({"dags", "trigger", "chain", "-c", R"({"x": 7})", "-r", "r1"});
  CHECK(contains(trig.out, "RUN_ID"));
  CHECK(contains(trig.out, R"({"x":7})"));
  json::value g1 = env.ok_json({"dags", "trigger", "gated", "-r", "g1"});
  CHECK(g1.at("run_id") == "g1");
  CHECK(!g1.as_object().contains("dag_paused"));  // the API's extra field is not printed
  // Refused writes: the same exit code as locally, and the same message but for the unknown
  // DAG, which the daemon says it has not loaded (compared at the end).
  const std::string config_flag = "--config-dir=" + env.config();
  const std::vector<std::vector<std::string>> refused = {
      {"dags", "trigger", "chain", "-c", "nope", config_flag},
      {"dags", "trigger", "chain", "-c", R"({"x": "seven"})", config_flag},
      {"dags", "trigger", "nope", config_flag},
      {"dags", "trigger", "chain", "-r", "r1", config_flag},
  };
  std::vector<ProcessResult> refused_remote;
  for (const auto& cmd : refused) refused_remote.push_back(env.run(cmd));
  require_error(refused_remote[0], 2, "must be a JSON object");
  require_error(refused_remote[1], 2, "params schema");
  require_error(refused_remote[2], 1, "DAG 'nope'");
  require_error(refused_remote[3], 1, "already exists");

  REQUIRE(
      eventually([&] { return env.task_state("g1", "approve") == "awaiting_approval"; }, 20'000));
  json::value pending = env.ok_json({"approvals", "list"});
  REQUIRE(pending.as_array().size() == 1);
  CHECK(pending.at(0).at("run_id") == "g1");
  require_error(env.run({"approvals", "approve", "g1", "build"}), 1, "not awaiting approval");
  ProcessResult approved = env.ok({"approvals", "approve", "g1", "approve", "--comment", "ship"});
  CHECK(approved.out == "approved g1 approve as token:local\n");

  CHECK(env.ok({"dags", "pause", "chain"}).out == "DAG 'chain' paused\n");
  ProcessResult queued = env.ok({"dags", "trigger", "chain", "-r", "r2"});
  CHECK(contains(queued.out, "queued"));
  CHECK(contains(queued.err, "is paused"));
  CHECK(env.ok({"runs", "cancel", "r2"}).out == "run 'r2' cancelled\n");
  require_error(env.run({"runs", "cancel", "r2"}), 1, "already ended (cancelled)");
  CHECK(env.ok_json({"dags", "unpause", "chain"}).at("paused") == false);

  REQUIRE(eventually([&] { return env.run_state("r1") == "success"; }, 20'000));
  json::value cleared = env.ok_json({"tasks", "clear", "r1", "b", "--downstream"});
  CHECK(json::serialize(cleared.at("cleared")) == R"(["b","c"])");
  require_error(env.run({"tasks", "clear", "r1", "zz"}), 1, "task 'zz'");
  REQUIRE(eventually([&] { return env.task_state("r1", "c") == "success"; }, 20'000));
  REQUIRE(eventually([&] { return env.run_state("g1") == "success"; }, 20'000));
  require_error(env.run({"runs", "show", "nope"}), 1, "run 'nope'");

  // The daemon audited each write request once, with its request id.
  json::value audit = env.ok_json({"audit", "list", "-n", "0"});
  int approvals = 0;
  for (const json::value& row : audit.as_array()) {
    CHECK(!row.at("request_id").as_string().empty());
    if (row.at("action") == "approval.approve" && row.at("result") == "ok") ++approvals;
  }
  CHECK(approvals == 1);

  // Every read, through the daemon and then on the data dir itself.
  const std::string& c = config_flag;
  const std::vector<std::vector<std::string>> reads = {
      {"dags", "list", c},
      {"dags", "list", c, "-o", "json"},
      {"dags", "show", "gated", c},
      {"dags", "show", "nightly", c, "-o", "json"},
      {"runs", "list"},
      {"runs", "list", "chain", "-n", "1", "-o", "json"},
      {"runs", "list", "--unfinished"},
      {"runs", "show", "r1", c},
      {"runs", "show", "g1", c, "-o", "json"},
      {"tasks", "list", "r2", c},
      {"tasks", "list", "r1", c, "-o", "json"},
      {"approvals", "list"},
      {"approvals", "list", "--all"},
      {"approvals", "list", "--all", "-o", "json"},
      {"audit", "list", "-n", "3"},
      {"audit", "list", "-o", "json"},
      {"runs", "show", "nope", c},
      {"dags", "show", "nope", c},
  };
  std::vector<ProcessResult> remote;
  for (const auto& cmd : reads) remote.push_back(env.run(cmd));
  REQUIRE(daemon->stop().exit_code == 0);
  for (size_t i = 0; i < reads.size(); ++i) {
    ProcessResult local = env.run(reads[i]);
    std::string cmd;
    for (const auto& a : reads[i]) cmd += a + " ";
    INFO("factoryd " << cmd << "\nremote: " << remote[i].out << remote[i].err
                     << "\nlocal: " << local.out << local.err);
    CHECK(local.exit_code == remote[i].exit_code);
    CHECK(local.out == remote[i].out);
    CHECK((local.exit_code == 0) == local.err.empty());
  }
  for (size_t i = 0; i < refused.size(); ++i) {
    ProcessResult local = env.run(refused[i]);
    INFO("factoryd " << refused[i][2] << " ...\nremote: " << refused_remote[i].err
                     << "\nlocal: " << local.err);
    CHECK(local.exit_code == refused_remote[i].exit_code);
    // Through the daemon the --config-dir given is not read, and the CLI says so first.
    const std::string kNotRead = "factoryd: warning: the config dir '" + env.config() +
                                 "' is not read through a daemon: the DAGs are the daemon's "
                                 "(leave --config-dir out)\n";
    std::string remote_err = refused_remote[i].err;
    REQUIRE(remote_err.rfind(kNotRead, 0) == 0);
    remote_err.erase(0, kNotRead.size());
    if (i != 2) CHECK(local.err == remote_err);
  }
}

// The rows of `audit list -o json` by `actor`, as "action object detail" (oldest first).
std::vector<std::string> audit_rows_of(RemoteEnv& env, const std::string& actor) {
  json::value audit = env.ok_json({"audit", "list", "-n", "0"});
  std::vector<std::string> out;
  for (const json::value& row : audit.as_array()) {
    if (row.at("actor") != actor.c_str()) continue;
    // A cancel closes the run's waiting approvals (its own rows, scheduler/audit.h) when the
    // run has reached one: not the change compared here.
    if (row.at("action") == "approval.cancelled") continue;
    out.insert(out.begin(), std::string(row.at("action").as_string()) + " " +
                                std::string(row.at("object").as_string()) + " " +
                                std::string(row.at("detail").as_string()));
  }
  return out;
}

TEST_CASE("a change through the CLI and through the API writes the same audit row", "[cli][e2e]") {
  RemoteEnv env;
  const std::string c = "--config=" + env.config();
  // Locally: the scheduler writes the rows, as the login name running the command.
  env.ok({"dags", "trigger", "gated", "-r", "L", c});
  env.ok({"dags", "pause", "chain", c});
  env.ok({"dags", "unpause", "chain", c});
  env.ok({"runs", "cancel", "L", c});
  env.ok({"tasks", "clear", "L", "deploy", c});
  struct passwd* pw = ::getpwuid(::getuid());
  REQUIRE(pw != nullptr);
  const std::string me = std::string("cli:") + pw->pw_name;
  CHECK(audit_rows_of(env, me) == std::vector<std::string>{
                                      "run.trigger dag/gated run L",
                                      "dag.pause dag/chain ",
                                      "dag.unpause dag/chain ",
                                      "run.cancel run/L ",
                                      "task.clear run/L/task/deploy ",
                                  });

  // Through the API: the server writes them from its route table, in the same shape.
  std::string err;
  auto daemon = Daemon::start(env.dir.str(), "", &err, {}, env.config());
  INFO(err);
  REQUIRE(daemon != nullptr);
  env.ok({"dags", "trigger", "gated", "-r", "R"});
  REQUIRE(
      eventually([&] { return env.task_state("R", "approve") == "awaiting_approval"; }, 20'000));
  env.ok({"approvals", "approve", "R", "approve", "--comment", "ship it"});
  env.ok({"dags", "pause", "chain"});
  env.ok({"dags", "unpause", "chain"});
  REQUIRE(eventually([&] { return env.run_state("R") == "success"; }, 20'000));
  env.ok({"tasks", "clear", "R", "deploy", "--downstream"});
  env.ok({"dags", "trigger", "gated", "-r", "R2"});
  env.ok({"runs", "cancel", "R2"});
  CHECK(audit_rows_of(env, "token:local") == std::vector<std::string>{
                                                 "run.trigger dag/gated run R",
                                                 "approval.approve run/R/task/approve ship it",
                                                 "dag.pause dag/chain ",
                                                 "dag.unpause dag/chain ",
                                                 "task.clear run/R/task/deploy with downstream",
                                                 "run.trigger dag/gated run R2",
                                                 "run.cancel run/R2 ",
                                             });
  REQUIRE(daemon->stop().exit_code == 0);
  // And the local decision's row has the API's shape too.
  env.ok({"dags", "trigger", "gated", "-r", "L2", c});
  ChildProcess run =
      spawn_factoryd({"run", "--config-dir", env.config(), "--data-dir", env.data()});
  REQUIRE(
      eventually([&] { return env.task_state("L2", "approve") == "awaiting_approval"; }, 20'000));
  run.kill(SIGTERM);
  REQUIRE(run.wait().exit_code == 0);
  env.ok({"approvals", "reject", "L2", "approve", "--comment", "not now", c});
  std::vector<std::string> mine = audit_rows_of(env, me);
  REQUIRE(!mine.empty());
  CHECK(mine.back() == "approval.reject run/L2/task/approve not now");
}

}  // namespace
}  // namespace factory::test
