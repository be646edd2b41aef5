// The error budgets' reactions (error_budget.h has the window): a successful task of a
// budget's stage is a sample; a breach beginning triggers one postmortem run and may pause
// auto-approval, a breach ending is reported; each is audited and published as a task event,
// in the step's one transaction. Part of Scheduler::Impl (scheduler_impl.h): the loop thread's.
#include <string>

#include <boost/json.hpp>

#include "obs/logger.h"
#include "scheduler/audit.h"
#include "scheduler/scheduler_impl.h"

namespace factory::scheduler {
namespace json = boost::json;
namespace {

constexpr char kBudgetActor[] = "error-budget";  // who pauses auto-approval on a breach

// "3 of 40 gate verdicts failed in the last 1h (7.5% > 2%)"
std::string budget_summary(const ErrorBudgetState& s) {
  int64_t w = s.spec.window_ms;
  std::string window = w % 3'600'000 == 0 ? std::to_string(w / 3'600'000) + "h"
                       : w % 60'000 == 0  ? std::to_string(w / 60'000) + "m"
                       : w % 1000 == 0    ? std::to_string(w / 1000) + "s"
                                          : std::to_string(w) + "ms";
  return std::to_string(s.failures) + " of " + std::to_string(s.samples) + " " + s.spec.stage +
         " verdicts failed in the last " + window + " (" + percent_text(s.ratio) +
         (s.in_breach ? " > " : " <= ") + percent_text(s.spec.max_failure_ratio) + ")";
}

}  // namespace

// The step's successful tasks (Effects::successes), each once.
void Scheduler::Impl::record_samples() {
  auto& successes = sm->effects().successes;
  for (const auto& [r, t] : successes) record_sample(*r, t);
  successes.clear();
}

// ---- error budgets (error_budget.h) ----
// A successful task of its DAG's budget stage is a sample: its output's boolean field.
void Scheduler::Impl::record_sample(const Run& r, int t) {
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
void Scheduler::Impl::check_error_budgets() {
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
      batch().kv.emplace_back(ErrorBudget::kv_key(dag_id), budget.encode());
      budget_view_stale = true;
    }
  }
}

void Scheduler::Impl::refresh_budget_view() {
  std::vector<ErrorBudgetState> view;
  for (const auto& [dag_id, budget] : budgets) view.push_back(budget.state());
  base::MutexLock lock(&budget_mu);
  budget_view = std::move(view);
}

// An audit row and a task event for a budget's transition.
void Scheduler::Impl::on_budget_event(const std::string& dag_id, const ErrorBudget& budget,
                                      std::string_view action, std::string_view event) {
  ErrorBudgetState s = budget.state();
  batch().audit.push_back(
      audit_row(now(), kBudgetActor, action, dag_object(dag_id), budget_summary(s)));
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
  sm->effects().events.push_back(std::move(rec));
}

// A breach begins: one postmortem run (its id names the breach, so it is never made twice)
// and auto-approval paused, in the same transaction as the breach itself.
void Scheduler::Impl::on_budget_breached(const std::string& dag_id, ErrorBudget& budget) {
  const ErrorBudgetSpec& spec = *sm->dag_state(dag_id)->dag->error_budget;
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
    conf["breached_at"] = base::format_iso8601_utc(s.last_breach_ms);
    conf["max_failure_ratio"] = spec.max_failure_ratio;
    conf["min_samples"] = spec.min_samples;
    conf["stage"] = spec.stage;
    conf["breach"] = s.breaches;
    conf["summary"] = summary;
    std::string run_id = "error_budget__" + dag_id + "__" + std::to_string(s.breaches);
    auto made = sm->create_run(spec.postmortem_dag, json::serialize(conf), run_id,
                               "error_budget:" + dag_id);
    if (made.ok() || made.status().is_already_exists()) {
      budget.set_postmortem_run(run_id);
    } else {
      obs::error("error budget: the postmortem DAG did not start",
                 {{"dag_id", dag_id},
                  {"postmortem_dag", spec.postmortem_dag},
                  {"error", made.status().to_string()}});
      store::AuditRow row = audit_row(now(), kBudgetActor, "run.trigger",
                                      dag_object(spec.postmortem_dag), "postmortem of " + dag_id);
      row.result = made.status().to_string();
      batch().audit.push_back(std::move(row));
    }
  }
  on_budget_event(dag_id, budget, "error_budget.breach", "error_budget_breached");
  if (spec.pause_auto_approval && !auto_approval_paused.exchange(true)) {
    batch().kv.emplace_back(kAutoApprovalPausedKey, "1");
    batch().audit.push_back(audit_row(now(), kBudgetActor, "approval.auto_pause",
                                      kAutoApprovalObject,
                                      "error budget of DAG '" + dag_id + "' breached: " + summary));
  }
}

}  // namespace factory::scheduler
