// Approvals (approval_params.h): the state machine's transitions of approval tasks — asked
// (awaiting_approval, with a pending row bound to what it approves, maybe auto-approved or
// notified), re-asked when what it is bound to changes, decided (approved: success, with the
// binding as its output; rejected: failed), expired, cleared. Part of StateMachine
// (state_machine.h); same threading.
#include <string>
#include <utility>

#include <boost/json.hpp>

#include "obs/logger.h"
#include "scheduler/audit.h"
#include "scheduler/state_machine.h"

namespace factory::scheduler {
namespace json = boost::json;

constexpr char kAutoApprover[] = "policy:auto";  // who approves under auto_approve

// ---- approvals (approval_params.h) ----
// The approval task's params, rendered now: what it binds to, auto_approve, notify.
Result<ApprovalSettings> StateMachine::approval_settings(const Run& r, int t) const {
  auto params = render(r, t);
  if (!params.ok()) return params.status();
  return parse_approval_settings(*params);
}

// Asks for a decision on approval task t (awaiting_approval once this returns, unless a
// policy approved it at once): a pending approval row bound to settings.bound_to replaces
// whatever row the task had, so an approval given for another commit no longer counts.
void StateMachine::open_approval(Run& r, int t, const ApprovalSettings& settings) {
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
  if (settings.auto_approve && !auto_approval_paused()) {
    fx_.batch.approvals.push_back(a);  // the decision below replaces it in the same transaction
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
    timers_.push({a.expires_ms, Timer::Kind::kApprovalExpiry, r.row.run_id, t, 0});
  }
  fx_.batch.approvals.push_back(a);
  if (settings.notify) notify_approval(r, t, *settings.notify);
}

// Re-renders an awaiting approval's binding; when it changed (an upstream ran again and made
// a new commit), the approval is asked again for the new value. True when it changed.
bool StateMachine::refresh_binding(Run& r, int t) {
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
  fx_.events.push_back(std::move(rec));
  open_approval(r, t, *settings);
  return true;
}

// The row of approval task t decided now: `state` by `actor`, with `comment`.
store::ApprovalRow StateMachine::decided_row(const Run& r, int t, std::string_view state,
                                             std::string_view actor,
                                             std::string_view comment) const {
  const TaskInst& ti = r.tasks[t];
  store::ApprovalRow a;
  a.run_id = r.row.run_id;
  a.task_id = r.dag->tasks[t].id;
  a.state = std::string(state);
  a.decided_by = std::string(actor);
  a.decided_ms = now();
  a.comment = std::string(comment);
  a.requested_ms = ti.approval_requested_ms;
  a.expires_ms = ti.approval_expires_ms;
  a.bound_to = ti.approval_bound_to;
  return a;
}

// Approves or rejects approval task t (awaiting_approval).
void StateMachine::resolve_approval(Run& r, int t, bool approve, std::string_view actor,
                                    std::string_view comment, bool audit) {
  TaskInst& ti = r.tasks[t];
  store::ApprovalRow a = decided_row(r, t, approve ? "approved" : "rejected", actor, comment);
  fx_.batch.approvals.push_back(a);
  if (audit) {
    fx_.batch.audit.push_back(audit_row(a.decided_ms, actor,
                                        approve ? "approval.approve" : "approval.reject",
                                        task_object(a.run_id, a.task_id), a.comment));
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
    fx_.events.push_back(std::move(rec));
  } else {
    ti.error = "rejected by " + std::string(actor);
    set_state(r, t, TaskState::kFailed);
  }
}

// Dispatches the approval's message to the approval_notify stage: the POST runs on a stage
// worker, and its failure is the stage's to log. Best effort: a crash between this step's
// store write and its appends loses the message (the approval itself is durable).
void StateMachine::notify_approval(const Run& r, int t, const ApprovalNotify& notify) {
  const std::string stage(kApprovalNotifyStage);
  if (!options_.stages.count(stage)) {
    if (!notify_stage_missing_warned_) {
      obs::warn(
          "approval notify is configured but the approval_notify stage is not "
          "registered; no message is sent",
          {{"run_id", r.row.run_id}, {"task_id", r.dag->tasks[t].id}});
      notify_stage_missing_warned_ = true;
    }
    return;
  }
  const TaskInst& ti = r.tasks[t];
  std::string params = notify_params_json(notify, r.row.run_id, r.row.dag_id, r.dag->tasks[t].id,
                                          ti.approval_bound_to, ti.approval_requested_ms);
  std::string d = encode_dispatch({.run_id = r.row.run_id,
                                   .dag_id = r.row.dag_id,
                                   .task_id = r.dag->tasks[t].id,
                                   .try_number = 1,
                                   .notify = true,
                                   .params = std::move(params),
                                   .results_topic = options_.results_topic});
  ProducerRecord rec;
  rec.key = r.row.run_id + "/" + r.dag->tasks[t].id;
  rec.value = std::move(d);
  rec.producer_id = "scheduler";
  rec.sequence = next_dispatch_seq_++;
  const std::string topic = options_.dispatch_prefix + stage;
  Status fits = seal(topic, &rec);
  if (!fits.ok()) {
    obs::warn(
        "approval notify message not sent",
        {{"run_id", r.row.run_id}, {"task_id", r.dag->tasks[t].id}, {"error", fits.to_string()}});
    return;
  }
  fx_.dispatches.push_back({topic, std::move(rec), {r.row.run_id, -1, 0}});
}

// What the run's granted approvals were bound to (a JSON array of commits): the scheduler's
// word, in the authenticated dispatch, for a stage that must act only on an approved commit
// (deploy; task_stage.h hands it on as factory.approved headers). Read from the approval
// tasks' outputs, which only resolve_approval() writes (an approval is never dispatched, so
// no result record can set it), and which survive a restart in the store.
std::vector<std::string> StateMachine::approved_commits(const Run& r) const {
  std::vector<std::string> out;
  for (int a : dag_states_.find(r.row.dag_id)->second.approvals) {
    if (r.tasks[a].state != TaskState::kSuccess || r.tasks[a].output.empty()) continue;
    boost::system::error_code ec;
    json::value v = json::parse(r.tasks[a].output, ec);
    const json::value* bound =
        !ec && v.is_object() ? v.as_object().if_contains("bound_to") : nullptr;
    if (bound && bound->is_string() && !bound->as_string().empty()) {
      out.emplace_back(bound->as_string());
    }
  }
  return out;
}

void StateMachine::refresh_bindings(Run& r) {
  for (int a : dag_states_.find(r.row.dag_id)->second.approvals) refresh_binding(r, a);
}

// at_ms: a re-requested approval's earlier timer is stale.
void StateMachine::expire_approval(Run& r, int t, int64_t at_ms) {
  TaskInst& ti = r.tasks[t];
  if (ti.state != TaskState::kAwaitingApproval || ti.approval_expires_ms != at_ms) return;
  fx_.batch.approvals.push_back(decided_row(r, t, "expired", "scheduler", ""));
  ti.error = "approval expired";
  set_state(r, t, TaskState::kFailed);
}

// Closes approval task t, awaiting a decision its run will never take (the run is being
// cancelled): its row leaves `pending` for `state` with the reason as its comment, decided by
// `actor`, and the closing is audited (a consequence of the command, so audited whatever the
// command's own audit mode). The task's own state is the caller's to set.
void StateMachine::close_approval(Run& r, int t, std::string_view state, std::string_view actor,
                                  std::string_view reason) {
  store::ApprovalRow a = decided_row(r, t, state, actor, reason);
  fx_.batch.audit.push_back(audit_row(a.decided_ms, a.decided_by, "approval." + a.state,
                                      task_object(a.run_id, a.task_id), a.comment));
  fx_.batch.approvals.push_back(std::move(a));
}

void StateMachine::close_open_approvals(Run& r, std::string_view state, std::string_view actor,
                                        std::string_view reason) {
  for (int a : dag_states_.find(r.row.dag_id)->second.approvals) {
    if (r.tasks[a].state == TaskState::kAwaitingApproval)
      close_approval(r, a, state, actor, reason);
  }
}

// A pending row whose run the machine does not hold (it ended while the row stayed pending, as
// cancel did before it closed approvals): closed as `cancelled` when the run was, else
// `expired`, so no list shows an approval nobody can decide.
void StateMachine::close_stale_approval(const store::ApprovalRow& pending,
                                        std::string_view run_state) {
  store::ApprovalRow a = pending;
  a.state = run_state == run_state_name(RunState::kCancelled) ? "cancelled" : "expired";
  a.decided_by = "scheduler";
  a.decided_ms = now();
  a.comment = "its run ended (" + std::string(run_state) + ") before a decision";
  fx_.batch.audit.push_back(audit_row(a.decided_ms, a.decided_by, "approval." + a.state,
                                      task_object(a.run_id, a.task_id), a.comment));
  fx_.batch.approvals.push_back(std::move(a));
}

// A decided approval is cleared too: run again, it asks again (for what it then binds to), so
// an approval given for an earlier commit no longer counts.
void StateMachine::clear_approval(Run& r, int t, std::string_view actor) {
  TaskInst& ti = r.tasks[t];
  const Task& task = r.dag->tasks[t];
  if ((task.approval || task.stage == kApprovalStage) && ti.state != TaskState::kNone) {
    store::ApprovalRow a;
    a.run_id = r.row.run_id;
    a.task_id = task.id;
    a.state = "cleared";
    a.decided_by = std::string(actor);
    a.decided_ms = now();
    a.bound_to = ti.approval_bound_to;
    fx_.batch.approvals.push_back(std::move(a));
  }
  ti.approval_bound_to.clear();
  ti.approval_requested_ms = ti.approval_expires_ms = 0;
}

Status StateMachine::decide(std::string_view run_id, std::string_view task_id, bool approve,
                            std::string_view actor, std::string_view comment, bool audit,
                            std::string_view bound_to) {
  Run* rp = find_run_mutable(run_id);
  if (!rp) return Status::failed_precondition("run '" + std::string(run_id) + "' is not active");
  Run& r = *rp;
  int t = r.dag->index.find(task_id);
  if (t < 0 || r.tasks[t].state != TaskState::kAwaitingApproval) {
    return Status::failed_precondition("task '" + std::string(task_id) + "' of run '" +
                                       std::string(run_id) + "' is not awaiting approval");
  }
  const std::string where =
      "approval '" + std::string(task_id) + "' of run '" + std::string(run_id) + "'";
  // The code may have moved on since the approval was asked for (an upstream ran again
  // without clearing it): never let a decision approve what nobody reviewed.
  auto now_bound = approval_settings(r, t);
  if (approve && !r.tasks[t].approval_bound_to.empty() &&
      (!now_bound.ok() || now_bound->bound_to.empty())) {
    return Status::failed_precondition(
        where + " is bound to '" + r.tasks[t].approval_bound_to +
        "', which is being rebuilt (an upstream task is running again); decide once the new "
        "commit is ready");
  }
  if (refresh_binding(r, t)) {
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
  resolve_approval(r, t, approve, actor, comment, audit);
  return Status();
}

}  // namespace factory::scheduler
