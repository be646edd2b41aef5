// Trigger rules: given the states of a task's direct upstreams, may it run now, must it wait,
// or is it decided without running (skipped / upstream_failed)?
//
// The semantics are Airflow's, as its scheduler applies them (TriggerRuleDep with
// flag_upstream_failed, airflow-core/src/airflow/ti_deps/deps/trigger_rule_dep.py), for
// unmapped tasks without setup/teardown. Only finished upstreams count: success, failed,
// upstream_failed, skipped, removed (is_finished() in dag.h); queued, running, up_for_retry and
// awaiting_approval are still pending. With u upstreams of which d are done, s succeeded,
// f failed, uf are upstream_failed and sk skipped (removed counts only in d):
//
// | rule                        | upstream_failed when | skipped when       | runs when     |
// |-----------------------------|----------------------|--------------------|---------------|
// | all_success (default)       | f + uf > 0           | else sk > 0        | s == u        |
// | all_failed                  |                      | s + sk > 0         | f + uf == u   |
// | all_done                    |                      |                    | d == u        |
// | all_done_min_one_success    | else d == u, s == 0  | sk > 0             | d == u, s > 0 |
// | all_skipped                 |                      | s + f + uf > 0     | sk == u       |
// | one_success                 | else d == u, s == 0  | d == u, sk == u    | s > 0         |
// | one_failed                  |                      | d == u, f + uf == 0 | f + uf > 0   |
// | one_done                    |                      | d == u, s + f == 0 | s + f > 0     |
// | none_failed                 | f + uf > 0           |                    | s + sk == u   |
// | none_failed_min_one_success | f + uf > 0           | else sk == u       | s + sk == u   |
// | none_skipped                |                      | sk > 0             | d == u        |
// | always                      |                      |                    | at once       |
//
// Otherwise the task waits. Both "when" columns are checked before "runs"; a cell marked
// "else" applies only when the other one did not. A task without upstreams runs at once,
// whatever its rule. Consequences worth knowing (all Airflow's):
// - skipped propagates through all_success: a branch not taken skips everything below it
//   that needs all upstreams, while none_failed* joins run after a skipped branch;
// - the one_* rules and all_failed/all_skipped/all_done_min_one_success decide as soon as the
//   counts allow, without waiting for the remaining upstreams (one_success runs on the first
//   success); the state machine evaluates a task only while it has not started, so later
//   upstream results do not change a decision;
// - one_done ignores upstream_failed: a task whose upstreams all ended upstream_failed is
//   skipped under one_done;
// - an upstream in `removed` never satisfies all_success, all_failed, all_skipped or
//   none_failed*: in Airflow such a run deadlocks and is failed.
//
// Pure functions; thread-safe.
#pragma once

#include <string_view>

#include "scheduler/dag.h"

namespace factory::scheduler {

enum class Readiness : uint8_t {
  kWait,            // not decided yet: evaluate again when an upstream finishes
  kRun,             // its trigger rule is met: schedule it
  kSkip,            // it will never run: mark it skipped
  kUpstreamFailed,  // it will never run because upstreams failed: mark it upstream_failed
};
std::string_view readiness_name(Readiness r);  // "wait", "run", "skip", "upstream_failed"

// Totals over a task's direct upstreams. `done` counts the finished ones (add() keeps it
// right); `total` is the number of upstreams, finished or not.
struct UpstreamCounts {
  int success = 0;
  int failed = 0;
  int upstream_failed = 0;
  int skipped = 0;
  int removed = 0;
  int done = 0;
  int total = 0;

  // Counts one upstream in `state`: total always, the rest only for finished states.
  void add(TaskState state);
};

// What `rule` decides for these upstream counts (the table above).
Readiness evaluate(TriggerRule rule, const UpstreamCounts& up);

}  // namespace factory::scheduler
