// Recovery: the scheduler built from its store and log — create() (topics, the record key, the
// DAGs' sources) and load_state(), which rebuilds the StateMachine from the stored rows as a
// restart does, also after a failed store transaction (reload()). Part of Scheduler::Impl
// (scheduler_impl.h); runs before the loop starts, or on the loop thread.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "obs/logger.h"
#include "runtime/stage_registry.h"
#include "scheduler/scheduler_impl.h"

namespace factory::scheduler {
namespace json = boost::json;

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
    return s.is_already_exists() ? Status() : s;
  };
  FACTORY_RETURN_IF_ERROR(ensure_topic(options.results_topic));
  FACTORY_RETURN_IF_ERROR(ensure_topic(options.results_topic + kDeadLetterSuffix));
  auto auth = RecordAuth::load_or_create(store);
  if (!auth.ok()) return auth.status();
  impl->auth = std::move(*auth);
  FACTORY_RETURN_IF_ERROR(ensure_topic(options.events_topic));
  for (const Dag& dag : m.dags) {
    DagSource src;
    for (const Task& t : dag.tasks) {
      if (t.approval || t.stage == kApprovalStage) {
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
      src.cron = std::move(*cron);
    }
    m.sources.emplace(dag.dag_id, std::move(src));
  }
  for (const std::string& stage : m.stages) {
    const std::string dispatch = options.dispatch_prefix + stage;
    FACTORY_RETURN_IF_ERROR(ensure_topic(dispatch));
    // Its task binding's dead letters, which the loop reads (a dispatch there failed its try:
    // take_dead_dispatch), exist before the loop subscribes. As the engine makes a binding's
    // dead-letter topic: the input's partitions and at least its record limit, so a letter
    // keeps its dispatch whole (one stored by reference could not be applied).
    if (!log->describe_topic(dispatch + kDeadLetterSuffix).ok()) {
      auto in = log->describe_topic(dispatch);
      if (!in.ok()) return in.status();
      TopicSpec dlq{.name = dispatch + kDeadLetterSuffix, .partitions = in->spec.partitions};
      dlq.config.max_message_bytes =
          std::max(dlq.config.max_message_bytes, in->spec.config.max_message_bytes);
      Status s = log->create_topic(dlq);
      if (!s.ok() && !s.is_already_exists()) return s;
    }
  }
  for (const Dag& dag : m.dags) {
    if (!dag.error_budget) continue;
    const std::string& pm = dag.error_budget->postmortem_dag;
    if (!pm.empty() && !m.sources.count(pm)) {
      return Status::invalid_argument("DAG '" + dag.dag_id + "': error_budget.postmortem_dag '" +
                                      pm + "' is not loaded; load that DAG too or fix the name");
    }
  }
  Hooks hooks;
  hooks.seal = [&m](const std::string& topic, ProducerRecord* rec) { return m.seal(topic, rec); };
  hooks.run_exists = [&m](const std::string& run_id) { return m.store->get_run(run_id).ok(); };
  hooks.auto_approval_paused = [&m] { return m.auto_approval_paused.load(); };
  m.sm = std::make_unique<StateMachine>(&m.dags,
                                        MachineOptions{.results_topic = options.results_topic,
                                                       .dispatch_prefix = options.dispatch_prefix,
                                                       .clock = m.clock,
                                                       .stages = m.stages,
                                                       .dispatch = options.dispatch},
                                        std::move(hooks), m.live_tries);
  FACTORY_RETURN_IF_ERROR(m.load_state());
  m.refresh_budget_view();
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(impl)));
}

// Loads every piece of state that lives in the store — pauses, cron cursors, error budgets,
// the dispatch sequence, unfinished runs with their timers, ready tasks and live tries —
// and re-queues the dispatch of every running task. Called by create() and, after a failed
// store transaction, by reload(): it first forgets whatever memory holds, and joins the
// consumer groups afresh, so they resume from their committed offsets.
Status Scheduler::Impl::load_state() {
  sm->clear_all();
  dispatches.clear();
  refused.clear();
  dispatch_limits.clear();
  to_commit.clear();
  budgets.clear();
  results.reset();
  for (const Dag& dag : dags) {
    DagSource& src = sources.find(dag.dag_id)->second;
    src.trigger_consumer.reset();
    auto paused = store->get_kv("scheduler.paused." + dag.dag_id);
    if (!paused.ok()) return paused.status();
    sm->dag_state(dag.dag_id)->paused = *paused && **paused == "1";
    if (dag.trigger.kind == Trigger::Kind::kTopic) {
      auto c = log->subscribe({.group = "factory.trigger." + dag.dag_id,
                               .topics = {dag.trigger.topic},
                               .client_id = "trigger-" + dag.dag_id});
      if (!c.ok()) return c.status();
      src.trigger_consumer = std::move(*c);
    } else if (src.cron) {
      int64_t last = 0;
      auto kv = store->get_kv("scheduler.cron." + dag.dag_id);
      if (!kv.ok()) return kv.status();
      if (*kv) last = std::stoll(**kv);
      // Never fired: start from now (catchup is for fires missed while stopped, not history).
      int64_t from = last > 0 ? last : now();
      src.last_fire_ms = last;
      src.next_fire_ms = src.cron->next_after(from);
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
  if (*seq) sm->set_next_dispatch_seq(std::stoll(**seq));

  // Recover unfinished runs.
  auto stored_runs = store->list_runs({.unfinished_only = true});
  if (!stored_runs.ok()) return stored_runs.status();
  auto tasks = store->list_unfinished_tasks();
  if (!tasks.ok()) return tasks.status();
  std::map<std::string, std::vector<store::TaskRow>> by_run;
  for (auto& t : *tasks) by_run[t.run_id].push_back(std::move(t));
  // Oldest first, so runs waiting for a slot keep their order.
  std::reverse(stored_runs->begin(), stored_runs->end());
  for (store::RunRow& row : *stored_runs) {
    DagState* ds = sm->dag_state(row.dag_id);
    if (!ds) {
      obs::warn("unfinished run of a DAG that is no longer loaded", {{"run_id", row.run_id}});
      continue;
    }
    std::vector<std::string> missed;
    if (row.state != run_state_name(RunState::kQueued)) {
      auto m = load_missed_deadlines(row, *ds->dag);
      if (!m.ok()) return m.status();
      missed = std::move(*m);
    }
    sm->restore_run(row, by_run[row.run_id], missed);
  }
  // Approvals still pending get their expiry timers back; one whose run has ended is closed.
  auto pending = store->list_approvals("pending");
  if (!pending.ok()) return pending.status();
  for (const store::ApprovalRow& a : *pending) {
    if (sm->find_run(a.run_id)) {
      sm->restore_approval(a);
      continue;
    }
    auto run = store->get_run(a.run_id);
    if (!run.ok() && !run.status().is_not_found()) return run.status();
    auto state = run.ok() ? parse_run_state(run->state) : std::nullopt;
    if (state && is_terminal(*state)) sm->close_stale_approval(a, run->state);
  }
  sm->redispatch_running();
  // Those end now, before any worker runs their old dispatch: loading again (after a crash or
  // a failed transaction) decides the same.
  end_tries(&sm->effects().ended_tries);
  std::vector<std::string> topics = {options.results_topic};
  for (const std::string& stage : stages) {
    topics.push_back(options.dispatch_prefix + stage + kDeadLetterSuffix);
  }
  auto sub = log->subscribe({.group = "factory.scheduler",
                             .topics = std::move(topics),
                             .client_id = "scheduler",
                             .sync_commits = false});
  if (!sub.ok()) return sub.status();
  results = std::move(*sub);
  return Status();
}

// Which of the run's tasks had their deadline miss reported (kTaskDeadlinesMissedPrefix).
Result<std::vector<std::string>> Scheduler::Impl::load_missed_deadlines(const store::RunRow& row,
                                                                        const Dag& dag) {
  std::vector<std::string> ids;
  bool any = false;
  for (const Task& task : dag.tasks) any = any || task.deadline_ms.has_value();
  if (!any) return ids;
  auto kv = store->get_kv(kTaskDeadlinesMissedPrefix + row.run_id);
  if (!kv.ok()) return kv.status();
  if (!*kv) return ids;
  boost::system::error_code ec;
  json::value v = json::parse(**kv, ec);
  if (ec || !v.is_array()) {
    obs::warn("unreadable record of missed task deadlines; they may be reported again",
              {{"run_id", row.run_id}, {"value", **kv}});
    return ids;
  }
  for (const json::value& id : v.as_array()) {
    if (id.is_string()) ids.emplace_back(id.as_string());
  }
  return ids;
}

// After a failed store transaction: forgets everything in memory and loads it again from the
// store, exactly as a restart does (load_state()), so whatever that step did — commands,
// results, timers — is undone, never written by a later step. The step's polled results and
// trigger records were not committed, so the fresh consumers read them again. On failure
// (the store cannot be read either) reload_pending stays set and every step retries first.
Status Scheduler::Impl::reload() {
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
}  // namespace factory::scheduler
