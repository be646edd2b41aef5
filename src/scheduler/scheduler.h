// Scheduler: runs DAGs (dag.h) durably on the log, the store and the runtime's stages.
//
// Operation. One loop thread owns all run state; callers talk to it through commands that
// return once their effect is durable. Each step of the loop:
//   1. applies queued commands (trigger, approve/reject, cancel, clear, pause);
//   2. reads task results from the results topic (written by task workers, see task_stage.h)
//      and records from topic triggers (one record -> one run, run id = its position);
//   3. fires due timers: retry delays (Airflow's formula, retry_delay.h), execution timeouts,
//      approval expiry, run deadlines, cron schedules;
//   4. moves tasks whose trigger rule is decided (trigger_rules.h) to scheduled, skipped or
//      upstream_failed, and dispatches scheduled tasks by priority within pool slots and the
//      DAG's max_active_tasks (runs beyond max_active_runs wait queued);
//   5. writes every changed run, task instance, approval and cursor (and error budget,
//      error_budget.h) in ONE store transaction;
//   6. appends the dispatch records (topic "<dispatch_prefix><stage>", one append per stage,
//      an idempotent producer whose sequence is the task's dispatch_seq) and the task events,
//      both without an fsync of their own: (5) is the durable record of them.
// State is written (5) before the records that act on it (6): after a crash (or a power loss
// that took unsynced appends), running tasks whose dispatch may not have been appended are
// re-dispatched with the same sequence, which the log drops when it already has it; results
// are applied only to the try they belong to, so replaying results changes nothing. No task
// succeeds twice, none is forgotten. The pieces: state_machine.h (runs, tasks, transitions),
// scheduler_impl.h (the loop, recovery, error budget reactions), task_records.h (records).
//
// Faults other than a crash (docs/ARCHITECTURE.md, "The scheduler"):
//   - a dispatch record the log would refuse (over the topic's max.message.bytes) fails its
//     task in (4), with the size, the limit and how to fix it in the task's error; one the log
//     refuses anyway in (6) fails its try in the next step. Nothing else waits on it.
//   - a failed transaction (5) writes nothing, and the loop reloads its memory from the store
//     as a restart would, so the step is undone; its commands reply with the error.
//   - a try that stops being the task's try (execution_timeout, cancel, clear) is cancelled
//     for its worker (live_tries.h): its stage sees cancelled(), its outputs are dropped.
//   - run and task deadlines are re-armed on a restart; each miss is reported once.
//
// Concurrency: thread-safe; commands block until the loop has made them durable, and return an
// error only when nothing of them took effect.
//
// Limitations: one scheduler per data dir (the log's lock guarantees it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "factory/log.h"
#include "factory/status.h"
#include "runtime/binding.h"
#include "scheduler/dag.h"
#include "scheduler/error_budget.h"
#include "store/meta_store.h"

namespace factory::scheduler {

struct SchedulerOptions {
  std::string results_topic = "factory.task-results";
  std::string events_topic = "factory.task-events";
  std::string dispatch_prefix = "factory.dispatch.";
  int32_t partitions = 4;              // of the topics the scheduler creates
  int64_t tick_ms = 100;               // longest wait when nothing happens
  int task_concurrency = 4;            // workers per stage for dispatched tasks
  const base::Clock* clock = nullptr;  // null: system clock
  // false: ready tasks stay `scheduled` and nothing is dispatched — for a one-shot command
  // (the CLI's trigger, clear, decide) beside which no worker runs: the next scheduler that
  // dispatches (`factoryd run`, `serve`) sends them. A task shown `running` is dispatched.
  bool dispatch = true;
};

// One task instance as the CLI and API show it.
struct TaskView {
  store::TaskRow row;
  std::string stage;
};

struct RunView {
  store::RunRow run;
  std::vector<TaskView> tasks;
};

// Whether a command (decide, cancel, clear, set_paused) appends its own audit row, in the
// step that makes it durable. The HTTP API passes kCallerAudits: its server audits every write
// request itself, with the request id and whatever the outcome (also refused ones, which never
// reach the scheduler), so a change arriving over HTTP gets one row, not two.
enum class AuditMode : uint8_t { kAudit, kCallerAudits };

class Scheduler {
 public:
  // Loads the unfinished runs from *store and creates the scheduler's topics. *log and *store
  // must outlive the Scheduler. InvalidArgument for an unknown stage in a DAG.
  static Result<std::unique_ptr<Scheduler>> create(Log* log, store::MetaStore* store,
                                                   std::vector<Dag> dags,
                                                   const SchedulerOptions& options);
  ~Scheduler();  // stop()

  // The bindings that execute dispatched tasks (one per stage used by a DAG, wrapping the
  // stage in a TaskStage); add them to the runtime engine's pipeline config.
  std::vector<runtime::Binding> task_bindings() const;

  // Starts the loop thread. Recovers first: re-dispatches running tasks.
  Status start();
  // Stops the loop after its current step. Idempotent.
  void stop();

  // Creates a run (durable when this returns) and returns its id. With an actor, the same step
  // writes its audit row (run.trigger, scheduler/audit.h); without, the caller audits (the
  // API's server) or nobody does (dags test). NotFound for an unknown DAG, InvalidArgument for
  // a conf that is not a JSON object or fails the DAG's params schema, AlreadyExists when
  // run_id is taken.
  Result<std::string> trigger(std::string_view dag_id, std::string_view conf_json,
                              std::string run_id = "", std::string trigger = "manual",
                              std::string_view actor = {});
  // Resolves an approval task that is awaiting_approval. `bound_to`, when not empty, names what
  // the decider reviewed (a commit, or a prefix of at least 7 characters of it): the decision
  // applies only to an approval bound to exactly that (docs/dags.md "Approvals").
  // FailedPrecondition (HTTP 409) when the task is not awaiting approval, when bound_to does not
  // match what the approval is bound to, or when that binding changed since it was requested
  // (an upstream made a new commit: the approval is asked again for it, and must be decided
  // again), and an approval while what it is bound to is being rebuilt (its upstream has no
  // output right now). For a run that has ended, the message names the approval's state
  // (cancelled, expired, approved, ...) and why.
  Status decide(std::string_view run_id, std::string_view task_id, bool approve,
                std::string_view actor, std::string_view comment,
                AuditMode audit = AuditMode::kAudit, std::string_view bound_to = {});
  // Pauses (or resumes) auto-approval daemon-wide: while paused, an approval task's
  // `auto_approve` is ignored and the run waits for a person (the error budget pauses it until
  // an operator resumes it). Takes effect for the next approval at once; persisted (it survives
  // a restart) and audited as approval.auto_pause/auto_resume. Approvals that were waiting
  // when it is resumed keep waiting for a person. Safe to call from any thread, also from the
  // scheduler's own loop (the write is then queued for the next step).
  Status set_auto_approval_paused(bool paused, std::string_view actor = "scheduler",
                                  AuditMode audit = AuditMode::kAudit);
  bool auto_approval_paused() const;
  // The error budgets of the loaded DAGs that declare one (error_budget.h), in dag_id order, as
  // of the loop's last step that changed one. A breach (the ratio of failed samples in the
  // window above the maximum) triggers one run of the budget's postmortem_dag, with the run id
  // "error_budget__<dag_id>__<breach number>", and with pause_auto_approval pauses
  // auto-approval (actor "error-budget") until an operator resumes it. Safe from any thread.
  std::vector<ErrorBudgetState> error_budgets() const;
  // Cancels a run: unfinished tasks are marked failed/skipped, nothing new is dispatched.
  Status cancel(std::string_view run_id, std::string_view actor,
                AuditMode audit = AuditMode::kAudit);
  // Clears a task (and with downstream=true everything downstream of it) so it runs again.
  Status clear(std::string_view run_id, std::string_view task_id, bool downstream,
               std::string_view actor, AuditMode audit = AuditMode::kAudit);
  // NotFound for a DAG that is not loaded.
  Status set_paused(std::string_view dag_id, bool paused, std::string_view actor,
                    AuditMode audit = AuditMode::kAudit);

  // Waits until the run reaches success, failed or cancelled, or timeout_ms passes (TimedOut).
  Result<RunView> wait_for_run(std::string_view run_id, int64_t timeout_ms);
  // The run as stored.
  Result<RunView> show_run(std::string_view run_id);
  const std::vector<Dag>& dags() const;

  struct Impl;

 private:
  explicit Scheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace factory::scheduler
