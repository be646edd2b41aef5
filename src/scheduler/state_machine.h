// StateMachine: the runs and task instances of the loaded DAGs, in memory, and every transition
// between their states — the scheduler's VersionSet beside its DBImpl (scheduler.cpp's loop).
//
// Operation. The loop (scheduler.cpp) calls it with what happened — a command (create_run,
// cancel, clear, decide), a result record (apply_result), the clock (fire_timers) — then lets
// it decide what runs next (decide_and_dispatch) and takes what the step changed as data
// (Effects, collect_rows): the rows to write in the step's one store transaction, the task
// events and dispatch records to append once it is written, the tries that end for the
// workers. It reads and writes neither the log nor the store: the few answers it needs from
// them come through Hooks (is a run id taken in the store; seal a dispatch record, i.e. sign
// it and check it fits its topic). Recovery rebuilds it from stored rows (restore_run).
//
//   - trigger rules (trigger_rules.h) and branching decide a task once its upstreams allow;
//     decisions are queued when an upstream finishes and made once per step (linear fan-in);
//   - dispatch by priority within pool slots, max_active_tasks and max_active_runs;
//   - results apply only to the try they name, while it runs (a stale or replayed one changes
//     nothing); a failed try is retried per the task's RetrySpec (retry_delay.h);
//   - approvals (approvals.cpp) park a task in awaiting_approval until decided or expired;
//   - cancel stops a run; clear sends tasks (and their downstream) back to none.
//
// Concurrency: not thread-safe; the loop thread owns it. LiveTries (live_tries.h) is the one
// thing it shares with workers, and that is thread-safe.
//
// Limitations: run ids generated here are unique within the machine and, through
// Hooks::run_exists, the store.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "factory/log.h"
#include "factory/status.h"
#include "scheduler/approval_params.h"
#include "scheduler/dag.h"
#include "scheduler/live_tries.h"
#include "scheduler/task_records.h"
#include "store/meta_store.h"

namespace factory::scheduler {

// scheduler_kv key of a run's tasks whose deadline was reported missed (a JSON array of task
// ids), so a restart re-arms only the others and reports each miss once.
inline constexpr char kTaskDeadlinesMissedPrefix[] = "scheduler.task_deadlines_missed.";

struct TaskInst {
  TaskState state = TaskState::kNone;
  int try_number = 0;
  int64_t dispatch_seq = 0;
  int64_t next_try_ms = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  int64_t timeout_at_ms = 0;
  std::string output;
  std::string error;
  bool in_ready = false;
  bool eval_queued = false;           // in StateMachine::to_evaluate_
  int64_t approval_requested_ms = 0;  // awaiting_approval: when it was requested
  int64_t approval_expires_ms = 0;    // and when it expires (0: never)
  std::string approval_bound_to;      // awaiting_approval: what it approves (bind_to)
  bool deadline_missed = false;       // its deadline was reported (kTaskDeadlinesMissedPrefix)
};

struct Run {
  store::RunRow row;  // its state column is written from `state` (collect_rows())
  RunState state = RunState::kQueued;
  const Dag* dag = nullptr;
  std::vector<TaskInst> tasks;
  int unfinished = 0;
  int active = 0;  // running tasks (count toward max_active_tasks)
  bool row_dirty = false;
  std::vector<int> dirty;
  std::vector<char> is_dirty;
};

// A run rebuilt from its stored rows (tasks without a row are in state none).
std::unique_ptr<Run> load_run(const Dag* dag, const store::RunRow& row,
                              const std::vector<store::TaskRow>& rows);

// A DAG's share of the machine: its pause, its active runs and tasks, its queued runs.
struct DagState {
  const Dag* dag = nullptr;
  bool paused = false;
  int active_runs = 0;
  int active_tasks = 0;
  std::deque<std::string> waiting_runs;  // queued beyond max_active_runs
  std::vector<int> approvals;            // positions of the approval tasks
};

// A ready task: higher priority first, then first come.
struct ReadyKey {
  int64_t priority;
  uint64_t order;
  std::string run_id;
  int task;
  bool operator<(const ReadyKey& o) const {
    if (priority != o.priority) return priority > o.priority;
    return order < o.order;
  }
};

struct Timer {
  enum class Kind { kRetry, kTimeout, kApprovalExpiry, kRunDeadline };
  int64_t at_ms;
  Kind kind;
  std::string run_id;
  int task;
  int try_number;
  bool operator>(const Timer& o) const { return at_ms > o.at_ms; }
};

// Whose dispatch record a queued record is: the task's try, or (task -1) an approval's message.
struct DispatchOwner {
  std::string run_id;
  int task = -1;
  int try_number = 0;
};

// A dispatch record to append once the step is written (topic "<dispatch_prefix><stage>").
struct QueuedDispatch {
  std::string topic;
  ProducerRecord record;  // sealed (Hooks::seal)
  DispatchOwner owner;
};

// A try that ended in this step: its worker must stop once the step is durable.
struct EndedTry {
  std::string run_id, task_id;
  int try_number;
};

// What the steps since the last take_effects() changed, beyond the runs' and tasks' rows
// (collect_rows()): written and appended by the loop, in this order, once per step.
struct Effects {
  store::SchedulerBatch batch;             // approvals, audit rows, kv
  std::vector<ProducerRecord> events;      // for the events topic (task_records.h)
  std::vector<QueuedDispatch> dispatches;  // in sequence order
  std::vector<EndedTry> ended_tries;
  // Tasks that succeeded from a result record, for the error budgets (samples).
  std::vector<std::pair<const Run*, int>> successes;
  bool empty() const {
    return batch.empty() && events.empty() && dispatches.empty() && ended_tries.empty() &&
           successes.empty();
  }
};

// What the machine asks of the world. Every member has a usable default (tests).
struct Hooks {
  // Signs a dispatch record for `topic` and checks the log would take it; not OK (saying what to
  // change): not queued, and the try fails. Default: accept as is.
  std::function<Status(const std::string& topic, ProducerRecord* rec)> seal;
  // Whether a run id is taken by a run the machine no longer holds (the store's finished runs).
  std::function<bool(const std::string& run_id)> run_exists;
  // Auto-approval paused daemon-wide (Scheduler::set_auto_approval_paused).
  std::function<bool()> auto_approval_paused;
};

struct MachineOptions {
  std::string results_topic = "factory.task-results";
  std::string dispatch_prefix = "factory.dispatch.";
  const base::Clock* clock = nullptr;  // null: system clock
  // Stages with a dispatch topic (approval_notify among them when registered).
  std::set<std::string> stages;
  bool dispatch = true;  // false: ready tasks stay scheduled (SchedulerOptions::dispatch)
};

class StateMachine {
 public:
  // *dags must outlive the machine; `live` is shared with the task workers (may be null).
  StateMachine(const std::vector<Dag>* dags, MachineOptions options, Hooks hooks,
               std::shared_ptr<LiveTries> live);

  // ---- commands ----
  // Creates a run, queued or started. NotFound for an unknown DAG, InvalidArgument for a bad
  // conf, AlreadyExists when run_id is taken.
  Result<std::string> create_run(std::string_view dag_id, std::string_view conf_json,
                                 std::string run_id, std::string trigger);
  // Applies a worker's result to the try it names; another try's result changes nothing.
  void apply_result(const ResultRecord& result);
  // Cancels an active run: unfinished tasks fail (running) or are skipped, and its approvals
  // awaiting a decision are closed as `cancelled` (audited as approval.cancelled, by actor).
  // FailedPrecondition when the run is not active.
  Status cancel(std::string_view run_id, std::string_view actor, bool audit);
  // Clears task_id (and with downstream its downstream) back to none so it runs again. A run
  // the machine no longer holds is passed as `ended` (load_run of its rows) and runs again.
  // NotFound for an unknown task, FailedPrecondition when neither is given.
  Status clear(std::string_view run_id, std::unique_ptr<Run> ended, std::string_view task_id,
               bool downstream, std::string_view actor, bool audit);
  // Resolves an awaiting approval (Scheduler::decide's rules; approvals.cpp).
  Status decide(std::string_view run_id, std::string_view task_id, bool approve,
                std::string_view actor, std::string_view comment, bool audit,
                std::string_view bound_to);
  // NotFound for a DAG that is not loaded.
  Status set_paused(std::string_view dag_id, bool paused, std::string_view actor, bool audit);

  // ---- the clock ----
  // Fires due retry, timeout, approval expiry and deadline timers.
  void fire_timers();
  // When the earliest timer is due (nullopt: none).
  std::optional<int64_t> next_timer_ms() const;

  // ---- deciding ----
  // Decides queued tasks, starts waiting runs, dispatches ready tasks (unless
  // MachineOptions::dispatch is false), until nothing changes.
  void decide_and_dispatch();
  // Fails the try of a dispatch the log refused after its step was written.
  void fail_refused_dispatch(const DispatchOwner& owner, const std::string& topic,
                             const Status& why);

  // ---- output ----
  // Appends the changed run and task rows to *batch and marks them clean.
  void collect_rows(store::SchedulerBatch* batch);
  Effects take_effects();
  Effects& effects() { return fx_; }
  // Forgets the runs that ended; returns their ids.
  std::vector<std::string> forget_finished();

  // ---- recovery (recovery.cpp reads the rows) ----
  // Adds a stored unfinished run; `missed` lists the tasks whose deadline miss was reported.
  // Running tasks are re-armed and queued for redispatch_running().
  void restore_run(const store::RunRow& row, const std::vector<store::TaskRow>& tasks,
                   const std::vector<std::string>& missed_deadlines);
  void restore_approval(const store::ApprovalRow& a);
  // Closes a pending approval row whose run ended (run_state: the run's stored state), in the
  // next step's transaction: `cancelled` for a cancelled run, else `expired`, audited.
  void close_stale_approval(const store::ApprovalRow& pending, std::string_view run_state);
  // Queues the dispatch of every restored running task again, in sequence order; one that no
  // longer renders or fits fails its task.
  void redispatch_running();
  void clear_all();

  // ---- reading ----
  const Run* find_run(std::string_view run_id) const;
  Run* find_run_mutable(std::string_view run_id);
  DagState* dag_state(std::string_view dag_id);
  const std::map<std::string, DagState, std::less<>>& dag_states() const { return dag_states_; }
  int64_t next_dispatch_seq() const { return next_dispatch_seq_; }
  void set_next_dispatch_seq(int64_t seq) { next_dispatch_seq_ = seq; }
  int64_t now() const { return clock_->now_ms(); }
  // The run's tasks whose deadline miss was reported, as a JSON array of task ids.
  static std::string missed_deadlines_json(const Run& r);

 private:
  void touch(Run& r, int t);
  void set_state(Run& r, int t, TaskState s);
  void on_finished(Run& r, int t);
  void drain_evaluations();
  void evaluate(Run& r, int t);
  void make_ready(Run& r, int t);
  void start_run(Run& r);
  void arm_task_deadlines(const Run& r);
  void finish_run(Run& r);
  void record_run_end(const Run& r);
  void start_waiting_runs();
  void dispatch_ready();
  void dispatch(Run& r, int t);
  Status queue_dispatch(Run& r, int t, const std::string& params);
  void fail_try(Run& r, int t, std::string error, bool allow_retry);
  Result<std::string> render(const Run& r, int t) const;
  Status seal(const std::string& topic, ProducerRecord* rec) const;
  bool run_exists(const std::string& run_id) const;
  bool auto_approval_paused() const;

  // approvals.cpp
  Result<ApprovalSettings> approval_settings(const Run& r, int t) const;
  void open_approval(Run& r, int t, const ApprovalSettings& settings);
  bool refresh_binding(Run& r, int t);
  void refresh_bindings(Run& r);
  store::ApprovalRow decided_row(const Run& r, int t, std::string_view state,
                                 std::string_view actor, std::string_view comment) const;
  void resolve_approval(Run& r, int t, bool approve, std::string_view actor,
                        std::string_view comment, bool audit);
  void expire_approval(Run& r, int t, int64_t at_ms);
  void clear_approval(Run& r, int t, std::string_view actor);
  void close_approval(Run& r, int t, std::string_view state, std::string_view actor,
                      std::string_view reason);
  // Closes every approval of r awaiting a decision (close_approval).
  void close_open_approvals(Run& r, std::string_view state, std::string_view actor,
                            std::string_view reason);
  void notify_approval(const Run& r, int t, const ApprovalNotify& notify);
  std::vector<std::string> approved_commits(const Run& r) const;

  const std::vector<Dag>* dags_;
  MachineOptions options_;
  Hooks hooks_;
  const base::Clock* clock_;
  std::shared_ptr<LiveTries> live_;
  std::map<std::string, DagState, std::less<>> dag_states_;
  std::map<std::string, std::unique_ptr<Run>, std::less<>> runs_;  // unfinished runs
  std::set<ReadyKey> ready_;
  uint64_t ready_order_ = 0;
  std::map<std::string, int, std::less<>> pool_used_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  int64_t next_dispatch_seq_ = 1;
  uint64_t run_counter_ = 0;  // suffix of generated run ids
  // Tasks to decide once the step's results are applied (drain_evaluations), each once.
  std::vector<std::pair<Run*, int>> to_evaluate_;
  // Restored running tasks to dispatch again (redispatch_running), by dispatch_seq.
  std::vector<std::pair<int64_t, std::pair<Run*, int>>> redispatch_;
  bool notify_stage_missing_warned_ = false;
  Effects fx_;
};

}  // namespace factory::scheduler
