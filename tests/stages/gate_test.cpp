// The gate stage (stages/gate/): the secret scanner's rules, the licence allow-list, and the
// stage on real commits — a planted secret fails it (reported by file:line, never the value), a
// configured tool that is not installed is a failed check, the test threshold, and a clean
// commit passes.
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "config/contract.h"
#include "gate/files_arg.h"
#include "gate/licences.h"
#include "gate/secret_scan.h"
#include "runtime/fake_stage_context.h"
#include "runtime/stage_registry.h"
#include "stages/repo_fixture.h"

using namespace factory;
using namespace factory::stages::gate;
namespace json = boost::json;

namespace {

std::string text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

// A fake Stripe live key, assembled so this file itself holds no scannable literal.
const std::string kPlanted = std::string("sk_") + "live_" + "51HxYzAbCdEfGh12345678QrStUv";

struct GateRun {
  StageResult result = StageResult::success();
  json::object verdict;
  std::string payload;

  const json::object& check(const std::string& name) const {
    for (const json::value& c : verdict.at("checks").as_array()) {
      if (c.at("name").as_string() == name) return c.as_object();
    }
    FAIL("no check " << name << " in " << payload);
    static json::object none;
    return none;
  }
};

GateRun run_gate(test::RepoFixture& f, const std::string& commit, const std::string& tests,
                 const std::string& checks, const std::string& files = "[]") {
  auto stage = runtime::create_stage("gate");
  REQUIRE_OK(stage);
  StageInfo info = (*stage)->info();
  std::string input = R"({"artifact":{"ticket":"T-1","project":")" + f.project() + R"(","repo":")" +
                      f.repo() + R"(","branch":"feature/T-1","commit":")" + commit +
                      R"(","attempt":1,"files":)" + files + R"(},"tests":)" + tests +
                      R"(,"checks":)" + checks + "}";
  auto in_contract = config::Contract::compile(info.input_schema, "gate input");
  REQUIRE_OK(in_contract);
  REQUIRE_OK((*in_contract)->validate(input));
  test::FakeStageContext ctx;
  ctx.set_data_dir(f.data_dir());
  ctx.set_scratch_dir(f.scratch_dir());
  GateRun out;
  out.result = (*stage)->process(test::make_event(input), ctx);
  if (out.result.kind() != StageResult::Kind::kSuccess) return out;
  REQUIRE(ctx.outputs().size() == 1);
  out.payload = ctx.outputs()[0].payload;
  auto out_contract = config::Contract::compile(info.output_schema, "gate output");
  REQUIRE_OK(out_contract);
  REQUIRE_OK((*out_contract)->validate(out.payload));
  out.verdict = json::parse(out.payload).as_object();
  // The checkout is gone once the stage returns.
  std::error_code ec;
  CHECK((!std::filesystem::exists(f.scratch_dir() / "gate") ||
         std::filesystem::is_empty(f.scratch_dir() / "gate", ec)));
  return out;
}

std::string tests_json(const std::string& commit, int passed, int failed, int errors) {
  return R"({"commit":")" + commit + R"(","passed":)" + std::to_string(passed) + R"(,"failed":)" +
         std::to_string(failed) + R"(,"errors":)" + std::to_string(errors) +
         R"J(,"log_excerpt":"Ran some tests\nFAILED (failures=1)"})J";
}

test::RepoFixture invoices() {
  return test::RepoFixture(
      "shop", {{"shop/__init__.py", "\"\"\"The shop.\"\"\"\n"}, {"tests/__init__.py", ""}});
}

}  // namespace

TEST_CASE("the secret scanner finds each kind of credential and masks it", "[gate]") {
  struct Case {
    std::string line;
    std::string rule;
    std::string secret;  // must not appear in the finding
  };
  const std::vector<Case> cases = {
      {"-----BEGIN RSA " + std::string("PRIVATE KEY-----"), "private_key", ""},
      {"key_id = '" + std::string("AKIA") + "IOSFODNN7EXAMPLE'", "aws_access_key",
       "IOSFODNN7EXAMPLE"},
      {"DISCOUNT_API_KEY = \"" + kPlanted + "\"", "stripe_key", kPlanted.substr(8)},
      {"auth = '" + std::string("ghp_") + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789'", "github_token",
       "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"},
      {"SLACK = \"" + std::string("xoxb-") + "123456789012-abcdefABCDEF\"", "slack_token",
       "123456789012-abcdefABCDEF"},
      {"db_password = \"hunter2hunter2\"", "generic_secret", "hunter2hunter2"},
      {"  \"api_key\": \"Zx81mQ0pLr7sT\",", "generic_secret", "Zx81mQ0pLr7sT"},
  };
  for (const Case& c : cases) {
    INFO(c.line);
    auto found = scan_text("src/a.py", "# header\n" + c.line + "\n");
    REQUIRE(found.size() == 1);
    CHECK(found[0].rule == c.rule);
    CHECK(found[0].line == 2);
    CHECK(describe(found[0]).starts_with("src/a.py:2: " + c.rule + ": "));
    if (!c.secret.empty()) CHECK(describe(found[0]).find(c.secret) == std::string::npos);
  }
  // Not secrets: environment reads, templates, short values, comparisons, placeholders, and a
  // line marked as a deliberate fake.
  const std::vector<std::string> clean = {
      "DISCOUNT_API_KEY = os.environ.get(\"DISCOUNT_API_KEY\", \"\")",
      "token = \"{{ secrets.token }}\"",
      "password = \"short\"",
      "if token == \"abcdefghijkl\":",
      "api_key = \"${API_KEY}\"",
      "password = \"xxxxxxxxxxxx\"",
      "with mock.patch.dict(os.environ, {\"DISCOUNT_API_KEY\": \"from-env\"}):",
      "api_key = \"dummy-key-1234\"",
      "SECRET = \"" + kPlanted + "\"  # factory:allow-secret (test fixture)",
  };
  for (const std::string& line : clean) {
    INFO(line);
    CHECK(scan_text("a.py", line).empty());
  }
}

TEST_CASE("licences: requirements comments, the mapping file, and expressions", "[gate]") {
  CHECK(licence_allowed("MIT", {"MIT"}));
  CHECK(licence_allowed("mit", {"MIT"}));
  CHECK(licence_allowed("GPL-3.0 OR MIT", {"MIT"}));
  CHECK_FALSE(licence_allowed("GPL-3.0 AND MIT", {"MIT"}));
  CHECK(licence_allowed("(Apache-2.0 AND MIT)", {"MIT", "Apache-2.0"}));
  CHECK_FALSE(licence_allowed("", {"MIT"}));

  std::vector<std::string> problems;
  auto deps = parse_requirements(
      "# pinned\nrequests==2.31.0  # license: Apache-2.0\nAttrs>=23 # licence: MIT\n"
      "Py_YAML==6.0\n-r other.txt\n",
      {{"py.yaml", "MIT"}, {"requests", "Apache-2.0"}}, &problems);
  REQUIRE(deps.size() == 3);
  CHECK(deps[0].name == "requests");
  CHECK(deps[0].licence == "Apache-2.0");  // from the configuration
  CHECK(deps[0].declared == "Apache-2.0");
  CHECK(deps[0].line == 2);
  CHECK(deps[1].licence.empty());  // only the manifest's own comment says MIT: not trusted
  CHECK(deps[1].declared == "MIT");
  CHECK(deps[2].licence == "MIT");  // from the configuration, by normalised name
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("line 5: '-r other.txt' is an option line") != std::string::npos);
}

TEST_CASE("the licence gate trusts no licence the generated code declares itself", "[gate]") {
  // Found by reading (issue 12): a generated requirements.txt could pass the allow-list by
  // writing "# license: MIT" after any dependency, or a factory-licences.yaml beside it.
  auto f = invoices();
  std::string c =
      f.commit("T-1", {{"requirements.txt", "gplthing==1.0  # license: MIT\nother==2.0\n"},
                       {"factory-licences.yaml", "other: MIT\n"}});
  GateRun g = run_gate(f, c, tests_json(c, 1, 0, 0), "{}");
  INFO(g.payload);
  CHECK(g.verdict.at("gate_passed") == false);
  std::string report(g.check("licences").at("report").as_string());
  CHECK(report.find("requirements.txt:1: gplthing has no known licence (the manifest claims "
                    "'MIT', but licences written by the generated code are not trusted)") !=
        std::string::npos);
  CHECK(report.find("requirements.txt:2: other has no known licence") != std::string::npos);
  // The operator's facts, from the gate's configuration or a file outside the project, count.
  test::TempDir facts;
  test::RepoFixture::write(facts.path() / "licences.yaml", "other: BSD-3-Clause\n");
  GateRun ok = run_gate(f, c, tests_json(c, 1, 0, 0),
                        R"({"licences":{"known":{"gplthing":"MIT"},"known_file":")" +
                            (facts.path() / "licences.yaml").string() + R"("}})");
  INFO(ok.payload);
  CHECK(ok.check("licences").at("passed") == true);
  // A known_file inside the checkout would be the generated code's again; a relative one is
  // ambiguous. Both are refused.
  test::RepoFixture::write(facts.path() / "requirements.txt", "other==2.0\n");
  auto inside = check_licences(facts.path(),
                               {.allow = {"MIT"}, .known_file = facts.path() / "licences.yaml"});
  REQUIRE(inside.status().is_invalid_argument());
  CHECK(inside.status().message().find("inside the checked-out project") != std::string::npos);
  CHECK(check_licences(facts.path(), {.allow = {"MIT"}, .known_file = "licences.yaml"})
            .status()
            .is_invalid_argument());
}

TEST_CASE("a symlink to a host file in the tree fails the gate and never reaches the report",
          "[gate]") {
  // Issue 12 item 3, reproduced: requirements.txt -> /etc/hostname in the generated tree made
  // the licence check read the host file into the report (which goes into the next prompt).
  auto f = invoices();
  std::string base = f.commit("T-1", {{"shop/x.py", "X = 1\n"}});
  stages::GitOptions in{.input = "/etc/hostname"};
  auto blob = stages::git(f.repo(), {"hash-object", "-w", "--stdin"}, in);
  REQUIRE_OK(blob);
  test::TempDir tmp;
  stages::GitOptions idx{.env = {"GIT_INDEX_FILE=" + (tmp.path() / "index").string()}};
  REQUIRE_OK(stages::git(f.repo(), {"read-tree", base}, idx));
  idx.input = "120000 " + blob->substr(0, 40) + "\trequirements.txt\n";
  REQUIRE_OK(stages::git(f.repo(), {"update-index", "--add", "--index-info"}, idx));
  idx.input.clear();
  auto tree = stages::git(f.repo(), {"write-tree"}, idx);
  REQUIRE_OK(tree);
  stages::GitOptions msg{.input = "T-1: evil\n"};
  auto commit = stages::git(f.repo(), {"commit-tree", tree->substr(0, 40), "-p", base}, msg);
  REQUIRE_OK(commit);
  const std::string c = commit->substr(0, 40);
  GateRun g = run_gate(f, c, tests_json(c, 1, 0, 0), "{}");
  REQUIRE(g.result.kind() == StageResult::Kind::kSuccess);
  INFO(g.payload);
  CHECK(g.verdict.at("gate_passed") == false);
  CHECK(std::string(g.check("tree").at("report").as_string())
            .find("symbolic link at 'requirements.txt'") != std::string::npos);
  std::ifstream host("/etc/hostname");
  std::string hostname;
  std::getline(host, hostname);
  if (hostname.size() >= 6) CHECK(g.payload.find(hostname) == std::string::npos);
  CHECK(g.payload.find("has no known licence") == std::string::npos);  // nothing read it
}

TEST_CASE("{files} never passes a name that reads as an option or lies outside the checkout",
          "[gate]") {
  test::TempDir d;
  for (const char* name : {"ok.py", "-rf.py", "--output=x.py", "b.txt"}) {
    test::RepoFixture::write(d.path() / name, "x\n");
  }
  const std::vector<std::string> changed = {"ok.py",
                                            "-rf.py",
                                            "--output=x.py",
                                            "/etc/hostname",
                                            "../" + d.path().filename().string() + "/ok.py",
                                            "b.txt"};
  auto all = expand_files_arg("{files}", changed, d.path());
  for (const std::string& a : all) {
    INFO(a);
    CHECK(a.front() != '-');
    CHECK(a.find("..") == std::string::npos);
    CHECK(a.front() != '/');
  }
  CHECK(all == std::vector<std::string>{"ok.py", "b.txt"});
  CHECK(expand_files_arg("{files:.py}", changed, d.path()) == std::vector<std::string>{"ok.py"});
  CHECK(is_files_arg("{files:.py}"));
  CHECK_FALSE(is_files_arg("{file}"));
}

TEST_CASE("the gate's commands run without factoryd's environment", "[gate]") {
  ::setenv("FACTORY_SECRET_DEMO", "gate-secret-for-test", 1);
  auto f = invoices();
  std::string c = f.commit("T-1", {{"shop/x.py", "X = 1\n"}});
  GateRun g = run_gate(f, c, tests_json(c, 1, 0, 0),
                       R"J({"secret_scan":false,"licences":false,"commands":[
          {"name":"env","argv":["sh","-c","env; exit 1"],"env":{"LINT_MODE":"strict"}}]})J");
  ::unsetenv("FACTORY_SECRET_DEMO");
  INFO(g.payload);
  std::string report(g.check("env").at("report").as_string());
  CHECK(report.find("LINT_MODE=strict") != std::string::npos);
  CHECK(report.find("FACTORY_SECRET") == std::string::npos);
  CHECK(report.find("gate-secret-for-test") == std::string::npos);
}

TEST_CASE("a clean commit passes every check", "[gate]") {
  auto f = invoices();
  std::string c = f.commit(
      "T-1", {{"shop/total.py", "def total(xs):\n    return sum(xs)\n"},
              {"requirements.txt", "requests==2.31.0\nattrs==23.1\n"},
              {"tests/test_total.py",
               "import unittest\nfrom shop.total import total\n\nclass T(unittest.TestCase):\n"
               "    def test_sum(self):\n        self.assertEqual(total([1, 2]), 3)\n"}});
  GateRun g = run_gate(
      f, c, tests_json(c, 4, 0, 0),
      R"({"licences":{"known":{"requests":"Apache-2.0","attrs":"MIT"}},)"
      R"("commands":[{"name":"py_compile","argv":["python3","-m","py_compile","{files:.py}"]}]})",
      R"(["shop/total.py","tests/test_total.py"])");
  REQUIRE(g.result.kind() == StageResult::Kind::kSuccess);
  INFO(g.payload);
  CHECK(g.verdict.at("gate_passed") == true);
  CHECK(g.verdict.at("report") == "");
  CHECK(text(g.verdict.at("commit")) == c);
  CHECK(g.verdict.at("ticket") == "T-1");
  CHECK(g.verdict.at("attempt") == 1);
  CHECK(g.verdict.at("checks").as_array().size() == 4);
  CHECK(g.check("tests").at("report") ==
        "4 of 4 tests passed (0 failed, 0 errors): pass ratio "
        "1.00, at least 1.00");
  CHECK(g.check("secrets").at("passed") == true);
  CHECK(g.check("licences").at("report") ==
        "2 dependencies in requirements.txt, all with allowed licences");
  CHECK(g.check("py_compile").at("passed") == true);
}

TEST_CASE("a planted secret fails the gate, reported by file and line without its value",
          "[gate]") {
  auto f = invoices();
  std::string c = f.commit(
      "T-1",
      {{"shop/discount.py", "import os\n\nDISCOUNT_API_KEY = \"" + kPlanted +
                                "\"\n\ndef apply_discount(total, code):\n    return total\n"}});
  GateRun g = run_gate(f, c, tests_json(c, 5, 0, 0), "{}", R"(["shop/discount.py"])");
  REQUIRE(g.result.kind() == StageResult::Kind::kSuccess);
  INFO(g.payload);
  CHECK(g.verdict.at("gate_passed") == false);
  const json::object& secrets = g.check("secrets");
  CHECK(secrets.at("passed") == false);
  std::string report(secrets.at("report").as_string());
  CHECK(report.find("shop/discount.py:3: stripe_key: sk_live_") != std::string::npos);
  CHECK(report.find("(changed in this commit)") != std::string::npos);
  // The verdict (and so what codegen reads next round) names the place, never the key.
  std::string summary(g.verdict.at("report").as_string());
  CHECK(summary.starts_with("[secrets] 1 possible secret(s) in the code"));
  CHECK(summary.find("shop/discount.py:3") != std::string::npos);
  CHECK(g.payload.find(kPlanted) == std::string::npos);
  CHECK(g.payload.find(kPlanted.substr(8)) == std::string::npos);

  // The next round reads the key from the environment: the gate passes.
  std::string fixed = f.commit(
      "T-1", {{"shop/discount.py",
               "import os\n\nDISCOUNT_API_KEY = os.environ.get(\"DISCOUNT_API_KEY\", \"\")\n"}});
  GateRun again = run_gate(f, fixed, tests_json(fixed, 5, 0, 0), "{}");
  CHECK(again.verdict.at("gate_passed") == true);
}

TEST_CASE("a configured tool that is not installed is a failed check, never a pass", "[gate]") {
  auto f = invoices();
  std::string c = f.commit("T-1", {{"shop/x.py", "X = 1\n"}});
  GateRun g = run_gate(f, c, tests_json(c, 1, 0, 0),
                       R"J({"secret_scan":false,"licences":false,"commands":[
                          {"name":"lint","argv":["factory-no-such-linter","check","."]},
                          {"name":"local-script","argv":["./scripts/missing.sh"]},
                          {"name":"strict","argv":["python3","-c","import sys; print('E501 line too long'); sys.exit(3)"]
},
                          {"name":"slow","argv":["sleep","5"],"timeout_ms":100}]
})J");
  REQUIRE(g.result.kind() == StageResult::Kind::kSuccess);
  INFO(g.payload);
  CHECK(g.verdict.at("gate_passed") == false);
  CHECK(g.verdict.at("checks").as_array().size() == 5);  // tests + the four commands
  CHECK(g.check("lint").at("passed") == false);
  CHECK(g.check("lint").at("report") ==
        "factory-no-such-linter is not installed; install it or remove the check");
  CHECK(g.check("local-script").at("report") ==
        "./scripts/missing.sh is not installed; install it or remove the check");
  CHECK(g.check("strict").at("passed") == false);
  CHECK(std::string(g.check("strict").at("report").as_string()).find("exited with 3") !=
        std::string::npos);
  CHECK(std::string(g.check("strict").at("report").as_string()).find("E501 line too long") !=
        std::string::npos);
  CHECK(std::string(g.check("slow").at("report").as_string()).find("did not finish within 100") !=
        std::string::npos);
  std::string summary(g.verdict.at("report").as_string());
  CHECK(summary.find("[lint] factory-no-such-linter is not installed") != std::string::npos);
}

TEST_CASE("the licence check fails a disallowed or unknown licence", "[gate]") {
  auto f = invoices();
  std::string c =
      f.commit("T-1", {{"requirements.txt", "requests==2.31.0\nleftpad==1.0\nmystery==0.1\n"}});
  GateRun g = run_gate(f, c, tests_json(c, 1, 0, 0),
                       R"({"licences":{"allow":["MIT","Apache-2.0"],)"
                       R"("known":{"requests":"Apache-2.0","leftpad":"GPL-3.0"}}})");
  INFO(g.payload);
  CHECK(g.verdict.at("gate_passed") == false);
  const json::object& lic = g.check("licences");
  CHECK(lic.at("passed") == false);
  CHECK(lic.at("report") ==
        "requirements.txt:2: leftpad is GPL-3.0, which is not allowed (allowed: MIT, "
        "Apache-2.0); replace the dependency or get the licence approved\n"
        "requirements.txt:3: mystery has no known licence; an operator who has checked it adds "
        "it to the gate's licences.known (name: SPDX id)");
  // A project without a manifest has nothing to check.
  auto bare = invoices();
  std::string b = bare.commit("T-2", {{"shop/y.py", "Y = 2\n"}});
  GateRun g2 = run_gate(bare, b, tests_json(b, 1, 0, 0), "{}");
  CHECK(g2.check("licences").at("passed") == true);
  CHECK(g2.check("licences").at("report") ==
        "no requirements.txt: no third-party dependencies to check");
}

TEST_CASE("the tests check: a pass ratio at the threshold, and at least one test", "[gate]") {
  auto f = invoices();
  std::string c = f.commit("T-1", {{"shop/z.py", "Z = 3\n"}});
  GateRun failing = run_gate(f, c, tests_json(c, 3, 1, 0), "{}");
  CHECK(failing.verdict.at("gate_passed") == false);
  std::string report(failing.check("tests").at("report").as_string());
  CHECK(
      report.starts_with("3 of 4 tests passed (1 failed, 0 errors): pass ratio 0.75, below 1.00"));
  CHECK(report.find("FAILED (failures=1)") != std::string::npos);  // the log excerpt's end

  GateRun lenient = run_gate(f, c, tests_json(c, 3, 1, 0), R"({"min_pass_ratio":0.75})");
  CHECK(lenient.verdict.at("gate_passed") == true);

  GateRun none = run_gate(f, c, tests_json(c, 0, 0, 0), R"({"min_pass_ratio":0})");
  CHECK(none.verdict.at("gate_passed") == false);
  CHECK(std::string(none.check("tests").at("report").as_string()).starts_with("no test ran"));
}

TEST_CASE("an unknown commit is a permanent failure, branching names what follows", "[gate]") {
  auto f = invoices();
  std::string c = f.commit("T-1", {{"shop/w.py", "W = 4\n"}});
  GateRun missing = run_gate(f, "0123456789abcdef0123456789abcdef01234567",
                             tests_json("0123456789abcdef0123456789abcdef01234567", 1, 0, 0), "{}");
  CHECK(missing.result.kind() == StageResult::Kind::kPermanent);
  CHECK(missing.result.reason().find("is not in") != std::string::npos);

  auto stage = runtime::create_stage("gate");
  REQUIRE_OK(stage);
  test::FakeStageContext ctx;
  ctx.set_data_dir(f.data_dir());
  ctx.set_scratch_dir(f.scratch_dir());
  std::string input = R"({"artifact":{"project":"shop","commit":")" + c + R"("},"tests":)" +
                      tests_json(c, 0, 1, 0) +
                      R"(,"branch":{"passed":["approve"],"failed":["codegen_2"]}})";
  REQUIRE((*stage)->process(test::make_event(input), ctx).kind() == StageResult::Kind::kSuccess);
  json::object v = json::parse(ctx.outputs().at(0).payload).as_object();
  CHECK(json::serialize(v.at("_branch")) == R"(["codegen_2"])");
  CHECK(text(v.at("repo")) == f.repo());  // from the data dir when the artifact names none
}
