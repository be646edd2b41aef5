// SqliteStore: the embedded MetaStore on SQLite (one file, <dir>/factory.db, in WAL mode).
//
// Operation: SQLite allows one writer at a time, so every write transaction goes through one
// connection, writer_, under write_mu_ (waiting on our mutex is cheap; waiting on SQLite's lock
// is a sleep-and-poll). Write transactions start with BEGIN IMMEDIATE, so the write lock is
// taken up front and a transaction never fails half-way for a lock. Reads run on a pool of
// reader connections, each in its own WAL snapshot, so they never wait for the writer and see
// every transaction committed before they began. Each connection caches its prepared statements.
//
// Schema: an ordered list of migrations (sqlite_store.cpp, kMigrations); entry i brings the
// schema to version i + 1 and is recorded in schema_migrations(version, applied_at). At open,
// the pending ones are applied in one transaction each, re-checking the version inside the
// transaction so that two processes opening a fresh file at once apply each migration once.
//
// Locks held by other connections (another process, the sqlite3 shell, a WAL checkpoint) are
// waited out by SQLite's busy handler and, for the cases it does not cover (a stale snapshot,
// WAL recovery), by retrying the whole transaction with backoff; after busy_timeout_ms the call
// returns Busy naming the database. SQLite result codes become Status here and nowhere else.
//
// Concurrency: thread-safe. The destructor must not race with calls in flight.
//
// Limitations: a second process may open the same file (WAL allows it, and its writes are
// waited for as above), but factoryd itself opens the store only while holding the log's
// data-dir lock, so one factoryd owns a data dir. Writes are serialized: throughput is bounded
// by one fsync per transaction (see StoreOptions::sync), hence batch-sized transactions, and
// concurrent commit_processed() calls (every binding's workers) share one transaction
// (group commit, as the log's appends and the server's audit rows do).
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "store/meta_store.h"

struct sqlite3;

namespace factory::store {

class SqliteStore final : public MetaStore {
 public:
  // The schema migrations this binary knows, in order.
  static std::span<const std::string_view> builtin_migrations();

  // One SQLite connection (sqlite_conn.h, internal to src/store). Public only so that helpers in
  // the store's .cpp files can name it; callers never see one.
  class Conn;

  // Opens the store with `migrations` as its schema history (open_sqlite_store passes
  // builtin_migrations(); tests pass a longer list to play a newer binary). Errors as
  // open_sqlite_store.
  static Result<std::unique_ptr<SqliteStore>> open(const StoreOptions& options,
                                                   std::span<const std::string_view> migrations);
  ~SqliteStore() override;

  Result<std::vector<bool>> is_processed(std::string_view stage,
                                         std::span<const EventId> ids) override;
  Result<std::vector<bool>> record_intents(std::string_view stage,
                                           std::span<const EventId> ids) override;
  Status commit_processed(std::string_view stage, std::span<const EventId> ids) override;
  Result<std::vector<EventId>> open_intents(std::string_view stage) override;
  Result<int64_t> processed_count(std::string_view stage) override;
  Result<int64_t> prune_processed(std::string_view stage, int64_t before_ms,
                                  uint8_t slice) override;

  // Scheduler state (run_store.cpp).
  Status apply_scheduler_batch(const SchedulerBatch& batch) override;
  Result<std::vector<RunRow>> list_runs(const RunFilter& filter) override;
  Result<RunRow> get_run(std::string_view run_id) override;
  Result<std::vector<TaskRow>> list_tasks(std::string_view run_id) override;
  Result<std::vector<TaskRow>> list_unfinished_tasks() override;
  Result<std::vector<ApprovalRow>> list_approvals(std::string_view state) override;
  Result<std::vector<AuditRow>> list_audit(int limit) override;
  Result<StateCounts> count_by_state() override;
  Result<std::optional<std::string>> get_kv(std::string_view key) override;
  Status writable() override;

  // The highest migration applied to the database (0 for an empty one).
  Result<int64_t> schema_version();
  const std::string& path() const { return path_; }

 private:
  SqliteStore(const StoreOptions& options, std::string path);

  Result<std::unique_ptr<Conn>> open_conn(bool writer);
  Status migrate(std::span<const std::string_view> migrations) EXCLUDES(write_mu_);
  // Runs fn (one whole transaction on the writer) until it succeeds, fails for a reason other
  // than a lock, or busy_timeout_ms passes.
  template <typename Fn>
  Status write_txn(std::string_view what, Fn&& fn) EXCLUDES(write_mu_);
  // The same for a read transaction on a pooled reader connection.
  template <typename Fn>
  Status read_txn(std::string_view what, Fn&& fn) EXCLUDES(read_mu_);
  template <typename Fn>
  Status with_retry(Conn* conn, std::string_view what, Fn&& fn);
  int64_t now_ms() const;

  // Group commit of processed marks: each commit_processed() call queues one MarkWaiter; the
  // caller at the front writes its group (the queue's prefix) in one transaction and wakes the
  // others with the outcome, which is theirs too (all of the group's marks or none).
  struct MarkWaiter {
    std::string_view stage;
    std::span<const EventId> ids;
    Status status;
    bool done = false;
  };
  // A leader takes callers queued behind it until their marks would pass its own plus this, so
  // one transaction (and the leader's wait) stays bounded.
  static constexpr size_t kMaxGroupMarks = 10'000;
  Status write_marks(std::span<MarkWaiter* const> group) EXCLUDES(write_mu_, mark_mu_);

  const StoreOptions options_;
  const std::string path_;
  std::atomic<bool> no_space_{false};  // the last write transaction failed for a full disk

  base::Mutex write_mu_;
  std::unique_ptr<Conn> writer_ GUARDED_BY(write_mu_);

  base::Mutex mark_mu_;
  base::CondVar mark_cv_{&mark_mu_};
  std::deque<MarkWaiter*> mark_queue_ GUARDED_BY(mark_mu_);  // the front one is writing

  base::Mutex read_mu_;
  std::vector<std::unique_ptr<Conn>> idle_readers_ GUARDED_BY(read_mu_);
};

}  // namespace factory::store
