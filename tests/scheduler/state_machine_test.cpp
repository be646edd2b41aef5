// The run/task state machine alone: no log, no store, a manual clock. What a step would write
// and append is read from its Effects and collect_rows().
#include "scheduler/state_machine.h"

#include <map>
#include <string>
#include <vector>

#include "scheduler/dag_parser.h"
#include "scheduler/task_records.h"
#include "test_util.h"

using namespace factory;
using namespace factory::scheduler;

namespace {

Dag parse(const std::string& yaml) {
  auto d = parse_dag_yaml(yaml, "t.yaml", {});
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

// A machine over some DAGs on a manual clock, and a view of what its steps produced.
struct Fixture {
  explicit Fixture(std::vector<Dag> d) : dags(std::move(d)) {
    MachineOptions o;
    o.clock = &clock;
    for (const Dag& dag : dags) {
      for (const Task& t : dag.tasks) o.stages.insert(t.stage);
    }
    sm = std::make_unique<StateMachine>(&dags, o, Hooks{}, live);
  }

  // Decides, then takes the step's effects and rows, as the loop does.
  void step() {
    sm->decide_and_dispatch();
    Effects fx = sm->take_effects();
    store::SchedulerBatch rows;
    sm->collect_rows(&rows);
    for (const store::TaskRow& r : rows.tasks) tasks[r.run_id + "/" + r.task_id] = r;
    for (const store::RunRow& r : rows.runs) runs[r.run_id] = r;
    for (QueuedDispatch& d : fx.dispatches) {
      auto rec = decode_dispatch(*d.record.value);
      REQUIRE_OK(rec);
      dispatched.push_back(*rec);
    }
    for (const ProducerRecord& e : fx.events) {
      if (auto te = decode_task_event(*e.value); te.ok()) events.push_back(*te);
    }
    for (const EndedTry& e : fx.ended_tries) live->end(e.run_id, e.task_id, e.try_number);
  }

  std::string state(const std::string& run, const std::string& task) {
    auto it = tasks.find(run + "/" + task);
    return it == tasks.end() ? "none" : it->second.state;
  }
  int tries(const std::string& run, const std::string& task) {
    return tasks[run + "/" + task].try_number;
  }
  ResultRecord result(const std::string& run, const std::string& task, bool success,
                      std::string output = "", bool retryable = true) {
    return {.run_id = run,
            .task_id = task,
            .try_number = tasks[run + "/" + task].try_number,
            .success = success,
            .output = std::move(output),
            .error = success ? "" : "boom",
            .retryable = retryable};
  }
  std::string start(const std::string& dag, std::string run_id = "") {
    auto r = sm->create_run(dag, "{}", std::move(run_id), "manual");
    REQUIRE_OK(r);
    step();
    return *r;
  }

  base::ManualClock clock{1'000'000};
  std::vector<Dag> dags;
  std::shared_ptr<LiveTries> live = std::make_shared<LiveTries>();
  std::unique_ptr<StateMachine> sm;
  std::map<std::string, store::TaskRow> tasks;  // the rows as last written
  std::map<std::string, store::RunRow> runs;
  std::vector<DispatchRecord> dispatched;
  std::vector<TaskEvent> events;
};

}  // namespace

TEST_CASE("a chain runs task by task, each result moving it on", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: chain
tasks:
  a: {stage: noop}
  b: {stage: noop, upstream: [a], params: {got: "{{ tasks.a.output.n }}"}}
)")});
  std::string run = f.start("chain", "r1");
  CHECK(f.runs["r1"].state == "running");
  CHECK(f.state(run, "a") == "running");
  CHECK(f.state(run, "b") == "none");
  REQUIRE(f.dispatched.size() == 1);
  CHECK(f.dispatched[0].task_id == "a");
  CHECK(f.dispatched[0].try_number == 1);
  CHECK(f.live->is_live(run, "a", 1));

  f.sm->apply_result(f.result(run, "a", true, R"({"n":7})"));
  f.step();
  CHECK(f.state(run, "a") == "success");
  CHECK(f.state(run, "b") == "running");
  CHECK_FALSE(f.live->is_live(run, "a", 1));  // ended once its step was written
  REQUIRE(f.dispatched.size() == 2);
  CHECK(f.dispatched[1].params == R"({"got":7})");

  f.sm->apply_result(f.result(run, "b", true));
  f.step();
  CHECK(f.runs["r1"].state == "success");
  CHECK(f.sm->forget_finished() == std::vector<std::string>{"r1"});
  CHECK(f.sm->find_run("r1") == nullptr);
  // The transitions, as task events: scheduled, running, success for each.
  std::vector<std::string> seen;
  for (const TaskEvent& e : f.events) {
    seen.push_back(e.task_id + ":" + std::string(task_state_name(e.state)));
  }
  CHECK(seen == std::vector<std::string>{"a:scheduled", "a:running", "a:success", "b:scheduled",
                                         "b:running", "b:success"});
}

TEST_CASE("stale, duplicate and unknown results change nothing", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: one
default_args: {retries: 1, retry_delay: 10s}
tasks:
  a: {stage: noop}
  b: {stage: noop, upstream: [a]}
)")});
  std::string run = f.start("one", "r");
  const size_t events = f.events.size();

  SECTION("another try's result") {
    ResultRecord r = f.result(run, "a", true);
    r.try_number = 2;
    f.sm->apply_result(r);
    f.step();
    CHECK(f.state(run, "a") == "running");
    CHECK(f.events.size() == events);
  }
  SECTION("a duplicate of an applied result") {
    f.sm->apply_result(f.result(run, "a", false));
    f.step();
    CHECK(f.state(run, "a") == "up_for_retry");
    const size_t after = f.events.size();
    f.sm->apply_result({.run_id = run, .task_id = "a", .try_number = 1, .success = true});
    f.step();
    CHECK(f.state(run, "a") == "up_for_retry");  // try 1 is no longer running
    CHECK(f.events.size() == after);
  }
  SECTION("an unknown run or task") {
    f.sm->apply_result({.run_id = "nope", .task_id = "a", .try_number = 1, .success = true});
    f.sm->apply_result({.run_id = run, .task_id = "zz", .try_number = 1, .success = true});
    f.step();
    CHECK(f.state(run, "a") == "running");
    CHECK(f.events.size() == events);
  }
}

TEST_CASE("a failed try is retried after its delay, a permanent failure is not",
          "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: retry
default_args: {retries: 1, retry_delay: 10s}
tasks:
  a: {stage: noop}
  b: {stage: noop, upstream: [a]}
)")});
  std::string run = f.start("retry", "r");
  f.sm->apply_result(f.result(run, "a", false));
  f.step();
  CHECK(f.state(run, "a") == "up_for_retry");
  CHECK(f.tasks[run + "/a"].error == "boom");
  REQUIRE(f.sm->next_timer_ms().has_value());
  f.sm->fire_timers();  // not due yet
  f.step();
  CHECK(f.state(run, "a") == "up_for_retry");

  f.clock.set_ms(*f.sm->next_timer_ms());
  f.sm->fire_timers();
  f.step();
  CHECK(f.state(run, "a") == "running");
  CHECK(f.tries(run, "a") == 2);

  SECTION("retries exhausted") {
    f.sm->apply_result(f.result(run, "a", false));
    f.step();
    CHECK(f.state(run, "a") == "failed");
    CHECK(f.state(run, "b") == "upstream_failed");
    CHECK(f.runs["r"].state == "failed");
  }
  SECTION("success on the second try") {
    f.sm->apply_result(f.result(run, "a", true));
    f.step();
    CHECK(f.state(run, "a") == "success");
    CHECK(f.state(run, "b") == "running");
  }
}

TEST_CASE("a permanent failure is not retried", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: perm
default_args: {retries: 3, retry_delay: 1s}
tasks:
  a: {stage: noop}
)")});
  std::string run = f.start("perm", "r");
  f.sm->apply_result(f.result(run, "a", false, "", /*retryable=*/false));
  f.step();
  CHECK(f.state(run, "a") == "failed");
  CHECK(f.runs["r"].state == "failed");
}

TEST_CASE("trigger rules decide each run on its own upstreams", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: rules
tasks:
  a: {stage: noop}
  done: {stage: noop, upstream: [a], trigger_rule: all_done}
  on_fail: {stage: noop, upstream: [a], trigger_rule: one_failed}
  on_ok: {stage: noop, upstream: [a]}
)")});
  std::string r1 = f.start("rules", "r1");
  std::string r2 = f.start("rules", "r2");
  f.sm->apply_result(f.result(r1, "a", false, "", false));
  f.sm->apply_result(f.result(r2, "a", true));
  f.step();
  CHECK(f.state(r1, "done") == "running");
  CHECK(f.state(r1, "on_fail") == "running");
  CHECK(f.state(r1, "on_ok") == "upstream_failed");
  CHECK(f.state(r2, "done") == "running");
  CHECK(f.state(r2, "on_fail") == "skipped");
  CHECK(f.state(r2, "on_ok") == "running");
}

TEST_CASE("a branch follows only the tasks its output names", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: branch
tasks:
  choose: {stage: noop}
  left: {stage: noop, upstream: [choose]}
  right: {stage: noop, upstream: [choose]}
)")});
  std::string run = f.start("branch", "r");
  f.sm->apply_result(f.result(run, "choose", true, R"({"_branch":["right"]})"));
  f.step();
  CHECK(f.state(run, "left") == "skipped");
  CHECK(f.state(run, "right") == "running");
}

TEST_CASE("cancel stops a run: running tries fail, the rest is skipped", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: c
tasks:
  a: {stage: noop}
  b: {stage: noop, upstream: [a]}
)")});
  std::string run = f.start("c", "r");
  REQUIRE_OK(f.sm->cancel(run, "alice", true));
  CHECK(f.sm->effects().batch.audit.size() == 1);
  f.step();
  CHECK(f.runs["r"].state == "cancelled");
  CHECK(f.state(run, "a") == "failed");
  CHECK(f.tasks[run + "/a"].error == "run cancelled");
  CHECK(f.state(run, "b") == "skipped");
  CHECK_FALSE(f.live->is_live(run, "a", 1));
  // Nothing more happens to it: a late result is ignored, it is forgotten.
  f.sm->apply_result({.run_id = run, .task_id = "a", .try_number = 1, .success = true});
  f.step();
  CHECK(f.state(run, "a") == "failed");
  CHECK(f.sm->forget_finished() == std::vector<std::string>{"r"});
  CHECK(f.sm->cancel(run, "alice", true).code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("clear runs a task again, with its downstream when asked", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: cl
tasks:
  a: {stage: noop}
  b: {stage: noop, upstream: [a]}
  c: {stage: noop, upstream: [b]}
)")});
  std::string run = f.start("cl", "r");
  f.sm->apply_result(f.result(run, "a", true));
  f.step();
  f.sm->apply_result(f.result(run, "b", true));
  f.step();
  REQUIRE(f.state(run, "c") == "running");

  SECTION("in an active run, with downstream") {
    REQUIRE_OK(f.sm->clear(run, nullptr, "b", true, "bob", true));
    f.step();
    CHECK(f.state(run, "a") == "success");
    CHECK(f.state(run, "b") == "running");
    CHECK(f.tries(run, "b") == 2);  // try numbers go on: old results no longer match
    CHECK(f.state(run, "c") == "none");
    CHECK_FALSE(f.live->is_live(run, "c", 1));  // its running try ended
    // The old try of c reports: ignored.
    f.sm->apply_result({.run_id = run, .task_id = "c", .try_number = 1, .success = true});
    f.step();
    CHECK(f.state(run, "c") == "none");
  }
  SECTION("without downstream") {
    REQUIRE_OK(f.sm->clear(run, nullptr, "a", false, "bob", false));
    f.step();
    CHECK(f.state(run, "a") == "running");
    CHECK(f.state(run, "b") == "success");
    CHECK(f.state(run, "c") == "running");
  }
  SECTION("a run that ended runs again from its rows") {
    f.sm->apply_result(f.result(run, "c", true));
    f.step();
    REQUIRE(f.runs["r"].state == "success");
    REQUIRE(f.sm->forget_finished().size() == 1);
    std::vector<store::TaskRow> rows;
    for (const auto& [k, row] : f.tasks) rows.push_back(row);
    auto ended = load_run(&f.dags[0], f.runs["r"], rows);
    REQUIRE_OK(f.sm->clear(run, std::move(ended), "c", true, "bob", true));
    f.step();
    CHECK(f.runs["r"].state == "running");
    CHECK(f.state(run, "c") == "running");
    CHECK(f.tries(run, "c") == 2);
  }
  SECTION("an unknown task") {
    CHECK(f.sm->clear(run, nullptr, "zz", true, "bob", true).code() == Status::Code::kNotFound);
  }
}

TEST_CASE("max_active_runs queues runs until a slot frees", "[scheduler][state]") {
  Fixture f({parse(R"(
dag_id: q
max_active_runs: 1
tasks:
  a: {stage: noop}
)")});
  std::string r1 = f.start("q", "r1");
  std::string r2 = f.start("q", "r2");
  CHECK(f.runs["r2"].state == "queued");
  f.sm->apply_result(f.result(r1, "a", true));
  f.step();
  (void)f.sm->forget_finished();
  CHECK(f.runs["r1"].state == "success");
  CHECK(f.runs["r2"].state == "running");
  CHECK(f.state(r2, "a") == "running");
}
