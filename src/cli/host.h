// Host: everything a long-lived factoryd (or a command that acts on DAG runs) opens, in the
// order it must be opened and closed: plugins, the log (its lock holds the data dir), the
// topics file, the store, the pipelines and DAGs, the scheduler, and the runtime engine.
//
// Not thread-safe; owned by one command. close() (or the destructor) stops the scheduler, then
// the engine, then closes the store and the log.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cli/common.h"
#include "runtime/engine.h"
#include "runtime/pipeline_config.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler.h"
#include "store/meta_store.h"

namespace factory::cli {

struct HostOptions {
  std::string config_dir = "config";
  bool background_retention = false;  // long-running commands only
  bool start_workers = false;         // run stages (the engine); false: scheduler state only
  bool start_scheduler = true;        // the scheduler loop (needed to trigger or decide)
  // Called with the loaded DAGs before the scheduler gets them (`factoryd demo` sets the
  // software factory's auto_approve default). Null: none.
  std::function<void(std::vector<scheduler::Dag>*)> adjust_dags;
};

class Host {
 public:
  // Opens everything; on failure prints the error (with file:line where the config is at
  // fault) and returns nullptr.
  static std::unique_ptr<Host> open(const CommonOptions& common, const HostOptions& options);
  ~Host();

  // Stops the engine (draining up to deadline_ms) and the scheduler. TimedOut from the engine.
  Status close(int64_t deadline_ms);

  Log* log() { return log_.get(); }
  store::MetaStore* store() { return store_.get(); }
  scheduler::Scheduler* scheduler() { return scheduler_.get(); }
  runtime::Engine* engine() { return engine_.get(); }
  const runtime::PipelineConfig& pipelines() const { return pipelines_; }
  // Every binding the engine runs: the pipelines' plus the scheduler's task bindings (empty
  // without start_workers).
  const std::vector<runtime::Binding>& bindings() const { return running_; }
  // True when every running binding's group has consumed its input and every unfinished DAG
  // run is parked on an approval: running, with a task awaiting_approval and none scheduled,
  // queued, running or up_for_retry (for `run --exit-when-idle`; a person decides the rest).
  bool caught_up();

 private:
  Host() = default;
  std::unique_ptr<Log> log_;
  std::unique_ptr<store::MetaStore> store_;
  runtime::PipelineConfig pipelines_;
  std::vector<runtime::Binding> running_;  // pipelines plus the scheduler's task bindings
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::unique_ptr<runtime::Engine> engine_;
};

// How config DAG files are checked: stages against the registry (load plugins first), cron
// expressions and time zones with CronSchedule.
scheduler::DagParseOptions config_dag_parse_options();

// Loads <config_dir>/dags/*.yaml (none when the folder is missing), checking stages against
// the registry and cron expressions and time zones with CronSchedule.
Result<std::vector<scheduler::Dag>> load_config_dags(const std::string& config_dir);

}  // namespace factory::cli
