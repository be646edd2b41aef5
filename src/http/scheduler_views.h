// The JSON shapes of the scheduler's state — DAGs, runs, task instances, approvals, audit rows —
// shared by the API (api_scheduler.cpp answers with them) and the CLI (which prints them with
// -o json and renders its tables from them). A command therefore prints the same thing whether
// it read the store itself or asked a running daemon: both build, or receive, these values.
//
// Shapes (times are ISO-8601 UTC strings, null when not set; durations in ms):
//   dag_summary_view  {"dag_id","description","trigger","schedule",["timezone","catchup"],
//                      "tasks","paused","file"}              trigger: manual|cron|topic;
//                      schedule: the cron expression or the topic ("" for manual); timezone and
//                      catchup only for cron; paused: bool, null when the store cannot tell
//   dag_view          {"dag_id","description","file","trigger","schedule",["timezone","catchup"],
//                      "paused","max_active_runs","max_active_tasks","tasks":[{"task_id","stage",
//                      "description","upstream":[ids],"trigger_rule","retries","retry_delay_ms",
//                      "retry_exponential_backoff","pool","priority","output_topic","approval",
//                      "params"}]}                            file is "path:line"
//   run_view          {"run_id","dag_id","state","trigger","conf","logical_date","created",
//                      "started","ended","duration_ms","deadline","deadline_missed"[,"tasks"]}
//   task_view         {"task_id","stage","state","try_number","started","ended","duration_ms",
//                      "output","error"}                      output: the task's JSON output
//   approval_view     {"run_id","task_id","state","requested","expires","decided_by","decided",
//                      "comment","bound_to","age_ms"}         bound_to: what it approves (the DAG's
//                      bind_to, e.g. a commit), null when unbound; age_ms: pending ones only
//   audit_view        {"at","actor","action","object","result","detail","request_id"}
//   auto_approval_view {"paused","error_budget":{"<dag_id>":{"stage","field","window_ms",
//                      "max_failure_ratio","min_samples","postmortem_dag","pause_auto_approval",
//                      "samples","failures","ratio","in_breach","breaches","last_breach",
//                      "last_postmortem_run_id"}}}            postmortem_dag, last_breach and
//                      last_postmortem_run_id null when none
// Strings are valid UTF-8 (invalid bytes become U+FFFD), so the values always serialize to
// JSON any client parses. Objects keep their keys in the order above.
//
// Thread-safety: free functions over values the caller owns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "scheduler/dag.h"
#include "scheduler/scheduler.h"
#include "store/meta_store.h"
#include "store/run_rows.h"

namespace factory::http {

boost::json::object dag_summary_view(const scheduler::Dag& dag, std::optional<bool> paused);
boost::json::object dag_view(const scheduler::Dag& dag, std::optional<bool> paused);
boost::json::object task_view(const scheduler::TaskView& task);
// With `tasks`, also "tasks": [task_view...].
boost::json::object run_view(const store::RunRow& run,
                             const std::vector<scheduler::TaskView>* tasks = nullptr);
boost::json::object approval_view(const store::ApprovalRow& approval, int64_t now_ms);
boost::json::object audit_view(const store::AuditRow& row);
boost::json::object auto_approval_view(bool paused,
                                       const std::vector<scheduler::ErrorBudgetState>& budgets);

// Compact JSON text of a view (boost::json's serializer: parsing it back and serializing again
// gives the same text, which is what lets the CLI print a daemon's answer unchanged).
std::string to_json(const boost::json::value& value);

// The run's task instances in the DAG's file order; a task without a stored row shows as state
// "none", and stored rows of tasks the DAG no longer has follow in task_id order. Without the
// DAG (`dag` null, or not the run's), the stored rows in task_id order.
std::vector<scheduler::TaskView> order_tasks(const store::RunRow& run,
                                             std::vector<store::TaskRow> rows,
                                             const scheduler::Dag* dag);

// Whether the DAG is paused per the store (the scheduler's kv "scheduler.paused.<dag>").
// false when *store is null (no store yet: never paused); nullopt when it cannot be read.
std::optional<bool> dag_paused(store::MetaStore* store, std::string_view dag_id);

// Whether auto-approval is paused per the store (the scheduler's kv
// "scheduler.auto_approval_paused"). false when *store is null; the store's error otherwise.
Result<bool> auto_approval_paused(store::MetaStore* store);

// The ids `Scheduler::clear(run, dag.tasks[task], downstream)` resets: the task first, then
// with `downstream` every task below it, sorted.
std::vector<std::string> tasks_to_clear(const scheduler::Dag& dag, int task, bool downstream);

// True for a run state that ends a run (success, failed, cancelled).
bool run_ended(std::string_view state);

}  // namespace factory::http
