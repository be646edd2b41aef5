// The command line's conventions on the real binary (docs/cli.md): one meaning per flag with
// the old spellings still working and warning, nothing silently ignored, unknown words named,
// global options before the command, and exit codes. Each test has its own temp dir.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "cli/run_process.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr char kDag[] =
    "dag_id: hello\n"
    "tasks:\n"
    "  a: {stage: noop}\n";

// A temp dir with a config dir (cfg/dags/hello.yaml), an empty config dir (empty/), a
// factory.yaml naming cfg/ and data/ (relative to the file), and a data dir (data/).
class Env {
 public:
  Env() {
    fs::create_directories(dir_.path() / "cfg" / "dags");
    fs::create_directories(dir_.path() / "empty");
    std::ofstream(path("cfg/dags/hello.yaml")) << kDag;
    std::ofstream(path("factory.yaml")) << "data_dir: data\nconfig_dir: cfg\n";
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string data() const { return path("data"); }

  // factoryd ARGS, from `cwd` (default: the temp dir), with extra environment `env`.
  ProcessResult run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                    const std::string& cwd = {}) const {
    std::string cmd = "cd '" + (cwd.empty() ? dir_.str() : cwd) + "' && exec '" FACTORYD_BIN "'";
    for (const std::string& a : args) cmd += " '" + a + "'";
    std::vector<std::string> clear = {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL", "FACTORY_SERVER",
                                      "FACTORY_CONFIG"};
    clear.insert(clear.end(), env.begin(), env.end());
    return run_process({"/bin/sh", "-c", cmd}, {}, clear);
  }

 private:
  TempDir dir_;
};

std::string warning(const std::string& old_usage, const std::string& command,
                    const std::string& new_usage) {
  return "factoryd: warning: '" + old_usage + "' is deprecated for '" + command + "'; use '" +
         new_usage + "'\n";
}

// Runs nothing itself: `r` is evaluated once.
#define REQUIRE_EXIT(r, code)                                       \
  do {                                                              \
    const ProcessResult& result_ = (r);                             \
    INFO("stdout: " << result_.out << "\nstderr: " << result_.err); \
    REQUIRE(result_.exit_code == (code));                           \
  } while (0)

TEST_CASE("old spellings of the config dir work and warn", "[cli][flags]") {
  Env env;
  SECTION("run -c DIR / --config DIR") {
    for (std::string flag : {"-c", "--config"}) {
      ProcessResult r =
          env.run({"run", flag, "cfg", "--data-dir", env.data(), "--exit-when-idle", "100"});
      REQUIRE_EXIT(r, 0);
      CHECK(r.err.find(warning(flag + " DIR", "run", "--config-dir DIR")) != std::string::npos);
    }
  }
  SECTION("dags list -c DIR / --config DIR") {
    for (std::string flag : {"-c", "--config"}) {
      ProcessResult r = env.run({"dags", "list", flag, "cfg", "--data-dir", env.data()});
      REQUIRE_EXIT(r, 0);
      CHECK(r.err == warning(flag + " DIR", "dags list", "--config-dir DIR"));
      CHECK(r.out.find("hello") != std::string::npos);
    }
  }
  SECTION("dags trigger --config DIR (its -c is the conf)") {
    ProcessResult r = env.run(
        {"dags", "trigger", "hello", "--config", "cfg", "-c", "{}", "--data-dir", env.data()});
    REQUIRE_EXIT(r, 0);
    CHECK(r.err.find(warning("--config DIR", "dags trigger", "--config-dir DIR")) !=
          std::string::npos);
  }
  SECTION("the new spelling does not warn") {
    ProcessResult r = env.run({"dags", "list", "--config-dir", "cfg", "--data-dir", env.data()});
    REQUIRE_EXIT(r, 0);
    CHECK(r.err.empty());
  }
}

TEST_CASE("run --config FILE reads factory.yaml, and -c FILE too with a warning", "[cli][flags]") {
  Env env;
  for (std::string flag : {"--config", "-c"}) {
    fs::remove_all(env.data());
    ProcessResult r = env.run({"run", flag, "factory.yaml", "--exit-when-idle", "100"});
    REQUIRE_EXIT(r, 0);
    bool warned = r.err.find(warning("-c FILE", "run", "--config FILE")) != std::string::npos;
    CHECK(warned == (flag == "-c"));
    // data_dir and config_dir came from the file: the log is in data/, the DAG was loaded.
    CHECK(fs::is_directory(env.path("data/log")));
    CHECK(r.err.find("\"dags\":1") != std::string::npos);
  }
}

TEST_CASE("a config dir where the factory.yaml is taken names --config-dir", "[cli][flags]") {
  Env env;
  for (std::string cmd : {"serve", "config"}) {
    std::vector<std::string> args = {cmd, "--config", "cfg"};
    if (cmd == "config") args.insert(args.begin() + 1, "validate");
    ProcessResult r = env.run(args);
    REQUIRE_EXIT(r, 1);
    CHECK(r.err.find("config file 'cfg' is a directory; --config takes the factory.yaml file "
                     "(cfg/factory.yaml?), and the directory of topics.yaml, pipelines/ and "
                     "dags/ is --config-dir") != std::string::npos);
  }
}

TEST_CASE("a factory.yaml where a config dir is taken is a usage error", "[cli][flags]") {
  Env env;
  ProcessResult r = env.run({"dags", "list", "--config", "factory.yaml", "--data-dir", env.data()});
  REQUIRE_EXIT(r, 2);
  CHECK(r.err ==
        "factoryd: error: 'dags list' takes a config directory, and 'factory.yaml' (given with "
        "--config) is a file; pass the directory that holds dags/ and pipelines/ with "
        "--config-dir DIR (--config FILE, a factory.yaml, is for serve, run, demo and config)\n");
}

TEST_CASE("consume -c/--count, topics create --config, config show -c still work and warn",
          "[cli][flags]") {
  Env env;
  REQUIRE_EXIT(env.run({"topics", "create", "t", "--data-dir", env.data()}), 0);
  ProcessResult p = run_process({FACTORYD_BIN, "produce", "t", "--data-dir", env.data()},
                                "a\nb\nc\n", {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL"});
  REQUIRE_EXIT(p, 0);
  SECTION("consume -c N / --count N") {
    ProcessResult a = env.run({"consume", "t", "-e", "-c", "2", "--data-dir", env.data()});
    REQUIRE_EXIT(a, 0);
    CHECK(a.out == "a\nb\n");
    CHECK(a.err == warning("-c N", "consume", "-n N"));
    ProcessResult b = env.run({"consume", "t", "-e", "--count", "1", "--data-dir", env.data()});
    REQUIRE_EXIT(b, 0);
    CHECK(b.out == "a\n");
    CHECK(b.err == warning("--count N", "consume", "--limit N"));
    ProcessResult n = env.run({"consume", "t", "-e", "--limit", "1", "--data-dir", env.data()});
    CHECK(n.out == "a\n");
    CHECK(n.err.empty());
  }
  SECTION("topics create --config k=v") {
    ProcessResult r = env.run(
        {"topics", "create", "u", "--config", "retention.ms=1000", "--data-dir", env.data()});
    REQUIRE_EXIT(r, 0);
    CHECK(r.err == warning("--config k=v", "topics create", "--topic-config k=v"));
    json::value d = json::parse(
        env.run({"topics", "describe", "u", "-o", "json", "--data-dir", env.data()}).out);
    CHECK(d.at("config").at("retention.ms") == 1000);
  }
  SECTION("config show -c FILE") {
    ProcessResult r = env.run({"config", "show", "-c", "factory.yaml", "-o", "json"});
    REQUIRE_EXIT(r, 0);
    CHECK(r.err == warning("-c FILE", "config show", "--config FILE"));
    CHECK(r.out.find(R"({"key":"config_dir","value":"cfg"})") != std::string::npos);
  }
}

TEST_CASE("nothing silently ignored: missing or empty config dirs, a bad FACTORY_LOG_LEVEL",
          "[cli][flags]") {
  Env env;
  SECTION("dags list from a folder without config/") {
    ProcessResult r = env.run({"dags", "list", "--data-dir", env.data()});
    REQUIRE_EXIT(r, 1);
    CHECK(r.out.empty());
    CHECK(r.err.find("factoryd: error: config dir 'config' not found in ") == 0);
    CHECK(r.err.find(" (it should hold dags/*.yaml and pipelines/*.yaml); pass --config-dir DIR, "
                     "or run from the folder that holds config/\n") != std::string::npos);
    CHECK(r.err.find("pass --config-dir DIR") != std::string::npos);
  }
  SECTION("run without a config dir") {
    ProcessResult r = env.run({"run", "--data-dir", env.data(), "--exit-when-idle", "100"});
    REQUIRE_EXIT(r, 1);
    CHECK(r.err.find("factoryd: error: config dir 'config' not found") == 0);
    CHECK(!fs::exists(env.data()));  // refused before the data dir was touched
  }
  SECTION("an empty config dir: a warning naming what was looked for") {
    ProcessResult r = env.run(
        {"run", "--config-dir", "empty", "--data-dir", env.data(), "--exit-when-idle", "100"});
    REQUIRE_EXIT(r, 0);
    CHECK(r.err.find("factoryd: warning: nothing to run in config dir 'empty': no pipelines "
                     "(looked for empty/pipelines/*.yaml) and no DAGs (empty/dags/*.yaml)") !=
          std::string::npos);
    ProcessResult l = env.run({"dags", "list", "--config-dir", "empty", "--data-dir", env.data()});
    REQUIRE_EXIT(l, 0);
    CHECK(l.err ==
          "factoryd: warning: no DAGs in config dir 'empty' (looked for empty/dags/*.yaml); pass "
          "--config-dir DIR if they are elsewhere\n");
  }
  SECTION("FACTORY_LOG_LEVEL=bogus, for one-shot commands and serve alike") {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"topics", "list", "--data-dir", env.data()},
          std::vector<std::string>{"serve", "--data-dir", env.data(), "--config-dir", "cfg"}}) {
      ProcessResult r = env.run(args, {"FACTORY_LOG_LEVEL=bogus"});
      REQUIRE_EXIT(r, 2);
      CHECK(r.err ==
            "factoryd: error: FACTORY_LOG_LEVEL='bogus' is not a log level; set it to debug, "
            "info, warn or error, or unset it\n");
    }
    REQUIRE_EXIT(env.run({"topics", "list", "--data-dir", env.data()}, {"FACTORY_LOG_LEVEL=error"}),
                 0);
  }
}

TEST_CASE("unknown words are named, with a did-you-mean, exit 2", "[cli][flags]") {
  Env env;
  auto check = [&](std::vector<std::string> args, const std::string& err) {
    ProcessResult r = env.run(args);
    REQUIRE_EXIT(r, 2);
    CHECK(r.out.empty());
    CHECK(r.err == err);
  };
  check({"topics", "lst"},
        "factoryd: error: unknown command 'lst' for 'topics'; did you mean 'list'?\n");
  check({"trace", "--help"},
        "factoryd: error: unknown command 'trace'; 'factoryd' takes serve, demo, topics, produce, "
        "consume, groups, run, dlq, dags, runs, tasks, approvals, audit, config, token; see "
        "'factoryd --help'\n");
  check({"topic", "list"}, "factoryd: error: unknown command 'topic'; did you mean 'topics'?\n");
  check({"groups", "reset-offset"},
        "factoryd: error: unknown command 'reset-offset' for 'groups'; did you mean "
        "'reset-offsets'?\n");
  check({"topics"},
        "factoryd: error: 'factoryd topics' needs a command: apply, create, list, describe, "
        "delete; run 'factoryd topics --help' for usage\n");
  check({"--data-dir", env.data(), "dlq"},
        "factoryd: error: 'factoryd dlq' needs a command: list, replay; run 'factoryd dlq --help' "
        "for usage\n");
  check({"topics", "--bogus"},
        "factoryd: error: unknown option '--bogus' for 'topics': it needs a command first: "
        "apply, create, list, describe, delete; run 'factoryd topics --help' for usage\n");
  // A known group's help still works.
  ProcessResult help = env.run({"topics", "--help"});
  REQUIRE_EXIT(help, 0);
  CHECK(help.out.find("create") != std::string::npos);
}

TEST_CASE("global options before the command", "[cli][flags]") {
  Env env;
  SECTION("-o json and --data-dir before the command") {
    ProcessResult r = env.run({"-o", "json", "--data-dir", env.data(), "dlq", "list"});
    REQUIRE_EXIT(r, 0);
    CHECK(json::parse(r.out).is_array());
    ProcessResult t = env.run({"--output=json", "topics", "list", "--data-dir", env.data()});
    REQUIRE_EXIT(t, 0);
    CHECK(t.out == "[]\n");
  }
  SECTION("consume: -o before the command is the format, after it the offset") {
    REQUIRE_EXIT(env.run({"topics", "create", "t", "--data-dir", env.data()}), 0);
    REQUIRE_EXIT(run_process({FACTORYD_BIN, "produce", "t", "--data-dir", env.data()}, "a\nb\n",
                             {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL"}),
                 0);
    ProcessResult r =
        env.run({"-o", "json", "consume", "t", "-o", "1", "-e", "--data-dir", env.data()});
    REQUIRE_EXIT(r, 0);
    CHECK(json::parse(r.out).at("value") == "b");
  }
  SECTION("a command that takes no -o refuses it") {
    ProcessResult r = env.run({"-o", "json", "serve", "--data-dir", env.data()});
    REQUIRE_EXIT(r, 2);
    CHECK(r.err ==
          "factoryd: error: 'factoryd serve' takes no -o/--output; leave it out (see docs/cli.md "
          "for the commands that take it)\n");
  }
  SECTION("--server before the command goes to the command; an unknown option is named") {
    ProcessResult r = env.run({"--server", "http://127.0.0.1:1", "runs", "list"});
    REQUIRE_EXIT(r, 1);  // the command tried that daemon
    CHECK(r.err.find("127.0.0.1:1") != std::string::npos);
    ProcessResult u = env.run({"--bogus", "topics", "list", "--data-dir", env.data()});
    REQUIRE_EXIT(u, 2);
    CHECK(u.err.find("--bogus") != std::string::npos);
  }
  SECTION("dlq replay takes --dry-run (the default), not together with --execute") {
    REQUIRE_EXIT(env.run({"topics", "create", "t.dlq", "--data-dir", env.data()}), 0);
    ProcessResult dry =
        env.run({"dlq", "replay", "t.dlq", "--all", "--dry-run", "--data-dir", env.data()});
    REQUIRE_EXIT(dry, 1);  // parsed; the topic just has no dead letter
    CHECK(dry.err.find("no dead letter in t.dlq") != std::string::npos);
    REQUIRE_EXIT(env.run({"dlq", "replay", "t.dlq", "--all", "--dry-run", "--execute", "--data-dir",
                          env.data()}),
                 2);
  }
  SECTION("the help footer says which commands take -o") {
    ProcessResult r = env.run({"--help"});
    REQUIRE_EXIT(r, 0);
    CHECK(r.out.find("-o/--output table|json by every command but serve, run;") !=
          std::string::npos);
    CHECK(r.out.find("`consume` uses -o for the offset") != std::string::npos);
    CHECK(r.out.find("docs/cli.md") != std::string::npos);
  }
}

TEST_CASE("demo --interactive without a terminal is a usage error", "[cli][flags]") {
  Env env;
  ProcessResult r = env.run({"demo", "--interactive", "--data-dir", env.data()});
  REQUIRE_EXIT(r, 2);
  CHECK(r.err ==
        "factoryd: error: --interactive asks on the terminal, and stdin is not a terminal; run it "
        "from a terminal, or leave --interactive out (deployments are then approved "
        "automatically)\n");
  CHECK(!fs::exists(env.data()));
}

TEST_CASE("demo exits 1 when a ticket does not reach its expected outcome", "[cli][flags]") {
  Env env;
  // A ticket for a project the config does not know: codegen fails it.
  fs::create_directories(env.path("samples"));
  std::ofstream(env.path("samples/01-nope.json"))
      << R"({"id": "NOPE-1", "title": "Format amounts", "project": "NOPE",)"
      << R"( "description": "AC: format_amount(5, \"USD\") returns \"0.05 USD\"\n"})";
  // --config FILE: the demo takes config_dir and data_dir from the factory.yaml.
  std::ofstream(env.path("demo.yaml")) << "config_dir: " FACTORY_SOURCE_DIR "/config\n"
                                       << "data_dir: demo-data\n";
  ProcessResult r =
      env.run({"demo", "--samples", "samples", "--config", "demo.yaml", "--interval-ms", "0"});
  REQUIRE_EXIT(r, 1);
  CHECK(fs::is_directory(env.path("demo-data/log")));
  CHECK(r.out.find("outcomes: 1 failed") != std::string::npos);
  CHECK(r.err.find("factoryd: error: 1 of 1 tickets did not reach their expected outcome "
                   "(deployed or human-review); see the OUTCOME and DETAIL columns above\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace factory::test
