// One file past ~800 lines on purpose: every transition of a run and its task instances
// (trigger rules, branching, pools, results, retries, timers, cancel, clear, restore) is here
// and nowhere else, so a reader checks an invariant against one file. Approvals, whose
// transitions need no other state, are in approvals.cpp.
#include "scheduler/state_machine.h"

#include <algorithm>
#include <utility>

#include <boost/json.hpp>

#include "obs/logger.h"
#include "scheduler/audit.h"
#include "scheduler/dag_parser.h"
#include "scheduler/retry_delay.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/templates.h"
#include "scheduler/trigger_rules.h"

namespace factory::scheduler {
namespace json = boost::json;
namespace {

std::string iso_utc(int64_t ms) { return base::format_iso8601_utc(ms); }

}  // namespace

std::unique_ptr<Run> load_run(const Dag* dag, const store::RunRow& row,
                              const std::vector<store::TaskRow>& rows) {
  auto r = std::make_unique<Run>();
  r->dag = dag;
  r->row = row;
  r->state = parse_run_state(row.state).value_or(RunState::kQueued);
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

StateMachine::StateMachine(const std::vector<Dag>* dags, MachineOptions options, Hooks hooks,
                           std::shared_ptr<LiveTries> live)
    : dags_(dags),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      clock_(options_.clock ? options_.clock : base::SystemClock::instance()),
      live_(live ? std::move(live) : std::make_shared<LiveTries>()) {
  for (const Dag& dag : *dags_) {
    DagState ds;
    ds.dag = &dag;
    for (const Task& t : dag.tasks) {
      if (t.approval || t.stage == kApprovalStage) {
        ds.approvals.push_back(static_cast<int>(&t - dag.tasks.data()));
      }
    }
    dag_states_.emplace(dag.dag_id, std::move(ds));
  }
}

Status StateMachine::seal(const std::string& topic, ProducerRecord* rec) const {
  return hooks_.seal ? hooks_.seal(topic, rec) : Status();
}
bool StateMachine::run_exists(const std::string& run_id) const {
  return hooks_.run_exists && hooks_.run_exists(run_id);
}
bool StateMachine::auto_approval_paused() const {
  return hooks_.auto_approval_paused && hooks_.auto_approval_paused();
}

const Run* StateMachine::find_run(std::string_view run_id) const {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second.get();
}
Run* StateMachine::find_run_mutable(std::string_view run_id) {
  auto it = runs_.find(run_id);
  return it == runs_.end() ? nullptr : it->second.get();
}
DagState* StateMachine::dag_state(std::string_view dag_id) {
  auto it = dag_states_.find(dag_id);
  return it == dag_states_.end() ? nullptr : &it->second;
}

std::optional<int64_t> StateMachine::next_timer_ms() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.top().at_ms;
}

Effects StateMachine::take_effects() { return std::exchange(fx_, Effects()); }

// ---- state changes ----
void StateMachine::touch(Run& r, int t) {
  if (!r.is_dirty[t]) {
    r.is_dirty[t] = 1;
    r.dirty.push_back(t);
  }
}

void StateMachine::set_state(Run& r, int t, TaskState s) {
  TaskInst& ti = r.tasks[t];
  if (ti.state == s) return;
  bool was_finished = is_finished(ti.state);
  bool was_active = ti.state == TaskState::kRunning;
  ti.state = s;
  touch(r, t);
  DagState& ds = dag_states_.find(r.row.dag_id)->second;
  if (was_active) {
    --r.active;
    --ds.active_tasks;
    pool_used_[r.dag->tasks[t].pool] -= r.dag->tasks[t].pool_slots;
    // Whatever ended the try (result, execution_timeout, cancel, clear), its worker must stop
    // and append nothing: it is no longer the task's try.
    fx_.ended_tries.push_back({r.row.run_id, r.dag->tasks[t].id, ti.try_number});
  }
  if (s == TaskState::kRunning) {
    ++r.active;
    ++ds.active_tasks;
    pool_used_[r.dag->tasks[t].pool] += r.dag->tasks[t].pool_slots;
    live_->start(r.row.run_id, r.dag->tasks[t].id, ti.try_number);
  }
  if (!was_finished && is_finished(s)) {
    --r.unfinished;
    ti.ended_ms = now();
  } else if (was_finished && !is_finished(s)) {
    ++r.unfinished;
  }
  if (was_active && s != TaskState::kNone) {  // a try ended (not cleared)
    metrics().task_seconds.labels({r.dag->tasks[t].stage})->observe((now() - ti.started_ms) / 1e3);
  }
  if ((!was_finished && is_finished(s)) || s == TaskState::kUpForRetry) {
    metrics().tasks.labels({r.row.dag_id, task_state_name(s)})->inc();
  }
  ProducerRecord rec;
  rec.key = r.row.run_id;
  rec.value =
      encode_task_event({r.row.run_id, r.row.dag_id, r.dag->tasks[t].id, s, ti.try_number, now()});
  fx_.events.push_back(std::move(rec));
  if (is_finished(s)) on_finished(r, t);
}

void StateMachine::on_finished(Run& r, int t) {
  if (r.state == RunState::kCancelled) return;  // a cancelled run decides nothing more
  // Queued, not evaluated here: evaluate() reads every upstream, so a fan-in of n tasks
  // evaluated on each upstream's end costs n^2 (minutes at 100,000); queued, it costs n per
  // step. The trigger rules decide the same on the later, larger set of finished upstreams.
  for (int d : r.dag->index.downstream(t)) {
    TaskInst& ti = r.tasks[d];
    if (ti.state != TaskState::kNone || ti.eval_queued) continue;
    ti.eval_queued = true;
    to_evaluate_.emplace_back(&r, d);
  }
  if (r.unfinished == 0) finish_run(r);
}

// Evaluates the queued tasks, and those their decisions queue (skips cascade).
void StateMachine::drain_evaluations() {
  while (!to_evaluate_.empty()) {
    std::vector<std::pair<Run*, int>> queued;
    queued.swap(to_evaluate_);
    for (auto [r, t] : queued) {
      r->tasks[t].eval_queued = false;
      if (r->state != RunState::kCancelled) evaluate(*r, t);
    }
  }
}

// Decides a task whose upstreams may all be settled.
void StateMachine::evaluate(Run& r, int t) {
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

void StateMachine::make_ready(Run& r, int t) {
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
  ready_.insert({r.dag->index.priority(t), ready_order_++, r.row.run_id, t});
}

void StateMachine::start_run(Run& r) {
  r.state = RunState::kRunning;
  r.row.started_ms = now();
  r.row_dirty = true;
  ++dag_states_.find(r.row.dag_id)->second.active_runs;
  if (r.dag->deadline_ms) {
    r.row.deadline_ms = r.row.started_ms + *r.dag->deadline_ms;
    timers_.push({r.row.deadline_ms, Timer::Kind::kRunDeadline, r.row.run_id, -1, 0});
  }
  arm_task_deadlines(r);
  for (int t : r.dag->index.roots()) evaluate(r, t);
  if (r.unfinished == 0) finish_run(r);
}

// Per-task deadlines count from the run's start: armed when it starts and again when a
// restart loads it, for the tasks not finished whose miss was not reported yet.
void StateMachine::arm_task_deadlines(const Run& r) {
  for (size_t t = 0; t < r.tasks.size(); ++t) {
    const TaskInst& ti = r.tasks[t];
    if (!r.dag->tasks[t].deadline_ms || is_finished(ti.state) || ti.deadline_missed) continue;
    timers_.push({r.row.started_ms + *r.dag->tasks[t].deadline_ms, Timer::Kind::kRunDeadline,
                  r.row.run_id, static_cast<int>(t), 0});
  }
}

// The run's tasks whose deadline miss was reported, as stored under
// kTaskDeadlinesMissedPrefix.
std::string StateMachine::missed_deadlines_json(const Run& r) {
  json::array ids;
  for (size_t t = 0; t < r.tasks.size(); ++t) {
    if (r.tasks[t].deadline_missed) ids.emplace_back(r.dag->tasks[t].id);
  }
  return json::serialize(ids);
}

void StateMachine::finish_run(Run& r) {
  if (is_terminal(r.state)) return;
  // Airflow: a run fails when any leaf task failed or was upstream_failed.
  bool failed = false;
  for (size_t t = 0; t < r.tasks.size(); ++t) {
    if (!r.dag->index.downstream(static_cast<int>(t)).empty()) continue;
    TaskState s = r.tasks[t].state;
    if (s == TaskState::kFailed || s == TaskState::kUpstreamFailed) failed = true;
  }
  r.state = failed ? RunState::kFailed : RunState::kSuccess;
  r.row.ended_ms = now();
  r.row_dirty = true;
  record_run_end(r);
  DagState& ds = dag_states_.find(r.row.dag_id)->second;
  --ds.active_runs;
  ProducerRecord rec;
  rec.key = r.row.run_id;
  rec.value = encode_run_event({r.row.run_id, r.row.dag_id, r.state, r.row.ended_ms});
  fx_.events.push_back(std::move(rec));
}

void StateMachine::record_run_end(const Run& r) {
  metrics().runs.labels({r.row.dag_id, run_state_name(r.state)})->inc();
  if (r.row.started_ms > 0) {
    metrics()
        .run_seconds.labels({r.row.dag_id})
        ->observe((r.row.ended_ms - r.row.started_ms) / 1e3);
  }
}

// Queued runs of DAGs with free run slots start.
void StateMachine::start_waiting_runs() {
  for (auto& [id, ds] : dag_states_) {
    while (!ds.waiting_runs.empty() && !ds.paused && ds.active_runs < ds.dag->max_active_runs) {
      auto it = runs_.find(ds.waiting_runs.front());
      ds.waiting_runs.pop_front();
      if (it != runs_.end() && it->second->state == RunState::kQueued) start_run(*it->second);
    }
  }
}

// Dispatches ready tasks by priority within pool slots and max_active_tasks.
void StateMachine::dispatch_ready() {
  for (auto it = ready_.begin(); it != ready_.end();) {
    auto rit = runs_.find(it->run_id);
    if (rit == runs_.end() || rit->second->tasks[it->task].state != TaskState::kScheduled) {
      it = ready_.erase(it);
      continue;
    }
    Run& r = *rit->second;
    const Task& task = r.dag->tasks[it->task];
    DagState& ds = dag_states_.find(r.row.dag_id)->second;
    auto pool = r.dag->pools.find(task.pool);
    int slots = pool != r.dag->pools.end()  ? pool->second
                : task.pool == kDefaultPool ? kDefaultPoolSlots
                                            : kDefaultPoolSlots;
    if (ds.paused || ds.active_tasks >= r.dag->max_active_tasks ||
        pool_used_[task.pool] + task.pool_slots > slots) {
      ++it;
      continue;
    }
    int t = it->task;
    r.tasks[t].in_ready = false;
    it = ready_.erase(it);
    dispatch(r, t);
  }
}

// The task's params with its templates filled from the run and its upstreams' outputs.
Result<std::string> StateMachine::render(const Run& r, int t) const {
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

void StateMachine::dispatch(Run& r, int t) {
  TaskInst& ti = r.tasks[t];
  auto params = render(r, t);
  ++ti.try_number;
  ti.started_ms = now();
  if (!params.ok()) {
    ti.error = params.status().message();
    set_state(r, t, TaskState::kFailed);
    return;
  }
  ti.dispatch_seq = next_dispatch_seq_++;
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
    timers_.push({ti.timeout_at_ms, Timer::Kind::kTimeout, r.row.run_id, t, ti.try_number});
  }
  set_state(r, t, TaskState::kRunning);
}

// Queues task t's dispatch record (its current try and dispatch_seq) for this step's appends.
// InvalidArgument (nothing queued) when the log would refuse it for its size.
Status StateMachine::queue_dispatch(Run& r, int t, const std::string& params) {
  const Task& task = r.dag->tasks[t];
  const TaskInst& ti = r.tasks[t];
  std::string d = encode_dispatch({.run_id = r.row.run_id,
                                   .dag_id = r.row.dag_id,
                                   .task_id = task.id,
                                   .try_number = ti.try_number,
                                   .params = params,
                                   .config = literal_params(task.params),
                                   .approved = approved_commits(r),
                                   .has_approved = true,
                                   .output_topic = task.output_topic,
                                   .results_topic = options_.results_topic});
  ProducerRecord rec;
  // Keyed by task, not run: a run's parallel tasks spread over the dispatch partitions (and
  // so over the stage's workers) instead of queueing behind one another on one partition.
  rec.key = r.row.run_id + "/" + task.id;
  rec.value = std::move(d);
  rec.producer_id = "scheduler";
  rec.sequence = ti.dispatch_seq;
  const std::string topic = options_.dispatch_prefix + task.stage;
  FACTORY_RETURN_IF_ERROR(seal(topic, &rec));
  fx_.dispatches.push_back({topic, std::move(rec), {r.row.run_id, t, ti.try_number}});
  return Status();
}

// A failed try: retry per the task's policy, else failed.
void StateMachine::fail_try(Run& r, int t, std::string error, bool allow_retry) {
  TaskInst& ti = r.tasks[t];
  ti.error = std::move(error);
  const RetrySpec& spec = r.dag->index.retry(t);
  if (allow_retry && should_retry(spec, ti.try_number)) {
    std::string logical = iso_utc(r.row.logical_ms);
    int64_t delay =
        next_retry_delay_ms(spec, {r.row.dag_id, r.dag->tasks[t].id, logical}, ti.try_number);
    ti.next_try_ms = now() + delay;
    set_state(r, t, TaskState::kUpForRetry);
    timers_.push({ti.next_try_ms, Timer::Kind::kRetry, r.row.run_id, t, ti.try_number});
  } else {
    set_state(r, t, TaskState::kFailed);
  }
}

void StateMachine::apply_result(const ResultRecord& res) {
  auto rit = runs_.find(res.run_id);
  if (rit == runs_.end()) return;  // finished or unknown: nothing to change
  Run& r = *rit->second;
  int t = r.dag->index.find(res.task_id);
  if (t < 0) return;
  TaskInst& ti = r.tasks[t];
  if (res.try_number != ti.try_number || ti.state != TaskState::kRunning) {
    return;  // a late or replayed result of another try: ignored (idempotent)
  }
  if (res.success) {
    ti.output = res.output;
    set_state(r, t, TaskState::kSuccess);
    fx_.successes.emplace_back(&r, t);  // an error budget's sample, maybe
    // A new output (say, a new commit) re-binds the approvals waiting on it.
    refresh_bindings(r);
  } else {
    // A permanent failure (AirflowFailException's analogue) is not retried.
    fail_try(r, t, res.error, res.retryable);
  }
}

void StateMachine::fire_timers() {
  int64_t t_now = now();
  while (!timers_.empty() && timers_.top().at_ms <= t_now) {
    Timer tm = timers_.top();
    timers_.pop();
    auto rit = runs_.find(tm.run_id);
    if (rit == runs_.end()) continue;
    Run& r = *rit->second;
    switch (tm.kind) {
      case Timer::Kind::kRetry:
        if (r.tasks[tm.task].state == TaskState::kUpForRetry &&
            r.tasks[tm.task].try_number == tm.try_number) {
          r.tasks[tm.task].state = TaskState::kNone;  // re-decided below, then scheduled
          set_state(r, tm.task, TaskState::kScheduled);
          r.tasks[tm.task].in_ready = true;
          ready_.insert({r.dag->index.priority(tm.task), ready_order_++, r.row.run_id, tm.task});
        }
        break;
      case Timer::Kind::kTimeout:
        if (r.tasks[tm.task].state == TaskState::kRunning &&
            r.tasks[tm.task].try_number == tm.try_number) {
          fail_try(r, tm.task, "execution_timeout passed", true);
        }
        break;
      case Timer::Kind::kApprovalExpiry:
        expire_approval(r, tm.task, tm.at_ms);
        break;
      case Timer::Kind::kRunDeadline: {
        bool missed =
            tm.task < 0 ? !r.row.deadline_missed
                        : !is_finished(r.tasks[tm.task].state) && !r.tasks[tm.task].deadline_missed;
        if (!missed) break;
        if (tm.task < 0) {
          r.row.deadline_missed = true;
          r.row_dirty = true;
        } else {
          // Written with the audit row below: a restart re-arms only the others.
          r.tasks[tm.task].deadline_missed = true;
          fx_.batch.kv.emplace_back(kTaskDeadlinesMissedPrefix + r.row.run_id,
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
        fx_.events.push_back(std::move(rec));
        fx_.batch.audit.push_back(
            audit_row(t_now, "scheduler", "deadline.missed", run_object(r.row.run_id),
                      tm.task < 0 ? "run deadline" : "task " + r.dag->tasks[tm.task].id));
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

Result<std::string> StateMachine::create_run(std::string_view dag_id, std::string_view conf_json,
                                             std::string run_id, std::string trigger) {
  auto dit = dag_states_.find(dag_id);
  if (dit == dag_states_.end()) {
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
      run_id = trigger + "__" + iso_utc(t_now) + "_" + std::to_string(++run_counter_);
    } while (runs_.count(run_id) || run_exists(run_id));
  }
  if (runs_.count(run_id) || run_exists(run_id)) {
    return Status::already_exists("run '" + run_id + "' already exists");
  }
  auto r = std::make_unique<Run>();
  r->row.run_id = run_id;
  r->row.dag_id = std::string(dag_id);
  r->state = RunState::kQueued;
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
  runs_[run_id] = std::move(r);
  if (!ds.paused && ds.active_runs < ds.dag->max_active_runs) {
    start_run(*raw);
  } else {
    ds.waiting_runs.push_back(run_id);
  }
  return run_id;
}
Status StateMachine::set_paused(std::string_view dag_id, bool paused, std::string_view actor,
                                bool audit) {
  DagState* ds = dag_state(dag_id);
  if (!ds) return Status::not_found("DAG '" + std::string(dag_id) + "' is not loaded");
  ds->paused = paused;
  fx_.batch.kv.emplace_back("scheduler.paused." + std::string(dag_id), paused ? "1" : "0");
  if (audit) {
    fx_.batch.audit.push_back(
        audit_row(now(), actor, paused ? "dag.pause" : "dag.unpause", dag_object(dag_id)));
  }
  return Status();
}

// ---- deciding ----
void StateMachine::decide_and_dispatch() {
  drain_evaluations();
  start_waiting_runs();
  if (!options_.dispatch) {
    drain_evaluations();
    return;
  }
  for (;;) {
    dispatch_ready();
    if (to_evaluate_.empty()) break;
    drain_evaluations();  // downstream of tasks whose params did not render
  }
}

// The same record would be refused again, so the try is not retried.
void StateMachine::fail_refused_dispatch(const DispatchOwner& owner, const std::string& topic,
                                         const Status& why) {
  if (owner.task < 0) {
    obs::warn("approval notify message not sent: the log refused its dispatch record",
              {{"run_id", owner.run_id}, {"topic", topic}, {"error", why.to_string()}});
    return;
  }
  Run* r = find_run_mutable(owner.run_id);
  if (!r) return;
  TaskInst& ti = r->tasks[owner.task];
  if (ti.state != TaskState::kRunning || ti.try_number != owner.try_number) return;
  fail_try(*r, owner.task,
           "the dispatch record of try " + std::to_string(ti.try_number) +
               " could not be appended to " + topic + ": " + why.message(),
           false);
}

// ---- commands ----
Status StateMachine::cancel(std::string_view run_id, std::string_view actor, bool audit) {
  Run* rp = find_run_mutable(run_id);
  if (!rp) return Status::failed_precondition("run '" + std::string(run_id) + "' is not active");
  Run& r = *rp;
  // Cancelled first, so finishing its tasks below decides nothing downstream.
  const RunState previous = r.state;
  r.state = RunState::kCancelled;
  // Before the tasks leave awaiting_approval: nobody can decide them once the run has ended.
  close_open_approvals(r, "cancelled", actor, "run cancelled by " + std::string(actor));
  for (size_t t = 0; t < r.tasks.size(); ++t) {
    TaskState s = r.tasks[t].state;
    if (is_finished(s)) continue;
    // set_state without evaluating downstream: the whole run stops.
    r.tasks[t].error = "run cancelled";
    set_state(r, static_cast<int>(t),
              s == TaskState::kRunning ? TaskState::kFailed : TaskState::kSkipped);
  }
  if (previous == RunState::kRunning) --dag_state(r.row.dag_id)->active_runs;
  r.row.ended_ms = now();
  r.row_dirty = true;
  record_run_end(r);
  if (audit) {
    fx_.batch.audit.push_back(audit_row(now(), actor, "run.cancel", run_object(run_id)));
  }
  return Status();
}

Status StateMachine::clear(std::string_view run_id, std::unique_ptr<Run> ended,
                           std::string_view task_id, bool downstream, std::string_view actor,
                           bool audit) {
  Run* r = find_run_mutable(run_id);
  if (!r) r = ended.get();
  if (!r) return Status::failed_precondition("run '" + std::string(run_id) + "' is not active");
  int t0 = r->dag->index.find(task_id);
  if (t0 < 0) {
    return Status::not_found("task '" + std::string(task_id) + "' is not in DAG '" + r->row.dag_id +
                             "'");
  }
  if (r == ended.get()) {
    // It ended, so every task is finished and none holds a slot: it only runs again.
    r->state = RunState::kRunning;
    r->row.ended_ms = 0;
    r->row_dirty = true;
    ++dag_state(r->row.dag_id)->active_runs;
    runs_[std::string(run_id)] = std::move(ended);
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
    clear_approval(*r, t, actor);
    set_state(*r, t, TaskState::kNone);
    ti.output.clear();
    ti.error.clear();
    ti.next_try_ms = ti.started_ms = ti.ended_ms = ti.timeout_at_ms = 0;
    ti.in_ready = false;
    touch(*r, t);
  }
  if (audit) {
    fx_.batch.audit.push_back(audit_row(now(), actor, "task.clear",
                                        task_object(r->row.run_id, task_id),
                                        downstream ? "with downstream" : ""));
  }
  // A queued run decides its tasks when it starts.
  if (r->state == RunState::kRunning) {
    for (int t : r->dag->index.topological_order()) {
      if (cleared[t]) evaluate(*r, t);
    }
    if (r->unfinished == 0) finish_run(*r);
  }
  return Status();
}

// ---- output ----
void StateMachine::collect_rows(store::SchedulerBatch* batch) {
  for (auto& [id, rp] : runs_) {
    Run& r = *rp;
    if (r.row_dirty) {
      r.row.state = std::string(run_state_name(r.state));
      batch->runs.push_back(r.row);
    }
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
      batch->tasks.push_back(std::move(row));
      r.is_dirty[t] = 0;
    }
    r.dirty.clear();
  }
}

std::vector<std::string> StateMachine::forget_finished() {
  std::vector<std::string> ended;
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (is_terminal(it->second->state)) {
      ended.push_back(it->first);
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
  return ended;
}

// ---- recovery ----
void StateMachine::clear_all() {
  runs_.clear();
  ready_.clear();
  pool_used_.clear();
  timers_ = decltype(timers_)();
  to_evaluate_.clear();
  redispatch_.clear();
  fx_ = Effects();
  live_->clear();
  for (auto& [id, ds] : dag_states_) {
    ds.active_runs = 0;
    ds.active_tasks = 0;
    ds.waiting_runs.clear();
  }
}

void StateMachine::restore_run(const store::RunRow& row, const std::vector<store::TaskRow>& tasks,
                               const std::vector<std::string>& missed_deadlines) {
  DagState* ds = dag_state(row.dag_id);
  if (!ds) return;
  std::unique_ptr<Run> r = load_run(ds->dag, row, tasks);
  Run& run = *r;
  runs_[row.run_id] = std::move(r);
  if (run.state == RunState::kQueued) {
    ds->waiting_runs.push_back(row.run_id);
    return;
  }
  ++ds->active_runs;
  if (row.deadline_ms > 0 && !row.deadline_missed) {
    timers_.push({row.deadline_ms, Timer::Kind::kRunDeadline, row.run_id, -1, 0});
  }
  for (const std::string& id : missed_deadlines) {
    int t = run.dag->index.find(id);
    if (t >= 0) run.tasks[t].deadline_missed = true;
  }
  arm_task_deadlines(run);
  for (size_t i = 0; i < run.tasks.size(); ++i) {
    int t = static_cast<int>(i);
    TaskInst& ti = run.tasks[i];
    const Task& task = ds->dag->tasks[i];
    switch (ti.state) {
      case TaskState::kRunning:
        ++run.active;
        ++ds->active_tasks;
        pool_used_[task.pool] += task.pool_slots;
        live_->start(row.run_id, task.id, ti.try_number);
        redispatch_.push_back({ti.dispatch_seq, {&run, t}});
        if (auto timeout = ds->dag->index.execution_timeout_ms(t)) {
          timers_.push(
              {ti.started_ms + *timeout, Timer::Kind::kTimeout, row.run_id, t, ti.try_number});
        }
        break;
      case TaskState::kScheduled:
        ti.in_ready = true;
        ready_.insert({ds->dag->index.priority(t), ready_order_++, row.run_id, t});
        break;
      case TaskState::kUpForRetry:
        timers_.push({ti.next_try_ms, Timer::Kind::kRetry, row.run_id, t, ti.try_number});
        break;
      default:
        break;
    }
  }
  for (size_t i = 0; i < run.tasks.size(); ++i) evaluate(run, static_cast<int>(i));
  if (run.unfinished == 0) finish_run(run);
}

void StateMachine::restore_approval(const store::ApprovalRow& a) {
  Run* r = find_run_mutable(a.run_id);
  if (!r) return;
  int t = r->dag->index.find(a.task_id);
  if (t < 0) return;
  r->tasks[t].approval_requested_ms = a.requested_ms;
  r->tasks[t].approval_expires_ms = a.expires_ms;
  r->tasks[t].approval_bound_to = a.bound_to;
  if (a.expires_ms != 0) timers_.push({a.expires_ms, Timer::Kind::kApprovalExpiry, a.run_id, t, 0});
}

// In sequence order: the log keeps only those it does not have yet (idempotent producer
// "scheduler"). One that cannot be (its params no longer render, or its record is over the
// topic's limit, lowered since) fails its task: left running, it would wait for a result
// forever.
void StateMachine::redispatch_running() {
  std::sort(redispatch_.begin(), redispatch_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [seq_no, rt] : redispatch_) {
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
  redispatch_.clear();
}

}  // namespace factory::scheduler
