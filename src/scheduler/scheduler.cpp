#include "scheduler/scheduler.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <queue>
#include <set>
#include <thread>
#include <utility>

#include <boost/json.hpp>

#include "config/contract.h"
#include "factory/consumer.h"
#include "obs/logger.h"
#include "obs/metrics.h"
#include "runtime/stage_registry.h"
#include "runtime/thread_pool.h"
#include "scheduler/approval_params.h"
#include "scheduler/cron.h"
#include "scheduler/dag_parser.h"
#include "scheduler/error_budget.h"
#include "scheduler/live_tries.h"
#include "scheduler/record_auth.h"
#include "scheduler/retry_delay.h"
#include "scheduler/task_stage.h"
#include "scheduler/templates.h"
#include "scheduler/trigger_rules.h"

namespace factory::scheduler {
namespace json = boost::json;
namespace {

constexpr char kDispatchSeqKey[] = "scheduler.dispatch_seq";
constexpr char kDeadLetterSuffix[] = ".dlq";  // refused results: <results_topic>.dlq
constexpr size_t kMaxCatchup = 1000;          // missed cron fires started at once, at most
constexpr char kAutoApprovalPausedKey[] = "scheduler.auto_approval_paused";
constexpr char kAutoApprover[] = "policy:auto";  // who approves under auto_approve
constexpr char kBudgetActor[] = "error-budget";  // who pauses auto-approval on a breach
// scheduler_kv key of a run's tasks whose deadline was reported missed (a JSON array of task
// ids), so a restart re-arms only the others and reports each miss once.
constexpr char kTaskDeadlinesMissedPrefix[] = "scheduler.task_deadlines_missed.";

// The log's measure of a record against max.message.bytes (Kafka's): key + value + headers.
int64_t record_bytes(const ProducerRecord& r) {
  int64_t n = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (const Header& h : r.headers) n += h.key.size() + h.value.size();
  return n;
}

std::string iso_utc(int64_t ms) { return base::format_iso8601_utc(ms); }

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
  obs::Gauge* heartbeat = r.gauge("factory_scheduler_heartbeat_timestamp_seconds",
                                  "When the scheduler loop last completed a step (Unix time).")
                              .get();
};
Metrics& metrics() {
  static Metrics* m = new Metrics();
  return *m;
}

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
  bool eval_queued = false;           // in Impl::to_evaluate
  int64_t approval_requested_ms = 0;  // awaiting_approval: when it was requested
  int64_t approval_expires_ms = 0;    // and when it expires (0: never)
  std::string approval_bound_to;      // awaiting_approval: what it approves (bind_to)
  bool deadline_missed = false;       // its deadline was reported (kTaskDeadlinesMissedPrefix)
};

struct Run {
  store::RunRow row;
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
                              const std::vector<store::TaskRow>& rows) {
  auto r = std::make_unique<Run>();
  r->dag = dag;
  r->row = row;
  r->tasks.resize(dag->tasks.size());
  r->is_dirty.assign(dag->tasks.size(), 0);
  r->unfinished = static_cast<int>(dag->tasks.size());
  for (const store::TaskRow& tr : rows) {
    int t = dag->index.find(tr.task_id);
    if (t < 0) continue;
    TaskInst& ti = r->tasks[t];
    ti.state = parse_task_state(tr.state).value_or(TaskState::kNone);
    ti.try_number = tr.try_number;
    ti.dispatch_seq = tr.dispatch_seq;
    ti.next_try_ms = tr.next_try_ms;
    ti.started_ms = tr.started_ms;
    ti.ended_ms = tr.ended_ms;
    ti.output = tr.output_json;
    ti.error = tr.error;
    if (is_finished(ti.state)) --r->unfinished;
  }
  return r;
}

struct DagState {
  const Dag* dag = nullptr;
  bool paused = false;
  int active_runs = 0;
  int active_tasks = 0;
  std::deque<std::string> waiting_runs;  // queued beyond max_active_runs
  std::unique_ptr<Consumer> trigger_consumer;
  std::optional<CronSchedule> cron;
  int64_t next_fire_ms = 0;
  int64_t last_fire_ms = 0;  // the last fire that started a run (0: none yet)
  std::unique_ptr<config::Contract> params;
  std::vector<int> approvals;  // positions of the approval tasks
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

// Whose dispatch record a queued record is: the task's try, or (task -1) an approval's message.
struct DispatchOwner {
  std::string run_id;
  int task = -1;
  int try_number = 0;
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

struct Timer {
  enum class Kind { kRetry, kTimeout, kApprovalExpiry, kRunDeadline };
  int64_t at_ms;
  Kind kind;
  std::string run_id;
  int task;
  int try_number;
  bool operator>(const Timer& o) const { return at_ms > o.at_ms; }
};

}  // namespace

struct Scheduler::Impl {
  Log* log = nullptr;
  store::MetaStore* store = nullptr;
  SchedulerOptions options;
  const base::Clock* clock = nullptr;
  std::vector<Dag> dags;
  std::map<std::string, DagState, std::less<>> dag_states;
  std::map<std::string, std::unique_ptr<Run>, std::less<>> runs;  // unfinished runs
  std::set<ReadyKey> ready;
  uint64_t ready_order = 0;
  std::map<std::string, int, std::less<>> pool_used;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  int64_t next_dispatch_seq = 1;
  uint64_t run_counter = 0;  // suffix of generated run ids
  std::unique_ptr<Consumer> results;
  std::set<std::string> stages;  // stages that get a dispatch binding
  // The daemon's record key (record_auth.h): signs dispatches, checks results.
  std::shared_ptr<const RecordAuth> auth;

  // The try each task is running, for the task workers (live_tries.h). A try starts in
  // set_state() (no worker can see it before its dispatch is appended, after the commit); it
  // ends once the step that ended it is durable (ended_tries): ended earlier, a worker could
  // skip a first delivery of a try that a failed transaction then brings back, and that try
  // would wait for a result forever.
  std::shared_ptr<LiveTries> live_tries = std::make_shared<LiveTries>();
  struct EndedTry {
    std::string run_id, task_id;
    int try_number;
  };
  std::vector<EndedTry> ended_tries;  // this step's, for live_tries once it is written

  // Produced by one step, flushed together. A dispatch topic's records stay queued across
  // steps only while the log fails transiently (they are appended in order, never past one
  // another: a later sequence appended first would make the log drop the earlier one).
  std::map<std::string, PendingDispatches> dispatches;
  // Dispatch records the log refused after their step was written (publish_dispatches()).
  std::vector<RefusedDispatch> refused;
  // Dispatch topics' max.message.bytes, read once per step (check_dispatch_size()).
  std::map<std::string, int64_t, std::less<>> dispatch_limits;
  // A store transaction failed and the state it did not write is still in memory: the next
  // step reloads from the store before anything else (reload()).
  bool reload_pending = false;
  std::vector<ProducerRecord> events;
  store::SchedulerBatch batch;
  std::vector<std::pair<Consumer*, bool>> to_commit;
  // Tasks to decide once the step's results are applied (drain_evaluations), each once.
  std::vector<std::pair<Run*, int>> to_evaluate;

  // Commands from other threads.
  std::mutex cmd_mu;
  std::deque<std::pair<std::function<Status()>, std::promise<Status>>> commands;
  std::condition_variable done_cv;
  std::mutex done_mu;
  std::set<std::string> finished_runs;  // runs that ended since start (wait_for_run)

  std::atomic<bool> stopping{false};
  // set_auto_approval_paused(): auto_approve params are ignored while set (read by the loop).
  std::atomic<bool> auto_approval_paused{false};
  std::atomic<std::thread::id> loop_thread{};
  bool notify_stage_missing_warned = false;
  std::unique_ptr<runtime::ThreadPool> loop_pool;  // one thread: the loop

  // Error budgets (error_budget.h) by DAG id, owned by the loop; budget_view is their state as
  // of the last step that changed one, for other threads (error_budgets()).
  std::map<std::string, ErrorBudget, std::less<>> budgets;
  std::set<std::string, std::less<>> budget_field_warned;  // DAGs warned about a bad sample
  mutable std::mutex budget_mu;
  std::vector<ErrorBudgetState> budget_view;  // guarded by budget_mu
  bool budget_view_stale = false;             // a budget changed in this step

  int64_t now() const { return clock->now_ms(); }

  // ---- state changes ----
  void touch(Run& r, int t) {
    if (!r.is_dirty[t]) {
      r.is_dirty[t] = 1;
      r.dirty.push_back(t);
    }
  }

  void set_state(Run& r, int t, TaskState s) {
    TaskInst& ti = r.tasks[t];
    if (ti.state == s) return;
    bool was_finished = is_finished(ti.state);
    bool was_active = ti.state == TaskState::kRunning;
    ti.state = s;
    touch(r, t);
    DagState& ds = dag_states.find(r.row.dag_id)->second;
    if (was_active) {
      --r.active;
      --ds.active_tasks;
      pool_used[r.dag->tasks[t].pool] -= r.dag->tasks[t].pool_slots;
      // Whatever ended the try (result, execution_timeout, cancel, clear), its worker must stop
      // and append nothing: it is no longer the task's try.
      ended_tries.push_back({r.row.run_id, r.dag->tasks[t].id, ti.try_number});
    }
    if (s == TaskState::kRunning) {
      ++r.active;
      ++ds.active_tasks;
      pool_used[r.dag->tasks[t].pool] += r.dag->tasks[t].pool_slots;
      live_tries->start(r.row.run_id, r.dag->tasks[t].id, ti.try_number);
    }
    if (!was_finished && is_finished(s)) {
      --r.unfinished;
      ti.ended_ms = now();
    } else if (was_finished && !is_finished(s)) {
      ++r.unfinished;
    }
    if (was_active && s != TaskState::kNone) {  // a try ended (not cleared)
      metrics()
          .task_seconds.labels({r.dag->tasks[t].stage})
          ->observe((now() - ti.started_ms) / 1e3);
    }
    if ((!was_finished && is_finished(s)) || s == TaskState::kUpForRetry) {
      metrics().tasks.labels({r.row.dag_id, task_state_name(s)})->inc();
    }
    json::object e;
    e["run_id"] = r.row.run_id;
    e["dag_id"] = r.row.dag_id;
    e["task_id"] = r.dag->tasks[t].id;
    e["state"] = std::string(task_state_name(s));
    e["try"] = ti.try_number;
    e["at_ms"] = now();
    ProducerRecord rec;
    rec.key = r.row.run_id;
    rec.value = json::serialize(e);
    events.push_back(std::move(rec));
    if (is_finished(s)) on_finished(r, t);
  }

  void on_finished(Run& r, int t) {
    if (r.row.state == "cancelled") return;  // a cancelled run decides nothing more
    // Queued, not evaluated here: evaluate() reads every upstream, so a fan-in of n tasks
    // evaluated on each upstream's end costs n^2 (minutes at 100,000); queued, it costs n per
    // step. The trigger rules decide the same on the later, larger set of finished upstreams.
    for (int d : r.dag->index.downstream(t)) {
      TaskInst& ti = r.tasks[d];
      if (ti.state != TaskState::kNone || ti.eval_queued) continue;
      ti.eval_queued = true;
      to_evaluate.emplace_back(&r, d);
    }
    if (r.unfinished == 0) finish_run(r);
  }

  // Evaluates the queued tasks, and those their decisions queue (skips cascade).
  void drain_evaluations() {
    while (!to_evaluate.empty()) {
      std::vector<std::pair<Run*, int>> queued;
      queued.swap(to_evaluate);
      for (auto [r, t] : queued) {
        r->tasks[t].eval_queued = false;
        if (r->row.state != "cancelled") evaluate(*r, t);
      }
    }
  }

  // Decides a task whose upstreams may all be settled.
  void evaluate(Run& r, int t) {
    if (r.tasks[t].state != TaskState::kNone) return;
    UpstreamCounts c;
    for (int u : r.dag->index.upstream(t)) c.add(r.tasks[u].state);
    // Branching: a successful upstream whose output names "_branch" follows only those tasks.
    for (int u : r.dag->index.upstream(t)) {
      const TaskInst& up = r.tasks[u];
      if (up.state != TaskState::kSuccess || up.output.find("\"_branch\"") == std::string::npos)
        continue;
      boost::system::error_code ec;
      json::value v = json::parse(up.output, ec);
      const json::value* b = ec || !v.is_object() ? nullptr : v.as_object().if_contains("_branch");
      if (!b || !b->is_array()) continue;
      bool followed = false;
      for (const auto& id : b->as_array()) {
        if (id.is_string() && id.as_string() == r.dag->tasks[t].id) followed = true;
      }
      if (!followed) {
        set_state(r, t, TaskState::kSkipped);
        return;
      }
    }
    switch (scheduler::evaluate(r.dag->tasks[t].trigger_rule, c)) {
      case Readiness::kWait:
        return;
      case Readiness::kSkip:
        set_state(r, t, TaskState::kSkipped);
        return;
      case Readiness::kUpstreamFailed:
        set_state(r, t, TaskState::kUpstreamFailed);
        return;
      case Readiness::kRun:
        make_ready(r, t);
        return;
    }
  }

  void make_ready(Run& r, int t) {
    const Task& task = r.dag->tasks[t];
    if (task.approval || task.stage == kApprovalStage) {
      auto settings = approval_settings(r, t);
      if (!settings.ok()) {
        r.tasks[t].error = settings.status().message();
        set_state(r, t, TaskState::kFailed);
        return;
      }
      open_approval(r, t, *settings);
      return;
    }
    set_state(r, t, TaskState::kScheduled);
    r.tasks[t].in_ready = true;
    ready.insert({r.dag->index.priority(t), ready_order++, r.row.run_id, t});
  }

  // ---- approvals (approval_params.h) ----
  // The approval task's params, rendered now: what it binds to, auto_approve, notify.
  Result<ApprovalSettings> approval_settings(const Run& r, int t) const {
    auto params = render(r, t);
    if (!params.ok()) return params.status();
    return parse_approval_settings(*params);
  }

  // Asks for a decision on approval task t (awaiting_approval once this returns, unless a
  // policy approved it at once): a pending approval row bound to settings.bound_to replaces
  // whatever row the task had, so an approval given for another commit no longer counts.
  void open_approval(Run& r, int t, const ApprovalSettings& settings) {
    const Task& task = r.dag->tasks[t];
    TaskInst& ti = r.tasks[t];
    set_state(r, t, TaskState::kAwaitingApproval);
    store::ApprovalRow a;
    a.run_id = r.row.run_id;
    a.task_id = task.id;
    a.state = "pending";
    a.requested_ms = now();
    a.bound_to = settings.bound_to;
    ti.approval_requested_ms = a.requested_ms;
    ti.approval_bound_to = a.bound_to;
    ti.approval_expires_ms = 0;
    if (settings.auto_approve && !auto_approval_paused.load()) {
      batch.approvals.push_back(a);  // the decision below replaces it in the same transaction
      resolve_approval(r, t, true, kAutoApprover, "auto_approve", true);
      return;
    }
    if (settings.auto_approve) {
      a.comment = "auto-approval is paused; waiting for a person";
    } else {
      a.comment = settings.auto_approve_problem;
    }
    if (task.approval_timeout_ms) {
      a.expires_ms = a.requested_ms + *task.approval_timeout_ms;
      ti.approval_expires_ms = a.expires_ms;
      timers.push({a.expires_ms, Timer::Kind::kApprovalExpiry, r.row.run_id, t, 0});
    }
    batch.approvals.push_back(a);
    if (settings.notify) notify_approval(r, t, *settings.notify);
  }

  // Re-renders an awaiting approval's binding; when it changed (an upstream ran again and made
  // a new commit), the approval is asked again for the new value. True when it changed.
  bool refresh_binding(Run& r, int t) {
    if (r.tasks[t].state != TaskState::kAwaitingApproval) return false;
    auto settings = approval_settings(r, t);
    // Nothing to bind to right now (the upstream has no output while it runs again) is not a
    // new binding: an approval never re-binds to nothing.
    if (!settings.ok() || settings->bound_to.empty() ||
        settings->bound_to == r.tasks[t].approval_bound_to) {
      return false;
    }
    json::object e;
    e["event"] = "approval_rebound";
    e["run_id"] = r.row.run_id;
    e["task_id"] = r.dag->tasks[t].id;
    e["from"] = r.tasks[t].approval_bound_to;
    e["to"] = settings->bound_to;
    ProducerRecord rec;
    rec.key = r.row.run_id;
    rec.value = json::serialize(e);
    events.push_back(std::move(rec));
    open_approval(r, t, *settings);
    return true;
  }

  // Approves or rejects approval task t (awaiting_approval).
  void resolve_approval(Run& r, int t, bool approve, std::string_view actor,
                        std::string_view comment, bool audit) {
    TaskInst& ti = r.tasks[t];
    store::ApprovalRow a;
    a.run_id = r.row.run_id;
    a.task_id = r.dag->tasks[t].id;
    a.state = approve ? "approved" : "rejected";
    a.decided_by = std::string(actor);
    a.decided_ms = now();
    a.comment = std::string(comment);
    a.requested_ms = ti.approval_requested_ms;
    a.expires_ms = ti.approval_expires_ms;
    a.bound_to = ti.approval_bound_to;
    batch.approvals.push_back(a);
    if (audit) {
      batch.audit.push_back({a.decided_ms, std::string(actor),
                             approve ? "approval.approve" : "approval.reject",
                             "run/" + a.run_id + "/task/" + a.task_id, "ok", a.comment, ""});
    }
    if (approve) {
      json::object out;
      out["approved_by"] = a.decided_by;
      if (!a.bound_to.empty()) out["bound_to"] = a.bound_to;
      ti.output = json::serialize(out);
      set_state(r, t, TaskState::kSuccess);
      json::object e;
      e["event"] = "approval_granted";
      e["run_id"] = a.run_id;
      e["task_id"] = a.task_id;
      e["by"] = a.decided_by;
      if (!a.bound_to.empty()) e["bound_to"] = a.bound_to;
      ProducerRecord rec;
      rec.key = a.run_id;
      rec.value = json::serialize(e);
      events.push_back(std::move(rec));
    } else {
      ti.error = "rejected by " + std::string(actor);
      set_state(r, t, TaskState::kFailed);
    }
  }

  // Dispatches the approval's message to the approval_notify stage: the POST runs on a stage
  // worker, and its failure is the stage's to log. Best effort: a crash between this step's
  // store write and its appends loses the message (the approval itself is durable).
  void notify_approval(const Run& r, int t, const ApprovalNotify& notify) {
    const std::string stage(kApprovalNotifyStage);
    if (!stages.count(stage)) {
      if (!notify_stage_missing_warned) {
        obs::warn(
            "approval notify is configured but the approval_notify stage is not "
            "registered; no message is sent",
            {{"run_id", r.row.run_id}, {"task_id", r.dag->tasks[t].id}});
        notify_stage_missing_warned = true;
      }
      return;
    }
    const TaskInst& ti = r.tasks[t];
    std::string params = notify_params_json(notify, r.row.run_id, r.row.dag_id, r.dag->tasks[t].id,
                                            ti.approval_bound_to, ti.approval_requested_ms);
    std::string d =
        "{\"run_id\":" + json::serialize(json::value(r.row.run_id)) +
        ",\"dag_id\":" + json::serialize(json::value(r.row.dag_id)) +
        ",\"task_id\":" + json::serialize(json::value(r.dag->tasks[t].id)) +
        ",\"try\":1,\"kind\":\"notify\",\"params\":" + params + ",\"output_topic\":\"\"" +
        ",\"results_topic\":" + json::serialize(json::value(options.results_topic)) + "}";
    ProducerRecord rec;
    rec.key = r.row.run_id + "/" + r.dag->tasks[t].id;
    rec.value = std::move(d);
    rec.producer_id = "scheduler";
    rec.sequence = next_dispatch_seq++;
    const std::string topic = options.dispatch_prefix + stage;
    rec.headers.push_back(
        {std::string(RecordAuth::kHeader), auth->sign(topic, rec.key, *rec.value)});
    Status fits = check_dispatch_size(topic, rec);
    if (!fits.ok()) {
      obs::warn(
          "approval notify message not sent",
          {{"run_id", r.row.run_id}, {"task_id", r.dag->tasks[t].id}, {"error", fits.to_string()}});
      return;
    }
    PendingDispatches& p = dispatches[topic];
    p.records.push_back(std::move(rec));
    p.owners.push_back({r.row.run_id, -1, 0});
  }

  void start_run(Run& r) {
    r.row.state = "running";
    r.row.started_ms = now();
    r.row_dirty = true;
    ++dag_states.find(r.row.dag_id)->second.active_runs;
    if (r.dag->deadline_ms) {
      r.row.deadline_ms = r.row.started_ms + *r.dag->deadline_ms;
      timers.push({r.row.deadline_ms, Timer::Kind::kRunDeadline, r.row.run_id, -1, 0});
    }
    arm_task_deadlines(r);
    for (int t : r.dag->index.roots()) evaluate(r, t);
    if (r.unfinished == 0) finish_run(r);
  }

  // Per-task deadlines count from the run's start: armed when it starts and again when a
  // restart loads it, for the tasks not finished whose miss was not reported yet.
  void arm_task_deadlines(const Run& r) {
    for (size_t t = 0; t < r.tasks.size(); ++t) {
      const TaskInst& ti = r.tasks[t];
      if (!r.dag->tasks[t].deadline_ms || is_finished(ti.state) || ti.deadline_missed) continue;
      timers.push({r.row.started_ms + *r.dag->tasks[t].deadline_ms, Timer::Kind::kRunDeadline,
                   r.row.run_id, static_cast<int>(t), 0});
    }
  }

  // The run's tasks whose deadline miss was reported, as stored under
  // kTaskDeadlinesMissedPrefix.
  static std::string missed_deadlines_json(const Run& r) {
    json::array ids;
    for (size_t t = 0; t < r.tasks.size(); ++t) {
      if (r.tasks[t].deadline_missed) ids.emplace_back(r.dag->tasks[t].id);
    }
    return json::serialize(ids);
  }

  void finish_run(Run& r) {
    if (r.row.state == "success" || r.row.state == "failed" || r.row.state == "cancelled") return;
    // Airflow: a run fails when any leaf task failed or was upstream_failed.
    bool failed = false;
    for (size_t t = 0; t < r.tasks.size(); ++t) {
      if (!r.dag->index.downstream(static_cast<int>(t)).empty()) continue;
      TaskState s = r.tasks[t].state;
      if (s == TaskState::kFailed || s == TaskState::kUpstreamFailed) failed = true;
    }
    r.row.state = failed ? "failed" : "success";
    r.row.ended_ms = now();
    r.row_dirty = true;
    record_run_end(r);
    DagState& ds = dag_states.find(r.row.dag_id)->second;
    --ds.active_runs;
    json::object e;
    e["run_id"] = r.row.run_id;
    e["dag_id"] = r.row.dag_id;
    e["run_state"] = r.row.state;
    e["at_ms"] = r.row.ended_ms;
    ProducerRecord rec;
    rec.key = r.row.run_id;
    rec.value = json::serialize(e);
    events.push_back(std::move(rec));
  }

  void record_run_end(const Run& r) {
    metrics().runs.labels({r.row.dag_id, r.row.state})->inc();
    if (r.row.started_ms > 0) {
      metrics()
          .run_seconds.labels({r.row.dag_id})
          ->observe((r.row.ended_ms - r.row.started_ms) / 1e3);
    }
  }

  // Queued runs of DAGs with free run slots start.
  void start_waiting_runs() {
    for (auto& [id, ds] : dag_states) {
      while (!ds.waiting_runs.empty() && !ds.paused && ds.active_runs < ds.dag->max_active_runs) {
        auto it = runs.find(ds.waiting_runs.front());
        ds.waiting_runs.pop_front();
        if (it != runs.end() && it->second->row.state == "queued") start_run(*it->second);
      }
    }
  }

  // Dispatches ready tasks by priority within pool slots and max_active_tasks.
  void dispatch_ready() {
    for (auto it = ready.begin(); it != ready.end();) {
      auto rit = runs.find(it->run_id);
      if (rit == runs.end() || rit->second->tasks[it->task].state != TaskState::kScheduled) {
        it = ready.erase(it);
        continue;
      }
      Run& r = *rit->second;
      const Task& task = r.dag->tasks[it->task];
      DagState& ds = dag_states.find(r.row.dag_id)->second;
      auto pool = r.dag->pools.find(task.pool);
      int slots = pool != r.dag->pools.end()  ? pool->second
                  : task.pool == kDefaultPool ? kDefaultPoolSlots
                                              : kDefaultPoolSlots;
      if (ds.paused || ds.active_tasks >= r.dag->max_active_tasks ||
          pool_used[task.pool] + task.pool_slots > slots) {
        ++it;
        continue;
      }
      int t = it->task;
      r.tasks[t].in_ready = false;
      it = ready.erase(it);
      dispatch(r, t);
    }
  }

  // The task's params with its templates filled from the run and its upstreams' outputs.
  Result<std::string> render(const Run& r, int t) const {
    RenderContext rc;
    std::string logical = iso_utc(r.row.logical_ms);
    rc.dag_id = r.row.dag_id;
    rc.run_id = r.row.run_id;
    rc.logical_date = logical;
    rc.conf_json = r.row.conf_json;
    rc.task_id = r.dag->tasks[t].id;
    rc.task_output = [&](std::string_view id) -> std::optional<std::string_view> {
      int u = r.dag->index.find(id);
      if (u < 0 || r.tasks[u].output.empty()) return std::nullopt;
      return std::string_view(r.tasks[u].output);
    };
    return render_params(r.dag->tasks[t].params, rc);
  }

  void dispatch(Run& r, int t) {
    TaskInst& ti = r.tasks[t];
    auto params = render(r, t);
    ++ti.try_number;
    ti.started_ms = now();
    if (!params.ok()) {
      ti.error = params.status().message();
      set_state(r, t, TaskState::kFailed);
      return;
    }
    ti.dispatch_seq = next_dispatch_seq++;
    ti.error.clear();
    // A record the log would refuse fails this one task now, in the step's transaction, instead
    // of being written as running and refused after it (which held every later dispatch back).
    // Not retried: a retry renders the same params.
    Status queued = queue_dispatch(r, t, *params);
    if (!queued.ok()) {
      ti.error = queued.message();
      set_state(r, t, TaskState::kFailed);
      return;
    }
    if (auto timeout = r.dag->index.execution_timeout_ms(t)) {
      ti.timeout_at_ms = ti.started_ms + *timeout;
      timers.push({ti.timeout_at_ms, Timer::Kind::kTimeout, r.row.run_id, t, ti.try_number});
    }
    set_state(r, t, TaskState::kRunning);
  }

  // InvalidArgument, saying what to change, when the record is over the topic's
  // max.message.bytes (the log would refuse it). A topic that cannot be described is left to
  // the append, whose refusal fails the task then (publish_dispatches()).
  Status check_dispatch_size(const std::string& topic, const ProducerRecord& rec) {
    auto it = dispatch_limits.find(topic);
    if (it == dispatch_limits.end()) {
      auto info = log->describe_topic(topic);
      int64_t limit = info.ok() ? info->spec.config.max_message_bytes : INT64_MAX;
      it = dispatch_limits.emplace(topic, limit).first;
    }
    int64_t bytes = record_bytes(rec);
    if (bytes <= it->second) return Status();
    return Status::invalid_argument(
        "dispatch record is " + std::to_string(bytes) + " bytes, over " + topic +
        "'s max.message.bytes " + std::to_string(it->second) +
        "; make the task's params smaller (pass a reference, e.g. a path, commit or id, instead "
        "of the content) or raise the limit with `factoryd topics apply` (config "
        "max.message.bytes of " +
        topic + ")");
  }

  // What the run's granted approvals were bound to (a JSON array of commits): the scheduler's
  // word, in the authenticated dispatch, for a stage that must act only on an approved commit
  // (deploy; task_stage.h hands it on as factory.approved headers). Read from the approval
  // tasks' outputs, which only resolve_approval() writes (an approval is never dispatched, so
  // no result record can set it), and which survive a restart in the store.
  std::string approved_commits(const Run& r) const {
    json::array out;
    for (int a : dag_states.find(r.row.dag_id)->second.approvals) {
      if (r.tasks[a].state != TaskState::kSuccess || r.tasks[a].output.empty()) continue;
      boost::system::error_code ec;
      json::value v = json::parse(r.tasks[a].output, ec);
      const json::value* bound =
          !ec && v.is_object() ? v.as_object().if_contains("bound_to") : nullptr;
      if (bound && bound->is_string() && !bound->as_string().empty()) out.push_back(*bound);
    }
    return json::serialize(out);
  }

  // Queues task t's dispatch record (its current try and dispatch_seq) for this step's appends.
  // InvalidArgument (nothing queued) when the log would refuse it for its size.
  Status queue_dispatch(Run& r, int t, const std::string& params) {
    const Task& task = r.dag->tasks[t];
    const TaskInst& ti = r.tasks[t];
    std::string d =
        "{\"run_id\":" + json::serialize(json::value(r.row.run_id)) +
        ",\"dag_id\":" + json::serialize(json::value(r.row.dag_id)) +
        ",\"task_id\":" + json::serialize(json::value(task.id)) +
        ",\"try\":" + std::to_string(ti.try_number) + ",\"params\":" + params +
        ",\"config\":" + literal_params(task.params) + ",\"approved\":" + approved_commits(r) +
        ",\"output_topic\":" + json::serialize(json::value(task.output_topic)) +
        ",\"results_topic\":" + json::serialize(json::value(options.results_topic)) + "}";
    ProducerRecord rec;
    // Keyed by task, not run: a run's parallel tasks spread over the dispatch partitions (and
    // so over the stage's workers) instead of queueing behind one another on one partition.
    rec.key = r.row.run_id + "/" + task.id;
    rec.value = std::move(d);
    rec.producer_id = "scheduler";
    rec.sequence = ti.dispatch_seq;
    const std::string topic = options.dispatch_prefix + task.stage;
    rec.headers.push_back(
        {std::string(RecordAuth::kHeader), auth->sign(topic, rec.key, *rec.value)});
    FACTORY_RETURN_IF_ERROR(check_dispatch_size(topic, rec));
    PendingDispatches& p = dispatches[topic];
    p.records.push_back(std::move(rec));
    p.owners.push_back({r.row.run_id, t, ti.try_number});
    return Status();
  }

  // Fails the tries whose dispatch record the log refused after their step was written: the
  // same record would be refused again, so they are not retried.
  void fail_refused_dispatches() {
    std::vector<RefusedDispatch> todo;
    todo.swap(refused);
    for (RefusedDispatch& f : todo) {
      if (f.owner.task < 0) {
        obs::warn(
            "approval notify message not sent: the log refused its dispatch record",
            {{"run_id", f.owner.run_id}, {"topic", f.topic}, {"error", f.status.to_string()}});
        continue;
      }
      auto rit = runs.find(f.owner.run_id);
      if (rit == runs.end()) continue;
      Run& r = *rit->second;
      TaskInst& ti = r.tasks[f.owner.task];
      if (ti.state != TaskState::kRunning || ti.try_number != f.owner.try_number) continue;
      fail_try(r, f.owner.task,
               "the dispatch record of try " + std::to_string(ti.try_number) +
                   " could not be appended to " + f.topic + ": " + f.status.message(),
               false);
    }
  }

  // A failed try: retry per the task's policy, else failed.
  void fail_try(Run& r, int t, std::string error, bool allow_retry) {
    TaskInst& ti = r.tasks[t];
    ti.error = std::move(error);
    const RetrySpec& spec = r.dag->index.retry(t);
    if (allow_retry && should_retry(spec, ti.try_number)) {
      std::string logical = iso_utc(r.row.logical_ms);
      int64_t delay =
          next_retry_delay_ms(spec, {r.row.dag_id, r.dag->tasks[t].id, logical}, ti.try_number);
      ti.next_try_ms = now() + delay;
      set_state(r, t, TaskState::kUpForRetry);
      timers.push({ti.next_try_ms, Timer::Kind::kRetry, r.row.run_id, t, ti.try_number});
    } else {
      set_state(r, t, TaskState::kFailed);
    }
  }

  // A result record without the daemon's MAC (record_auth.h): never applied — it could mark a
  // running gate as passed — but dead-lettered to <results_topic>.dlq with the reason, counted
  // and logged, for an operator to see. Best effort: a failed append is logged.
  void refuse_result(const ConsumerRecord& cr, const Status& why) {
    count_refused_record(cr.topic);
    const std::string reason = "result record refused: " + why.message();
    obs::warn(reason, {{"topic", cr.topic},
                       {"partition", std::to_string(cr.record.partition)},
                       {"offset", std::to_string(cr.record.offset.value())}});
    ProducerRecord letter;
    letter.key = cr.record.key;
    letter.value = cr.record.value;
    letter.headers = cr.record.headers;
    letter.headers.push_back({"factory.dlq.reason", reason});
    letter.headers.push_back({"factory.source.topic", cr.topic});
    letter.headers.push_back({"factory.source.partition", std::to_string(cr.record.partition)});
    letter.headers.push_back({"factory.source.offset", std::to_string(cr.record.offset.value())});
    letter.headers.push_back({"factory.stage", "scheduler"});
    auto appended = log->append(cr.topic + kDeadLetterSuffix, {&letter, 1});
    if (!appended.ok()) {
      obs::warn("refused result record not dead-lettered",
                {{"topic", cr.topic}, {"error", appended.status().to_string()}});
    }
  }

  void apply_result(const std::string& payload) {
    boost::system::error_code ec;
    json::value v = json::parse(payload, ec);
    if (ec || !v.is_object()) return;
    const json::object& o = v.as_object();
    auto str = [&](const char* k) -> std::string {
      auto* p = o.if_contains(k);
      return p && p->is_string() ? std::string(p->as_string()) : std::string();
    };
    auto rit = runs.find(str("run_id"));
    if (rit == runs.end()) return;  // finished or unknown: nothing to change
    Run& r = *rit->second;
    int t = r.dag->index.find(str("task_id"));
    if (t < 0) return;
    TaskInst& ti = r.tasks[t];
    auto* tr = o.if_contains("try");
    if (!tr || !tr->is_int64() || tr->as_int64() != ti.try_number ||
        ti.state != TaskState::kRunning) {
      return;  // a late or replayed result of another try: ignored (idempotent)
    }
    if (str("state") == "success") {
      auto* out = o.if_contains("output");
      ti.output = out && !out->is_null() ? json::serialize(*out) : "";
      set_state(r, t, TaskState::kSuccess);
      record_sample(r, t);
      // A new output (say, a new commit) re-binds the approvals waiting on it.
      for (int a : dag_states.find(r.row.dag_id)->second.approvals) refresh_binding(r, a);
    } else {
      auto* rt = o.if_contains("retryable");
      // A permanent failure (AirflowFailException's analogue) is not retried.
      fail_try(r, t, str("error"), !rt || !rt->is_bool() || rt->as_bool());
    }
  }

  void fire_timers() {
    int64_t t_now = now();
    while (!timers.empty() && timers.top().at_ms <= t_now) {
      Timer tm = timers.top();
      timers.pop();
      auto rit = runs.find(tm.run_id);
      if (rit == runs.end()) continue;
      Run& r = *rit->second;
      switch (tm.kind) {
        case Timer::Kind::kRetry:
          if (r.tasks[tm.task].state == TaskState::kUpForRetry &&
              r.tasks[tm.task].try_number == tm.try_number) {
            r.tasks[tm.task].state = TaskState::kNone;  // re-decided below, then scheduled
            set_state(r, tm.task, TaskState::kScheduled);
            r.tasks[tm.task].in_ready = true;
            ready.insert({r.dag->index.priority(tm.task), ready_order++, r.row.run_id, tm.task});
          }
          break;
        case Timer::Kind::kTimeout:
          if (r.tasks[tm.task].state == TaskState::kRunning &&
              r.tasks[tm.task].try_number == tm.try_number) {
            fail_try(r, tm.task, "execution_timeout passed", true);
          }
          break;
        case Timer::Kind::kApprovalExpiry:
          // at_ms: a re-requested approval's earlier timer is stale.
          if (r.tasks[tm.task].state == TaskState::kAwaitingApproval &&
              r.tasks[tm.task].approval_expires_ms == tm.at_ms) {
            store::ApprovalRow a;
            a.run_id = r.row.run_id;
            a.task_id = r.dag->tasks[tm.task].id;
            a.state = "expired";
            a.decided_by = "scheduler";
            a.decided_ms = t_now;
            a.requested_ms = r.tasks[tm.task].approval_requested_ms;
            a.expires_ms = tm.at_ms;
            a.bound_to = r.tasks[tm.task].approval_bound_to;
            batch.approvals.push_back(a);
            r.tasks[tm.task].error = "approval expired";
            set_state(r, tm.task, TaskState::kFailed);
          }
          break;
        case Timer::Kind::kRunDeadline: {
          bool missed = tm.task < 0 ? !r.row.deadline_missed
                                    : !is_finished(r.tasks[tm.task].state) &&
                                          !r.tasks[tm.task].deadline_missed;
          if (!missed) break;
          if (tm.task < 0) {
            r.row.deadline_missed = true;
            r.row_dirty = true;
          } else {
            // Written with the audit row below: a restart re-arms only the others.
            r.tasks[tm.task].deadline_missed = true;
            batch.kv.emplace_back(kTaskDeadlinesMissedPrefix + r.row.run_id,
                                  missed_deadlines_json(r));
          }
          json::object e;
          e["run_id"] = r.row.run_id;
          e["dag_id"] = r.row.dag_id;
          e["deadline_missed"] = tm.task < 0 ? std::string("run") : r.dag->tasks[tm.task].id;
          e["at_ms"] = t_now;
          ProducerRecord rec;
          rec.key = r.row.run_id;
          rec.value = json::serialize(e);
          events.push_back(std::move(rec));
          batch.audit.push_back({t_now, "scheduler", "deadline.missed", "run/" + r.row.run_id, "ok",
                                 tm.task < 0 ? "run deadline" : "task " + r.dag->tasks[tm.task].id,
                                 ""});
          if (tm.task < 0 && !r.dag->deadline_trigger_dag.empty()) {
            json::object conf;
            conf["missed_run_id"] = r.row.run_id;
            conf["dag_id"] = r.row.dag_id;
            (void)create_run(r.dag->deadline_trigger_dag, json::serialize(conf),
                             "deadline__" + r.row.run_id, "deadline");
          }
          break;
        }
      }
    }
  }

  // ---- error budgets (error_budget.h) ----
  // A successful task of its DAG's budget stage is a sample: its output's boolean field.
  void record_sample(const Run& r, int t) {
    const std::optional<ErrorBudgetSpec>& spec = r.dag->error_budget;
    if (!spec || r.dag->tasks[t].stage != spec->stage) return;
    auto it = budgets.find(r.row.dag_id);
    if (it == budgets.end()) return;
    boost::system::error_code ec;
    json::value v = json::parse(r.tasks[t].output, ec);
    const json::value* f = ec || !v.is_object() ? nullptr : v.as_object().if_contains(spec->field);
    if (!f || !f->is_bool()) {
      if (budget_field_warned.insert(r.row.dag_id).second) {
        obs::warn(
            "error budget: a task of its stage succeeded without a boolean verdict; not counted "
            "(warned once per DAG)",
            {{"dag_id", r.row.dag_id},
             {"run_id", r.row.run_id},
             {"task_id", r.dag->tasks[t].id},
             {"field", spec->field}});
      }
      return;
    }
    it->second.record(now(), f->as_bool());
  }

  // Moves every budget's window to now and acts on a breach beginning or ending; writes the
  // budgets that changed into this step's batch (with the postmortem run and the pause). Their
  // view is refreshed once that batch is durable (step()).
  void check_error_budgets() {
    for (auto& [dag_id, budget] : budgets) {
      switch (budget.update(now())) {
        case ErrorBudget::Change::kBreached:
          on_budget_breached(dag_id, budget);
          break;
        case ErrorBudget::Change::kRecovered:
          on_budget_event(dag_id, budget, "error_budget.recovered", "error_budget_recovered");
          break;
        case ErrorBudget::Change::kNone:
          break;
      }
      if (budget.take_dirty()) {
        batch.kv.emplace_back(ErrorBudget::kv_key(dag_id), budget.encode());
        budget_view_stale = true;
      }
    }
  }

  void refresh_budget_view() {
    std::vector<ErrorBudgetState> view;
    for (const auto& [dag_id, budget] : budgets) view.push_back(budget.state());
    std::lock_guard<std::mutex> lock(budget_mu);
    budget_view = std::move(view);
  }

  // "3 of 40 gate verdicts failed in the last 1h (7.5% > 2%)"
  static std::string budget_summary(const ErrorBudgetState& s) {
    int64_t w = s.spec.window_ms;
    std::string window = w % 3'600'000 == 0 ? std::to_string(w / 3'600'000) + "h"
                         : w % 60'000 == 0  ? std::to_string(w / 60'000) + "m"
                         : w % 1000 == 0    ? std::to_string(w / 1000) + "s"
                                            : std::to_string(w) + "ms";
    return std::to_string(s.failures) + " of " + std::to_string(s.samples) + " " + s.spec.stage +
           " verdicts failed in the last " + window + " (" + percent_text(s.ratio) +
           (s.in_breach ? " > " : " <= ") + percent_text(s.spec.max_failure_ratio) + ")";
  }

  // An audit row and a task event for a budget's transition.
  void on_budget_event(const std::string& dag_id, const ErrorBudget& budget,
                       std::string_view action, std::string_view event) {
    ErrorBudgetState s = budget.state();
    batch.audit.push_back(
        {now(), kBudgetActor, std::string(action), "dag/" + dag_id, "ok", budget_summary(s), ""});
    json::object e;
    e["event"] = event;
    e["dag_id"] = dag_id;
    e["samples"] = s.samples;
    e["failures"] = s.failures;
    e["ratio"] = s.ratio;
    e["max_failure_ratio"] = s.spec.max_failure_ratio;
    e["breaches"] = s.breaches;
    if (!s.last_postmortem_run_id.empty()) e["postmortem_run_id"] = s.last_postmortem_run_id;
    e["at_ms"] = now();
    ProducerRecord rec;
    rec.key = dag_id;
    rec.value = json::serialize(e);
    events.push_back(std::move(rec));
  }

  // A breach begins: one postmortem run (its id names the breach, so it is never made twice)
  // and auto-approval paused, in the same transaction as the breach itself.
  void on_budget_breached(const std::string& dag_id, ErrorBudget& budget) {
    const ErrorBudgetSpec& spec = *dag_states.find(dag_id)->second.dag->error_budget;
    ErrorBudgetState s = budget.state();
    const std::string summary = budget_summary(s);
    obs::warn("error budget breached",
              {{"dag_id", dag_id}, {"summary", summary}, {"breach", std::to_string(s.breaches)}});
    if (!spec.postmortem_dag.empty()) {
      json::object conf;
      conf["dag"] = dag_id;
      conf["ratio"] = s.ratio;
      conf["failures"] = s.failures;
      conf["samples"] = s.samples;
      conf["window_ms"] = spec.window_ms;
      conf["breached_at"] = iso_utc(s.last_breach_ms);
      conf["max_failure_ratio"] = spec.max_failure_ratio;
      conf["min_samples"] = spec.min_samples;
      conf["stage"] = spec.stage;
      conf["breach"] = s.breaches;
      conf["summary"] = summary;
      std::string run_id = "error_budget__" + dag_id + "__" + std::to_string(s.breaches);
      auto made =
          create_run(spec.postmortem_dag, json::serialize(conf), run_id, "error_budget:" + dag_id);
      if (made.ok() || made.status().code() == Status::Code::kAlreadyExists) {
        budget.set_postmortem_run(run_id);
      } else {
        obs::error("error budget: the postmortem DAG did not start",
                   {{"dag_id", dag_id},
                    {"postmortem_dag", spec.postmortem_dag},
                    {"error", made.status().to_string()}});
        batch.audit.push_back({now(), kBudgetActor, "run.trigger", "dag/" + spec.postmortem_dag,
                               made.status().to_string(), "postmortem of " + dag_id, ""});
      }
    }
    on_budget_event(dag_id, budget, "error_budget.breach", "error_budget_breached");
    if (spec.pause_auto_approval && !auto_approval_paused.exchange(true)) {
      batch.kv.emplace_back(kAutoApprovalPausedKey, "1");
      batch.audit.push_back({now(), kBudgetActor, "approval.auto_pause", "scheduler/auto_approval",
                             "ok", "error budget of DAG '" + dag_id + "' breached: " + summary,
                             ""});
    }
  }

  Result<std::string> create_run(std::string_view dag_id, std::string_view conf_json,
                                 std::string run_id, std::string trigger) {
    auto dit = dag_states.find(dag_id);
    if (dit == dag_states.end()) {
      return Status::not_found("DAG '" + std::string(dag_id) +
                               "' is not loaded; `factoryd dags list` shows the DAGs");
    }
    DagState& ds = dit->second;
    auto conf = resolve_run_conf(*ds.dag, conf_json);
    if (!conf.ok()) return conf.status();
    int64_t t_now = now();
    if (run_id.empty()) {
      // Airflow's shape, "<trigger>__<logical date>", made unique within a millisecond.
      do {
        run_id = trigger + "__" + iso_utc(t_now) + "_" + std::to_string(++run_counter);
      } while (runs.count(run_id) || store->get_run(run_id).ok());
    }
    if (runs.count(run_id) || store->get_run(run_id).ok()) {
      return Status::already_exists("run '" + run_id + "' already exists");
    }
    auto r = std::make_unique<Run>();
    r->row.run_id = run_id;
    r->row.dag_id = std::string(dag_id);
    r->row.state = "queued";
    r->row.conf_json = *conf;
    r->row.trigger = std::move(trigger);
    r->row.logical_ms = t_now;
    r->row.created_ms = t_now;
    r->row_dirty = true;
    r->dag = ds.dag;
    r->tasks.resize(ds.dag->tasks.size());
    r->is_dirty.assign(ds.dag->tasks.size(), 0);
    r->unfinished = static_cast<int>(ds.dag->tasks.size());
    Run* raw = r.get();
    runs[run_id] = std::move(r);
    if (!ds.paused && ds.active_runs < ds.dag->max_active_runs) {
      start_run(*raw);
    } else {
      ds.waiting_runs.push_back(run_id);
    }
    return run_id;
  }

  // ---- the step ----
  // 5. Writes every changed run, task instance, approval, audit row and cursor in ONE store
  // transaction. On failure nothing of the step is in the store, and the step's batch is
  // dropped (never carried into the next step's): the caller reloads the memory from the store.
  Status commit_step() {
    for (auto& [id, rp] : runs) {
      Run& r = *rp;
      if (r.row_dirty) batch.runs.push_back(r.row);
      r.row_dirty = false;
      for (int t : r.dirty) {
        const TaskInst& ti = r.tasks[t];
        store::TaskRow row;
        row.run_id = r.row.run_id;
        row.task_id = r.dag->tasks[t].id;
        row.state = std::string(task_state_name(ti.state));
        row.try_number = ti.try_number;
        row.dispatch_seq = ti.dispatch_seq;
        row.next_try_ms = ti.next_try_ms;
        row.started_ms = ti.started_ms;
        row.ended_ms = ti.ended_ms;
        row.output_json = ti.output;
        row.error = ti.error;
        batch.tasks.push_back(std::move(row));
        r.is_dirty[t] = 0;
      }
      r.dirty.clear();
    }
    Status s;
    if (!batch.empty()) {
      batch.kv.emplace_back(kDispatchSeqKey, std::to_string(next_dispatch_seq));
      s = store->apply_scheduler_batch(batch);
    }
    batch = store::SchedulerBatch();
    return s;
  }

  // 6. Acts on the written step: task events, dispatch records, consumed offsets; forgets the
  // runs that ended. An append failure here never fails the step (its state is durable): a
  // refused record fails its own task in the next step, a transient failure is retried.
  void publish_step() {
    end_tries();
    publish_events();
    publish_dispatches();
    for (auto& [c, unused] : to_commit) {
      Status s = c->commit();
      if (!s.ok()) obs::warn("scheduler offset commit failed", {{"error", s.to_string()}});
    }
    to_commit.clear();
    // Forget finished runs; wake their waiters.
    std::vector<std::string> ended;
    for (auto it = runs.begin(); it != runs.end();) {
      const std::string& st = it->second->row.state;
      if (st == "success" || st == "failed" || st == "cancelled") {
        ended.push_back(it->first);
        it = runs.erase(it);
      } else {
        ++it;
      }
    }
    if (!ended.empty()) {
      std::lock_guard<std::mutex> lock(done_mu);
      finished_runs.insert(ended.begin(), ended.end());
      done_cv.notify_all();
    }
  }

  // The tries this step ended are no longer live for their workers (live_tries.h).
  void end_tries() {
    for (const EndedTry& e : ended_tries) live_tries->end(e.run_id, e.task_id, e.try_number);
    ended_tries.clear();
  }

  // Observer events are derived from the stored state: no fsync of their own (the dispatch
  // appends, or the next synced write, carry them to disk), and a lost one is only a warning.
  // An append is all or nothing, so a record the log refuses (too big for the topic) is found
  // by appending one at a time: it alone is dropped, not the step's other events.
  void publish_events() {
    if (events.empty()) return;
    auto a = log->append(options.events_topic, events, {.sync = false});
    if (!a.ok() && !a.status().retryable()) {
      for (const ProducerRecord& e : events) {
        auto one = log->append(options.events_topic, std::span(&e, 1), {.sync = false});
        if (!one.ok()) {
          obs::warn("task event not appended",
                    {{"key", e.key.value_or("")}, {"error", one.status().to_string()}});
        }
      }
    } else if (!a.ok()) {
      obs::warn("task events not appended", {{"error", a.status().to_string()}});
    }
    events.clear();
  }

  // One append per dispatch topic. When the log refuses it (InvalidArgument: a record over
  // max.message.bytes, if the limit was lowered since check_dispatch_size(); NotFound: the
  // topic is gone), the records are appended one at a time so the refused ones are found:
  // each fails its own try in the next step (fail_refused_dispatches()) and the others go
  // through. A transient failure (IOError, Busy) keeps the topic's remaining records queued, in
  // order, for the next step.
  void publish_dispatches() {
    for (auto it = dispatches.begin(); it != dispatches.end();) {
      const std::string& topic = it->first;
      PendingDispatches& p = it->second;
      auto all = log->append(topic, p.records);
      size_t done = p.records.size();
      if (!all.ok() && all.status().retryable()) {
        done = 0;
        obs::warn("dispatch records not appended; retried in the next step",
                  {{"topic", topic}, {"error", all.status().to_string()}});
      } else if (!all.ok()) {
        for (done = 0; done < p.records.size(); ++done) {
          auto one = log->append(topic, std::span(&p.records[done], 1));
          if (one.ok()) continue;
          if (one.status().retryable()) {
            obs::warn("dispatch records not appended; retried in the next step",
                      {{"topic", topic}, {"error", one.status().to_string()}});
            break;
          }
          obs::warn("dispatch record refused by the log; its task fails",
                    {{"topic", topic},
                     {"run_id", p.owners[done].run_id},
                     {"error", one.status().to_string()}});
          refused.push_back({p.owners[done], topic, one.status()});
        }
      }
      if (done == p.records.size()) {
        it = dispatches.erase(it);
        continue;
      }
      p.records.erase(p.records.begin(), p.records.begin() + static_cast<ptrdiff_t>(done));
      p.owners.erase(p.owners.begin(), p.owners.begin() + static_cast<ptrdiff_t>(done));
      ++it;
    }
  }

  // After a failed store transaction: forgets everything in memory and loads it again from the
  // store, exactly as a restart does (load_state()), so whatever that step did — commands,
  // results, timers — is undone, never written by a later step. The step's polled results and
  // trigger records were not committed, so the fresh consumers read them again. On failure
  // (the store cannot be read either) reload_pending stays set and every step retries first.
  Status reload() {
    reload_pending = true;
    Status s = load_state();
    if (!s.ok()) {
      obs::error("scheduler state not reloaded; retried at the next step",
                 {{"error", s.to_string()}});
      return s;
    }
    reload_pending = false;
    refresh_budget_view();
    return Status();
  }

  void step() {
    // 1. Commands.
    std::deque<std::pair<std::function<Status()>, std::promise<Status>>> cmds;
    {
      std::lock_guard<std::mutex> lock(cmd_mu);
      cmds.swap(commands);
    }
    if (reload_pending && !reload().ok()) {
      for (auto& [fn, promise] : cmds) {
        promise.set_value(Status::unavailable(
            "the scheduler cannot read its store (it is recovering from a failed store "
            "transaction); nothing was applied; retry when the store is back"));
      }
      return;
    }
    dispatch_limits.clear();  // read again: `topics apply` may have changed them
    std::vector<std::pair<std::promise<Status>, Status>> replies;
    for (auto& [fn, promise] : cmds) replies.emplace_back(std::move(promise), fn());
    fail_refused_dispatches();
    // 2. Results and topic triggers.
    if (results) {
      auto got = results->poll(5000, 0);
      if (got.ok() && !got->empty()) {
        for (const auto& cr : *got) {
          if (!cr.record.value) continue;
          Status authentic =
              auth->verify(cr.topic, cr.record.key, *cr.record.value, cr.record.headers);
          if (!authentic.ok()) {
            refuse_result(cr, authentic);
            continue;
          }
          apply_result(*cr.record.value);
        }
        to_commit.emplace_back(results.get(), true);
      }
    }
    for (auto& [id, ds] : dag_states) {
      if (!ds.trigger_consumer || ds.paused) continue;
      auto got = ds.trigger_consumer->poll(1000, 0);
      if (!got.ok() || got->empty()) continue;
      for (const auto& cr : *got) {
        std::string run_id = "topic__" + cr.topic + "_" + std::to_string(cr.record.partition) +
                             "_" + std::to_string(cr.record.offset.value());
        std::string conf = cr.record.value.value_or("{}");
        auto made = create_run(id, conf, run_id,
                               "topic:" + cr.topic + "/" + std::to_string(cr.record.partition) +
                                   "/" + std::to_string(cr.record.offset.value()));
        if (!made.ok() && made.status().code() != Status::Code::kAlreadyExists) {
          obs::warn("trigger record did not start a run",
                    {{"dag_id", id}, {"run_id", run_id}, {"error", made.status().to_string()}});
        }
      }
      to_commit.emplace_back(ds.trigger_consumer.get(), true);
    }
    // Before any approval of this step opens: a breach pauses auto-approval for it already.
    check_error_budgets();
    // 3. Timers and cron.
    fire_timers();
    int64_t t_now = now();
    for (auto& [id, ds] : dag_states) {
      if (!ds.cron || ds.paused || ds.next_fire_ms > t_now) continue;
      // catchup off: only the latest missed fire runs; on: every missed fire since the last
      // one that ran, oldest first (at most kMaxCatchup, the latest ones).
      std::vector<int64_t> fires;
      if (ds.dag->trigger.catchup && ds.last_fire_ms > 0) {
        fires = ds.cron->fires_between(ds.last_fire_ms, t_now, kMaxCatchup);
      } else {
        fires = {ds.cron->last_at_or_before(t_now)};
      }
      for (int64_t fire : fires) {
        (void)create_run(id, "{}", "scheduled__" + iso_utc(fire), "cron");
        ds.last_fire_ms = fire;
      }
      batch.kv.emplace_back("scheduler.cron." + id, std::to_string(ds.last_fire_ms));
      ds.next_fire_ms = ds.cron->next_after(t_now);
    }
    // 4. Decide, then dispatch.
    drain_evaluations();
    start_waiting_runs();
    for (;;) {
      dispatch_ready();
      if (to_evaluate.empty()) break;
      drain_evaluations();  // downstream of tasks whose params did not render
    }
    // 5, 6. Persist, then act. A command is replied to once its step is durable, with what
    // happened: when the transaction failed, nothing of it did (reload() undid it in memory
    // too), so a client that retries gets one effect, not two.
    Status s = commit_step();
    if (!s.ok()) {
      obs::error(
          "scheduler step failed: its store transaction was not written; reloading the "
          "state from the store",
          {{"error", s.to_string()}});
      (void)reload();
      Status failed = Status::from_code(
          s.code(), "not applied: the scheduler could not write it to its store (" + s.to_string() +
                        "); nothing of it took effect, retry it");
      for (auto& [promise, status] : replies) promise.set_value(failed);
      return;
    }
    publish_step();
    if (std::exchange(budget_view_stale, false)) refresh_budget_view();
    for (auto& [promise, status] : replies) promise.set_value(status);
  }

  int64_t wait_budget_ms() {
    int64_t wait = options.tick_ms;
    if (!timers.empty()) wait = std::min(wait, std::max<int64_t>(0, timers.top().at_ms - now()));
    return wait;
  }

  void loop() {
    loop_thread = std::this_thread::get_id();
    while (!stopping.load()) {
      uint64_t seq = log->append_sequence();
      step();
      metrics().heartbeat->set(now() / 1e3);
      // Refused dispatches fail their tasks in the very next step, not a tick later.
      bool pending = !refused.empty();
      {
        std::lock_guard<std::mutex> lock(cmd_mu);
        pending = pending || !commands.empty();
      }
      if (!pending) log->wait_for_append(seq, std::max<int64_t>(1, wait_budget_ms()));
    }
  }

  // Loads every piece of state that lives in the store — pauses, cron cursors, error budgets,
  // the dispatch sequence, unfinished runs with their timers, ready tasks and live tries —
  // and re-queues the dispatch of every running task. Called by create() and, after a failed
  // store transaction, by reload(): it first forgets whatever memory holds, and joins the
  // consumer groups afresh, so they resume from their committed offsets.
  Status load_state() {
    runs.clear();
    ready.clear();
    pool_used.clear();
    timers = decltype(timers)();
    dispatches.clear();
    refused.clear();
    dispatch_limits.clear();
    events.clear();
    batch = store::SchedulerBatch();
    to_commit.clear();
    to_evaluate.clear();
    budgets.clear();
    live_tries->clear();
    ended_tries.clear();
    results.reset();
    for (auto& [id, ds] : dag_states) {
      ds.trigger_consumer.reset();
      ds.active_runs = 0;
      ds.active_tasks = 0;
      ds.waiting_runs.clear();
      const Dag& dag = *ds.dag;
      auto paused = store->get_kv("scheduler.paused." + dag.dag_id);
      if (!paused.ok()) return paused.status();
      ds.paused = *paused && **paused == "1";
      if (dag.trigger.kind == Trigger::Kind::kTopic) {
        auto c = log->subscribe({.group = "factory.trigger." + dag.dag_id,
                                 .topics = {dag.trigger.topic},
                                 .client_id = "trigger-" + dag.dag_id});
        if (!c.ok()) return c.status();
        ds.trigger_consumer = std::move(*c);
      } else if (ds.cron) {
        int64_t last = 0;
        auto kv = store->get_kv("scheduler.cron." + dag.dag_id);
        if (!kv.ok()) return kv.status();
        if (*kv) last = std::stoll(**kv);
        // Never fired: start from now (catchup is for fires missed while stopped, not history).
        int64_t from = last > 0 ? last : now();
        ds.last_fire_ms = last;
        ds.next_fire_ms = ds.cron->next_after(from);
      }
    }
    for (const Dag& dag : dags) {
      if (!dag.error_budget) continue;
      Status unreadable;
      auto budget = load_error_budget(store, dag, &unreadable);
      if (!budget.ok()) return budget.status();
      if (!unreadable.ok())
        obs::error("error budget restarts empty", {{"error", unreadable.to_string()}});
      budgets.emplace(dag.dag_id, std::move(*budget));
    }
    auto seq = store->get_kv(kDispatchSeqKey);
    if (!seq.ok()) return seq.status();
    auto auto_paused = store->get_kv(kAutoApprovalPausedKey);
    if (!auto_paused.ok()) return auto_paused.status();
    auto_approval_paused = *auto_paused && **auto_paused == "1";
    if (*seq) next_dispatch_seq = std::stoll(**seq);

    // Recover unfinished runs.
    auto stored_runs = store->list_runs({.unfinished_only = true});
    if (!stored_runs.ok()) return stored_runs.status();
    auto tasks = store->list_unfinished_tasks();
    if (!tasks.ok()) return tasks.status();
    std::map<std::string, std::vector<store::TaskRow>> by_run;
    for (auto& t : *tasks) by_run[t.run_id].push_back(std::move(t));
    std::vector<std::pair<int64_t, std::pair<Run*, int>>> redispatch;
    // Oldest first, so runs waiting for a slot keep their order.
    std::reverse(stored_runs->begin(), stored_runs->end());
    for (store::RunRow& row : *stored_runs) {
      auto dit = dag_states.find(row.dag_id);
      if (dit == dag_states.end()) {
        obs::warn("unfinished run of a DAG that is no longer loaded", {{"run_id", row.run_id}});
        continue;
      }
      DagState& ds = dit->second;
      std::unique_ptr<Run> r = load_run(ds.dag, row, by_run[row.run_id]);
      Run& run = *r;
      runs[row.run_id] = std::move(r);
      if (row.state == "queued") {
        ds.waiting_runs.push_back(row.run_id);
        continue;
      }
      ++ds.active_runs;
      if (row.deadline_ms > 0 && !row.deadline_missed) {
        timers.push({row.deadline_ms, Timer::Kind::kRunDeadline, row.run_id, -1, 0});
      }
      FACTORY_RETURN_IF_ERROR(load_missed_deadlines(run));
      arm_task_deadlines(run);
      for (size_t i = 0; i < run.tasks.size(); ++i) {
        int t = static_cast<int>(i);
        TaskInst& ti = run.tasks[i];
        const Task& task = ds.dag->tasks[i];
        switch (ti.state) {
          case TaskState::kRunning:
            ++run.active;
            ++ds.active_tasks;
            pool_used[task.pool] += task.pool_slots;
            live_tries->start(row.run_id, task.id, ti.try_number);
            redispatch.push_back({ti.dispatch_seq, {&run, t}});
            if (auto timeout = ds.dag->index.execution_timeout_ms(t)) {
              timers.push(
                  {ti.started_ms + *timeout, Timer::Kind::kTimeout, row.run_id, t, ti.try_number});
            }
            break;
          case TaskState::kScheduled:
            ti.in_ready = true;
            ready.insert({ds.dag->index.priority(t), ready_order++, row.run_id, t});
            break;
          case TaskState::kUpForRetry:
            timers.push({ti.next_try_ms, Timer::Kind::kRetry, row.run_id, t, ti.try_number});
            break;
          default:
            break;
        }
      }
      for (size_t i = 0; i < run.tasks.size(); ++i) evaluate(run, static_cast<int>(i));
      if (run.unfinished == 0) finish_run(run);
    }
    // Approvals still pending get their expiry timers back.
    auto pending = store->list_approvals("pending");
    if (!pending.ok()) return pending.status();
    for (const store::ApprovalRow& a : *pending) {
      auto rit = runs.find(a.run_id);
      if (rit == runs.end()) continue;
      int t = rit->second->dag->index.find(a.task_id);
      if (t < 0) continue;
      rit->second->tasks[t].approval_requested_ms = a.requested_ms;
      rit->second->tasks[t].approval_expires_ms = a.expires_ms;
      rit->second->tasks[t].approval_bound_to = a.bound_to;
      if (a.expires_ms != 0)
        timers.push({a.expires_ms, Timer::Kind::kApprovalExpiry, a.run_id, t, 0});
    }
    // Re-append the dispatch of every running task, in sequence order: the log keeps only those
    // it does not have yet (idempotent producer "scheduler").
    std::sort(redispatch.begin(), redispatch.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    // One that cannot be (its params no longer render, or its record is over the topic's limit,
    // lowered since) fails its task: left running, it would wait for a result forever.
    for (auto& [seq_no, rt] : redispatch) {
      Run& run = *rt.first;
      int t = rt.second;
      auto params = render(run, t);
      Status queued = params.ok() ? queue_dispatch(run, t, *params) : params.status();
      if (!queued.ok()) {
        run.tasks[t].error = "try " + std::to_string(run.tasks[t].try_number) +
                             " cannot be dispatched again after a restart: " + queued.message();
        set_state(run, t, TaskState::kFailed);
      }
    }
    // Those end now, before any worker runs their old dispatch: loading again (after a crash or
    // a failed transaction) decides the same.
    end_tries();
    auto sub = log->subscribe({.group = "factory.scheduler",
                               .topics = {options.results_topic},
                               .client_id = "scheduler",
                               .sync_commits = false});
    if (!sub.ok()) return sub.status();
    results = std::move(*sub);
    return Status();
  }

  // Reads which of the run's tasks had their deadline miss reported (kTaskDeadlinesMissedPrefix).
  Status load_missed_deadlines(Run& r) {
    bool any = false;
    for (const Task& task : r.dag->tasks) any = any || task.deadline_ms.has_value();
    if (!any) return Status();
    auto kv = store->get_kv(kTaskDeadlinesMissedPrefix + r.row.run_id);
    if (!kv.ok()) return kv.status();
    if (!*kv) return Status();
    boost::system::error_code ec;
    json::value v = json::parse(**kv, ec);
    if (ec || !v.is_array()) {
      obs::warn("unreadable record of missed task deadlines; they may be reported again",
                {{"run_id", r.row.run_id}, {"value", **kv}});
      return Status();
    }
    for (const json::value& id : v.as_array()) {
      if (!id.is_string()) continue;
      int t = r.dag->index.find(std::string_view(id.as_string()));
      if (t >= 0) r.tasks[t].deadline_missed = true;
    }
    return Status();
  }

  Status run_command(std::function<Status()> fn) {
    std::promise<Status> p;
    auto f = p.get_future();
    {
      std::lock_guard<std::mutex> lock(cmd_mu);
      commands.emplace_back(std::move(fn), std::move(p));
    }
    log->wake_waiters();
    return f.get();
  }
};

Scheduler::Scheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Scheduler::~Scheduler() { stop(); }

const std::vector<Dag>& Scheduler::dags() const { return impl_->dags; }

Result<std::unique_ptr<Scheduler>> Scheduler::create(Log* log, store::MetaStore* store,
                                                     std::vector<Dag> dags,
                                                     const SchedulerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log = log;
  impl->store = store;
  impl->options = options;
  impl->clock = options.clock ? options.clock : base::SystemClock::instance();
  impl->dags = std::move(dags);
  Impl& m = *impl;
  auto ensure_topic = [&](const std::string& name) -> Status {
    if (log->describe_topic(name).ok()) return Status();
    Status s = log->create_topic({.name = name, .partitions = options.partitions});
    return s.code() == Status::Code::kAlreadyExists ? Status() : s;
  };
  FACTORY_RETURN_IF_ERROR(ensure_topic(options.results_topic));
  FACTORY_RETURN_IF_ERROR(ensure_topic(options.results_topic + kDeadLetterSuffix));
  auto auth = RecordAuth::load_or_create(store);
  if (!auth.ok()) return auth.status();
  impl->auth = std::move(*auth);
  FACTORY_RETURN_IF_ERROR(ensure_topic(options.events_topic));
  for (const Dag& dag : m.dags) {
    DagState ds;
    ds.dag = &dag;
    for (const Task& t : dag.tasks) {
      if (t.approval || t.stage == kApprovalStage) {
        ds.approvals.push_back(static_cast<int>(&t - dag.tasks.data()));
        // Messages go through the approval_notify stage, when it is registered (stages/).
        if (t.params.find("\"notify\"") != std::string::npos &&
            runtime::create_stage(std::string(kApprovalNotifyStage)).ok()) {
          m.stages.insert(std::string(kApprovalNotifyStage));
        }
        continue;
      }
      m.stages.insert(t.stage);
      if (!t.output_topic.empty()) FACTORY_RETURN_IF_ERROR(ensure_topic(t.output_topic));
    }
    if (dag.trigger.kind == Trigger::Kind::kTopic) {
      FACTORY_RETURN_IF_ERROR(ensure_topic(dag.trigger.topic));
    } else if (dag.trigger.kind == Trigger::Kind::kCron) {
      auto cron = CronSchedule::parse(dag.trigger.cron, dag.trigger.timezone);
      if (!cron.ok()) return cron.status();
      ds.cron = std::move(*cron);
    }
    m.dag_states.emplace(dag.dag_id, std::move(ds));
  }
  for (const std::string& stage : m.stages) {
    FACTORY_RETURN_IF_ERROR(ensure_topic(options.dispatch_prefix + stage));
  }
  for (const Dag& dag : m.dags) {
    if (!dag.error_budget) continue;
    const std::string& pm = dag.error_budget->postmortem_dag;
    if (!pm.empty() && !m.dag_states.count(pm)) {
      return Status::invalid_argument("DAG '" + dag.dag_id + "': error_budget.postmortem_dag '" +
                                      pm + "' is not loaded; load that DAG too or fix the name");
    }
  }
  FACTORY_RETURN_IF_ERROR(m.load_state());
  m.refresh_budget_view();
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(impl)));
}

std::vector<runtime::Binding> Scheduler::task_bindings() const {
  std::vector<runtime::Binding> out;
  for (const std::string& stage : impl_->stages) {
    auto inner = runtime::create_stage(stage);
    if (!inner.ok()) continue;  // the engine reports the unknown stage
    auto ts = TaskStage::create(std::move(*inner), impl_->live_tries, impl_->auth);
    runtime::Binding b;
    b.name = "task." + stage;
    b.stage = "task:" + stage;
    b.input_topic = impl_->options.dispatch_prefix + stage;
    b.group = b.name;
    b.dead_letter_topic = b.input_topic + ".dlq";
    b.concurrency = impl_->options.task_concurrency;
    b.max_poll_records = 500;
    b.source = "scheduler";
    if (ts.ok()) b.stage_instance = std::shared_ptr<Stage>(std::move(*ts));
    out.push_back(std::move(b));
  }
  return out;
}

Status Scheduler::start() {
  if (impl_->loop_pool) return Status();
  auto pool =
      runtime::ThreadPool::create({.name = "scheduler", .min_threads = 1, .max_threads = 1});
  if (!pool.ok()) return pool.status();
  impl_->loop_pool = std::move(*pool);
  // The metric families exist from the start (a scrape before the first step sees them).
  metrics().heartbeat->set(static_cast<double>(base::SystemClock().now_ms()) / 1e3);
  // Dispatches recovered in create() are appended by the first step (publish_step()).
  impl_->loop_pool->submit([m = impl_.get()] { m->loop(); });
  return Status();
}

void Scheduler::stop() {
  impl_->stopping = true;
  impl_->log->wake_waiters();
  if (impl_->loop_pool) impl_->loop_pool->shutdown();
}

Result<std::string> Scheduler::trigger(std::string_view dag_id, std::string_view conf_json,
                                       std::string run_id, std::string trigger) {
  std::string out;
  Status s = impl_->run_command([&]() -> Status {
    auto r = impl_->create_run(dag_id, conf_json, run_id, trigger);
    if (!r.ok()) return r.status();
    out = *r;
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Status Scheduler::decide(std::string_view run_id, std::string_view task_id, bool approve,
                         std::string_view actor, std::string_view comment, AuditMode audit,
                         std::string_view bound_to) {
  return impl_->run_command([&]() -> Status {
    Impl& m = *impl_;
    auto rit = m.runs.find(run_id);
    if (rit == m.runs.end()) {
      return Status::failed_precondition("run '" + std::string(run_id) + "' is not active");
    }
    Run& r = *rit->second;
    int t = r.dag->index.find(task_id);
    if (t < 0 || r.tasks[t].state != TaskState::kAwaitingApproval) {
      return Status::failed_precondition("task '" + std::string(task_id) + "' of run '" +
                                         std::string(run_id) + "' is not awaiting approval");
    }
    const std::string where =
        "approval '" + std::string(task_id) + "' of run '" + std::string(run_id) + "'";
    // The code may have moved on since the approval was asked for (an upstream ran again
    // without clearing it): never let a decision approve what nobody reviewed.
    auto now_bound = m.approval_settings(r, t);
    if (approve && !r.tasks[t].approval_bound_to.empty() &&
        (!now_bound.ok() || now_bound->bound_to.empty())) {
      return Status::failed_precondition(
          where + " is bound to '" + r.tasks[t].approval_bound_to +
          "', which is being rebuilt (an upstream task is running again); decide once the new "
          "commit is ready");
    }
    if (m.refresh_binding(r, t)) {
      return Status::failed_precondition(
          where + " was asked again for '" + r.tasks[t].approval_bound_to +
          "': what it is bound to changed since it was requested; review that and decide again");
    }
    const std::string& bound = r.tasks[t].approval_bound_to;
    if (!bound_to.empty() && bound.empty()) {
      return Status::failed_precondition(where +
                                         " is not bound to a commit (its task has no "
                                         "bind_to); decide without naming one");
    }
    if (!bound_to.empty() && !binding_matches(bound, bound_to)) {
      return Status::failed_precondition(where + " is for '" + bound + "', not '" +
                                         std::string(bound_to) +
                                         "'; review that commit and decide on it (or name no "
                                         "commit)");
    }
    m.resolve_approval(r, t, approve, actor, comment, audit == AuditMode::kAudit);
    return Status();
  });
}

Status Scheduler::set_auto_approval_paused(bool paused, std::string_view actor, AuditMode audit) {
  impl_->auto_approval_paused = paused;  // effective for the next approval at once
  auto persist = [m = impl_.get(), paused, actor = std::string(actor), audit]() -> Status {
    m->batch.kv.emplace_back(kAutoApprovalPausedKey, paused ? "1" : "0");
    if (audit == AuditMode::kAudit) {
      m->batch.audit.push_back({m->now(), actor,
                                paused ? "approval.auto_pause" : "approval.auto_resume",
                                "scheduler/auto_approval", "ok", "", ""});
    }
    return Status();
  };
  // Called from the loop itself (a hook running in a step): queue it for the next step, since
  // waiting here would wait for ourselves.
  if (impl_->loop_thread.load() == std::this_thread::get_id()) {
    std::lock_guard<std::mutex> lock(impl_->cmd_mu);
    impl_->commands.emplace_back(persist, std::promise<Status>());
    return Status();
  }
  return impl_->run_command(persist);
}

bool Scheduler::auto_approval_paused() const { return impl_->auto_approval_paused.load(); }

std::vector<ErrorBudgetState> Scheduler::error_budgets() const {
  std::lock_guard<std::mutex> lock(impl_->budget_mu);
  return impl_->budget_view;
}

Status Scheduler::cancel(std::string_view run_id, std::string_view actor, AuditMode audit) {
  return impl_->run_command([&]() -> Status {
    Impl& m = *impl_;
    auto rit = m.runs.find(run_id);
    if (rit == m.runs.end())
      return Status::failed_precondition("run '" + std::string(run_id) + "' is not active");
    Run& r = *rit->second;
    bool was_running = r.row.state == "running";
    // Cancelled first, so finishing its tasks below decides nothing downstream.
    const std::string previous = r.row.state;
    r.row.state = "cancelled";
    for (size_t t = 0; t < r.tasks.size(); ++t) {
      TaskState s = r.tasks[t].state;
      if (is_finished(s)) continue;
      // set_state without evaluating downstream: the whole run stops.
      r.tasks[t].error = "run cancelled";
      if (s == TaskState::kRunning) {
        m.set_state(r, static_cast<int>(t), TaskState::kFailed);
      } else {
        m.set_state(r, static_cast<int>(t), TaskState::kSkipped);
      }
    }
    if (was_running && previous == "running") --m.dag_states.find(r.row.dag_id)->second.active_runs;
    r.row.ended_ms = m.now();
    r.row_dirty = true;
    m.record_run_end(r);
    if (audit == AuditMode::kAudit) {
      m.batch.audit.push_back(
          {m.now(), std::string(actor), "run.cancel", "run/" + std::string(run_id), "ok", "", ""});
    }
    return Status();
  });
}

Status Scheduler::clear(std::string_view run_id, std::string_view task_id, bool downstream,
                        std::string_view actor, AuditMode audit) {
  return impl_->run_command([&]() -> Status {
    Impl& m = *impl_;
    auto rit = m.runs.find(run_id);
    std::unique_ptr<Run> reopened;  // a run that had ended, back from the store
    Run* r = rit != m.runs.end() ? rit->second.get() : nullptr;
    if (!r) {
      auto row = m.store->get_run(run_id);
      if (!row.ok()) return row.status();
      auto dit = m.dag_states.find(row->dag_id);
      if (dit == m.dag_states.end()) {
        return Status::failed_precondition("run '" + row->run_id + "' is of DAG '" + row->dag_id +
                                           "', which is not loaded");
      }
      auto rows = m.store->list_tasks(run_id);
      if (!rows.ok()) return rows.status();
      reopened = load_run(dit->second.dag, *row, *rows);
      r = reopened.get();
    }
    int t0 = r->dag->index.find(task_id);
    if (t0 < 0) {
      return Status::not_found("task '" + std::string(task_id) + "' is not in DAG '" +
                               r->row.dag_id + "'");
    }
    if (reopened) {
      // It ended, so every task is finished and none holds a slot: it only runs again.
      r->row.state = "running";
      r->row.ended_ms = 0;
      r->row_dirty = true;
      ++m.dag_states.find(r->row.dag_id)->second.active_runs;
      m.runs[std::string(run_id)] = std::move(reopened);
      std::lock_guard<std::mutex> lock(m.done_mu);
      m.finished_runs.erase(std::string(run_id));
    }
    std::vector<char> cleared(r->tasks.size(), 0);
    std::vector<int> todo = {t0};
    cleared[t0] = 1;
    while (downstream && !todo.empty()) {
      int t = todo.back();
      todo.pop_back();
      for (int d : r->dag->index.downstream(t)) {
        if (cleared[d]) continue;
        cleared[d] = 1;
        todo.push_back(d);
      }
    }
    // Back to none, keeping try_number: timers and results of the old try no longer match it.
    for (int t : r->dag->index.topological_order()) {
      if (!cleared[t]) continue;
      TaskInst& ti = r->tasks[t];
      const Task& task = r->dag->tasks[t];
      // A decided approval is cleared too: run again, it asks again (for what it then binds
      // to), so an approval given for an earlier commit no longer counts.
      if ((task.approval || task.stage == kApprovalStage) && ti.state != TaskState::kNone) {
        store::ApprovalRow a;
        a.run_id = r->row.run_id;
        a.task_id = task.id;
        a.state = "cleared";
        a.decided_by = std::string(actor);
        a.decided_ms = m.now();
        a.bound_to = ti.approval_bound_to;
        m.batch.approvals.push_back(std::move(a));
      }
      ti.approval_bound_to.clear();
      ti.approval_requested_ms = ti.approval_expires_ms = 0;
      m.set_state(*r, t, TaskState::kNone);
      ti.output.clear();
      ti.error.clear();
      ti.next_try_ms = ti.started_ms = ti.ended_ms = ti.timeout_at_ms = 0;
      ti.in_ready = false;
      m.touch(*r, t);
    }
    if (audit == AuditMode::kAudit) {
      m.batch.audit.push_back({m.now(), std::string(actor), "task.clear",
                               "run/" + r->row.run_id + "/task/" + std::string(task_id), "ok",
                               downstream ? "with downstream" : "", ""});
    }
    // A queued run decides its tasks when it starts.
    if (r->row.state == "running") {
      for (int t : r->dag->index.topological_order()) {
        if (cleared[t]) m.evaluate(*r, t);
      }
      if (r->unfinished == 0) m.finish_run(*r);
    }
    return Status();
  });
}

Status Scheduler::set_paused(std::string_view dag_id, bool paused, std::string_view actor,
                             AuditMode audit) {
  return impl_->run_command([&]() -> Status {
    auto it = impl_->dag_states.find(dag_id);
    if (it == impl_->dag_states.end())
      return Status::not_found("DAG '" + std::string(dag_id) + "' is not loaded");
    it->second.paused = paused;
    impl_->batch.kv.emplace_back("scheduler.paused." + std::string(dag_id), paused ? "1" : "0");
    if (audit == AuditMode::kAudit) {
      impl_->batch.audit.push_back({impl_->now(), std::string(actor),
                                    paused ? "dag.pause" : "dag.unpause",
                                    "dag/" + std::string(dag_id), "ok", "", ""});
    }
    return Status();
  });
}

Result<RunView> Scheduler::show_run(std::string_view run_id) {
  auto run = impl_->store->get_run(run_id);
  if (!run.ok()) return run.status();
  auto tasks = impl_->store->list_tasks(run_id);
  if (!tasks.ok()) return tasks.status();
  RunView v;
  v.run = *run;
  const Dag* dag = nullptr;
  for (const Dag& d : impl_->dags) {
    if (d.dag_id == v.run.dag_id) dag = &d;
  }
  std::map<std::string, store::TaskRow> rows;
  for (auto& t : *tasks) rows[t.task_id] = t;
  if (dag) {
    for (const Task& t : dag->tasks) {
      TaskView tv;
      tv.stage = t.stage;
      auto it = rows.find(t.id);
      if (it != rows.end()) {
        tv.row = it->second;
      } else {
        tv.row.run_id = v.run.run_id;
        tv.row.task_id = t.id;
        tv.row.state = "none";
      }
      v.tasks.push_back(std::move(tv));
    }
  } else {
    for (auto& [id, row] : rows) v.tasks.push_back({row, ""});
  }
  return v;
}

Result<RunView> Scheduler::wait_for_run(std::string_view run_id, int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string id(run_id);
  std::unique_lock<std::mutex> lock(impl_->done_mu);
  auto ended_here = [&] { return impl_->finished_runs.count(id) > 0; };
  if (!ended_here()) {
    // A run that ended before this scheduler started is only in the store. Read it unlocked
    // (the loop thread takes done_mu after its commit); a run ending meanwhile is in
    // finished_runs by the time the predicate below is first checked, so no wakeup is lost.
    lock.unlock();
    auto r = impl_->store->get_run(run_id);
    lock.lock();
    bool ended_before =
        r.ok() && (r->state == "success" || r->state == "failed" || r->state == "cancelled");
    if (!ended_before && !impl_->done_cv.wait_until(lock, deadline, ended_here)) {
      return Status::timed_out("run '" + id + "' did not finish in " + std::to_string(timeout_ms) +
                               " ms");
    }
  }
  lock.unlock();
  return show_run(run_id);
}

}  // namespace factory::scheduler
