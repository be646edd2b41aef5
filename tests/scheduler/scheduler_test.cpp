#include "scheduler/scheduler.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <map>
#include <mutex>
#include <set>

#include "base/clock.h"
#include "factory/stage.h"
#include "runtime/stage_registry.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler_harness.h"

using namespace factory;
using namespace factory::scheduler;
using factory::test::task;

namespace {

// Counts its executions per (run, task); emits {"task": id, "n": executions, "params": ...}.
std::mutex g_mu;
std::map<std::string, int> g_runs;  // "run/task" -> executions
std::atomic<int> g_running{0}, g_max_running{0};

// Where a task with params {"hold": true} waits, holding its slot, until the test releases it:
// the n-th task to enter runs on once release() was called n times. Waits have deadlines, so
// a failing test fails instead of hanging.
class HoldGate {
 public:
  void reset() {
    std::lock_guard<std::mutex> lock(mu_);
    entered_ = released_ = 0;
  }
  void enter_and_wait() {
    std::unique_lock<std::mutex> lock(mu_);
    int me = ++entered_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return released_ >= me; });
  }
  // True once n tasks have entered; false after 20 s.
  bool wait_entered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return entered_ >= n; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    ++released_;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  int released_ = 0;
};
HoldGate g_hold;

class CountStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "sched-count", .version = "1", .default_concurrency = 4};
  }
  StageResult process(const Event& e, StageContext& ctx) override {
    int now = ++g_running;
    int prev = g_max_running.load();
    while (now > prev && !g_max_running.compare_exchange_weak(prev, now)) {
    }
    if (e.payload.find("\"hold\":true") != std::string::npos) g_hold.enter_and_wait();
    std::string key = e.payload;  // params: {"id": "<run>/<task>", ...}
    int n;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      n = ++g_runs[key];
    }
    --g_running;
    if (e.payload.find("\"fail\":true") != std::string::npos)
      return StageResult::permanent("asked to fail");
    if (e.payload.find("\"flaky\":true") != std::string::npos && e.attempt < 3) {
      return StageResult::retryable("flaky try " + std::to_string(e.attempt));
    }
    if (e.payload.find("\"_branch\"") != std::string::npos) {
      ctx.emit({.payload = e.payload});  // a branching task: its output names what to follow
    } else {
      ctx.emit({.payload = R"({"n":)" + std::to_string(n) + R"(,"echo":)" + e.payload + "}"});
    }
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(CountStage);

Dag parse(const std::string& yaml) {
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "sched-count" || s == "approval"; };
  auto d = parse_dag_yaml(yaml, "test.yaml", po);
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

struct Harness : test::SchedulerHarness {
  explicit Harness(std::vector<Dag> d, const base::Clock* c = nullptr)
      : SchedulerHarness(std::move(d), {.clock = c}) {}
  RunView run(const std::string& dag, const std::string& conf = "{}") {
    auto id = sched->trigger(dag, conf);
    REQUIRE_OK(id);
    auto v = sched->wait_for_run(*id, 20'000);
    REQUIRE_OK(v);
    return *v;
  }
};

}  // namespace

TEST_CASE("a chain runs in order and passes outputs through templates", "[scheduler]") {
  Harness h({parse(R"(
dag_id: chain
tasks:
  a: {stage: sched-count, params: {id: "{{ run.id }}/a", ticket: "{{ run.conf.ticket }}"}}
  b: {stage: sched-count, upstream: [a], params: {id: "{{ run.id }}/b", from_a: "{{ tasks.a.output.echo.ticket }}"}}
  c: {stage: sched-count, upstream: [b], params: {id: "{{ run.id }}/c"}}
)")});
  RunView v = h.run("chain", R"({"ticket":"PROJ-7"})");
  CHECK(v.run.state == "success");
  CHECK(task(v, "a").state == "success");
  CHECK(task(v, "c").state == "success");
  CHECK(task(v, "b").output_json.find("\"from_a\":\"PROJ-7\"") != std::string::npos);
  CHECK(task(v, "a").ended_ms <= task(v, "b").started_ms);
  std::lock_guard<std::mutex> lock(g_mu);
  CHECK(g_runs[R"({"id":")" + v.run.run_id + R"(/b","from_a":"PROJ-7"})"] == 1);
}

TEST_CASE("failures follow retries, then trigger rules downstream", "[scheduler]") {
  Harness h({parse(R"(
dag_id: rules
default_args: {retries: 2, retry_delay: 10ms}
tasks:
  flaky: {stage: sched-count, params: {id: "{{ run.id }}/flaky", flaky: true}}
  bad: {stage: sched-count, params: {id: "{{ run.id }}/bad", fail: true}}
  after_bad: {stage: sched-count, upstream: [bad], params: {id: "{{ run.id }}/ab"}}
  on_failure: {stage: sched-count, upstream: [bad], trigger_rule: one_failed, params: {id: "{{ run.id }}/of"}}
  cleanup: {stage: sched-count, upstream: [after_bad, flaky], trigger_rule: all_done, params: {id: "{{ run.id }}/cl"}}
)")});
  RunView v = h.run("rules");
  CHECK(task(v, "flaky").state == "success");
  CHECK(task(v, "flaky").try_number == 3);
  CHECK(task(v, "bad").state == "failed");
  CHECK(task(v, "bad").try_number == 1);  // a permanent failure is not retried
  CHECK(task(v, "bad").error.find("asked to fail") != std::string::npos);
  CHECK(task(v, "after_bad").state == "upstream_failed");
  CHECK(task(v, "on_failure").state == "success");
  CHECK(task(v, "cleanup").state == "success");
  // Airflow's rule: the run's state is its leaves' (on_failure and cleanup both succeeded).
  CHECK(v.run.state == "success");
}

TEST_CASE("approval tasks park the run until approved, rejected or expired", "[scheduler]") {
  Harness h({parse(R"(
dag_id: gated
tasks:
  build: {stage: sched-count, params: {id: "{{ run.id }}/build"}}
  approve: {stage: approval, upstream: [build], approval_timeout: 300ms}
  deploy: {stage: sched-count, upstream: [approve], params: {id: "{{ run.id }}/deploy"}}
)")});
  auto wait_awaiting = [&](const std::string& run) {
    return test::eventually([&] {
      auto v = h.sched->show_run(run);
      return v.ok() && task(*v, "approve").state == "awaiting_approval";
    });
  };
  auto approved = h.sched->trigger("gated", "{}");
  REQUIRE_OK(approved);
  REQUIRE(wait_awaiting(*approved));
  REQUIRE_OK(h.sched->decide(*approved, "approve", true, "alice", "ship it"));
  auto v = h.sched->wait_for_run(*approved, 20'000);
  REQUIRE_OK(v);
  CHECK(v->run.state == "success");
  CHECK(task(*v, "deploy").state == "success");

  auto rejected = h.sched->trigger("gated", "{}");
  REQUIRE(wait_awaiting(*rejected));
  REQUIRE_OK(h.sched->decide(*rejected, "approve", false, "bob", "not today"));
  v = h.sched->wait_for_run(*rejected, 20'000);
  CHECK(v->run.state == "failed");
  CHECK(task(*v, "deploy").state == "upstream_failed");
  CHECK(h.sched->decide(*rejected, "approve", true, "bob", "").code() ==
        Status::Code::kFailedPrecondition);

  auto expired = h.sched->trigger("gated", "{}");
  v = h.sched->wait_for_run(*expired, 20'000);
  REQUIRE_OK(v);
  CHECK(task(*v, "approve").state == "failed");
  CHECK(task(*v, "approve").error == "approval expired");

  auto approvals = h.store->list_approvals("");
  REQUIRE_OK(approvals);
  std::map<std::string, std::string> by_state;
  for (const auto& a : *approvals) by_state[a.state] = a.decided_by;
  CHECK(by_state["approved"] == "alice");
  CHECK(by_state["rejected"] == "bob");
  CHECK(by_state["expired"] == "scheduler");
  auto audit = h.store->list_audit(0);
  REQUIRE_OK(audit);
  CHECK(audit->size() >= 2);
}

TEST_CASE("a topic trigger starts one run per record, not again after a restart", "[scheduler]") {
  Harness h({parse(R"(
dag_id: on_ticket
schedule: {topic: tickets}
tasks:
  ingest: {stage: sched-count, params: {id: "{{ run.id }}", ticket: "{{ run.conf.key }}"}}
)")});
  std::vector<ProducerRecord> recs;
  for (int i = 0; i < 3; ++i)
    recs.push_back(test::rec(R"({"key":"T-)" + std::to_string(i) + "\"}"));
  test::append_ok(h.log.get(), "tickets", recs);
  auto all_done = [&] {
    auto runs = h.store->list_runs({.dag_id = "on_ticket"});
    if (!runs.ok() || runs->size() != 3) return false;
    for (const auto& r : *runs) {
      if (r.state != "success") return false;
    }
    return true;
  };
  REQUIRE(test::eventually(all_done, 20'000));
  h.stop();
  h.start();
  test::append_ok(h.log.get(), "tickets", {test::rec(R"({"key":"T-3"})")});
  REQUIRE(test::eventually(
      [&] {
        auto runs = h.store->list_runs({.dag_id = "on_ticket"});
        return runs.ok() && runs->size() == 4 && runs->front().state == "success";
      },
      20'000));
  auto runs = h.store->list_runs({.dag_id = "on_ticket"});
  CHECK(runs->size() == 4);
}

TEST_CASE("a pool with one slot runs its tasks one at a time", "[scheduler]") {
  // Each task holds its slot until the test releases it, so an overlap cannot hide in the
  // few instructions a task takes. Task states are written before their dispatch records, so
  // once a task has entered the stage, every task dispatched in the same step shows running.
  Harness h({parse(R"(
dag_id: pooled
pools: {narrow: 1}
tasks:
  t1: {stage: sched-count, pool: narrow, params: {id: "{{ run.id }}/1", hold: true}}
  t2: {stage: sched-count, pool: narrow, params: {id: "{{ run.id }}/2", hold: true}}
  t3: {stage: sched-count, pool: narrow, params: {id: "{{ run.id }}/3", hold: true}}
  t4: {stage: sched-count, pool: narrow, params: {id: "{{ run.id }}/4", hold: true}}
)")});
  g_max_running = 0;
  g_hold.reset();
  auto id = h.sched->trigger("pooled", "{}");
  REQUIRE_OK(id);
  for (int n = 1; n <= 4; ++n) {
    INFO("task " << n << " holds the slot");
    REQUIRE(g_hold.wait_entered(n));
    auto v = h.sched->show_run(*id);
    REQUIRE_OK(v);
    int running = 0, done = 0;
    for (const auto& t : v->tasks) {
      running += t.row.state == "running";
      done += t.row.state == "success";
    }
    CHECK(running == 1);
    CHECK(done == n - 1);
    g_hold.release();
  }
  auto v = h.sched->wait_for_run(*id, 20'000);
  REQUIRE_OK(v);
  CHECK(v->run.state == "success");
  CHECK(g_max_running == 1);
}

TEST_CASE("a run survives a restart mid-way and every task runs once", "[scheduler]") {
  std::string yaml = "dag_id: long\ntasks:\n";
  for (int i = 0; i < 30; ++i) {
    yaml += "  t" + std::to_string(i) + ": {stage: sched-count" +
            (i ? ", upstream: [t" + std::to_string(i - 1) + "]" : std::string()) +
            ", params: {id: \"{{ run.id }}/t" + std::to_string(i) + "\"}}\n";
  }
  Harness h({parse(yaml)});
  auto id = h.sched->trigger("long", "{}");
  REQUIRE_OK(id);
  REQUIRE(test::eventually([&] {
    auto v = h.sched->show_run(*id);
    return v.ok() && task(*v, "t10").state == "success";
  }));
  h.stop();
  h.start();
  auto v = h.sched->wait_for_run(*id, 20'000);
  REQUIRE_OK(v);
  CHECK(v->run.state == "success");
  std::lock_guard<std::mutex> lock(g_mu);
  for (int i = 0; i < 30; ++i) {
    INFO("t" << i);
    CHECK(g_runs[R"({"id":")" + *id + "/t" + std::to_string(i) + "\"}"] == 1);
  }
}

TEST_CASE("a missed run deadline is recorded, published and triggers its DAG", "[scheduler]") {
  Harness h({parse(R"(
dag_id: slow
deadline: {after: 100ms, trigger_dag: postmortem}
tasks:
  wait_for_human: {stage: approval}
)"),
             parse(R"(
dag_id: postmortem
tasks:
  report: {stage: sched-count, params: {id: "{{ run.id }}", missed: "{{ run.conf.missed_run_id }}"}}
)")});
  auto id = h.sched->trigger("slow", "{}");
  REQUIRE_OK(id);
  auto pm = h.sched->wait_for_run("deadline__" + *id, 20'000);
  REQUIRE_OK(pm);
  CHECK(pm->run.state == "success");
  CHECK(pm->tasks[0].row.output_json.find(*id) != std::string::npos);
  auto slow = h.store->get_run(*id);
  REQUIRE_OK(slow);
  CHECK(slow->deadline_missed);
  CHECK(slow->state == "running");  // a deadline is an alert, not a cancellation
}

TEST_CASE("a cron DAG fires on the injected clock, once per missed interval", "[scheduler]") {
  // 2026-11-28T10:02:00Z
  base::ManualClock clock(1'795'860'120'000);
  Harness h({parse(R"(
dag_id: every5
schedule: "*/5 * * * *"
tasks:
  tick: {stage: sched-count, params: {id: "{{ run.id }}"}}
)")},
            &clock);
  auto runs = [&] { return h.store->list_runs({.dag_id = "every5"})->size(); };
  clock.advance_ms(60'000);  // 10:03: nothing due
  h.log->wake_waiters();
  clock.advance_ms(2 * 60'000);  // 10:05: one fire
  REQUIRE(test::eventually([&] { return runs() == 1; }));
  CHECK(h.store->list_runs({.dag_id = "every5"})->front().run_id ==
        "scheduled__2026-11-28T10:05:00.000Z");
  clock.advance_ms(60 * 60'000);  // an hour later; catchup is off: only the latest fire runs
  REQUIRE(test::eventually([&] { return runs() == 2; }));
  CHECK(h.store->list_runs({.dag_id = "every5"})->front().run_id ==
        "scheduled__2026-11-28T11:05:00.000Z");
  clock.set_ms(1'795'860'120'000);  // the clock jumps back: nothing fires again
  h.log->wake_waiters();
  CHECK_FALSE(test::eventually([&] { return runs() > 2; }, 300));
}

TEST_CASE("max_active_runs holds further runs queued until one finishes", "[scheduler]") {
  Harness h({parse(R"(
dag_id: one_at_a_time
max_active_runs: 1
tasks:
  gate: {stage: approval}
)")});
  auto first = h.sched->trigger("one_at_a_time", "{}");
  auto second = h.sched->trigger("one_at_a_time", "{}");
  REQUIRE_OK(first);
  REQUIRE_OK(second);
  REQUIRE(test::eventually([&] {
    auto v = h.sched->show_run(*first);
    return v.ok() && v->tasks[0].row.state == "awaiting_approval";
  }));
  CHECK(h.store->get_run(*second)->state == "queued");
  REQUIRE_OK(h.sched->decide(*first, "gate", true, "carol", ""));
  REQUIRE(test::eventually([&] {
    auto v = h.sched->show_run(*second);
    return v.ok() && v->tasks[0].row.state == "awaiting_approval";
  }));
  CHECK(h.store->get_run(*first)->state == "success");
}

TEST_CASE("a cron DAG with catchup runs every fire missed while stopped", "[scheduler]") {
  base::ManualClock clock(1'795'860'120'000);  // 10:02
  auto dag = parse(R"(
dag_id: catchup5
schedule: "*/5 * * * *"
catchup: true
tasks:
  tick: {stage: sched-count, params: {id: "{{ run.id }}"}}
)");
  Harness h({dag}, &clock);
  auto runs = [&] { return h.store->list_runs({.dag_id = "catchup5"})->size(); };
  clock.advance_ms(3 * 60'000);  // 10:05
  REQUIRE(test::eventually([&] { return runs() == 1; }));
  h.stop();
  clock.advance_ms(20 * 60'000);  // 10:25 while stopped: 10:10, :15, :20, :25 were missed
  h.start();
  REQUIRE(test::eventually([&] { return runs() == 5; }));
  auto all = h.store->list_runs({.dag_id = "catchup5"});
  std::set<std::string> ids;
  for (const auto& r : *all) ids.insert(r.run_id);
  CHECK(ids.count("scheduled__2026-11-28T10:10:00.000Z") == 1);
  CHECK(ids.count("scheduled__2026-11-28T10:25:00.000Z") == 1);
}

TEST_CASE("a branching task follows only the downstream tasks it names", "[scheduler]") {
  Harness h({parse(R"(
dag_id: branchy
tasks:
  choose: {stage: sched-count, params: {id: "{{ run.id }}/choose", _branch: [left]}}
  left: {stage: sched-count, upstream: [choose], params: {id: "{{ run.id }}/left"}}
  right: {stage: sched-count, upstream: [choose], params: {id: "{{ run.id }}/right"}}
  after_right: {stage: sched-count, upstream: [right], params: {id: "{{ run.id }}/ar"}}
  join: {stage: sched-count, upstream: [left, right], trigger_rule: none_failed_min_one_success, params: {id: "{{ run.id }}/join"}}
)")});
  RunView v = h.run("branchy");
  CHECK(v.run.state == "success");
  CHECK(task(v, "left").state == "success");
  CHECK(task(v, "right").state == "skipped");
  CHECK(task(v, "after_right").state == "skipped");  // all_success with a skipped upstream
  CHECK(task(v, "join").state == "success");
}

// --- Cron on the real scheduler, with a clock that jumps (NTP steps, a suspended VM). ---

namespace {

// ms since the epoch of "YYYY-MM-DDTHH:MM:SSZ".
int64_t utc_ms(const char* iso) {
  std::tm tm{};
  REQUIRE(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

// A manually triggered DAG whose only use is step() below.
constexpr const char* kBarrierDag = R"(
dag_id: barrier
tasks:
  t: {stage: sched-count, params: {id: "{{ run.id }}/t"}}
)";

// Returns after one whole scheduler step that read the clock after this call began: a command
// is answered after the step that applied it, and a step fires cron after applying commands.
void step(Harness& h) {
  REQUIRE_OK(h.sched->set_paused("barrier", false, "test", AuditMode::kCallerAudits));
}

// The run ids of a DAG's runs, sorted ("scheduled__<fire time>" for cron runs).
std::vector<std::string> run_ids(Harness& h, const std::string& dag) {
  auto runs = h.store->list_runs({.dag_id = dag});
  REQUIRE_OK(runs);
  std::vector<std::string> ids;
  for (const auto& r : *runs) ids.push_back(r.run_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

using Ids = std::vector<std::string>;

}  // namespace

TEST_CASE("cron on the scheduler: a clock that jumps backwards re-fires nothing", "[scheduler]") {
  base::ManualClock clock(utc_ms("2024-05-01T09:59:00Z"));
  Harness h({parse(R"(
dag_id: hourly
schedule: "0 * * * *"
tasks:
  t: {stage: sched-count, params: {id: "{{ run.id }}/t"}}
)"),
             parse(kBarrierDag)},
            &clock);
  step(h);
  CHECK(run_ids(h, "hourly").empty());
  clock.set_ms(utc_ms("2024-05-01T10:00:00Z"));
  step(h);
  CHECK(run_ids(h, "hourly") == Ids{"scheduled__2024-05-01T10:00:00.000Z"});
  // NTP steps the clock back three days; the scheduler steps every 30 minutes until 11:30.
  clock.set_ms(utc_ms("2024-04-28T10:00:00Z"));
  while (clock.now_ms() < utc_ms("2024-05-01T11:30:00Z")) {
    step(h);
    clock.advance_ms(30 * 60'000);
  }
  step(h);
  CHECK(run_ids(h, "hourly") ==
        Ids{"scheduled__2024-05-01T10:00:00.000Z", "scheduled__2024-05-01T11:00:00.000Z"});
}

TEST_CASE("cron on the scheduler: a clock that jumps forward fires once without catchup",
          "[scheduler]") {
  base::ManualClock clock(utc_ms("2024-05-01T10:00:00Z"));
  SECTION("catchup off: only the latest missed fire, then on schedule") {
    Harness h({parse(R"(
dag_id: quarterly
schedule: "*/15 * * * *"
tasks:
  t: {stage: sched-count, params: {id: "{{ run.id }}/t"}}
)"),
               parse(kBarrierDag)},
              &clock);
    step(h);
    clock.set_ms(utc_ms("2024-05-04T10:07:00Z"));  // three days later
    step(h);
    step(h);
    CHECK(run_ids(h, "quarterly") == Ids{"scheduled__2024-05-04T10:00:00.000Z"});
    clock.set_ms(utc_ms("2024-05-04T10:15:00Z"));
    step(h);
    CHECK(run_ids(h, "quarterly") ==
          Ids{"scheduled__2024-05-04T10:00:00.000Z", "scheduled__2024-05-04T10:15:00.000Z"});
  }
  SECTION("catchup on: every fire missed since the last one that ran") {
    Harness h({parse(R"(
dag_id: quarterly
schedule: "*/15 * * * *"
catchup: true
tasks:
  t: {stage: sched-count, params: {id: "{{ run.id }}/t"}}
)"),
               parse(kBarrierDag)},
              &clock);
    step(h);
    clock.set_ms(utc_ms("2024-05-01T10:15:00Z"));
    step(h);
    CHECK(run_ids(h, "quarterly") == Ids{"scheduled__2024-05-01T10:15:00.000Z"});
    clock.set_ms(utc_ms("2024-05-01T11:05:00Z"));
    step(h);
    CHECK(run_ids(h, "quarterly") ==
          Ids{"scheduled__2024-05-01T10:15:00.000Z", "scheduled__2024-05-01T10:30:00.000Z",
              "scheduled__2024-05-01T10:45:00.000Z", "scheduled__2024-05-01T11:00:00.000Z"});
  }
}

TEST_CASE("cron on the scheduler: catch-up across a fall-back night skips the repeated hour",
          "[scheduler]") {
  base::ManualClock clock(utc_ms("2024-11-03T04:00:00Z"));  // 00:00 EDT
  Harness h({parse(R"(
dag_id: ny_hourly
schedule: {cron: "0 * * * *", timezone: America/New_York}
catchup: true
tasks:
  t: {stage: sched-count, params: {id: "{{ run.id }}/t"}}
)"),
             parse(kBarrierDag)},
            &clock);
  step(h);
  clock.set_ms(utc_ms("2024-11-03T05:00:00Z"));  // 01:00 EDT
  step(h);
  clock.set_ms(utc_ms("2024-11-03T08:30:00Z"));  // 03:30 EST
  step(h);
  CHECK(run_ids(h, "ny_hourly") == Ids{"scheduled__2024-11-03T05:00:00.000Z",    // 01:00 EDT
                                       "scheduled__2024-11-03T07:00:00.000Z",    // 02:00 EST
                                       "scheduled__2024-11-03T08:00:00.000Z"});  // 03:00 EST
}
