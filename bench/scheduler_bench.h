// `factory-bench scheduler`: the DAG scheduler (src/scheduler) running no-op tasks through the
// real engine, with durable state: a synced log (LogOptions.sync) and a SQLite store with
// synchronous=FULL. Each workload gets a fresh data dir, log, store, scheduler and engine.
//
// Workloads (--quick divides every size by 10):
//   chain    a 1,000-task chain, one run. A registered bench stage ("bench-stamp", a noop that
//            records steady_clock ns at the start and end of process()) stamps every task;
//            overhead per step = start(i) - end(i-1): upstream success -> downstream start,
//            the stage's own time excluded. p50/p99.
//   runs     10,000 independent one-task runs (noop) of a topic-triggered DAG: 10,000 records
//            appended to the trigger topic in batches of 1,000 (the batched path); task
//            instances/s from the first append to the last run's end (its run_state event on
//            factory.task-events). Also, as a second figure, runs started one at a time with
//            Scheduler::trigger() from one thread (each call waits until its run is durable).
//   fanout   a 10,000-task DAG, 1 root -> 9,998 parallel -> 1 sink (noop); trigger() to the
//            run's end event.
//   trigger  single records appended to a trigger topic at 100/s; latency from just before the
//            append to the run's first task (bench-stamp) starting. p50/p99.
//   big      the fan-out/fan-in shape with 100,000 tasks: build_index on the DAG made in code,
//            YAML parse (parse_dag_yaml) of the equivalent generated file, and the run's total.
// DAG limits (max_active_runs, max_active_tasks, default_pool slots) are lifted to 100,000 so
// they never bind: the figures are the scheduler's, not a configured cap's.
//
// Baselines in the same run: (a) the floor: an in-memory topological executor of the same DAG
// shapes on a runtime::ThreadPool of SchedulerOptions::task_concurrency threads (the engine's
// workers per stage), calling the same stages, no durability, no log (best of 3 runs); (b) the
// durability floor: one synced single-row SQLite UPDATE per transaction (WAL,
// synchronous=FULL), per op.
//
// --only runs a subset of the workloads (and their floors); --awake keeps the CPUs from idling
// during each phase (see CpuWaker in the .cpp and docs/benchmarks.md).
//
// Prints a table and, last, one JSON line starting {"bench":"scheduler", ...}.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace factory::bench {

struct SchedulerBenchOptions {
  int chain_tasks = 1'000;
  int runs = 10'000;
  int fanout_tasks = 10'000;
  int trigger_samples = 1'000;
  int big_tasks = 100'000;
  bool quick = false;
  bool markdown = false;
  // Workloads to run (sqlite, chain, runs, manual, fanout, trigger, big); empty: all.
  std::set<std::string> only;
  // One SCHED_IDLE spinner per CPU during each phase, so idle vCPUs do not delay fsyncs.
  bool awake = false;
};

int run_scheduler_bench(const SchedulerBenchOptions& options);

}  // namespace factory::bench
