// DagAccess: how the DAG commands (dags, runs, tasks, approvals, audit) read and change the
// scheduler's state — over a running daemon's API, or over the data dir itself. It is to these
// commands what http/log_access.h is to the log commands: a command makes the same calls and
// renders the same values either way, so it has one code path and prints the same output.
//
// The values are the views of http/scheduler_views.h (DAGs, runs with their task instances,
// approvals, audit rows, the auto-approval state): the local implementation builds them from the
// store and the Scheduler's public API, the remote one receives them from the API, which builds
// them with the same functions.
//
// The two implementations:
//   - local_dag_access: listing and showing read <data-dir>/store/factory.db beside whoever
//     holds the data dir (SQLite WAL serves other processes' readers) and create nothing;
//     changes (pause, trigger, cancel, clear, decide, auto-approval) open a Host whose
//     scheduler makes them — one durable step with its audit row, as `cli_actor()` — and close
//     it (Busy, reported, while another factoryd holds the data dir). DAGs come from
//     <config_dir>/dags.
//   - remote_dag_access: one API call per method; the DAGs are the daemon's (config_dir is not
//     read) and changes are made as its token.
//
// Errors: a call that fails has printed its error line (common.h: "factoryd: error: <what>;
// <how>") and returns the exit code. The error is printed where it is known because the two
// sides word it differently — the local one names the data dir and config dir and the hint
// that fits ("run 'x' not found in DIR; list runs with ..."), the remote one prints the
// daemon's message — and the commands keep printing exactly what they printed before the two
// paths were merged. Both sides exit 1 for a runtime error and 2 for a usage error (trigger's
// conf refused by the DAG's params schema), and name the DAG, run or task.
//
// Not thread-safe: the CLI is single-threaded.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "base/check.h"
#include "cli/common.h"
#include "http/client.h"

namespace factory::cli {

// A value, or the exit code of the error the call already printed (never kExitOk). Like
// Result, `*r` and `r->` on a failed one are a broken invariant: FACTORY_CHECK aborts.
template <typename T>
class Reported {
 public:
  Reported(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  static Reported failed(int exit_code) { return Reported(exit_code, 0); }

  bool ok() const { return exit_code_ == kExitOk; }
  int exit_code() const { return exit_code_; }
  T& operator*() {
    FACTORY_CHECK(ok());
    return value_;
  }
  T* operator->() {
    FACTORY_CHECK(ok());
    return &value_;
  }

 private:
  Reported(int exit_code, int) : exit_code_(exit_code == kExitOk ? kExitRuntime : exit_code) {}
  T value_{};
  int exit_code_ = kExitOk;
};

struct RunFilter {
  std::string dag_id;       // "" for every DAG
  bool unfinished = false;  // only queued and running runs
  int limit = 100;          // 0: all
};

struct TriggerRequest {
  std::string dag_id;
  std::string conf;    // the run's conf as JSON text ("" for the DAG's defaults)
  std::string run_id;  // "" for a generated one
};

struct TriggeredRun {
  boost::json::object run;  // run_view of the new run, without its tasks
  bool dag_paused = false;  // the DAG is paused: the run waits until it is unpaused
};

struct Decision {
  std::string run_id;
  std::string task_id;
  bool approve = true;
  std::string comment;   // "" for none
  std::string bound_to;  // what the person reviewed (e.g. a commit); "" for unchecked
};

class DagAccess {
 public:
  virtual ~DagAccess() = default;

  // --- DAGs ---
  // dag_summary_view of every DAG, in file order. Invalid DAG files (local) fail.
  virtual Reported<boost::json::array> list_dags() = 0;
  // dag_view of the DAG. Fails naming it when there is no such DAG.
  virtual Reported<boost::json::object> show_dag(const std::string& dag_id) = 0;
  // Pauses or unpauses the DAG (idempotent). Returns kExitOk or the printed error's code.
  virtual int set_paused(const std::string& dag_id, bool paused) = 0;
  // Starts a run. A conf that is not a JSON object or does not match the DAG's params schema is
  // a usage error (exit 2); a run id already taken fails with a hint to pick another.
  virtual Reported<TriggeredRun> trigger(const TriggerRequest& request) = 0;

  // --- Runs and task instances ---
  // run_view of the runs, newest first.
  virtual Reported<boost::json::array> list_runs(const RunFilter& filter) = 0;
  // run_view of the run with "tasks" (http::order_tasks: the DAG file's order when it still
  // has the DAG). Fails naming the run when there is none.
  virtual Reported<boost::json::object> show_run(const std::string& run_id) = 0;
  // Cancels a run that has not ended; fails naming the run when it has ("already ended").
  virtual int cancel_run(const std::string& run_id) = 0;
  // Clears the task (and with `downstream` every task below it) to run again; returns the ids
  // cleared (http::tasks_to_clear). Fails naming the task when the run's DAG has no such task.
  virtual Reported<std::vector<std::string>> clear_task(const std::string& run_id,
                                                        const std::string& task_id,
                                                        bool downstream) = 0;

  // --- Approvals and audit ---
  // approval_view of the pending approvals (with `all`, also decided and expired ones).
  virtual Reported<boost::json::array> list_approvals(bool all) = 0;
  // Decides an approval; returns {"run_id","task_id","state","decided_by","comment"}.
  // Fails ("not awaiting approval") when the task is not awaiting one.
  virtual Reported<boost::json::object> decide(const Decision& decision) = 0;
  // auto_approval_view after `action`: "status" reads it, "pause" and "resume" change it first.
  virtual Reported<boost::json::object> auto_approval(const std::string& action) = 0;
  // audit_view of the newest `limit` audit rows (0: all), newest first.
  virtual Reported<boost::json::array> list_audit(int limit) = 0;
};

// Over the data dir and the DAG files in config_dir (see above).
std::unique_ptr<DagAccess> local_dag_access(const CommonOptions& common, std::string config_dir);
// Over a daemon's /api/v1 through `client`.
std::unique_ptr<DagAccess> remote_dag_access(std::unique_ptr<http::Client> client);

// The daemon's when one holds the data dir or --server names one (remote.h), else the local
// one. nullptr after printing the error (a bad --server URL), with *exit_code set.
std::unique_ptr<DagAccess> open_dag_access(const CommonOptions& common,
                                           const std::string& config_dir, int* exit_code);

}  // namespace factory::cli
