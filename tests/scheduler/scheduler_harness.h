// A log, a store, and a started Scheduler with the Engine that runs its tasks, over one temp dir:
// the setup every scheduler-level test (and the HTTP tests of the scheduler routes) shares.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "log/log_test_util.h"
#include "runtime/engine.h"
#include "scheduler/scheduler.h"
#include "store/meta_store.h"

namespace factory::test {

struct SchedulerHarnessOptions {
  const base::Clock* clock = nullptr;      // the scheduler's clock; nullptr = the system clock
  std::vector<runtime::Binding> bindings;  // stages beside the scheduler's own task bindings
  bool start = true;                       // false: only the log and the store are opened
  // The store the scheduler writes through (e.g. a wrapper injecting faults); nullptr = `store`.
  // The engine always uses `store`.
  store::MetaStore* scheduler_store = nullptr;
  // The log the scheduler appends through (e.g. a wrapper refusing records); nullptr = `log`.
  // The engine always uses `log`.
  Log* scheduler_log = nullptr;
  // false: the engine runs none of the scheduler's task bindings, so dispatched tasks stay
  // running (a worker that never got to them), until a start() with it true.
  bool run_tasks = true;
};

struct SchedulerHarness {
  TempDir dir;
  std::unique_ptr<Log> log;
  std::unique_ptr<store::MetaStore> store;
  std::unique_ptr<scheduler::Scheduler> sched;
  std::unique_ptr<runtime::Engine> engine;
  std::vector<scheduler::Dag> dags;
  SchedulerHarnessOptions options;

  explicit SchedulerHarness(std::vector<scheduler::Dag> d, SchedulerHarnessOptions o = {})
      : dags(std::move(d)), options(std::move(o)) {
    log = open_test_log(test_log_options(dir));
    auto s = store::open_sqlite_store({.dir = dir.str() + "/store", .sync = false});
    REQUIRE_OK(s);
    store = std::move(*s);
    if (options.start) start();
  }
  SchedulerHarness(const SchedulerHarness&) = delete;
  SchedulerHarness& operator=(const SchedulerHarness&) = delete;
  ~SchedulerHarness() {
    if (sched) stop();
  }

  // Creates the scheduler over `dags`, starts the engine with its bindings, then the scheduler;
  // after stop(), a restart over the same log and store (what a process restart sees).
  void start() {
    scheduler::SchedulerOptions so;
    so.tick_ms = 20;
    so.clock = options.clock;
    store::MetaStore* ss = options.scheduler_store ? options.scheduler_store : store.get();
    Log* sl = options.scheduler_log ? options.scheduler_log : log.get();
    auto sc = scheduler::Scheduler::create(sl, ss, dags, so);
    REQUIRE_OK(sc);
    sched = std::move(*sc);
    runtime::PipelineConfig pc;
    if (options.run_tasks) pc.bindings = sched->task_bindings();
    pc.bindings.insert(pc.bindings.end(), options.bindings.begin(), options.bindings.end());
    runtime::EngineOptions eo;
    eo.data_dir = dir.str();
    eo.idle_poll_ms = 20;
    auto e = runtime::Engine::start(log.get(), store.get(), pc, eo);
    REQUIRE_OK(e);
    engine = std::move(*e);
    REQUIRE_OK(sched->start());
  }

  // CHECK, not REQUIRE: the destructor calls this, and must not throw.
  void stop() {
    sched->stop();
    Status s = engine->stop(10'000);
    INFO(s.to_string());
    CHECK(s.ok());
    engine.reset();
    sched.reset();
  }
};

// The row of task `id` in a run (fails the test when the run has no such task).
inline const store::TaskRow& task(const scheduler::RunView& v, const std::string& id) {
  for (const auto& t : v.tasks) {
    if (t.row.task_id == id) return t.row;
  }
  FAIL("no task " << id);
  static store::TaskRow none;
  return none;
}

}  // namespace factory::test
