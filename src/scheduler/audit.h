// The audit rows of changes to the scheduler's state: one shape however a change arrives — a
// CLI command (written by the scheduler in the change's own step), an API request (written by
// the HTTP server from its route table, api_scheduler.cpp), or the scheduler itself (error
// budgets, deadlines, approvals closed with their run). Every writer names what changed with
// these functions, so `audit list` shows the same row for the same action either way:
//
//   action               object                          detail
//   dag.pause/unpause    dag/<dag_id>
//   run.trigger          dag/<dag_id>                    run <run_id>
//   run.cancel           run/<run_id>
//   task.clear           run/<run_id>/task/<task_id>     "with downstream" when it was asked
//   approval.approve     run/<run_id>/task/<task_id>     the decider's comment
//   approval.reject      run/<run_id>/task/<task_id>     the decider's comment
//   approval.auto_pause  scheduler/auto_approval
//   approval.auto_resume scheduler/auto_approval
//
// Actors: `cli:<login name>` (the CLI, local), `token:<name>` / `jwt:<subject>` (the API),
// `scheduler`, `error-budget`, `policy:auto`.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/meta_store.h"

namespace factory::scheduler {

inline constexpr char kAutoApprovalObject[] = "scheduler/auto_approval";

std::string dag_object(std::string_view dag_id);                             // "dag/<id>"
std::string run_object(std::string_view run_id);                             // "run/<id>"
std::string task_object(std::string_view run_id, std::string_view task_id);  // "run/<r>/task/<t>"
// The detail of a run.trigger row: "run <run_id>".
std::string trigger_detail(std::string_view run_id);
// A successful change's row ("ok"; request_id empty: not an API request).
store::AuditRow audit_row(int64_t at_ms, std::string_view actor, std::string_view action,
                          std::string object, std::string_view detail = {});

}  // namespace factory::scheduler
