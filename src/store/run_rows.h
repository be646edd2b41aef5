// Rows of the scheduler's durable state: DAG runs, task instances, approvals, the audit trail
// and small key/value cursors (consumed offsets, last cron fire). Plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace factory::store {

struct RunRow {
  std::string run_id;
  std::string dag_id;
  std::string state;  // queued | running | success | failed | cancelled
  std::string conf_json = "{}";
  std::string trigger;     // manual | cron | topic:<topic>/<partition>/<offset> | test
  int64_t logical_ms = 0;  // the run's logical date (cron fire time, or trigger time)
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  int64_t deadline_ms = 0;  // 0: none
  bool deadline_missed = false;
};

struct TaskRow {
  std::string run_id;
  std::string task_id;
  std::string state;         // scheduled | queued | running | success | failed | up_for_retry |
                             // upstream_failed | skipped | awaiting_approval
  int try_number = 0;        // 1 on the first dispatch
  int64_t dispatch_seq = 0;  // global, increasing: the idempotent sequence of its dispatch record
  int64_t next_try_ms = 0;   // up_for_retry: when it becomes schedulable again
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  std::string output_json;  // the task's output (XCom), "" when none
  std::string error;
};

struct ApprovalRow {
  std::string run_id;
  std::string task_id;
  std::string state;  // pending | approved | rejected | expired | cleared | cancelled
  int64_t requested_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  std::string decided_by;
  int64_t decided_ms = 0;
  std::string comment;
  std::string bound_to;  // e.g. the commit hash the approval is for ("" when unbound)
};

struct AuditRow {
  int64_t at_ms = 0;
  std::string actor;   // who ("cli:root", "token:ops", "scheduler")
  std::string action;  // e.g. "approval.approve", "run.cancel", "dag.pause"
  std::string object;  // e.g. "run/<id>/task/<id>"
  std::string result;  // "ok" or the error
  std::string detail;  // free text (a comment); never secrets
  std::string request_id;
};

// Everything one scheduler step changes, written in ONE transaction.
struct SchedulerBatch {
  std::vector<RunRow> runs;                             // upserted by run_id
  std::vector<TaskRow> tasks;                           // upserted by (run_id, task_id)
  std::vector<ApprovalRow> approvals;                   // upserted by (run_id, task_id)
  std::vector<AuditRow> audit;                          // appended
  std::vector<std::pair<std::string, std::string>> kv;  // upserted cursors
  bool empty() const {
    return runs.empty() && tasks.empty() && approvals.empty() && audit.empty() && kv.empty();
  }
};

// How many runs (or task instances) of one DAG are in one state (MetaStore::count_by_state).
struct StateCount {
  std::string dag_id;
  std::string state;
  int64_t count = 0;
};

struct StateCounts {
  std::vector<StateCount> runs;   // by (dag_id, state)
  std::vector<StateCount> tasks;  // task instances, by (their run's dag_id, state)
};

struct RunFilter {
  std::string dag_id;  // "" = any
  bool unfinished_only = false;
  int limit = 0;  // 0 = no limit; newest first
};

}  // namespace factory::store
