#include "http/scheduler_views.h"

#include <algorithm>
#include <map>
#include <utility>

#include "base/clock.h"
#include "base/coding.h"

namespace factory::http {

namespace json = boost::json;

namespace {

// The text as valid UTF-8: invalid bytes become U+FFFD (base::append_json_string's rule, so
// the CLI's JSON and the API's agree).
json::string text(std::string_view s) {
  if (std::all_of(s.begin(), s.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return json::string(s);
  }
  std::string quoted;
  base::append_json_string(&quoted, s);
  boost::system::error_code ec;
  json::value v = json::parse(quoted, ec);
  return ec || !v.is_string() ? json::string() : std::move(v.as_string());
}

json::value time_value(int64_t ms) {
  if (ms <= 0) return nullptr;
  return json::string(base::format_iso8601_utc(ms));
}

json::value duration_value(int64_t start_ms, int64_t end_ms) {
  if (start_ms <= 0 || end_ms <= 0) return nullptr;
  return end_ms - start_ms;
}

// JSON the scheduler stored (conf, output, params); `fallback` when empty. Text that does not
// parse (never written by the scheduler) is shown as a string rather than dropped.
json::value stored_json(std::string_view stored, json::value fallback) {
  if (stored.empty()) return fallback;
  boost::system::error_code ec;
  json::value v = json::parse(stored, ec);
  if (ec) return text(stored);
  return v;
}

void trigger_fields(json::object& o, const scheduler::Trigger& t) {
  o["trigger"] = scheduler::trigger_kind_name(t.kind);
  switch (t.kind) {
    case scheduler::Trigger::Kind::kCron:
      o["schedule"] = text(t.cron);
      o["timezone"] = text(t.timezone);
      o["catchup"] = t.catchup;
      break;
    case scheduler::Trigger::Kind::kTopic:
      o["schedule"] = text(t.topic);
      break;
    case scheduler::Trigger::Kind::kManual:
      o["schedule"] = "";
      break;
  }
}

json::value paused_value(std::optional<bool> paused) {
  if (!paused) return nullptr;
  return *paused;
}

}  // namespace

json::object dag_summary_view(const scheduler::Dag& dag, std::optional<bool> paused) {
  json::object o;
  o["dag_id"] = text(dag.dag_id);
  o["description"] = text(dag.description);
  trigger_fields(o, dag.trigger);
  o["tasks"] = static_cast<int64_t>(dag.tasks.size());
  o["paused"] = paused_value(paused);
  o["file"] = text(dag.source);
  return o;
}

json::object dag_view(const scheduler::Dag& dag, std::optional<bool> paused) {
  const scheduler::DagIndex& ix = dag.index;
  json::array tasks;
  for (size_t i = 0; i < dag.tasks.size(); ++i) {
    const scheduler::Task& t = dag.tasks[i];
    json::array up;
    for (const std::string& u : t.upstream) up.push_back(text(u));
    const scheduler::RetrySpec& r = ix.retry(static_cast<int>(i));
    json::object v;
    v["task_id"] = text(t.id);
    v["stage"] = text(t.stage);
    v["description"] = text(t.description);
    v["upstream"] = std::move(up);
    v["trigger_rule"] = scheduler::trigger_rule_name(t.trigger_rule);
    v["retries"] = r.retries;
    v["retry_delay_ms"] = r.retry_delay_ms;
    v["retry_exponential_backoff"] = r.exponential_backoff;
    v["pool"] = text(t.pool);
    v["priority"] = ix.priority(static_cast<int>(i));
    v["output_topic"] = text(t.output_topic);
    v["approval"] = t.approval || t.stage == scheduler::kApprovalStage;
    v["params"] = stored_json(t.params, json::object());
    tasks.push_back(std::move(v));
  }
  json::object o;
  o["dag_id"] = text(dag.dag_id);
  o["description"] = text(dag.description);
  o["file"] = text(dag.source + ":" + std::to_string(dag.line));
  trigger_fields(o, dag.trigger);
  o["paused"] = paused_value(paused);
  o["max_active_runs"] = dag.max_active_runs;
  o["max_active_tasks"] = dag.max_active_tasks;
  o["tasks"] = std::move(tasks);
  return o;
}

json::object task_view(const scheduler::TaskView& task) {
  const store::TaskRow& r = task.row;
  json::object o;
  o["task_id"] = text(r.task_id);
  o["stage"] = text(task.stage);
  o["state"] = text(r.state);
  o["try_number"] = r.try_number;
  o["started"] = time_value(r.started_ms);
  o["ended"] = time_value(r.ended_ms);
  o["duration_ms"] = duration_value(r.started_ms, r.ended_ms);
  o["output"] = stored_json(r.output_json, nullptr);
  o["error"] = r.error.empty() ? json::value(nullptr) : json::value(text(r.error));
  return o;
}

json::object run_view(const store::RunRow& run, const std::vector<scheduler::TaskView>* tasks) {
  json::object o;
  o["run_id"] = text(run.run_id);
  o["dag_id"] = text(run.dag_id);
  o["state"] = text(run.state);
  o["trigger"] = text(run.trigger);
  o["conf"] = stored_json(run.conf_json, json::object());
  o["logical_date"] = time_value(run.logical_ms);
  o["created"] = time_value(run.created_ms);
  o["started"] = time_value(run.started_ms);
  o["ended"] = time_value(run.ended_ms);
  o["duration_ms"] = duration_value(run.started_ms, run.ended_ms);
  o["deadline"] = time_value(run.deadline_ms);
  o["deadline_missed"] = run.deadline_missed;
  if (tasks) {
    json::array items;
    for (const scheduler::TaskView& t : *tasks) items.push_back(task_view(t));
    o["tasks"] = std::move(items);
  }
  return o;
}

json::object approval_view(const store::ApprovalRow& a, int64_t now_ms) {
  json::object o;
  o["run_id"] = text(a.run_id);
  o["task_id"] = text(a.task_id);
  o["state"] = text(a.state);
  o["requested"] = time_value(a.requested_ms);
  o["expires"] = time_value(a.expires_ms);
  if (a.decided_ms > 0) {
    o["decided_by"] = text(a.decided_by);
    o["decided"] = time_value(a.decided_ms);
  } else {
    o["decided_by"] = nullptr;
    o["decided"] = nullptr;
  }
  o["comment"] = text(a.comment);
  o["bound_to"] = a.bound_to.empty() ? json::value(nullptr) : json::value(text(a.bound_to));
  if (a.state == "pending" && a.requested_ms > 0) {
    o["age_ms"] = std::max<int64_t>(0, now_ms - a.requested_ms);
  } else {
    o["age_ms"] = nullptr;
  }
  return o;
}

json::object audit_view(const store::AuditRow& row) {
  json::object o;
  o["at"] = time_value(row.at_ms);
  o["actor"] = text(row.actor);
  o["action"] = text(row.action);
  o["object"] = text(row.object);
  o["result"] = text(row.result);
  o["detail"] = text(row.detail);
  o["request_id"] = text(row.request_id);
  return o;
}

std::string to_json(const json::value& value) { return json::serialize(value); }

std::vector<scheduler::TaskView> order_tasks(const store::RunRow& run,
                                             std::vector<store::TaskRow> rows,
                                             const scheduler::Dag* dag) {
  std::vector<scheduler::TaskView> out;
  if (!dag || dag->dag_id != run.dag_id) {
    std::sort(rows.begin(), rows.end(), [](const store::TaskRow& a, const store::TaskRow& b) {
      return a.task_id < b.task_id;
    });
    for (store::TaskRow& r : rows) out.push_back({std::move(r), ""});
    return out;
  }
  std::map<std::string, store::TaskRow, std::less<>> by_id;
  for (store::TaskRow& r : rows) by_id[r.task_id] = std::move(r);
  for (const scheduler::Task& t : dag->tasks) {
    scheduler::TaskView v;
    v.stage = t.stage;
    auto it = by_id.find(t.id);
    if (it != by_id.end()) {
      v.row = std::move(it->second);
      by_id.erase(it);
    } else {
      v.row.run_id = run.run_id;
      v.row.task_id = t.id;
      v.row.state = "none";
    }
    out.push_back(std::move(v));
  }
  // Rows of tasks the DAG file no longer has.
  for (auto& [id, row] : by_id) out.push_back({std::move(row), ""});
  return out;
}

std::optional<bool> dag_paused(store::MetaStore* store, std::string_view dag_id) {
  if (!store) return false;
  auto v = store->get_kv("scheduler.paused." + std::string(dag_id));
  if (!v.ok()) return std::nullopt;
  return *v && **v == "1";
}

Result<bool> auto_approval_paused(store::MetaStore* store) {
  if (!store) return false;
  auto v = store->get_kv("scheduler.auto_approval_paused");
  if (!v.ok()) return v.status();
  return *v && **v == "1";
}

json::object auto_approval_view(bool paused,
                                const std::vector<scheduler::ErrorBudgetState>& budgets) {
  json::object by_dag;
  for (const scheduler::ErrorBudgetState& b : budgets) {
    json::object o;
    o["stage"] = text(b.spec.stage);
    o["field"] = text(b.spec.field);
    o["window_ms"] = b.spec.window_ms;
    o["max_failure_ratio"] = b.spec.max_failure_ratio;
    o["min_samples"] = b.spec.min_samples;
    o["postmortem_dag"] = b.spec.postmortem_dag.empty() ? json::value(nullptr)
                                                        : json::value(text(b.spec.postmortem_dag));
    o["pause_auto_approval"] = b.spec.pause_auto_approval;
    o["samples"] = b.samples;
    o["failures"] = b.failures;
    o["ratio"] = b.ratio;
    o["in_breach"] = b.in_breach;
    o["breaches"] = b.breaches;
    o["last_breach"] = time_value(b.last_breach_ms);
    o["last_postmortem_run_id"] = b.last_postmortem_run_id.empty()
                                      ? json::value(nullptr)
                                      : json::value(text(b.last_postmortem_run_id));
    by_dag[b.dag_id] = std::move(o);
  }
  return json::object{{"paused", paused}, {"error_budget", std::move(by_dag)}};
}

std::vector<std::string> tasks_to_clear(const scheduler::Dag& dag, int task, bool downstream) {
  std::vector<std::string> cleared;
  std::vector<char> seen(dag.tasks.size(), 0);
  std::vector<int> todo = {task};
  seen[task] = 1;
  while (!todo.empty()) {
    int at = todo.back();
    todo.pop_back();
    cleared.push_back(dag.tasks[at].id);
    if (!downstream) break;
    for (int d : dag.index.downstream(at)) {
      if (!seen[d]) {
        seen[d] = 1;
        todo.push_back(d);
      }
    }
  }
  std::sort(cleared.begin() + 1, cleared.end());
  return cleared;
}

bool run_ended(std::string_view state) {
  return state == "success" || state == "failed" || state == "cancelled";
}

}  // namespace factory::http
