// MetaStore: factoryd's metadata database — the idempotency table and the intents that fence
// side effects (below), and the scheduler's durable state: DAG runs, task instances, approvals,
// the audit trail and cursors (run_rows.h, written by apply_scheduler_batch: the scheduler's
// steps, and the HTTP server's audit rows through http/audit_writer.h).
//
// Exactly-once effect per (stage, event id) rests on two tables:
//   processed  one row per (stage, event id) whose outcome is recorded. A stage worker checks a
//              polled batch with is_processed(), runs the stage for the rest, and records them
//              with commit_processed() before it commits its log offset, so a redelivered event
//              is recognised and skipped.
//   intents    for "fenced" stages whose side effect cannot be made idempotent (a deploy, a
//              message to a person): record_intents() is written before the side effect, and
//              commit_processed() deletes the intent in the same transaction that records the
//              outcome. An intent still open after a crash (open_intents()) means "the effect
//              may or may not have happened": recovery must find out before running it again.
//
// MetaStore is the seam for scale-out: open_sqlite_store() returns the embedded SQLite
// implementation (sqlite_store.h); a PostgreSQL one can sit behind the same interface later.
//
// Thread-safety: all methods are safe to call concurrently. The store never returns SQLite's
// "database is locked": it waits up to StoreOptions::busy_timeout_ms for another connection and
// then returns Busy.
//
// Example (a stage worker's polled batch):
//   auto store = factory::store::open_sqlite_store({.dir = "data/store"});
//   if (!store.ok()) return store.status();
//   auto done = (*store)->is_processed("codegen", ids);        // one bool per id
//   ... run the stage for ids[i] where !(*done)[i], append its outputs ...
//   FACTORY_RETURN_IF_ERROR((*store)->commit_processed("codegen", ids));  // then commit offsets
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "factory/event.h"
#include "factory/status.h"
#include "store/run_rows.h"

namespace factory::store {

struct StoreOptions {
  std::string dir;  // created when missing; the database is <dir>/factory.db
  // How long one call waits for a lock held by another connection (another process, or a
  // checkpoint) before it gives up with Busy.
  int64_t busy_timeout_ms = 5'000;
  // synchronous=FULL: a commit returns after the WAL is fsynced, so it survives power loss
  // (one fsync per write transaction). false = NORMAL: survives kill -9 but may lose the last
  // commits on power loss; for tests and benchmarks only.
  bool sync = true;
  std::function<int64_t()> now_ms;  // ms since the epoch for processed_at/created_at; null = system
  // Tests only: the name of a registered sqlite3_vfs to open the database through (a
  // fault-injecting file layer); "" = SQLite's default.
  std::string vfs_for_test;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // For each id, in input order, whether (stage, id) is already processed. The whole batch is
  // read from one snapshot. InvalidArgument for an empty stage; Busy, IOError or Corruption
  // from the database.
  virtual Result<std::vector<bool>> is_processed(std::string_view stage,
                                                 std::span<const EventId> ids) = 0;

  // Records an intent for each id, in one transaction, before the caller runs a fenced side
  // effect. Returns, per id in input order, whether its intent was already open: an earlier try
  // (a crash, a failed batch) may have acted, so the caller asks the stage before acting again.
  // Recording an intent that is already open keeps the first one (and its created_at).
  virtual Result<std::vector<bool>> record_intents(std::string_view stage,
                                                   std::span<const EventId> ids) = 0;

  // Marks every id processed for the stage and deletes their intents, in ONE transaction: either
  // all of the batch is recorded or none. Ids already processed (earlier, or repeated within the
  // batch) are fine and keep their first processed_at. Durable when it returns OK (see
  // StoreOptions::sync). Concurrent calls (any stages) may share that transaction (group
  // commit): each call's marks are still all-or-nothing, and a failed transaction fails every
  // call in it. InvalidArgument for an empty stage; Busy, IOError, NoSpace from the database.
  virtual Status commit_processed(std::string_view stage, std::span<const EventId> ids) = 0;

  // The stage's intents with no recorded outcome, oldest first: the side effects a crash may have
  // interrupted.
  virtual Result<std::vector<EventId>> open_intents(std::string_view stage) = 0;

  // How many ids are processed for the stage. Scans the table: for status pages and tests, not
  // for the hot path.
  virtual Result<int64_t> processed_count(std::string_view stage) = 0;

  // Deletes the stage's processed marks written before before_ms (ms since the epoch, the clock
  // of StoreOptions::now_ms) whose event id starts with the byte `slice`, in one transaction;
  // returns how many. A caller walks the 256 slices in turn, so each step is a short range of the
  // table (no index is kept for pruning: the hot path pays nothing for it). Intents are never
  // pruned. The caller decides what is safe to forget: a pruned id delivered again runs again (the
  // runtime's rule is in runtime/mark_pruner.h). InvalidArgument for an empty stage; Busy,
  // IOError, NoSpace from the database. The default keeps everything (returns 0).
  virtual Result<int64_t> prune_processed(std::string_view stage, int64_t before_ms,
                                          uint8_t slice) {
    (void)stage, (void)before_ms, (void)slice;
    return int64_t{0};
  }

  // --- Scheduler state (run_rows.h) ---
  // Applies a whole scheduler step in ONE transaction (upserts runs, task instances, approvals
  // and cursors; appends audit rows). Durability follows StoreOptions::sync. An upsert replaces
  // every non-key field; within a batch the last row for a key wins. An empty batch returns OK
  // without a transaction. InvalidArgument (nothing written) for an empty run_id, task_id or
  // cursor key; otherwise all of the batch or none of it is written.
  virtual Status apply_scheduler_batch(const SchedulerBatch& batch) = 0;
  // Runs matching the filter, newest first (by created_ms, then run_id, both descending).
  // InvalidArgument for a negative limit.
  virtual Result<std::vector<RunRow>> list_runs(const RunFilter& filter) = 0;
  // NotFound naming the run when it does not exist.
  virtual Result<RunRow> get_run(std::string_view run_id) = 0;
  // A run's task instances, in task_id order (empty for an unknown run).
  virtual Result<std::vector<TaskRow>> list_tasks(std::string_view run_id) = 0;
  // Task instances of every unfinished run (state queued or running), for recovery at start;
  // ordered by run_id, then task_id.
  virtual Result<std::vector<TaskRow>> list_unfinished_tasks() = 0;
  // Approvals in a state ("" = any), oldest first (by requested_ms, then run_id, task_id).
  virtual Result<std::vector<ApprovalRow>> list_approvals(std::string_view state) = 0;
  // Audit rows, newest first (in append order), at most `limit` (0 = all). InvalidArgument for a
  // negative limit.
  virtual Result<std::vector<AuditRow>> list_audit(int limit) = 0;
  // Runs and task instances counted per (DAG, state), each list ordered by dag_id then state,
  // both from one snapshot. Scans both tables: for a metrics scrape, not for a hot path.
  virtual Result<StateCounts> count_by_state() = 0;
  // A cursor written by apply_scheduler_batch; nullopt when never written.
  virtual Result<std::optional<std::string>> get_kv(std::string_view key) = 0;

  // Whether writes can proceed: OK, or NoSpace naming the disk while the last write failed for
  // lack of space and the disk still has none free. For readiness checks; never writes.
  virtual Status writable() { return Status(); }
};

// Opens (creating when missing) <options.dir>/factory.db and brings its schema up to date.
// InvalidArgument for an empty dir; IOError when the dir or file cannot be created or opened;
// FailedPrecondition when the database was written by a newer factoryd (its schema version is
// above this binary's); Corruption when the file is not a SQLite database; Busy when another
// process holds it locked for longer than busy_timeout_ms.
Result<std::unique_ptr<MetaStore>> open_sqlite_store(const StoreOptions& options);

}  // namespace factory::store
