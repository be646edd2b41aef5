// Scheduler::Impl: the loop around the StateMachine (state_machine.h). Internal to
// src/scheduler; its methods live in three files:
//   scheduler.cpp               the loop: step (commands, results, triggers, timers, cron,
//                               decisions), commit (one store transaction), publish (events,
//                               dispatches, offsets), the public commands;
//   recovery.cpp                create() and load_state(): the machine rebuilt from the store,
//                               also after a failed transaction (reload());
//   error_budget_reactions.cpp  samples, breaches and recoveries of the DAGs' error budgets
//                               (error_budget.h): postmortem runs, auto-approval pauses.
//
// Operation: one loop thread (a one-thread runtime::ThreadPool) owns everything here except the
// fields under a Mutex, which other threads read (commands in, finished runs and the budget view
// out), and the atomics.
//
// Concurrency: fields without GUARDED_BY are the loop thread's (and create()'s, before the loop
// starts).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/thread_annotations.h"
#include "factory/consumer.h"
#include "factory/log.h"
#include "runtime/thread_pool.h"
#include "scheduler/cron.h"
#include "scheduler/error_budget.h"
#include "scheduler/live_tries.h"
#include "scheduler/record_auth.h"
#include "scheduler/scheduler.h"
#include "scheduler/state_machine.h"
#include "store/meta_store.h"

namespace factory::scheduler {

inline constexpr char kDispatchSeqKey[] = "scheduler.dispatch_seq";
inline constexpr char kDeadLetterSuffix[] = ".dlq";  // refused results: <results_topic>.dlq
inline constexpr char kAutoApprovalPausedKey[] = "scheduler.auto_approval_paused";

// Where a DAG's runs come from besides commands: its trigger topic or its cron schedule.
struct DagSource {
  std::unique_ptr<Consumer> trigger_consumer;
  std::optional<CronSchedule> cron;
  int64_t next_fire_ms = 0;
  int64_t last_fire_ms = 0;  // the last fire that started a run (0: none yet)
};

// A dispatch topic's records not yet appended, in sequence order, and their owners.
struct PendingDispatches {
  std::vector<ProducerRecord> records;
  std::vector<DispatchOwner> owners;  // one per record
};

// A dispatch record the log refused after its step was written: its try fails in the next step.
struct RefusedDispatch {
  DispatchOwner owner;
  std::string topic;
  Status status;
};

struct Scheduler::Impl {
  Log* log = nullptr;
  store::MetaStore* store = nullptr;
  SchedulerOptions options;
  const base::Clock* clock = nullptr;
  std::vector<Dag> dags;
  std::unique_ptr<StateMachine> sm;
  std::map<std::string, DagSource, std::less<>> sources;  // by dag_id, every loaded DAG
  std::unique_ptr<Consumer> results;
  std::set<std::string> stages;  // stages that get a dispatch binding
  // The daemon's record key (record_auth.h): signs dispatches, checks results.
  std::shared_ptr<const RecordAuth> auth;
  // The try each task is running, for the task workers (live_tries.h). A try starts when the
  // machine sets it running (no worker can see it before its dispatch is appended, after the
  // commit); it ends once the step that ended it is durable (Effects::ended_tries): ended
  // earlier, a worker could skip a first delivery of a try that a failed transaction then
  // brings back, and that try would wait for a result forever.
  std::shared_ptr<LiveTries> live_tries = std::make_shared<LiveTries>();

  // A dispatch topic's records stay queued across steps only while the log fails transiently
  // (they are appended in order, never past one another: a later sequence appended first would
  // make the log drop the earlier one).
  std::map<std::string, PendingDispatches> dispatches;
  // Dispatch records the log refused after their step was written (publish_dispatches()).
  std::vector<RefusedDispatch> refused;
  // Dispatch topics' max.message.bytes, read once per step (check_dispatch_size()).
  std::map<std::string, int64_t, std::less<>> dispatch_limits;
  // A store transaction failed and the state it did not write is still in memory: the next
  // step reloads from the store before anything else (reload()).
  bool reload_pending = false;
  std::vector<std::pair<Consumer*, bool>> to_commit;

  // Commands from other threads, run by the loop at the start of a step.
  using Command = std::pair<std::function<Status()>, std::promise<Status>>;
  base::Mutex cmd_mu;
  std::deque<Command> commands GUARDED_BY(cmd_mu);
  base::Mutex done_mu;
  base::CondVar done_cv{&done_mu};
  std::set<std::string> finished_runs GUARDED_BY(done_mu);  // ended since start (wait_for_run)

  std::atomic<bool> stopping{false};
  // set_auto_approval_paused(): auto_approve params are ignored while set (read by the loop).
  std::atomic<bool> auto_approval_paused{false};
  std::atomic<std::thread::id> loop_thread{};
  std::unique_ptr<runtime::ThreadPool> loop_pool;  // one thread: the loop

  // Error budgets (error_budget.h) by DAG id, owned by the loop; budget_view is their state as
  // of the last step that changed one, for other threads (error_budgets()).
  std::map<std::string, ErrorBudget, std::less<>> budgets;
  std::set<std::string, std::less<>> budget_field_warned;  // DAGs warned about a bad sample
  mutable base::Mutex budget_mu;
  std::vector<ErrorBudgetState> budget_view GUARDED_BY(budget_mu);
  bool budget_view_stale = false;  // a budget changed in this step

  int64_t now() const { return clock->now_ms(); }
  // The step's batch: the machine's and the loop's rows, written together.
  store::SchedulerBatch& batch() { return sm->effects().batch; }

  // ---- the loop (scheduler.cpp) ----
  void loop();
  void step();
  int64_t wait_budget_ms();
  Status check_dispatch_size(const std::string& topic, const ProducerRecord& rec);
  Status seal(const std::string& topic, ProducerRecord* rec);
  void take_result(const ConsumerRecord& cr);
  void refuse_result(const ConsumerRecord& cr, const Status& why);
  void take_dead_dispatch(const ConsumerRecord& cr);
  void poll_triggers();
  void fire_cron();
  Status commit_step(Effects* fx);
  void publish_step(Effects* fx);
  void publish_events(std::vector<ProducerRecord>* events);
  void publish_dispatches();
  void end_tries(std::vector<EndedTry>* ended);
  Status run_command(std::function<Status()> fn) EXCLUDES(cmd_mu);

  // ---- recovery (recovery.cpp) ----
  Status load_state();
  // Why the approval task_id of run_id, which the machine no longer holds, cannot be decided:
  // its stored state and the reason (FailedPrecondition), or `fallback` when no row says more.
  Status ended_approval(std::string_view run_id, std::string_view task_id, bool approve,
                        Status fallback);
  Result<std::vector<std::string>> load_missed_deadlines(const store::RunRow& row, const Dag& dag);
  Status reload();

  // ---- error budgets (error_budget_reactions.cpp) ----
  void record_samples();
  void record_sample(const Run& r, int t);
  void check_error_budgets();
  void refresh_budget_view() EXCLUDES(budget_mu);
  void on_budget_event(const std::string& dag_id, const ErrorBudget& budget,
                       std::string_view action, std::string_view event);
  void on_budget_breached(const std::string& dag_id, ErrorBudget& budget);
};

}  // namespace factory::scheduler
