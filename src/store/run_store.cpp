// SqliteStore's scheduler state: DAG runs, task instances, approvals, the audit trail and the
// scheduler's cursors (tables of migration 3, sqlite_store.cpp). Writes come only from
// apply_scheduler_batch, one transaction per scheduler step on the writer connection; reads run
// on pooled readers, each call in one WAL snapshot.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sqlite3.h>

#include "store/run_rows.h"
#include "store/sqlite_conn.h"
#include "store/sqlite_store.h"

namespace factory::store {
namespace {

using internal::StmtScope;

// Column lists shared by the statements that read a row type; the read_* functions below take
// the columns in this order. Macros so that they paste into the SQL literals, which must have
// static storage (Conn::stmt caches on them).
// clang-format off
#define FACTORY_RUN_COLUMNS                                                                   \
  "run_id, dag_id, state, conf_json, trigger, logical_ms, created_ms, started_ms, ended_ms, " \
  "deadline_ms, deadline_missed"
// t: "" or a table alias with its dot ("t.").
#define FACTORY_TASK_COLUMNS(t)                                                                \
  t "run_id, " t "task_id, " t "state, " t "try_number, " t "dispatch_seq, " t "next_try_ms, " \
  t "started_ms, " t "ended_ms, " t "output_json, " t "error"
// clang-format on
#define FACTORY_APPROVAL_COLUMNS \
  "run_id, task_id, state, requested_ms, expires_ms, decided_by, decided_ms, comment, bound_to"
#define FACTORY_AUDIT_COLUMNS "at_ms, actor, action, object, result, detail, request_id"
// Run states that are not final: recovery resumes these runs, unfinished_only lists them.
#define FACTORY_UNFINISHED_STATES "('queued', 'running')"
#define FACTORY_NEWEST_FIRST " ORDER BY created_ms DESC, run_id DESC LIMIT ?1"

// Upserts replace every column but the key: a row in a batch is the whole new state.
constexpr std::string_view kUpsertRun =
    "INSERT INTO dag_runs(" FACTORY_RUN_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
    "ON CONFLICT(run_id) DO UPDATE SET dag_id = excluded.dag_id, state = excluded.state, "
    "conf_json = excluded.conf_json, trigger = excluded.trigger, "
    "logical_ms = excluded.logical_ms, created_ms = excluded.created_ms, "
    "started_ms = excluded.started_ms, ended_ms = excluded.ended_ms, "
    "deadline_ms = excluded.deadline_ms, deadline_missed = excluded.deadline_missed";
constexpr std::string_view kUpsertTask =
    "INSERT INTO task_instances(" FACTORY_TASK_COLUMNS("")
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "ON CONFLICT(run_id, task_id) DO UPDATE SET state = excluded.state, "
    "try_number = excluded.try_number, dispatch_seq = excluded.dispatch_seq, "
    "next_try_ms = excluded.next_try_ms, started_ms = excluded.started_ms, "
    "ended_ms = excluded.ended_ms, output_json = excluded.output_json, error = excluded.error";
constexpr std::string_view kUpsertApproval =
    "INSERT INTO approvals(" FACTORY_APPROVAL_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT(run_id, task_id) DO UPDATE SET state = excluded.state, "
    "requested_ms = excluded.requested_ms, expires_ms = excluded.expires_ms, "
    "decided_by = excluded.decided_by, decided_ms = excluded.decided_ms, "
    "comment = excluded.comment, bound_to = excluded.bound_to";
constexpr std::string_view kInsertAudit =
    "INSERT INTO audit(" FACTORY_AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr std::string_view kUpsertKv =
    "INSERT INTO scheduler_kv(key, value) VALUES (?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

// list_runs, indexed [filter by dag][unfinished only]. ?1 limit (-1: none), ?2 dag_id. One
// statement per shape rather than "(?2 = '' OR dag_id = ?2)", which no index can serve.
constexpr std::string_view kListRuns[2][2] = {
    {"SELECT " FACTORY_RUN_COLUMNS " FROM dag_runs" FACTORY_NEWEST_FIRST,
     "SELECT " FACTORY_RUN_COLUMNS
     " FROM dag_runs WHERE state IN " FACTORY_UNFINISHED_STATES FACTORY_NEWEST_FIRST},
    {"SELECT " FACTORY_RUN_COLUMNS " FROM dag_runs WHERE dag_id = ?2" FACTORY_NEWEST_FIRST,
     "SELECT " FACTORY_RUN_COLUMNS
     " FROM dag_runs WHERE dag_id = ?2 AND state IN " FACTORY_UNFINISHED_STATES
         FACTORY_NEWEST_FIRST},
};
constexpr std::string_view kGetRun =
    "SELECT " FACTORY_RUN_COLUMNS " FROM dag_runs WHERE run_id = ?1";
constexpr std::string_view kListTasks =
    "SELECT " FACTORY_TASK_COLUMNS("") " FROM task_instances WHERE run_id = ?1 ORDER BY task_id";
constexpr std::string_view kListUnfinishedTasks =
    "SELECT " FACTORY_TASK_COLUMNS("t.") " FROM dag_runs AS r "
    "JOIN task_instances AS t ON t.run_id = r.run_id "
    "WHERE r.state IN " FACTORY_UNFINISHED_STATES " ORDER BY t.run_id, t.task_id";
constexpr std::string_view kListApprovals =
    "SELECT " FACTORY_APPROVAL_COLUMNS " FROM approvals ORDER BY requested_ms, run_id, task_id";
constexpr std::string_view kListApprovalsInState =
    "SELECT " FACTORY_APPROVAL_COLUMNS
    " FROM approvals WHERE state = ?1 ORDER BY requested_ms, run_id, task_id";
constexpr std::string_view kListAudit =
    "SELECT " FACTORY_AUDIT_COLUMNS " FROM audit ORDER BY id DESC LIMIT ?1";
constexpr std::string_view kGetKv = "SELECT value FROM scheduler_kv WHERE key = ?1";
constexpr std::string_view kCountRuns =
    "SELECT dag_id, state, COUNT(*) FROM dag_runs GROUP BY dag_id, state ORDER BY dag_id, state";
constexpr std::string_view kCountTasks =
    "SELECT r.dag_id, t.state, COUNT(*) FROM task_instances AS t "
    "JOIN dag_runs AS r ON r.run_id = t.run_id GROUP BY r.dag_id, t.state "
    "ORDER BY r.dag_id, t.state";

#undef FACTORY_RUN_COLUMNS
#undef FACTORY_TASK_COLUMNS
#undef FACTORY_APPROVAL_COLUMNS
#undef FACTORY_AUDIT_COLUMNS
#undef FACTORY_UNFINISHED_STATES
#undef FACTORY_NEWEST_FIRST

// Binds a string without copying: the caller's row outlives the step. A null pointer would bind
// SQL NULL (refused by NOT NULL), so an empty string always binds "".
void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text64(s, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
}
void bind_int(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);  // before column_bytes, as SQLite asks
  if (p == nullptr) return {};
  const auto n = static_cast<size_t>(sqlite3_column_bytes(s, i));
  return std::string(reinterpret_cast<const char*>(p), n);
}
int64_t column_int(sqlite3_stmt* s, int i) { return sqlite3_column_int64(s, i); }

RunRow read_run(sqlite3_stmt* s) {
  return RunRow{.run_id = column_text(s, 0),
                .dag_id = column_text(s, 1),
                .state = column_text(s, 2),
                .conf_json = column_text(s, 3),
                .trigger = column_text(s, 4),
                .logical_ms = column_int(s, 5),
                .created_ms = column_int(s, 6),
                .started_ms = column_int(s, 7),
                .ended_ms = column_int(s, 8),
                .deadline_ms = column_int(s, 9),
                .deadline_missed = column_int(s, 10) != 0};
}

TaskRow read_task(sqlite3_stmt* s) {
  return TaskRow{.run_id = column_text(s, 0),
                 .task_id = column_text(s, 1),
                 .state = column_text(s, 2),
                 .try_number = static_cast<int>(column_int(s, 3)),
                 .dispatch_seq = column_int(s, 4),
                 .next_try_ms = column_int(s, 5),
                 .started_ms = column_int(s, 6),
                 .ended_ms = column_int(s, 7),
                 .output_json = column_text(s, 8),
                 .error = column_text(s, 9)};
}

ApprovalRow read_approval(sqlite3_stmt* s) {
  return ApprovalRow{.run_id = column_text(s, 0),
                     .task_id = column_text(s, 1),
                     .state = column_text(s, 2),
                     .requested_ms = column_int(s, 3),
                     .expires_ms = column_int(s, 4),
                     .decided_by = column_text(s, 5),
                     .decided_ms = column_int(s, 6),
                     .comment = column_text(s, 7),
                     .bound_to = column_text(s, 8)};
}

AuditRow read_audit(sqlite3_stmt* s) {
  return AuditRow{.at_ms = column_int(s, 0),
                  .actor = column_text(s, 1),
                  .action = column_text(s, 2),
                  .object = column_text(s, 3),
                  .result = column_text(s, 4),
                  .detail = column_text(s, 5),
                  .request_id = column_text(s, 6)};
}

// Keys must be non-empty; checked before the transaction so a bad batch writes nothing.
Status check_batch(const SchedulerBatch& b) {
  auto bad = [](std::string_view what, size_t i, std::string_view field) {
    return Status::invalid_argument("store: apply_scheduler_batch: " + std::string(what) + "[" +
                                    std::to_string(i) + "] has an empty " + std::string(field));
  };
  for (size_t i = 0; i < b.runs.size(); ++i)
    if (b.runs[i].run_id.empty()) return bad("runs", i, "run_id");
  for (size_t i = 0; i < b.tasks.size(); ++i) {
    if (b.tasks[i].run_id.empty()) return bad("tasks", i, "run_id");
    if (b.tasks[i].task_id.empty()) return bad("tasks", i, "task_id");
  }
  for (size_t i = 0; i < b.approvals.size(); ++i) {
    if (b.approvals[i].run_id.empty()) return bad("approvals", i, "run_id");
    if (b.approvals[i].task_id.empty()) return bad("approvals", i, "task_id");
  }
  for (size_t i = 0; i < b.kv.size(); ++i)
    if (b.kv[i].first.empty()) return bad("kv", i, "key");
  return Status();
}

// Writes each row with `bind` then one step of the cached statement `sql`. Bindings point into
// the rows (SQLITE_STATIC), so they are cleared before the rows can go away (StmtScope).
template <typename Row, typename Bind, typename Name>
Status write_rows(SqliteStore::Conn* c, std::string_view sql, const std::vector<Row>& rows,
                  Bind&& bind, Name&& name) {
  if (rows.empty()) return Status();
  Result<sqlite3_stmt*> s = c->stmt(sql);
  if (!s.ok()) return s.status();
  StmtScope scope(*s);
  for (const Row& row : rows) {
    bind(*s, row);
    int rc = sqlite3_step(*s);
    if (rc != SQLITE_DONE) return c->error(rc, "apply_scheduler_batch: write " + name(row));
    sqlite3_reset(*s);
  }
  return Status();
}

// Steps a bound query to its end, appending read(row) for each row.
template <typename Row, typename Read>
Status read_rows(SqliteStore::Conn* c, sqlite3_stmt* q, std::string_view what, Read&& read,
                 std::vector<Row>* out) {
  for (;;) {
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) return Status();
    if (rc != SQLITE_ROW) return c->error(rc, what);
    out->push_back(read(q));
  }
}

Status check_limit(std::string_view what, int limit) {
  if (limit >= 0) return Status();
  return Status::invalid_argument("store: " + std::string(what) + ": limit " +
                                  std::to_string(limit) + " is negative (0 = no limit)");
}

}  // namespace

Status SqliteStore::apply_scheduler_batch(const SchedulerBatch& batch) {
  if (batch.empty()) return Status();  // no transaction, no fsync
  FACTORY_RETURN_IF_ERROR(check_batch(batch));
  return write_txn("apply_scheduler_batch", [&](Conn* c) -> Status {
    FACTORY_RETURN_IF_ERROR(write_rows(
        c, kUpsertRun, batch.runs,
        [](sqlite3_stmt* s, const RunRow& r) {
          bind_text(s, 1, r.run_id);
          bind_text(s, 2, r.dag_id);
          bind_text(s, 3, r.state);
          bind_text(s, 4, r.conf_json);
          bind_text(s, 5, r.trigger);
          bind_int(s, 6, r.logical_ms);
          bind_int(s, 7, r.created_ms);
          bind_int(s, 8, r.started_ms);
          bind_int(s, 9, r.ended_ms);
          bind_int(s, 10, r.deadline_ms);
          bind_int(s, 11, r.deadline_missed ? 1 : 0);
        },
        [](const RunRow& r) { return "run '" + r.run_id + "'"; }));
    FACTORY_RETURN_IF_ERROR(write_rows(
        c, kUpsertTask, batch.tasks,
        [](sqlite3_stmt* s, const TaskRow& t) {
          bind_text(s, 1, t.run_id);
          bind_text(s, 2, t.task_id);
          bind_text(s, 3, t.state);
          bind_int(s, 4, t.try_number);
          bind_int(s, 5, t.dispatch_seq);
          bind_int(s, 6, t.next_try_ms);
          bind_int(s, 7, t.started_ms);
          bind_int(s, 8, t.ended_ms);
          bind_text(s, 9, t.output_json);
          bind_text(s, 10, t.error);
        },
        [](const TaskRow& t) { return "task '" + t.run_id + "/" + t.task_id + "'"; }));
    FACTORY_RETURN_IF_ERROR(write_rows(
        c, kUpsertApproval, batch.approvals,
        [](sqlite3_stmt* s, const ApprovalRow& a) {
          bind_text(s, 1, a.run_id);
          bind_text(s, 2, a.task_id);
          bind_text(s, 3, a.state);
          bind_int(s, 4, a.requested_ms);
          bind_int(s, 5, a.expires_ms);
          bind_text(s, 6, a.decided_by);
          bind_int(s, 7, a.decided_ms);
          bind_text(s, 8, a.comment);
          bind_text(s, 9, a.bound_to);
        },
        [](const ApprovalRow& a) { return "approval '" + a.run_id + "/" + a.task_id + "'"; }));
    FACTORY_RETURN_IF_ERROR(write_rows(
        c, kInsertAudit, batch.audit,
        [](sqlite3_stmt* s, const AuditRow& a) {
          bind_int(s, 1, a.at_ms);
          bind_text(s, 2, a.actor);
          bind_text(s, 3, a.action);
          bind_text(s, 4, a.object);
          bind_text(s, 5, a.result);
          bind_text(s, 6, a.detail);
          bind_text(s, 7, a.request_id);
        },
        [](const AuditRow& a) { return "audit row '" + a.action + "' on '" + a.object + "'"; }));
    return write_rows(
        c, kUpsertKv, batch.kv,
        [](sqlite3_stmt* s, const std::pair<std::string, std::string>& kv) {
          bind_text(s, 1, kv.first);
          bind_text(s, 2, kv.second);
        },
        [](const std::pair<std::string, std::string>& kv) { return "cursor '" + kv.first + "'"; });
  });
}

Result<std::vector<RunRow>> SqliteStore::list_runs(const RunFilter& filter) {
  FACTORY_RETURN_IF_ERROR(check_limit("list_runs", filter.limit));
  std::vector<RunRow> out;
  Status s = read_txn("list_runs", [&](Conn* c) -> Status {
    out.clear();  // a retried attempt starts over
    Result<sqlite3_stmt*> q = c->stmt(kListRuns[!filter.dag_id.empty()][filter.unfinished_only]);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_int(*q, 1, filter.limit > 0 ? filter.limit : -1);
    if (!filter.dag_id.empty()) bind_text(*q, 2, filter.dag_id);
    return read_rows(c, *q, "list_runs", read_run, &out);
  });
  if (!s.ok()) return s;
  return out;
}

Result<RunRow> SqliteStore::get_run(std::string_view run_id) {
  std::optional<RunRow> run;
  Status s = read_txn("get_run", [&](Conn* c) -> Status {
    run.reset();
    Result<sqlite3_stmt*> q = c->stmt(kGetRun);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_text(*q, 1, run_id);
    int rc = sqlite3_step(*q);
    if (rc == SQLITE_ROW) {
      run = read_run(*q);
    } else if (rc != SQLITE_DONE) {
      return c->error(rc, "get_run");
    }
    return Status();
  });
  if (!s.ok()) return s;
  if (!run) return Status::not_found("store: run '" + std::string(run_id) + "' does not exist");
  return std::move(*run);
}

Result<std::vector<TaskRow>> SqliteStore::list_tasks(std::string_view run_id) {
  std::vector<TaskRow> out;
  Status s = read_txn("list_tasks", [&](Conn* c) -> Status {
    out.clear();
    Result<sqlite3_stmt*> q = c->stmt(kListTasks);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_text(*q, 1, run_id);
    return read_rows(c, *q, "list_tasks", read_task, &out);
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<TaskRow>> SqliteStore::list_unfinished_tasks() {
  std::vector<TaskRow> out;
  Status s = read_txn("list_unfinished_tasks", [&](Conn* c) -> Status {
    out.clear();
    Result<sqlite3_stmt*> q = c->stmt(kListUnfinishedTasks);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    return read_rows(c, *q, "list_unfinished_tasks", read_task, &out);
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<ApprovalRow>> SqliteStore::list_approvals(std::string_view state) {
  std::vector<ApprovalRow> out;
  Status s = read_txn("list_approvals", [&](Conn* c) -> Status {
    out.clear();
    Result<sqlite3_stmt*> q = c->stmt(state.empty() ? kListApprovals : kListApprovalsInState);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    if (!state.empty()) bind_text(*q, 1, state);
    return read_rows(c, *q, "list_approvals", read_approval, &out);
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<AuditRow>> SqliteStore::list_audit(int limit) {
  FACTORY_RETURN_IF_ERROR(check_limit("list_audit", limit));
  std::vector<AuditRow> out;
  Status s = read_txn("list_audit", [&](Conn* c) -> Status {
    out.clear();
    Result<sqlite3_stmt*> q = c->stmt(kListAudit);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_int(*q, 1, limit > 0 ? limit : -1);
    return read_rows(c, *q, "list_audit", read_audit, &out);
  });
  if (!s.ok()) return s;
  return out;
}

Result<StateCounts> SqliteStore::count_by_state() {
  StateCounts out;
  auto read_count = [](sqlite3_stmt* q) {
    return StateCount{
        .dag_id = column_text(q, 0), .state = column_text(q, 1), .count = column_int(q, 2)};
  };
  Status s = read_txn("count_by_state", [&](Conn* c) -> Status {
    out = {};
    for (auto [sql, rows] :
         {std::pair{kCountRuns, &out.runs}, std::pair{kCountTasks, &out.tasks}}) {
      Result<sqlite3_stmt*> q = c->stmt(sql);
      if (!q.ok()) return q.status();
      StmtScope scope(*q);
      FACTORY_RETURN_IF_ERROR(read_rows(c, *q, "count_by_state", read_count, rows));
    }
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::optional<std::string>> SqliteStore::get_kv(std::string_view key) {
  std::optional<std::string> value;
  Status s = read_txn("get_kv", [&](Conn* c) -> Status {
    value.reset();
    Result<sqlite3_stmt*> q = c->stmt(kGetKv);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_text(*q, 1, key);
    int rc = sqlite3_step(*q);
    if (rc == SQLITE_ROW) {
      value = column_text(*q, 0);
    } else if (rc != SQLITE_DONE) {
      return c->error(rc, "get_kv");
    }
    return Status();
  });
  if (!s.ok()) return s;
  return value;
}

}  // namespace factory::store
