// `factoryd run --exit-when-idle MS --fail-on dlq,failed-run` on the real binary: a pipeline
// whose stage dead-letters and a DAG whose run fails make it exit 1 naming what failed; a clean
// pipeline, or the same failures without the check asking for them, exit 0.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cli/run_process.h"
#include "test_util.h"

namespace factory::test {
namespace {

constexpr char kTopics[] = "topics: [{name: tickets}]\n";

// Dead-letters every ticket: the fail stage fails permanently, the binding gives up at once.
constexpr char kFailingPipeline[] =
    "pipeline: checks\n"
    "bindings:\n"
    "  - {stage: fail, name: check, input: tickets, output: tickets-checked,\n"
    "     config: {failures: 100, mode: permanent}}\n";

constexpr char kCleanPipeline[] =
    "pipeline: checks\n"
    "bindings:\n"
    "  - {stage: noop, name: check, input: tickets, output: tickets-checked}\n";

// One run per ticket; its second task fails (a task failure is a failed run, not a dead letter).
constexpr char kFailingDag[] =
    "dag_id: review\n"
    "schedule: {topic: tickets}\n"
    "tasks:\n"
    "  read: {stage: noop}\n"
    "  judge: {stage: fail, upstream: [read], params: {failures: 100, mode: permanent}}\n";

class Project {
 public:
  Project() {
    std::filesystem::create_directories(config() + "/pipelines");
    std::filesystem::create_directories(config() + "/dags");
    std::ofstream(config() + "/topics.yaml") << kTopics;
  }
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(config() + "/" + rel) << text;
  }
  std::string config() const { return (dir_.path() / "config").string(); }
  std::string data() const { return (dir_.path() / "data").string(); }

  // The fixtures: `n` tickets on the input topic.
  void produce(int n) {
    ProcessResult applied =
        run_factoryd({"topics", "apply", "-f", config() + "/topics.yaml", "--data-dir", data()});
    REQUIRE(applied.exit_code == 0);
    std::string lines;
    for (int i = 0; i < n; ++i) lines += "{\"n\":" + std::to_string(i) + "}\n";
    ProcessResult produced = run_factoryd({"produce", "tickets", "--data-dir", data()}, lines);
    INFO(produced.err);
    REQUIRE(produced.exit_code == 0);
  }

  // `factoryd run` until idle, with `extra` arguments (e.g. --fail-on ...).
  ProcessResult run(std::vector<std::string> extra) {
    std::vector<std::string> args = {"run",  "--config-dir",     config(), "--data-dir",
                                     data(), "--exit-when-idle", "300"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_factoryd(std::move(args));
  }

 private:
  TempDir dir_;
};

// The lines of `err` that are the CLI's error lines (the rest is the JSON-lines log).
std::vector<std::string> error_lines(const std::string& err) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < err.size()) {
    size_t end = err.find('\n', start);
    if (end == std::string::npos) end = err.size();
    std::string line = err.substr(start, end - start);
    if (line.rfind("factoryd: error: ", 0) == 0) out.push_back(line);
    start = end + 1;
  }
  return out;
}

TEST_CASE("run --fail-on dlq exits 1 naming the dead-letter topic and count", "[cli][run]") {
  Project p;
  p.write("pipelines/checks.yaml", kFailingPipeline);
  p.produce(3);
  ProcessResult r = p.run({"--fail-on", "dlq,failed-run"});
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 1);
  std::vector<std::string> errors = error_lines(r.err);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "factoryd: error: --fail-on dlq: 3 dead letters on 'tickets.dlq' (binding 'check'); see "
        "them with 'factoryd dlq list tickets.dlq'");

  SECTION("letters from an earlier run do not count, and without --fail-on the exit is 0") {
    ProcessResult again = p.run({"--fail-on", "dlq"});
    INFO("stderr: " << again.err);
    CHECK(again.exit_code == 0);
    CHECK(error_lines(again.err).empty());
    p.produce(1);
    ProcessResult unchecked = p.run({});
    INFO("stderr: " << unchecked.err);
    CHECK(unchecked.exit_code == 0);
  }
}

TEST_CASE("run --fail-on passes a clean pipeline", "[cli][run]") {
  Project p;
  p.write("pipelines/checks.yaml", kCleanPipeline);
  p.produce(3);
  ProcessResult r = p.run({"--fail-on", "dlq,failed-run"});
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(error_lines(r.err).empty());
  ProcessResult out = run_factoryd(
      {"consume", "tickets-checked", "-e", "--output", "json", "--data-dir", p.data()});
  CHECK(out.exit_code == 0);
  CHECK(std::count(out.out.begin(), out.out.end(), '\n') == 3);
}

TEST_CASE("run --fail-on failed-run exits 1 naming each failed run and its task", "[cli][run]") {
  Project p;
  p.write("dags/review.yaml", kFailingDag);
  p.produce(2);

  SECTION("dlq alone does not look at runs") {
    ProcessResult r = p.run({"--fail-on", "dlq"});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 0);
  }
  SECTION("failed-run") {
    ProcessResult r = p.run({"--fail-on", "failed-run"});
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 1);
    std::vector<std::string> errors = error_lines(r.err);
    REQUIRE(errors.size() == 2);
    for (const std::string& e : errors) {
      CHECK(e.rfind("factoryd: error: --fail-on failed-run: run 'topic__tickets_0_", 0) == 0);
      CHECK(e.find("' of DAG 'review' failed (task 'judge': ") != std::string::npos);
      CHECK(e.find("; see it with 'factoryd runs show topic__tickets_0_") != std::string::npos);
    }
    // Runs that failed before this process started are not its failures.
    ProcessResult again = p.run({"--fail-on", "failed-run"});
    INFO("stderr: " << again.err);
    CHECK(again.exit_code == 0);
  }
}

TEST_CASE("run --fail-on rejects an unknown check before opening anything", "[cli][run]") {
  Project p;
  ProcessResult r = p.run({"--fail-on", "dlq,failed-runs"});
  CHECK(r.exit_code == 2);
  CHECK(r.err ==
        "factoryd: error: --fail-on: unknown check 'failed-runs'; did you mean 'failed-run'? "
        "(checks: dlq, failed-run)\n");
  CHECK_FALSE(std::filesystem::exists(p.data()));
}

}  // namespace
}  // namespace factory::test
