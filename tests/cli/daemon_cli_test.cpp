// How commands find the process that holds a data dir (src/cli/remote.h), on the real binary:
// `run` serves the API on <data-dir>/api.sock and commands go through it; `demo --serve` writes
// daemon.json; a holder that serves no API is named in the error; a holder killed with -9 leaves
// files that the next command ignores and the next holder cleans up.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <sys/stat.h>

#include "cli/cli_checks.h"
#include "cli/run_process.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr char kGated[] =
    "dag_id: gated\n"
    "tasks:\n"
    "  build: {stage: noop}\n"
    "  approve: {stage: approval, upstream: [build]}\n"
    "  deploy: {stage: noop, upstream: [approve]}\n";

// A temp dir with a config dir (one topic, one DAG that waits on an approval) and a data dir.
class Env {
 public:
  Env() {
    fs::create_directories(dir_.path() / "config" / "dags");
    std::ofstream(config() + "/dags/gated.yaml") << kGated;
    std::ofstream(config() + "/topics.yaml") << "topics:\n  - name: t\n    partitions: 1\n";
  }
  std::string config() const { return (dir_.path() / "config").string(); }
  std::string data() const { return (dir_.path() / "data").string(); }
  std::string file(const std::string& name) const { return data() + "/" + name; }

  ProcessResult run(std::vector<std::string> args, std::string stdin_text = {}) const {
    args.push_back("--data-dir");
    args.push_back(data());
    return run_factoryd(std::move(args), std::move(stdin_text));
  }
  ProcessResult ok(std::vector<std::string> args, std::string stdin_text = {}) const {
    return require_ok(args, run(args, std::move(stdin_text)));
  }
  json::value ok_json(std::vector<std::string> args) const {
    args.push_back("-o");
    args.push_back("json");
    return stdout_json(ok(std::move(args)));
  }

  // `factoryd run` on this env, returned once it is ready: its "factoryd running" log line comes
  // after the local API is up and daemon.json written.
  ChildProcess start_run() const {
    ChildProcess p = spawn_factoryd({"run", "--config-dir", config(), "--data-dir", data()});
    for (;;) {
      auto line = p.read_stderr_line(60'000);
      REQUIRE(line);
      if (line->find("factoryd running") != std::string::npos) return p;
    }
  }

 private:
  TempDir dir_;
};

json::value read_json(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return json::parse(text);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("run serves the API on <data-dir>/api.sock and every command works beside it",
          "[cli][daemon]") {
  Env env;
  ChildProcess daemon = env.start_run();

  // daemon.json names the socket and the run's pid; the socket is owner-only.
  json::value d = read_json(env.file("daemon.json"));
  CHECK(d.at("url").as_string() == "unix://" + env.file("api.sock"));
  CHECK(d.at("pid").as_int64() == daemon.pid());
  struct stat st {};
  REQUIRE(::stat(env.file("api.sock").c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  json::value holder = read_json(env.file("holder.json"));
  CHECK(holder.at("pid").as_int64() == daemon.pid());
  CHECK(contains(std::string(holder.at("command").as_string()), "factoryd run"));

  // Log commands, a write among them.
  CHECK(contains(env.ok({"topics", "list"}).out, "t\n"));
  CHECK(env.ok({"produce", "t", "--acks"}, "hello\n").out == "0 0\n");
  CHECK(env.ok({"consume", "t", "-e"}).out == "hello\n");
  // DAG commands: a trigger through the run's scheduler, which parks the run on its approval.
  env.ok({"dags", "trigger", "gated", "-r", "g1"});
  CHECK(eventually(
      [&] {
        json::value a = env.ok_json({"approvals", "list"});
        return a.as_array().size() == 1 && a.as_array()[0].at("run_id").as_string() == "g1";
      },
      30'000));
  CHECK(env.ok_json({"runs", "list"}).as_array().size() == 1);
  env.ok({"approvals", "approve", "g1", "approve"});
  CHECK(eventually(
      [&] {
        json::value r = env.ok_json({"runs", "show", "g1"});
        return r.at("state").as_string() == "success";
      },
      30'000));
  // The audit names the caller by the socket's peer credentials.
  json::value audit = env.ok_json({"audit", "list"});
  REQUIRE(audit.as_array().size() >= 1);
  CHECK(audit.as_array()[0].at("actor").as_string().starts_with("unix:"));
  // A second run cannot go through the API: the error names the first and where it serves.
  ProcessResult second = env.run({"run", "--config-dir", env.config()});
  INFO(second.err);
  CHECK(second.exit_code == 1);
  CHECK(contains(second.err, "is held by factoryd process " + std::to_string(daemon.pid()) +
                                 " (factoryd run --config-dir "));
  CHECK(contains(second.err, "which serves the API at unix://" + env.file("api.sock")));

  daemon.kill(SIGTERM);
  ProcessResult r = daemon.wait();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(fs::exists(env.file("daemon.json")));
  CHECK_FALSE(fs::exists(env.file("api.sock")));
  CHECK_FALSE(fs::exists(env.file("holder.json")));
}

TEST_CASE("after kill -9 of run, commands open the data dir despite its stale files",
          "[cli][daemon][crash]") {
  Env env;
  {
    ChildProcess daemon = env.start_run();
    env.ok({"produce", "t"}, "before\n");
    daemon.kill(SIGKILL);
    ProcessResult r = daemon.wait();  // reaped: its pid is gone
    CHECK(r.term_signal == SIGKILL);
  }
  REQUIRE(fs::exists(env.file("daemon.json")));
  REQUIRE(fs::exists(env.file("api.sock")));
  REQUIRE(fs::exists(env.file("holder.json")));

  // The dead daemon is not asked: the command opens the log itself, and cleans up after it.
  CHECK(env.ok({"consume", "t", "-e"}).out == "before\n");
  CHECK_FALSE(fs::exists(env.file("daemon.json")));
  CHECK_FALSE(fs::exists(env.file("api.sock")));
  CHECK_FALSE(fs::exists(env.file("holder.json")));

  // And a new run serves again.
  ChildProcess daemon = env.start_run();
  CHECK(env.ok({"produce", "t", "--acks"}, "after\n").out == "0 1\n");
  daemon.kill(SIGTERM);
  CHECK(daemon.wait().exit_code == 0);
}

TEST_CASE("a data dir held by a process without an API: the error names it and how to proceed",
          "[cli][daemon]") {
  Env env;
  env.ok({"topics", "create", "u"});
  ChildProcess consumer = spawn_factoryd({"consume", "u", "--data-dir", env.data()});
  // holder.json is written once the consumer holds the log.
  REQUIRE(eventually([&] { return fs::exists(env.file("holder.json")); }, 30'000));
  ProcessResult r = env.run({"produce", "u"}, "x\n");
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "factoryd: error: data dir '" + env.data() +
                            "' is held by factoryd process " + std::to_string(consumer.pid()) +
                            " (factoryd consume u --data-dir "));
  CHECK(contains(r.err, "which serves no API; stop it and start `factoryd serve` instead"));
  CHECK(contains(r.err, "or pass --server URL"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  consumer.kill(SIGTERM);
  CHECK(consumer.wait().exit_code == 0);
  CHECK_FALSE(fs::exists(env.file("holder.json")));
}

TEST_CASE("run serves its local API also where <data-dir>/api.sock is over 107 bytes",
          "[cli][daemon]") {
  TempDir dir;
  fs::create_directories(dir.path() / "config" / "dags");
  std::ofstream((dir.path() / "config" / "dags" / "gated.yaml").string()) << kGated;
  std::string data = (dir.path() / std::string(120, 'd')).string();
  REQUIRE((data + "/api.sock").size() > 107);  // over sockaddr_un's sun_path
  ChildProcess p =
      spawn_factoryd({"run", "--config-dir", (dir.path() / "config").string(), "--data-dir", data});
  for (;;) {
    auto line = p.read_stderr_line(60'000);
    REQUIRE(line);
    CHECK_FALSE(contains(*line, "no local API"));
    if (contains(*line, "factoryd running")) break;
  }
  CHECK(read_json(data + "/daemon.json").at("url").as_string() == "unix://" + data + "/api.sock");
  ProcessResult r = run_factoryd({"dags", "list", "--data-dir", data});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "gated"));
  p.kill(SIGTERM);
  CHECK(p.wait().exit_code == 0);
  CHECK_FALSE(fs::exists(data + "/api.sock"));
}

TEST_CASE("demo --serve writes daemon.json and approvals work beside it", "[cli][daemon][demo]") {
  TempDir dir;
  std::string data = dir.str() + "/data";
  // From the repository root, as a user runs it (the DAG names config/ paths relative to it).
  std::string cmd = std::string("cd '") + FACTORY_SOURCE_DIR + "' && exec '" + FACTORYD_BIN +
                    "' demo --serve --listen 127.0.0.1:0 --interval-ms 0 --data-dir '" + data + "'";
  ChildProcess demo =
      spawn_process({"/bin/sh", "-c", cmd}, {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL"});
  // The header line comes once the API is up.
  for (;;) {
    auto line = demo.read_stderr_line(60'000);
    REQUIRE(line);
    if (line->rfind("factoryd demo: ", 0) == 0) break;
  }
  json::value d = read_json(data + "/daemon.json");
  CHECK(d.at("url").as_string().starts_with("http://127.0.0.1:"));
  CHECK(d.at("pid").as_int64() == demo.pid());

  ProcessResult r = run_factoryd({"approvals", "list", "--all", "--data-dir", data});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "RUN"));
  r = run_factoryd({"runs", "list", "--data-dir", data, "-o", "json"});
  CHECK(r.exit_code == 0);
  CHECK(json::parse(r.out).is_array());

  demo.kill(SIGTERM);
  demo.wait();  // 0 when every ticket finished before the signal, else 1 (interrupted)
  CHECK_FALSE(fs::exists(data + "/daemon.json"));
}

}  // namespace factory::test
