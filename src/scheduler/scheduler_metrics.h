// The scheduler's metrics (obs/metrics.h), shared by the loop (scheduler.cpp) and the state
// machine (state_machine.cpp). Internal to src/scheduler. Thread-safe (the registry is).
#pragma once

#include "obs/metrics.h"

namespace factory::scheduler {

// The scheduler's metrics (obs/metrics.h). A child is looked up per transition (a mutex and a
// map lookup): small next to the JSON task event every transition writes.
struct Metrics {
  obs::Registry& r = obs::default_registry();
  obs::Family<obs::Counter>& runs =
      r.counter("factory_dag_runs_total", "DAG runs that ended, by final state.", {"dag", "state"});
  obs::Family<obs::Histogram>& run_seconds =
      r.histogram("factory_dag_run_duration_seconds", "Time from a run's start to its end.",
                  {"dag"}, obs::long_duration_buckets());
  obs::Family<obs::Counter>& tasks =
      r.counter("factory_task_instances_total",
                "Task instance tries that ended, by state (success, failed, up_for_retry, skipped, "
                "upstream_failed).",
                {"dag", "state"});
  obs::Family<obs::Histogram>& task_seconds =
      r.histogram("factory_task_duration_seconds", "Time of one task try, dispatch to result.",
                  {"stage"}, obs::long_duration_buckets());
  obs::Family<obs::Counter>& results_malformed = r.counter(
      "factory_task_results_malformed_total",
      "Result records with the daemon's MAC that could not be read (not a JSON object, no "
      "run_id/task_id/try, an unknown state), by topic. Each is dead-lettered to "
      "<results_topic>.dlq with its reason, never applied.",
      {"topic"});
  obs::Gauge* heartbeat = r.gauge("factory_scheduler_heartbeat_timestamp_seconds",
                                  "When the scheduler loop last completed a step (Unix time).")
                              .get();
};
inline Metrics& metrics() {
  static Metrics* m = new Metrics();
  return *m;
}

}  // namespace factory::scheduler
