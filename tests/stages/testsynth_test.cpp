// The testsynth stage: acceptance tests for every sample ticket (one per criterion) that pass
// on codegen's code, the counts of a failing project, a hanging test run, idempotency, rounds,
// the openai provider, and refusing a repository outside the data dir.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "common/workspace.h"
#include "config/contract.h"
#include "gate/secret_scan.h"
#include "runtime/fake_stage_context.h"
#include "runtime/stage_registry.h"
#include "stages/fake_openai_server.h"
#include "stages/sample_specs.h"
#include "test_util.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace factory;
using namespace factory::stages;
using factory::test::FakeStageContext;

namespace {

std::unique_ptr<Stage> make(const std::string& name) {
  auto s = runtime::create_stage(name);
  REQUIRE_OK(s);
  return std::move(*s);
}

struct Env {
  test::TempDir dir;
  FakeStageContext ctx;
  std::unique_ptr<Stage> codegen = make("codegen");
  std::unique_ptr<Stage> testsynth = make("testsynth");
  Env() {
    ctx.set_data_dir(dir.path() / "data");
    ctx.set_scratch_dir(dir.path() / "scratch");
  }

  // Runs codegen; returns its artifact.
  json::object code(const std::string& spec, int attempt = 1,
                    const std::string& project_dir = test::invoices_project_dir()) {
    ctx.clear_outputs();
    StageResult r = codegen->process(
        test::make_event(test::codegen_payload(spec, attempt, "", project_dir)), ctx);
    INFO(r.reason());
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    return json::parse(ctx.outputs().back().payload).as_object();
  }

  // Runs testsynth (schemas checked as the runtime would); returns its result and output.
  std::pair<StageResult, json::object> tests(const std::string& payload) {
    auto in = config::Contract::compile(testsynth->info().input_schema, "testsynth input");
    REQUIRE_OK(in);
    REQUIRE_OK((*in)->validate(payload));
    ctx.clear_outputs();
    StageResult r = testsynth->process(test::make_event(payload), ctx);
    json::object out;
    if (!ctx.outputs().empty()) {
      auto contract = config::Contract::compile(testsynth->info().output_schema, "test_results");
      REQUIRE_OK(contract);
      REQUIRE_OK((*contract)->validate(ctx.outputs().back().payload));
      out = json::parse(ctx.outputs().back().payload).as_object();
    }
    return {r, out};
  }
};

std::string payload(const std::string& spec, const json::object& artifact,
                    int64_t timeout_ms = 60000) {
  json::object p{{"spec", json::parse(spec)},
                 {"artifact", artifact},
                 {"provider", "template"},
                 {"project_dir", test::invoices_project_dir()},
                 {"timeout_ms", timeout_ms}};
  return json::serialize(p);
}

std::string git_out(const std::string& repo, std::vector<std::string> args) {
  Result<std::string> r = git(repo, args);
  REQUIRE_OK(r);
  return *r;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// How many different test bodies the acceptance module has (docstrings left out).
size_t distinct_bodies(const std::string& module) {
  std::set<std::string> bodies;
  size_t at = module.find("    def test_criterion_");
  while (at != std::string::npos) {
    size_t next = module.find("    def test_criterion_", at + 1);
    std::string method = module.substr(at, next == std::string::npos ? next : next - at);
    size_t doc_end = method.find("\"\"\"\n");
    bodies.insert(method.substr(doc_end == std::string::npos ? 0 : doc_end));
    at = next;
  }
  return bodies.size();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A project whose own tests pass once, fail once, error once and skip once.
fs::path failing_project(const fs::path& root, const std::string& extra_test = "") {
  fs::path dir = root / "calc-seed";
  write(dir / "factory-project.yaml",
        "name: calc\ntest_command: [python3, -m, unittest, discover, -s, tests, -t, .]\n");
  write(dir / "calc/__init__.py", "def add(a, b):\n    return a + b\n");
  write(dir / "tests/__init__.py", "");
  write(dir / "tests/test_calc.py",
        "import unittest\n\nfrom calc import add\n\n\nclass CalcTest(unittest.TestCase):\n"
        "    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n\n"
        "    def test_wrong(self):\n        self.assertEqual(add(1, 2), 4)\n\n"
        "    def test_raises(self):\n        raise RuntimeError('boom')\n\n"
        "    @unittest.skip('later')\n    def test_later(self):\n        pass\n" +
            extra_test);
  return dir;
}

}  // namespace

TEST_CASE("testsynth template: one passing test per criterion for every sample", "[testsynth]") {
  Env env;
  for (const test::SampleSpec& s : test::sample_specs()) {
    INFO(s.id);
    json::object artifact = env.code(s.json());
    const std::string repo(artifact["repo"].as_string());
    auto [r, res] = env.tests(payload(s.json(), artifact));
    INFO(r.reason());
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    INFO(res["log_excerpt"].as_string().c_str());
    const std::string commit(res["commit"].as_string());
    CHECK(res["tests_commit"].as_string() == commit);
    CHECK(res["code_commit"] == artifact["commit"]);
    CHECK(res["ticket"].as_string() == s.id);
    CHECK(res["branch"].as_string() == "feature/" + s.id);
    CHECK(git_out(repo, {"rev-parse", "feature/" + s.id}) == commit + "\n");
    CHECK(git_out(repo, {"log", "-1", "--format=%an %s", commit}) ==
          "factoryd " + s.id + ": tests for the acceptance criteria\n");

    // The acceptance module: one test per criterion, the criterion as its docstring.
    std::string files =
        git_out(repo, {"diff", "--name-only", std::string(artifact["commit"].as_string()), commit});
    REQUIRE(files.find("_acceptance.py") != std::string::npos);
    std::string path = files.substr(0, files.find('\n'));
    std::string acceptance = git_out(repo, {"show", commit + ":" + path});
    CHECK(count(acceptance, "    def test_criterion_") == s.criteria.size());
    for (const std::string& c : s.criteria) {
      std::string escaped;
      for (char ch : c) escaped += ch == '"' ? std::string("\\\"") : std::string(1, ch);
      CHECK(acceptance.find("\"\"\"" + escaped + "\"\"\"") != std::string::npos);
    }
    CHECK(distinct_bodies(acceptance) == s.criteria.size());
    // Counts: the seed's 7, codegen's unit tests, and the criteria; nothing fails or skips.
    std::string unit_path = std::string(artifact["files"].as_array()[1].as_string());
    REQUIRE(unit_path.starts_with("tests/test_"));
    size_t unit = count(git_out(repo, {"show", commit + ":" + unit_path}), "    def test_");
    CHECK(res["passed"].as_int64() == static_cast<int64_t>(7 + unit + s.criteria.size()));
    CHECK(res["failed"].as_int64() == 0);
    CHECK(res["errors"].as_int64() == 0);
    CHECK(res["skipped"].as_int64() == 0);
    CHECK(res["exit_code"].as_int64() == 0);
    CHECK(res["timed_out"].as_bool() == false);
    CHECK(res["log_excerpt"].as_string().ends_with("OK\n"));
  }
}

TEST_CASE("testsynth counts the failures and errors and skips of a failing project",
          "[testsynth]") {
  Env env;
  fs::path seed = failing_project(env.dir.path());
  test::SampleSpec spec{"CALC-1", "Multiply numbers", {"2 times 3 is 6", "0 times x is 0"}, "calc"};
  json::object artifact = env.code(spec.json(), 1, seed.string());
  CHECK(artifact["skeleton"].as_bool());
  auto [r, res] = env.tests(payload(spec.json(), artifact));
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);  // failing tests are a result
  INFO(res["log_excerpt"].as_string().c_str());
  CHECK(res["passed"].as_int64() == 1);
  CHECK(res["failed"].as_int64() == 1);
  CHECK(res["errors"].as_int64() == 1);
  // The seed's skip, codegen's skeleton test, and one skipped test per criterion.
  CHECK(res["skipped"].as_int64() == 4);
  CHECK(res["exit_code"].as_int64() == 1);
  CHECK(res["skeleton"].as_bool());
  std::string log(res["log_excerpt"].as_string());
  CHECK(log.find("FAILED (failures=1, errors=1, skipped=4)") != std::string::npos);
  CHECK(log.find("RuntimeError: boom") != std::string::npos);
}

TEST_CASE("testsynth kills a hanging test run at timeout_ms and reports it", "[testsynth]") {
  Env env;
  fs::path seed = failing_project(
      env.dir.path(), "\n    def test_hangs(self):\n        import time\n        time.sleep(60)\n");
  test::SampleSpec spec{"CALC-2", "Hang", {"it hangs"}, "calc"};
  json::object artifact = env.code(spec.json(), 1, seed.string());
  auto start = std::chrono::steady_clock::now();
  auto [r, res] = env.tests(payload(spec.json(), artifact, 1000));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);
  CHECK(res["timed_out"].as_bool());
  CHECK(res["exit_code"].as_int64() == -1);
  CHECK(res["errors"].as_int64() >= 1);
  CHECK(res["log_excerpt"].as_string().starts_with(
      "factoryd: the test command was killed after 1000 ms"));
}

TEST_CASE("testsynth is idempotent and follows the rounds", "[testsynth]") {
  Env env;
  const test::SampleSpec& s = test::sample_spec("INV-105");
  json::object a1 = env.code(s.json(), 1);
  const std::string repo(a1["repo"].as_string());
  const std::string p1 = payload(s.json(), a1);
  auto [r1, res1] = env.tests(p1);
  REQUIRE(r1.kind() == StageResult::Kind::kSuccess);
  auto [r1b, res1b] = env.tests(p1);  // redelivered
  REQUIRE(r1b.kind() == StageResult::Kind::kSuccess);
  CHECK(res1b["commit"] == res1["commit"]);
  CHECK(git_out(repo, {"rev-list", "--count", "main..feature/INV-105"}) == "2\n");

  // Round 2 goes on top of round 1's tests; its tests go on top of it.
  json::object a2 = env.code(s.json(), 2);
  CHECK(git_out(repo, {"rev-parse", std::string(a2["commit"].as_string()) + "^"}) ==
        std::string(res1["commit"].as_string()) + "\n");
  auto [r2, res2] = env.tests(payload(s.json(), a2));
  REQUIRE(r2.kind() == StageResult::Kind::kSuccess);
  CHECK(res2["failed"].as_int64() == 0);
  CHECK(res2["errors"].as_int64() == 0);
  CHECK(res2["attempt"].as_int64() == 2);
  CHECK(git_out(repo, {"log", "--format=%s", "main..feature/INV-105"}) ==
        "INV-105: tests for the acceptance criteria\n"
        "INV-105: Apply discount codes (attempt 2)\n"
        "INV-105: tests for the acceptance criteria\n"
        "INV-105: Apply discount codes (attempt 1)\n");

  // Round 1's event replayed now: the same tests commit, the branch stays where it is.
  auto [r1c, res1c] = env.tests(p1);
  REQUIRE(r1c.kind() == StageResult::Kind::kSuccess);
  CHECK(res1c["commit"] == res1["commit"]);
  CHECK(git_out(repo, {"rev-parse", "feature/INV-105"}) ==
        std::string(res2["commit"].as_string()) + "\n");
}

TEST_CASE("testsynth refuses a repository outside the data dir", "[testsynth]") {
  Env env;
  const test::SampleSpec& s = test::sample_spec("INV-101");
  json::object artifact = env.code(s.json());
  artifact["repo"] = (env.dir.path() / "elsewhere").string();
  env.ctx.clear_outputs();
  StageResult r = env.testsynth->process(test::make_event(payload(s.json(), artifact)), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("is not the project's repository under the data dir") != std::string::npos);
  CHECK(env.ctx.outputs().empty());
}

TEST_CASE("testsynth openai: the model's tests are committed and run and an open breaker routes",
          "[testsynth]") {
  Env env;
  factory::test::FakeOpenAiServer server;
  server.set_files_json(
      R"({"files":[{"path":"tests/test_export_csv_acceptance.py","content":"import unittest\nfrom invoices.export_csv import export_csv\n\n\nclass A(unittest.TestCase):\n    def test_header(self):\n        self.assertTrue(export_csv([]).startswith('number,'))\n"}]})");
  const test::SampleSpec& s = test::sample_spec("INV-101");
  json::object artifact = env.code(s.json());
  json::object p = json::parse(payload(s.json(), artifact)).as_object();
  p["provider"] = "openai";
  p["openai"] = json::object{{"base_url", server.base_url()}, {"model", "m"}};
  auto [r, res] = env.tests(json::serialize(p));
  INFO(r.reason());
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);
  CHECK(res["failed"].as_int64() == 0);
  CHECK(res["passed"].as_int64() > 7);
  // The prompt showed the model the code under test.
  std::string sent(json::parse(server.last_body())
                       .as_object()["messages"]
                       .as_array()[1]
                       .as_object()["content"]
                       .as_string());
  CHECK(sent.find("--- invoices/export_csv.py") != std::string::npos);
  CHECK(sent.find("def export_csv(invoices):") != std::string::npos);

  // With the breaker open nothing is sent and the event goes to the fallback.
  env.ctx.add_breaker("llm", "human-review").set_allow(false);
  const int calls = server.requests();
  // The same round again is answered from the repository without the provider ...
  p["timeout_ms"] = 30000;
  auto [r1, res1] = env.tests(json::serialize(p));
  CHECK(r1.kind() == StageResult::Kind::kSuccess);
  CHECK(res1["commit"] == res["commit"]);
  // ... another model makes another round, and the open breaker routes it.
  p["openai"].as_object()["model"] = "m2";
  auto [r2, res2] = env.tests(json::serialize(p));
  CHECK(r2.kind() == StageResult::Kind::kRoute);
  CHECK(r2.route_topic() == "human-review");
  CHECK(server.requests() == calls);
}

TEST_CASE("the bundled sample tickets pass through ingest then codegen then testsynth",
          "[testsynth]") {
  Env env;
  auto ingest = make("ingest");
  int tickets = 0;
  std::vector<fs::path> files;
  for (const auto& e :
       fs::directory_iterator(fs::path(FACTORY_SOURCE_DIR) / "config/samples/tickets")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 8);
  for (const fs::path& f : files) {
    INFO(f.filename().string());
    std::ifstream in(f);
    std::string ticket((std::istreambuf_iterator<char>(in)), {});
    json::object p{{"ticket", json::parse(ticket)},
                   {"projects", {{"INV", "invoices"}, {"acme/invoices", "invoices"}}}};
    env.ctx.clear_outputs();
    StageResult r = ingest->process(test::make_event(json::serialize(p)), env.ctx);
    if (r.kind() == StageResult::Kind::kRoute) continue;  // no acceptance criteria
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    const std::string spec = env.ctx.outputs().back().payload;
    ++tickets;
    for (int attempt : {1, 2}) {
      json::object artifact = env.code(spec, attempt);
      CHECK(artifact["skeleton"].as_bool() == false);
      auto [tr, res] = env.tests(payload(spec, artifact));
      REQUIRE(tr.kind() == StageResult::Kind::kSuccess);
      INFO(res["log_excerpt"].as_string().c_str());
      CHECK(res["failed"].as_int64() == 0);
      CHECK(res["errors"].as_int64() == 0);
      CHECK(res["skipped"].as_int64() == 0);
      // Each criterion got a check of its own.
      const std::string repo(artifact["repo"].as_string());
      const std::string tests_commit(res["commit"].as_string());
      // (Round 2 writes the same acceptance module again: look it up in the tree.)
      std::string tree = git_out(repo, {"ls-tree", "-r", "--name-only", tests_commit, "tests/"});
      size_t at = tree.find("_acceptance.py");
      REQUIRE(at != std::string::npos);
      size_t line = tree.rfind('\n', at);
      line = line == std::string::npos ? 0 : line + 1;
      std::string acceptance =
          git_out(repo, {"show", tests_commit + ":" + tree.substr(line, at + 14 - line)});
      size_t criteria = json::parse(spec).as_object()["acceptance_criteria"].as_array().size();
      CHECK(count(acceptance, "    def test_criterion_") == criteria);
      CHECK(distinct_bodies(acceptance) == criteria);
      // The gate's secret scanner finds exactly the credential INV-105's round 1 plants.
      Result<Checkout> co = clean_checkout(repo, tests_commit, env.dir.path() / "scan");
      REQUIRE_OK(co);
      auto findings = gate::scan_tree(co->path(), {});
      REQUIRE_OK(findings);
      const bool planted = attempt == 1 && artifact["ticket"].as_string() == "INV-105";
      REQUIRE(findings->size() == (planted ? 1u : 0u));
      if (planted) {
        CHECK((*findings)[0].path == "invoices/discounts.py");
        CHECK((*findings)[0].rule == "stripe_key");
      }
    }
  }
  CHECK(tickets == 8);
}

TEST_CASE("testsynth reads pytest summaries and reports output it cannot read", "[testsynth]") {
  Env env;
  auto project = [&](const std::string& name, const std::string& script) {
    fs::path dir = env.dir.path() / (name + "-seed");
    write(dir / "factory-project.yaml",
          "name: " + name + "\ntest_command: [python3, run_tests.py]\n");
    write(dir / "run_tests.py", script);
    return dir;
  };
  SECTION("pytest") {
    fs::path seed = project("pyt",
                            "print('collected 8 items')\n"
                            "print('===== 2 failed, 5 passed, 1 skipped in 0.12s =====')\n"
                            "raise SystemExit(1)\n");
    test::SampleSpec spec{"PYT-1", "Anything", {"works"}, "pyt"};
    auto [r, res] = env.tests(payload(spec.json(), env.code(spec.json(), 1, seed.string())));
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    CHECK(res["passed"].as_int64() == 5);
    CHECK(res["failed"].as_int64() == 2);
    CHECK(res["skipped"].as_int64() == 1);
    CHECK(res["errors"].as_int64() == 0);
    CHECK(res["exit_code"].as_int64() == 1);
  }
  SECTION("no summary") {
    fs::path seed = project("quiet", "print('all good, trust me')\n");
    test::SampleSpec spec{"Q-1", "Anything", {"works"}, "quiet"};
    auto [r, res] = env.tests(payload(spec.json(), env.code(spec.json(), 1, seed.string())));
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    CHECK(res["passed"].as_int64() == 0);
    CHECK(res["errors"].as_int64() == 1);
    CHECK(res["exit_code"].as_int64() == 0);
    CHECK(res["log_excerpt"].as_string().starts_with(
        "factoryd: no unittest or pytest summary in the output\nall good, trust me"));
  }
  SECTION("missing test program") {
    fs::path dir = env.dir.path() / "nope-seed";
    write(dir / "factory-project.yaml", "name: nope\ntest_command: [no-such-runner-factoryd]\n");
    test::SampleSpec spec{"N-1", "Anything", {"works"}, "nope"};
    auto [r, res] = env.tests(payload(spec.json(), env.code(spec.json(), 1, dir.string())));
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    CHECK(res["exit_code"].as_int64() == 127);
    CHECK(res["errors"].as_int64() == 1);
    CHECK(res["log_excerpt"].as_string().find("no-such-runner-factoryd") != std::string::npos);
  }
}
