// The deploy stage (stages/deploy/): local releases with a canary that passes or rolls back,
// keep-N pruning, redelivery and crash recovery never deploying twice, the command and webhook
// targets, and the refusals (a failed gate, an approval for another commit).
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "config/contract.h"
#include "deploy/releases.h"
#include "exec/sandbox.h"
#include "runtime/fake_stage_context.h"
#include "runtime/stage_registry.h"
#include "stages/http_sink.h"
#include "stages/repo_fixture.h"

using namespace factory;
using namespace factory::stages::deploy;
using factory::stages::isolation;
using factory::stages::Isolation;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

// The project's health check: status.txt must say "ok".
test::RepoFixture project() {
  return test::RepoFixture("web", {{"web/__init__.py", ""}, {"status.txt", "ok\n"}},
                           "[grep, -qx, ok, status.txt]");
}

struct Deploy {
  std::unique_ptr<Stage> stage;
  test::FakeStageContext ctx;
  std::unique_ptr<config::Contract> out_contract;

  explicit Deploy(const test::RepoFixture& f, std::string config = "{}") : ctx(std::move(config)) {
    auto s = runtime::create_stage("deploy");
    REQUIRE_OK(s);
    stage = std::move(*s);
    ctx.set_data_dir(f.data_dir());
    ctx.set_scratch_dir(f.scratch_dir());
    auto c = config::Contract::compile(stage->info().output_schema, "deployment");
    REQUIRE_OK(c);
    out_contract = std::move(*c);
  }

  static std::string input(const test::RepoFixture& f, const std::string& ticket,
                           const std::string& commit, const std::string& extra = "") {
    return R"({"artifact":{"ticket":")" + ticket + R"(","project":")" + f.project() +
           R"(","repo":")" + f.repo() + R"(","commit":")" + commit + R"("})" + extra + "}";
  }

  // Runs process(); the emitted deployment (validated), or {} when it emitted nothing.
  json::object run(const std::string& payload,
                   StageResult::Kind expect = StageResult::Kind::kSuccess) {
    auto in_contract = config::Contract::compile(stage->info().input_schema, "deploy input");
    REQUIRE_OK(in_contract);
    REQUIRE_OK((*in_contract)->validate(payload));
    ctx.clear_outputs();
    StageResult r = stage->process(event(payload), ctx);
    INFO(r.reason());
    REQUIRE(r.kind() == expect);
    last_reason = r.reason();
    if (ctx.outputs().empty()) return {};
    REQUIRE(ctx.outputs().size() == 1);
    REQUIRE_OK(out_contract->validate(ctx.outputs()[0].payload));
    return json::parse(ctx.outputs()[0].payload).as_object();
  }
  std::string last_reason;

  // The event a task worker hands over: the payload, with the run's approvals as headers.
  Event event(const std::string& payload) const {
    Event e = test::make_event(payload);
    e.headers = approvals(payload);
    return e;
  }

  // What the scheduler's dispatch would say the run's approvals were bound to: `approved` when
  // set, else the commit the payload deploys (the DAG's approve task bound to it).
  std::optional<std::vector<std::string>> approved;
  std::vector<Header> approvals(const std::string& payload) const {
    std::vector<std::string> commits;
    if (approved) {
      commits = *approved;
    } else {
      json::object in = json::parse(payload).as_object();
      std::string c = in.contains("commit") ? text(in.at("commit")) : "";
      if (c.empty() && in.contains("verdict")) c = text(in.at("verdict").at("commit"));
      if (c.empty()) c = text(in.at("artifact").at("commit"));
      commits.push_back(c);
    }
    std::vector<Header> out;
    for (const std::string& c : commits) out.push_back({std::string(kApprovedCommitHeader), c});
    return out;
  }
};

constexpr char kLocal[] = R"(,"target":"local","local":{"keep":3,"canary":{"checks":3}})";

}  // namespace

TEST_CASE("release ids are stable, derived from the ticket and the commit", "[deploy]") {
  CHECK(release_id("INV-101", "0123456789abcdef0123") == "INV-101-0123456789ab");
  CHECK(release_id("acme/invoices#103", "abcdef0123456789") == "acme-invoices-103-abcdef012345");
  CHECK(release_id("", "abcdef0123456789") == "release-abcdef012345");
  CHECK(release_id("../x", "abcdef0123456789") == "x-abcdef012345");
}

TEST_CASE("local deploy: the canary passes, then a failing one rolls back to the previous release",
          "[deploy]") {
  auto f = project();
  Deploy d(f);
  std::string c1 = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  json::object first = d.run(Deploy::input(f, "T-1", c1, kLocal));
  INFO(json::serialize(first));
  std::string r1 = release_id("T-1", c1);
  CHECK(first.at("status") == "deployed");
  CHECK(text(first.at("release")) == r1);
  CHECK(text(first.at("commit")) == c1);
  CHECK(first.at("target") == "local");
  CHECK(json::serialize(first.at("canary")) == R"({"checks":3,"passed":3})");
  CHECK(first.at("previous") == "");
  fs::path dir = project_dir(f.data_dir(), "web");
  CHECK(text(first.at("path")) == (dir / r1).string());
  CHECK(current_release(dir) == r1);
  CHECK(fs::is_symlink(dir / "current"));
  // The release is the commit's tree (git archive), not a checkout: no .git.
  CHECK(fs::exists(dir / "current" / "web" / "app.py"));
  CHECK_FALSE(fs::exists(dir / r1 / ".git"));

  // The next commit breaks the health check: deployed, checked, rolled back.
  std::string c2 = f.commit("T-2", {{"status.txt", "down\n"}});
  json::object second = d.run(Deploy::input(f, "T-2", c2, kLocal));
  INFO(json::serialize(second));
  std::string r2 = release_id("T-2", c2);
  CHECK(second.at("status") == "rolled_back");
  CHECK(json::serialize(second.at("canary")) == R"({"checks":3,"passed":0})");
  CHECK(text(second.at("previous")) == r1);
  CHECK(text(second.at("current")) == r1);
  CHECK(current_release(dir) == r1);  // current points at the previous release again
  std::string message(second.at("message").as_string());
  CHECK(message.find("health check 1 of 3 (`grep -qx ok status.txt`) failed: exit code 1") !=
        std::string::npos);
  CHECK(message.find("rolled back to " + r1) != std::string::npos);
  CHECK(fs::is_directory(dir / r2));  // kept for inspection until pruned
}

TEST_CASE("local deploy keeps the newest N releases, never current or the previous one",
          "[deploy]") {
  auto f = project();
  Deploy d(f);
  fs::path dir = project_dir(f.data_dir(), "web");
  std::vector<std::string> releases;
  for (int i = 1; i <= 5; ++i) {
    std::string ticket = "T-" + std::to_string(i);
    std::string c = f.commit(ticket, {{"web/app.py", "VERSION = " + std::to_string(i) + "\n"}});
    json::object out = d.run(Deploy::input(f, ticket, c, kLocal));
    REQUIRE(out.at("status") == "deployed");
    releases.push_back(release_id(ticket, c));
  }
  CHECK(list_releases(dir) == std::vector<std::string>{releases[2], releases[3], releases[4]});
  CHECK(current_release(dir) == releases[4]);

  // A rollback keeps current (the old one) and the previous even when they are the oldest.
  std::string bad = f.commit("T-6", {{"status.txt", "down\n"}});
  json::object out = d.run(Deploy::input(f, "T-6", bad, R"(,"local":{"keep":2})"));
  CHECK(out.at("status") == "rolled_back");
  CHECK(current_release(dir) == releases[4]);
  std::vector<std::string> left = list_releases(dir);
  CHECK(std::find(left.begin(), left.end(), releases[4]) != left.end());
  CHECK(left.size() == 2);
}

TEST_CASE("a redelivered deploy does not deploy twice, a crash mid-deploy resumes", "[deploy]") {
  auto f = project();
  Deploy d(f);
  fs::path dir = project_dir(f.data_dir(), "web");
  std::string c1 = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  std::string payload = Deploy::input(f, "T-1", c1, kLocal);
  json::object first = d.run(payload);
  REQUIRE(first.at("status") == "deployed");
  std::string r1(first.at("release").as_string());
  // Mark the installed release: a second install would replace the directory.
  test::RepoFixture::write(dir / r1 / "SENTINEL", "first install");

  SECTION("redelivery (process again) emits the same deployment and installs nothing") {
    json::object again = d.run(payload);
    CHECK(again == first);
    CHECK(fs::exists(dir / r1 / "SENTINEL"));
    CHECK(list_releases(dir).size() == 1);
  }
  SECTION("a fenced intent recovered after the deploy finished is done") {
    d.ctx.clear_outputs();
    CHECK(d.stage->recover(d.event(payload), d.ctx) == Stage::Recovery::kDone);
    REQUIRE(d.ctx.outputs().size() == 1);
    CHECK(json::parse(d.ctx.outputs()[0].payload).as_object() == first);
    CHECK(fs::exists(dir / r1 / "SENTINEL"));
  }
  SECTION("killed after switching current, before the canary decided: resumed, not redone") {
    std::string c2 = f.commit("T-2", {{"web/app.py", "VERSION = 2\n"}});
    std::string r2 = release_id("T-2", c2);
    std::string p2 = Deploy::input(f, "T-2", c2, kLocal);
    // What a deploy had done when the process died: installed, pending recorded, switched.
    auto installed = install_release(f.repo(), c2, dir, r2, R"({"seq":2})");
    REQUIRE_OK(installed);
    test::RepoFixture::write(dir / r2 / "SENTINEL", "installed before the crash");
    REQUIRE_OK(write_record(dir, r2 + ".pending", R"({"previous":")" + r1 + R"("})"));
    REQUIRE_OK(switch_current(dir, r2));

    CHECK(d.stage->recover(d.event(p2), d.ctx) == Stage::Recovery::kNotDone);
    json::object resumed = d.run(p2);
    CHECK(resumed.at("status") == "deployed");
    CHECK(text(resumed.at("previous")) == r1);  // from the pending record, not the switched link
    CHECK(fs::exists(dir / r2 / "SENTINEL"));   // not installed again
    CHECK_FALSE(read_record(dir, r2 + ".pending").has_value());
    CHECK(d.stage->recover(d.event(p2), d.ctx) == Stage::Recovery::kDone);
  }
  SECTION("killed after the canary failed, before rolling back: the rollback completes") {
    std::string c3 = f.commit("T-3", {{"web/app.py", "VERSION = 3\n"}});
    std::string r3 = release_id("T-3", c3);
    REQUIRE_OK(install_release(f.repo(), c3, dir, r3, R"({"seq":3})"));
    REQUIRE_OK(write_record(dir, r3 + ".pending",
                            R"({"previous":")" + r1 +
                                R"(","decision":"rolled_back","canary":{"checks":3,"passed":1},)"
                                R"("message":"health check 2 of 3 failed"})"));
    REQUIRE_OK(switch_current(dir, r3));
    // The health check passes now, but the decision was taken: it is not run again.
    json::object resumed = d.run(Deploy::input(f, "T-3", c3, kLocal));
    CHECK(resumed.at("status") == "rolled_back");
    CHECK(json::serialize(resumed.at("canary")) == R"({"checks":3,"passed":1})");
    CHECK(current_release(dir) == r1);
  }
}

TEST_CASE("deploy refuses a failed gate, an approval for another commit, an unknown commit",
          "[deploy]") {
  auto f = project();
  Deploy d(f);
  std::string c = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  d.run(Deploy::input(f, "T-1", c, R"(,"verdict":{"gate_passed":false,"commit":")" + c + "\"}"),
        StageResult::Kind::kPermanent);
  CHECK(d.last_reason.find("gate_passed: false") != std::string::npos);
  d.run(Deploy::input(f, "T-1", c,
                      R"(,"approval":{"approved_by":"alice","bound_to":"0000000000000000"})"),
        StageResult::Kind::kPermanent);
  CHECK(d.last_reason.find("the approval is for 0000000000000000") != std::string::npos);
  d.run(Deploy::input(f, "T-1", "abcdef0123456789abcdef0123456789abcdef01"),
        StageResult::Kind::kPermanent);
  CHECK(d.last_reason.find("is not in") != std::string::npos);
  CHECK(current_release(project_dir(f.data_dir(), "web")).empty());
  // The approval for this very commit, a passed gate: deployed.
  json::object ok =
      d.run(Deploy::input(f, "T-1", c,
                          R"(,"verdict":{"gate_passed":true,"commit":")" + c +
                              R"("},"approval":{"bound_to":")" + c.substr(0, 12) + R"("})"));
  CHECK(ok.at("status") == "deployed");
}

TEST_CASE("command target: a templated command runs in the release directory", "[deploy]") {
  auto f = project();
  test::TempDir out;
  std::string copy = (out.path() / "copied").string();
  const std::string argv = R"("argv":["cp","-r","{release_dir}",")" + copy + R"("])";
  // Sandboxed: a host path outside the release is writable only when the config names it.
  if (isolation() == Isolation::kBwrap) {
    const std::string cp = "{" + argv + "}";
    Deploy d(f, R"({"command":)" + cp + "}");
    std::string c = f.commit("T-0", {{"web/app.py", "VERSION = 0\n"}});
    d.run(Deploy::input(f, "T-0", c, R"(,"target":"command","command":)" + cp),
          StageResult::Kind::kRetryable);
    CHECK(!fs::exists(copy));
  }
  const std::string cp = "{" + argv + R"(,"writable":[")" + out.str() + R"("]})";
  Deploy d(f, R"({"command":)" + cp + "}");
  std::string c = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  json::object dep = d.run(Deploy::input(f, "T-1", c, R"(,"target":"command","command":)" + cp));
  CHECK(dep.at("status") == "deployed");
  CHECK(dep.at("target") == "command");
  CHECK(fs::exists(fs::path(copy) / "web" / "app.py"));
  CHECK(text(dep.at("path")) == (project_dir(f.data_dir(), "web") / release_id("T-1", c)).string());
  // A failing command is retried (nothing recorded), not reported as deployed.
  std::string c2 = f.commit("T-2", {{"web/app.py", "VERSION = 2\n"}});
  Deploy failing(f, R"({"command":{"argv":["false"]}})");
  failing.run(Deploy::input(f, "T-2", c2, R"(,"target":"command")"), StageResult::Kind::kRetryable);
  CHECK(failing.last_reason.find("deploy command `false` exited with 1") != std::string::npos);
}

// Issue 12: an event (a forged dispatch, a rendered upstream output) is data. Deploy ships only
// a commit the scheduler says a granted approval of the run was bound to, reads only the
// project's repository, and runs only the configured command.
TEST_CASE("deploy: only an approved commit, the project's repo, the configured command",
          "[deploy][security]") {
  auto f = project();
  std::string c = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  test::TempDir out;
  const std::string marker = (out.path() / "ran").string();
  const std::string touch = R"({"argv":["touch",")" + marker + R"("]})";
  {
    // The event's own approval names the commit, but the scheduler carried no approval.
    Deploy d(f);
    d.approved = std::vector<std::string>{};
    d.run(Deploy::input(f, "T-1", c,
                        R"(,"approval":{"approved_by":"mallory","bound_to":")" + c + R"("})"),
          StageResult::Kind::kPermanent);
    CHECK(d.last_reason.find("no granted approval of this run is bound to it (the run has none)") !=
          std::string::npos);
    // An approval of the run bound to another commit (git's empty tree: the review's attack).
    d.approved = std::vector<std::string>{c};
    d.run(Deploy::input(f, "T-1", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
          StageResult::Kind::kPermanent);
    CHECK(d.last_reason.find("no granted approval of this run is bound to it (approved: " + c) !=
          std::string::npos);
    // A commit that is not an object id never reaches git, wherever the event puts it: a
    // leading '-' would read as an option, and a longer string shares an approved prefix.
    auto contract = config::Contract::compile(d.stage->info().input_schema, "deploy input");
    REQUIRE_OK(contract);
    for (const std::string& bad : {std::string("--output=/tmp/x"), c + " HEAD", c + "\\n-x"}) {
      for (const std::string& where :
           {R"(,"commit":")" + bad + R"(")", R"(,"verdict":{"commit":")" + bad + R"("})"}) {
        CHECK(!(*contract)->validate(Deploy::input(f, "T-1", c, where)).ok());
      }
    }
  }
  {
    // artifact.repo elsewhere: refused, even with the approval.
    test::TempDir elsewhere;
    Deploy d(f);
    std::string in = R"({"artifact":{"ticket":"T-1","project":"web","repo":")" + elsewhere.str() +
                     R"(","commit":")" + c + R"("}})";
    d.run(in, StageResult::Kind::kPermanent);
    CHECK(d.last_reason.find("is not the project's repository") != std::string::npos);
  }
  {
    // The command target runs only the configured argv: none configured, or another one in
    // the event, is refused before anything runs.
    Deploy unconfigured(f);
    unconfigured.run(Deploy::input(f, "T-1", c, R"(,"target":"command","command":)" + touch),
                     StageResult::Kind::kPermanent);
    CHECK(unconfigured.last_reason.find("never taken from an upstream output") !=
          std::string::npos);
    Deploy configured(f, R"({"command":{"argv":["true"]}})");
    configured.run(Deploy::input(f, "T-1", c, R"(,"target":"command","command":)" + touch),
                   StageResult::Kind::kPermanent);
    CHECK(configured.last_reason.find("differs from the command in the task's configuration") !=
          std::string::npos);
    CHECK(!fs::exists(marker));
  }
  CHECK(current_release(project_dir(f.data_dir(), "web")).empty());
}

TEST_CASE("webhook target: POSTs the deployment, a refusal is failed, a 5xx retried", "[deploy]") {
  auto f = project();
  Deploy d(f);
  test::HttpSink sink(202);
  std::string c = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  json::object dep = d.run(Deploy::input(
      f, "T-1", c,
      R"(,"target":"webhook","webhook":{"url":")" + sink.url() + R"(/deploy?token=s3cr3t"})"));
  CHECK(dep.at("status") == "deployed");
  CHECK(text(dep.at("url")) == sink.url() + "/deploy");  // the query (a token) is not echoed
  REQUIRE(sink.wait_for(1, 5000));
  auto req = sink.requests().at(0);
  CHECK(req.target == "/deploy?token=s3cr3t");
  json::object body = json::parse(req.body).as_object();
  CHECK(text(body.at("release")) == release_id("T-1", c));
  CHECK(text(body.at("commit")) == c);
  // Redelivered: the outcome is recorded, nothing is posted again.
  d.run(Deploy::input(f, "T-1", c,
                      R"(,"target":"webhook","webhook":{"url":")" + sink.url() + R"("})"));
  CHECK(sink.requests().size() == 1);

  std::string c2 = f.commit("T-2", {{"web/app.py", "VERSION = 2\n"}});
  sink.set_status(503);
  d.run(Deploy::input(f, "T-2", c2,
                      R"(,"target":"webhook","webhook":{"url":")" + sink.url() + R"("})"),
        StageResult::Kind::kRetryable);
  sink.set_status(400);
  json::object refused = d.run(Deploy::input(
      f, "T-2", c2, R"(,"target":"webhook","webhook":{"url":")" + sink.url() + R"("})"));
  CHECK(refused.at("status") == "failed");
  CHECK(std::string(refused.at("message").as_string()).starts_with("HTTP 400"));
}

TEST_CASE("the canary's health command from the generated project file sees no secrets",
          "[deploy]") {
  // Issue 12 item 4, reproduced: the health_command of a generated factory-project.yaml wrote
  // factoryd's environment, FACTORY_SECRET_DEMO included, to a file.
  ::setenv("FACTORY_SECRET_DEMO", "canary-secret-for-test", 1);
  test::RepoFixture f("web", {{"web/__init__.py", ""}}, R"([sh, -c, "env > leaked-env.txt"])");
  Deploy d(f);
  std::string c = f.commit("T-1", {{"web/app.py", "VERSION = 1\n"}});
  json::object dep = d.run(Deploy::input(f, "T-1", c, kLocal));
  ::unsetenv("FACTORY_SECRET_DEMO");
  INFO(json::serialize(dep));
  CHECK(dep.at("status") == "deployed");
  fs::path leaked = project_dir(f.data_dir(), "web") / release_id("T-1", c) / "leaked-env.txt";
  REQUIRE(fs::exists(leaked));
  std::ifstream in(leaked);
  std::string env((std::istreambuf_iterator<char>(in)), {});
  CHECK(env.find("FACTORY_SECRET") == std::string::npos);
  CHECK(env.find("canary-secret-for-test") == std::string::npos);
  CHECK(env.find("HOME=" + fs::absolute(leaked.parent_path()).string()) != std::string::npos);
  CHECK(d.ctx.counter("sandbox_runs_" + std::string(stages::isolation_name(isolation()))) == 3);
}

TEST_CASE("deploy refuses a commit whose tree holds a symlink", "[deploy]") {
  auto f = project();
  Deploy d(f);
  // requirements.txt -> /etc/hostname, made with plumbing.
  stages::GitOptions in{.input = "/etc/hostname"};
  auto blob = stages::git(f.repo(), {"hash-object", "-w", "--stdin"}, in);
  REQUIRE_OK(blob);
  test::TempDir tmp;
  stages::GitOptions idx{.env = {"GIT_INDEX_FILE=" + (tmp.path() / "index").string()}};
  REQUIRE_OK(stages::git(f.repo(), {"read-tree", "main"}, idx));
  idx.input = "120000 " + blob->substr(0, 40) + "\trequirements.txt\n";
  REQUIRE_OK(stages::git(f.repo(), {"update-index", "--add", "--index-info"}, idx));
  idx.input.clear();
  auto tree = stages::git(f.repo(), {"write-tree"}, idx);
  REQUIRE_OK(tree);
  stages::GitOptions msg{.input = "evil\n"};
  auto commit = stages::git(f.repo(), {"commit-tree", tree->substr(0, 40), "-p", "main"}, msg);
  REQUIRE_OK(commit);
  d.run(Deploy::input(f, "T-9", commit->substr(0, 40), kLocal), StageResult::Kind::kPermanent);
  CHECK(d.last_reason.find("symbolic link at 'requirements.txt'") != std::string::npos);
  CHECK(!fs::exists(project_dir(f.data_dir(), "web") / release_id("T-9", commit->substr(0, 40))));
}
