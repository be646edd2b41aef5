#include "scheduler/scheduler.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "obs/logger.h"
#include "runtime/stage_registry.h"
#include "scheduler/audit.h"
#include "scheduler/scheduler_impl.h"
#include "scheduler/scheduler_metrics.h"
#include "scheduler/task_records.h"
#include "scheduler/task_stage.h"

namespace factory::scheduler {
namespace {

constexpr size_t kMaxCatchup = 1000;  // missed cron fires started at once, at most

// The log's measure of a record against max.message.bytes (Kafka's): key + value + headers.
int64_t record_bytes(const ProducerRecord& r) {
  int64_t n = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (const Header& h : r.headers) n += h.key.size() + h.value.size();
  return n;
}

}  // namespace

// ---- the step ----
void Scheduler::Impl::step() {
  // 1. Commands.
  std::deque<Command> cmds;
  {
    base::MutexLock lock(&cmd_mu);
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
  // Dispatches the log refused after their step was written fail their tries.
  for (const RefusedDispatch& f : std::exchange(refused, {})) {
    sm->fail_refused_dispatch(f.owner, f.topic, f.status);
  }
  // 2. Results and topic triggers.
  if (results) {
    auto got = results->poll(5000, 0);
    if (got.ok() && !got->empty()) {
      for (const auto& cr : *got) take_result(cr);
      to_commit.emplace_back(results.get(), true);
    }
  }
  record_samples();
  poll_triggers();
  // Before any approval of this step opens: a breach pauses auto-approval for it already.
  check_error_budgets();
  // 3. Timers and cron.
  sm->fire_timers();
  fire_cron();
  // 4. Decide, then dispatch.
  sm->decide_and_dispatch();
  // 5, 6. Persist, then act. A command is replied to once its step is durable, with what
  // happened: when the transaction failed, nothing of it did (reload() undid it in memory
  // too), so a client that retries gets one effect, not two.
  Effects fx = sm->take_effects();
  Status s = commit_step(&fx);
  if (!s.ok()) {
    obs::error(
        "scheduler step failed: its store transaction was not written; reloading the "
        "state from the store",
        {{"error", s.to_string()}});
    (void)reload();
    Status failed =
        Status::from_code(s.code(), "not applied: the scheduler could not write it to its store (" +
                                        s.to_string() + "); nothing of it took effect, retry it");
    for (auto& [promise, status] : replies) promise.set_value(failed);
    return;
  }
  publish_step(&fx);
  if (std::exchange(budget_view_stale, false)) refresh_budget_view();
  for (auto& [promise, status] : replies) promise.set_value(status);
}

// Topic triggers: one record, one run, its id the record's position (a redelivery starts
// nothing).
void Scheduler::Impl::poll_triggers() {
  for (auto& [id, src] : sources) {
    if (!src.trigger_consumer || sm->dag_state(id)->paused) continue;
    auto got = src.trigger_consumer->poll(1000, 0);
    if (!got.ok() || got->empty()) continue;
    for (const auto& cr : *got) {
      std::string run_id = "topic__" + cr.topic + "_" + std::to_string(cr.record.partition) + "_" +
                           std::to_string(cr.record.offset.value());
      std::string conf = cr.record.value.value_or("{}");
      auto made = sm->create_run(id, conf, run_id,
                                 "topic:" + cr.topic + "/" + std::to_string(cr.record.partition) +
                                     "/" + std::to_string(cr.record.offset.value()));
      if (!made.ok() && !made.status().is_already_exists()) {
        obs::warn("trigger record did not start a run",
                  {{"dag_id", id}, {"run_id", run_id}, {"error", made.status().to_string()}});
      }
    }
    to_commit.emplace_back(src.trigger_consumer.get(), true);
  }
}

// catchup off: only the latest missed fire runs; on: every missed fire since the last one that
// ran, oldest first (at most kMaxCatchup, the latest ones).
void Scheduler::Impl::fire_cron() {
  int64_t t_now = now();
  for (auto& [id, src] : sources) {
    const DagState& ds = *sm->dag_state(id);
    if (!src.cron || ds.paused || src.next_fire_ms > t_now) continue;
    std::vector<int64_t> fires;
    if (ds.dag->trigger.catchup && src.last_fire_ms > 0) {
      fires = src.cron->fires_between(src.last_fire_ms, t_now, kMaxCatchup);
    } else {
      fires = {src.cron->last_at_or_before(t_now)};
    }
    for (int64_t fire : fires) {
      (void)sm->create_run(id, "{}", "scheduled__" + base::format_iso8601_utc(fire), "cron");
      src.last_fire_ms = fire;
    }
    batch().kv.emplace_back("scheduler.cron." + id, std::to_string(src.last_fire_ms));
    src.next_fire_ms = src.cron->next_after(t_now);
  }
}

// 5. Writes every changed run, task instance, approval, audit row and cursor in ONE store
// transaction. On failure nothing of the step is in the store, and the step's batch is
// dropped (never carried into the next step's): the caller reloads the memory from the store.
Status Scheduler::Impl::commit_step(Effects* fx) {
  sm->collect_rows(&fx->batch);
  if (fx->batch.empty()) return Status();
  fx->batch.kv.emplace_back(kDispatchSeqKey, std::to_string(sm->next_dispatch_seq()));
  return store->apply_scheduler_batch(fx->batch);
}

// 6. Acts on the written step: task events, dispatch records, consumed offsets; forgets the
// runs that ended. An append failure here never fails the step (its state is durable): a
// refused record fails its own task in the next step, a transient failure is retried.
void Scheduler::Impl::publish_step(Effects* fx) {
  end_tries(&fx->ended_tries);
  // Dispatches first: they are on the next task's critical path, the events are not (neither
  // waits for an fsync, so nothing carries the other any more).
  for (QueuedDispatch& d : fx->dispatches) {
    PendingDispatches& p = dispatches[d.topic];
    p.records.push_back(std::move(d.record));
    p.owners.push_back(std::move(d.owner));
  }
  publish_dispatches();
  publish_events(&fx->events);
  for (auto& [c, unused] : to_commit) {
    Status s = c->commit();
    if (!s.ok()) obs::warn("scheduler offset commit failed", {{"error", s.to_string()}});
  }
  to_commit.clear();
  // Forget finished runs; wake their waiters.
  std::vector<std::string> ended = sm->forget_finished();
  if (!ended.empty()) {
    base::MutexLock lock(&done_mu);
    finished_runs.insert(ended.begin(), ended.end());
    done_cv.signal_all();
  }
}

// The tries this step ended are no longer live for their workers (live_tries.h).
void Scheduler::Impl::end_tries(std::vector<EndedTry>* ended) {
  for (const EndedTry& e : *ended) live_tries->end(e.run_id, e.task_id, e.try_number);
  ended->clear();
}

// Observer events are derived from the stored state: no fsync of their own (the next synced
// write of the log carries them to disk), and a lost one is only a warning.
// An append is all or nothing, so a record the log refuses (too big for the topic) is found
// by appending one at a time: it alone is dropped, not the step's other events.
void Scheduler::Impl::publish_events(std::vector<ProducerRecord>* events_in) {
  std::vector<ProducerRecord>& events = *events_in;
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
//
// Unsynced (AppendOptions::sync = false), like the events: a dispatch is rebuilt from stored
// state. Its step's transaction (synced) already holds the task as running with its try and
// dispatch_seq, and recovery (recovery.cpp) re-appends the dispatch of every running task with
// that sequence — so a dispatch lost to a power loss before any later synced write of the log
// is appended again, exactly as one a crash kept from being appended at all; the log's
// producer state for "scheduler" is in the same write, so it is lost with it and the
// re-append is not taken for a duplicate. A worker's synced result append (the next write on
// the critical path) makes it durable anyway. A kill -9 loses nothing (the WAL write is done).
// The saved fsync is one of four per chain step (docs/benchmarks.md "Scheduler").
void Scheduler::Impl::publish_dispatches() {
  for (auto it = dispatches.begin(); it != dispatches.end();) {
    const std::string& topic = it->first;
    PendingDispatches& p = it->second;
    auto all = log->append(topic, p.records, {.sync = false});
    size_t done = p.records.size();
    if (!all.ok() && all.status().retryable()) {
      done = 0;
      obs::warn("dispatch records not appended; retried in the next step",
                {{"topic", topic}, {"error", all.status().to_string()}});
    } else if (!all.ok()) {
      for (done = 0; done < p.records.size(); ++done) {
        auto one = log->append(topic, std::span(&p.records[done], 1), {.sync = false});
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

// InvalidArgument, saying what to change, when the record is over the topic's
// max.message.bytes (the log would refuse it). A topic that cannot be described is left to
// the append, whose refusal fails the task then (publish_dispatches()).
Status Scheduler::Impl::check_dispatch_size(const std::string& topic, const ProducerRecord& rec) {
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

// Signs a dispatch record with the daemon's key and checks it fits its topic (Hooks::seal).
Status Scheduler::Impl::seal(const std::string& topic, ProducerRecord* rec) {
  rec->headers.push_back(
      {std::string(RecordAuth::kHeader), auth->sign(topic, rec->key, *rec->value)});
  return check_dispatch_size(topic, *rec);
}

// A result record that is not applied, dead-lettered to <results_topic>.dlq with the reason
// and logged, for an operator to see; the caller counted it. Refused are those without the
// daemon's MAC (record_auth.h: one could mark a running gate as passed;
// factory_records_refused_total) and, signed or not, those that cannot be read
// (task_records.h decode_result; factory_task_results_malformed_total). Best effort: a failed
// append is logged.
void Scheduler::Impl::refuse_result(const ConsumerRecord& cr, const Status& why) {
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

// Reads one polled result record and applies it; one that is not authentic or cannot be
// read is dead-lettered with the reason and counted (refuse_result()).
void Scheduler::Impl::take_result(const ConsumerRecord& cr) {
  if (cr.topic != options.results_topic) return take_dead_dispatch(cr);
  if (!cr.record.value) {
    metrics().results_malformed.labels({cr.topic})->inc();
    refuse_result(cr, Status::invalid_argument("the record has no value"));
    return;
  }
  Status authentic = auth->verify(cr.topic, cr.record.key, *cr.record.value, cr.record.headers);
  if (!authentic.ok()) {
    count_refused_record(cr.topic);
    refuse_result(cr, authentic);
    return;
  }
  auto result = decode_result(*cr.record.value);
  if (!result.ok()) {
    metrics().results_malformed.labels({cr.topic})->inc();
    refuse_result(cr, result.status());
    return;
  }
  sm->apply_result(*result);
}

// A dispatch its task binding dead-lettered: the worker could not finish the try (e.g. its
// result record is over the results topic's max.message.bytes), so no result will come and
// the try would stay running. It fails, without retry, with the letter's reason. Only an
// authentic dispatch from the dead-letter topic's own dispatch topic counts: a letter the
// binding refused as not authentic, or one stored by reference (no value), changes nothing.
void Scheduler::Impl::take_dead_dispatch(const ConsumerRecord& cr) {
  const std::string source =
      cr.topic.substr(0, cr.topic.size() - std::string_view(kDeadLetterSuffix).size());
  if (!cr.record.value || last_header(cr.record.headers, "factory.source.topic") != source ||
      !auth->verify(source, cr.record.key, *cr.record.value, cr.record.headers).ok()) {
    obs::warn("dead-lettered dispatch not applied (not authentic, or stored by reference)",
              {{"topic", cr.topic}, {"offset", std::to_string(cr.record.offset.value())}});
    return;
  }
  auto d = decode_dispatch(*cr.record.value);
  if (!d.ok()) return;
  ResultRecord r{.run_id = d->run_id,
                 .task_id = d->task_id,
                 .try_number = d->try_number,
                 .success = false,
                 .error = "the task's dispatch was dead-lettered to " + cr.topic + ": " +
                          last_header(cr.record.headers, "factory.dlq.reason"),
                 .retryable = false};
  sm->apply_result(r);
}

int64_t Scheduler::Impl::wait_budget_ms() {
  int64_t wait = options.tick_ms;
  if (auto next = sm->next_timer_ms()) wait = std::min(wait, std::max<int64_t>(0, *next - now()));
  return wait;
}

void Scheduler::Impl::loop() {
  loop_thread = std::this_thread::get_id();
  while (!stopping.load()) {
    uint64_t seq = log->append_sequence();
    step();
    metrics().heartbeat->set(now() / 1e3);
    // Refused dispatches fail their tasks in the very next step, not a tick later.
    bool pending = !refused.empty();
    {
      base::MutexLock lock(&cmd_mu);
      pending = pending || !commands.empty();
    }
    if (!pending) log->wait_for_append(seq, std::max<int64_t>(1, wait_budget_ms()));
  }
}

Status Scheduler::Impl::run_command(std::function<Status()> fn) {
  std::promise<Status> p;
  auto f = p.get_future();
  {
    base::MutexLock lock(&cmd_mu);
    commands.emplace_back(std::move(fn), std::move(p));
  }
  log->wake_waiters();
  return f.get();
}

Scheduler::Scheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Scheduler::~Scheduler() { stop(); }

const std::vector<Dag>& Scheduler::dags() const { return impl_->dags; }

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
                                       std::string run_id, std::string trigger,
                                       std::string_view actor) {
  std::string out;
  Status s = impl_->run_command([&]() -> Status {
    auto r = impl_->sm->create_run(dag_id, conf_json, run_id, trigger);
    if (!r.ok()) return r.status();
    out = *r;
    if (!actor.empty()) {
      impl_->batch().audit.push_back(
          audit_row(impl_->now(), actor, "run.trigger", dag_object(dag_id), trigger_detail(out)));
    }
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Status Scheduler::decide(std::string_view run_id, std::string_view task_id, bool approve,
                         std::string_view actor, std::string_view comment, AuditMode audit,
                         std::string_view bound_to) {
  return impl_->run_command([&]() -> Status {
    Status s = impl_->sm->decide(run_id, task_id, approve, actor, comment,
                                 audit == AuditMode::kAudit, bound_to);
    if (s.is_failed_precondition() && !impl_->sm->find_run(run_id)) {
      return impl_->ended_approval(run_id, task_id, approve, std::move(s));
    }
    return s;
  });
}

Status Scheduler::Impl::ended_approval(std::string_view run_id, std::string_view task_id,
                                       bool approve, Status fallback) {
  auto run = store->get_run(run_id);
  if (!run.ok()) return fallback;
  // Rare (a decision on an ended run): a scan of the approvals is fine here.
  auto rows = store->list_approvals("");
  if (!rows.ok()) return fallback;
  const std::string where =
      "approval '" + std::string(task_id) + "' of run '" + std::string(run_id) + "'";
  const std::string fix = "; nothing to " + std::string(approve ? "approve" : "reject") +
                          " (run it again with 'factoryd tasks clear " + std::string(run_id) + " " +
                          std::string(task_id) + "', or trigger a new run)";
  for (const store::ApprovalRow& a : *rows) {
    if (a.run_id != run_id || a.task_id != task_id) continue;
    // A closing's comment is its reason ("run cancelled by cli:ana"); a decision's is the
    // decider's own words, so it names who decided instead.
    bool closed = (a.state == "cancelled" || a.state == "expired") && !a.comment.empty();
    std::string why = closed ? a.comment
                             : (a.decided_by.empty() ? "" : "by " + a.decided_by + "; ") +
                                   "its run " + run->state;
    return Status::failed_precondition(where + " is " + a.state + " (" + why + ")" + fix);
  }
  return Status::failed_precondition(where + " was never requested: the run " + run->state +
                                     " before it" + fix);
}

Status Scheduler::set_auto_approval_paused(bool paused, std::string_view actor, AuditMode audit) {
  impl_->auto_approval_paused = paused;  // effective for the next approval at once
  auto persist = [m = impl_.get(), paused, actor = std::string(actor), audit]() -> Status {
    m->batch().kv.emplace_back(kAutoApprovalPausedKey, paused ? "1" : "0");
    if (audit == AuditMode::kAudit) {
      m->batch().audit.push_back(audit_row(m->now(), actor,
                                           paused ? "approval.auto_pause" : "approval.auto_resume",
                                           kAutoApprovalObject));
    }
    return Status();
  };
  // Called from the loop itself (a hook running in a step): queue it for the next step, since
  // waiting here would wait for ourselves.
  if (impl_->loop_thread.load() == std::this_thread::get_id()) {
    base::MutexLock lock(&impl_->cmd_mu);
    impl_->commands.emplace_back(persist, std::promise<Status>());
    return Status();
  }
  return impl_->run_command(persist);
}

bool Scheduler::auto_approval_paused() const { return impl_->auto_approval_paused.load(); }

std::vector<ErrorBudgetState> Scheduler::error_budgets() const {
  base::MutexLock lock(&impl_->budget_mu);
  return impl_->budget_view;
}

Status Scheduler::cancel(std::string_view run_id, std::string_view actor, AuditMode audit) {
  return impl_->run_command(
      [&]() -> Status { return impl_->sm->cancel(run_id, actor, audit == AuditMode::kAudit); });
}

Status Scheduler::clear(std::string_view run_id, std::string_view task_id, bool downstream,
                        std::string_view actor, AuditMode audit) {
  return impl_->run_command([&]() -> Status {
    Impl& m = *impl_;
    std::unique_ptr<Run> ended;  // a run that had ended, back from the store
    if (!m.sm->find_run(run_id)) {
      auto row = m.store->get_run(run_id);
      if (!row.ok()) return row.status();
      DagState* ds = m.sm->dag_state(row->dag_id);
      if (!ds) {
        return Status::failed_precondition("run '" + row->run_id + "' is of DAG '" + row->dag_id +
                                           "', which is not loaded");
      }
      auto rows = m.store->list_tasks(run_id);
      if (!rows.ok()) return rows.status();
      ended = load_run(ds->dag, *row, *rows);
    }
    const bool reopened = ended != nullptr;
    Status s = m.sm->clear(run_id, std::move(ended), task_id, downstream, actor,
                           audit == AuditMode::kAudit);
    if (s.ok() && reopened) {
      base::MutexLock lock(&m.done_mu);
      m.finished_runs.erase(std::string(run_id));
    }
    return s;
  });
}

Status Scheduler::set_paused(std::string_view dag_id, bool paused, std::string_view actor,
                             AuditMode audit) {
  return impl_->run_command([&]() -> Status {
    return impl_->sm->set_paused(dag_id, paused, actor, audit == AuditMode::kAudit);
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
  Impl& m = *impl_;
  bool ended_here;
  {
    base::MutexLock lock(&m.done_mu);
    ended_here = m.finished_runs.count(id) > 0;
  }
  if (!ended_here) {
    // A run that ended before this scheduler started is only in the store. Read it unlocked
    // (the loop thread takes done_mu after its commit); a run ending meanwhile is in
    // finished_runs by the time it is checked again below, so no wakeup is lost.
    auto r = m.store->get_run(run_id);
    bool ended_before =
        r.ok() && is_terminal(parse_run_state(r->state).value_or(RunState::kQueued));
    if (!ended_before) {
      base::MutexLock lock(&m.done_mu);
      while (!m.finished_runs.count(id)) {
        if (!m.done_cv.wait_until(deadline) && !m.finished_runs.count(id)) {
          return Status::timed_out("run '" + id + "' did not finish in " +
                                   std::to_string(timeout_ms) + " ms");
        }
      }
    }
  }
  return show_run(run_id);
}

}  // namespace factory::scheduler
