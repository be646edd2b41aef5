// Crash test for the scheduler: a real `factoryd run` executes a 1,000-task DAG (fan-out and
// fan-in) and 50 concurrent small runs while it is killed with kill -9 at random moments, 20+
// rounds. At the end every run is complete and every task executed exactly once: the stage is
// fenced and appends "<run>/<task>" to a file per execution, which the test counts.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "cli/kill_rounds.h"
#include "log/log_test_util.h"
#include "store/meta_store.h"

using namespace factory;

namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string write_config(const test::TempDir& dir) {
  auto cfg = dir.path() / "config";
  write_file(cfg / "pipelines" / "plugins.yaml",
             std::string("plugins: [\"") + COUNT_PLUGIN_DIR + "\"]\nbindings:\n");
  std::string big = R"(dag_id: big
schedule: {topic: start-big}
max_active_tasks: 64
tasks:
  root: {stage: count-fx, params: {id: "{{ run.id }}/root"}}
)";
  for (int i = 0; i < 998; ++i) {
    big += "  w" + std::to_string(i) +
           ": {stage: count-fx, upstream: [root], params: {id: \"{{ run.id }}/w" +
           std::to_string(i) + "\"}}\n";
  }
  big += "  sink:\n    stage: count-fx\n    upstream: [";
  for (int i = 0; i < 998; ++i) big += (i ? ", w" : "w") + std::to_string(i);
  big += "]\n    params: {id: \"{{ run.id }}/sink\"}\n";
  write_file(cfg / "dags" / "big.yaml", big);
  write_file(cfg / "dags" / "small.yaml", R"(dag_id: small
schedule: {topic: start-small}
max_active_runs: 50
tasks:
  a: {stage: count-fx, params: {id: "{{ run.id }}/a"}}
  b: {stage: count-fx, upstream: [a], params: {id: "{{ run.id }}/b"}}
  c: {stage: count-fx, upstream: [b], params: {id: "{{ run.id }}/c"}}
)");
  return cfg.string();
}

}  // namespace

TEST_CASE("kill -9 during 51 DAG runs: every run completes, every task exactly once",
          "[scheduler][crash]") {
  const uint64_t seed = test::test_seed();
  INFO("seed " << seed << " (set FACTORY_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  test::TempDir dir;
  const std::string data = dir.str();
  const std::string cfg = write_config(dir);
  {
    auto log = test::open_test_log(test::test_log_options(dir));
    REQUIRE_OK(log->create_topic({.name = "start-big", .partitions = 1}));
    REQUIRE_OK(log->create_topic({.name = "start-small", .partitions = 4}));
    test::append_ok(log.get(), "start-big", {test::rec(R"({"what":"big"})")});
    std::vector<ProducerRecord> small;
    for (int i = 0; i < 50; ++i) small.push_back(test::rec(R"({"n":)" + std::to_string(i) + "}"));
    test::append_ok(log.get(), "start-small", small);
  }
  const int kExpected = 1000 + 50 * 3;
  const auto fx = dir.path() / "scratch" / "task.count-fx" / "executions.log";
  constexpr int kRounds = 20;
  int killed_mid_way = test::kill_at_random_progress(
      {"run", "--config-dir", cfg, "--data-dir", data},
      [&] { return test::count_lines(fx.string()); }, kExpected, 80, kRounds, rng);
  CHECK(killed_mid_way >= kRounds / 2);
  {
    auto p = test::spawn_factoryd(
        {"run", "--config-dir", cfg, "--data-dir", data, "--exit-when-idle", "500"});
    auto r = p.wait();
    INFO(r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0));
    REQUIRE(r.exit_code == 0);
  }
  // Every task of every run exactly once.
  std::map<std::string, int> executions;
  {
    std::ifstream in(fx);
    std::string line;
    while (std::getline(in, line)) ++executions[line];
  }
  int twice = 0;
  for (const auto& [id, n] : executions) twice += n > 1;
  CHECK(twice == 0);
  CHECK(static_cast<int>(executions.size()) == kExpected);
  auto store = store::open_sqlite_store({.dir = data + "/store"});
  REQUIRE_OK(store);
  auto runs = (*store)->list_runs({});
  REQUIRE_OK(runs);
  CHECK(runs->size() == 51);
  for (const auto& r : *runs) {
    INFO(r.run_id);
    CHECK(r.state == "success");
  }
}
