// `factoryd demo` end to end on the real binary: every bundled sample ticket reaches its expected
// outcome; and the crash test — kill -9 the demo mid-way, start it again on the same data dir:
// no ticket lost, none deployed twice, no duplicate commits.
#include <signal.h>

#include <filesystem>
#include <map>
#include <set>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/run_process.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// config/samples/tickets/README.md: what each sample must become.
const std::map<std::string, std::string> kExpected = {
    {"01-inv-101-jira-wiki.json", "deployed"},
    {"02-inv-102-jira-adf.json", "deployed"},
    {"03-acme-invoices-103-github.json", "deployed"},
    {"04-inv-104-ticket.json", "deployed"},
    {"05-inv-105-jira-wiki-updated.json", "deployed"},  // after the gate fails round 1
    {"06-acme-invoices-106-github-edited.json", "deployed"},
    {"07-inv-107-jira-adf-tasklist.json", "deployed"},
    {"08-acme-invoices-108-github-no-criteria.json", "human-review"},
    {"09-inv-109-ticket.json", "deployed"},
};

// The demo runs from the repository root (the DAG names config/projects/invoices relative to
// the working directory, as a user runs it).
ChildProcess spawn_demo(const std::string& data_dir) {
  std::string cmd = std::string("cd '") + FACTORY_SOURCE_DIR + "' && exec '" + FACTORYD_BIN +
                    "' demo --data-dir '" + data_dir + "' -o json --timeout-ms 150000";
  return spawn_process({"/bin/sh", "-c", cmd}, {"FACTORY_DATA_DIR", "FACTORY_LOG_LEVEL"});
}

std::string git(const std::string& repo, const std::string& args) {
  auto r = run_process({"/bin/sh", "-c", "git -C '" + repo + "' " + args});
  return r.out;
}

size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Checks a finished demo's summary and the data dir it left behind.
void check_outcome(const std::string& data_dir, const std::string& summary_text) {
  boost::system::error_code ec;
  json::value summary = json::parse(summary_text, ec);
  INFO(summary_text);
  REQUIRE_FALSE(ec);
  CHECK(summary.at("complete").as_bool());
  std::set<std::string> seen;
  for (const auto& t : summary.at("tickets").as_array()) {
    std::string file(t.at("file").as_string());
    INFO(file << ": " << t.at("detail").as_string());
    REQUIRE(kExpected.count(file) == 1);
    CHECK(t.at("outcome").as_string() == kExpected.at(file));
    seen.insert(file);
    if (file.rfind("05-", 0) == 0) CHECK(t.at("gate_failures").as_int64() == 1);
    // Measured from the ticket's arrival, also when a restarted demo finds it already there.
    if (!t.at("ticket_to_deploy_ms").is_null()) CHECK(t.at("ticket_to_deploy_ms").as_int64() > 0);
  }
  CHECK(seen.size() == kExpected.size());
  CHECK(summary.at("gate_failures").as_int64() == 1);
  CHECK(summary.at("dead_letters").as_int64() == 0);
  CHECK(summary.at("human_review_records").as_int64() == 1);

  // Exactly one release per deployed ticket; `current` is one of them.
  std::string releases = data_dir + "/factory/releases/invoices";
  int release_dirs = 0;
  for (const auto& e : fs::directory_iterator(releases)) {
    if (e.is_directory() && !e.is_symlink()) ++release_dirs;
  }
  // keep: 3 — older ones are pruned (a deploy never removes current or the previous release,
  // so concurrent deploys may leave one more).
  CHECK(release_dirs >= 3);
  CHECK(release_dirs <= 4);
  CHECK(fs::is_symlink(releases + "/current"));

  // One branch per ticket that got code, one code commit per attempt and one test commit per
  // attempt on it — however often a task was redelivered.
  std::string repo = data_dir + "/factory/repos/invoices";
  std::string branches = git(repo, "for-each-ref --format='%(refname:short)' refs/heads/feature");
  CHECK(count_lines(branches) == 8);
  std::string log_all = git(repo, "log --format='%an %s' main..'feature/INV-105'");
  INFO(log_all);
  CHECK(count_lines(log_all) == 4);  // attempt 1 + its tests, attempt 2 + its tests
  std::string authors = git(repo, "log --all --format=%an");
  CHECK(authors.find("factoryd") != std::string::npos);
  for (const char* branch : {"feature/INV-101", "feature/INV-109", "feature/acme/invoices#103"}) {
    INFO(branch);
    CHECK(count_lines(git(repo, std::string("log --format=%s main..'") + branch + "'")) == 2);
  }
}

}  // namespace

TEST_CASE("demo: every sample ticket reaches its expected outcome", "[demo][e2e]") {
  TempDir dir;
  std::string data = dir.str() + "/data";
  ChildProcess p = spawn_demo(data);
  ProcessResult r = p.wait();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_outcome(data, r.out);
  // Ticket -> deploy latency is reported (the figure itself is measured, not asserted).
  json::value summary = json::parse(r.out);
  CHECK(summary.at("ticket_to_deploy_ms").at("count").as_int64() == 8);
}

TEST_CASE("demo: kill -9 mid-way and restart loses no ticket and deploys none twice",
          "[demo][e2e][crash]") {
  uint64_t seed = test_seed();
  TempDir dir;
  std::string data = dir.str() + "/data";
  // Kill after a seeded number of stderr lines: the header, then one per ticket changing task.
  // The tickets arrive one every 500 ms while the earlier ones run, so the crash lands inside
  // the pipeline — some tickets committed or deploying, others not yet submitted. However fast
  // the machine, there are at least 10 lines (the header and each ticket's outcome).
  size_t kill_after = 4 + seed % 6;
  INFO("seed " << seed << ", kill after " << kill_after << " progress lines");
  {
    ChildProcess p = spawn_demo(data);
    size_t lines = 0;
    // Progress goes to stderr, one line per change (not a terminal).
    while (lines < kill_after) {
      auto line = p.read_stderr_line(60'000);
      if (!line) break;
      ++lines;
    }
    REQUIRE(lines == kill_after);
    p.kill(SIGKILL);
    ProcessResult r = p.wait();
    CHECK(r.term_signal == SIGKILL);
  }
  ChildProcess again = spawn_demo(data);
  ProcessResult r = again.wait();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  check_outcome(data, r.out);
  // Each deployed ticket has exactly one deployment record, whatever was redone.
  auto dep =
      run_factoryd({"consume", "deployment-triggers", "--data-dir", data, "-e", "-f", "%k\n"});
  REQUIRE(dep.exit_code == 0);
  std::map<std::string, int> per_run;
  for (size_t i = 0, j; i < dep.out.size(); i = j + 1) {
    j = dep.out.find('\n', i);
    if (j == std::string::npos) break;
    ++per_run[dep.out.substr(i, j - i)];
  }
  CHECK(per_run.size() == 8);
  for (const auto& [run, n] : per_run) {
    INFO(run);
    CHECK(n == 1);
  }
}

}  // namespace factory::test
