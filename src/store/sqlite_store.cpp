#include "store/sqlite_store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

#include <sqlite3.h>
#include <sys/statvfs.h>

#include "base/clock.h"
#include "obs/logger.h"
#include "store/sqlite_conn.h"

namespace factory::store {
namespace {

using internal::describe;
using internal::kBeginWrite;
using internal::kCommit;
using internal::StmtScope;
using internal::to_status;

// Schema history. Entry i brings the schema to version i + 1; each runs in its own transaction
// (SQLite DDL is transactional) together with its schema_migrations row. Never edit or reorder
// a released entry: add a new one at the end. No IF NOT EXISTS: a migration applied twice
// should fail loudly.
constexpr std::string_view kMigrations[] = {
    // 1: idempotency. Key order (event_id, stage): ids are uniformly random, so inserts spread
    // over the B-tree; WITHOUT ROWID stores the row in the key's B-tree (one lookup, no rowid
    // index to maintain).
    R"sql(
    CREATE TABLE processed (
      stage        TEXT     NOT NULL,
      event_id     BLOB(32) NOT NULL CHECK (length(event_id) = 32),
      processed_at INTEGER  NOT NULL,  -- ms since the epoch
      PRIMARY KEY (event_id, stage)
    ) WITHOUT ROWID;
    )sql",
    // 2: intents of fenced stages: written before the side effect, deleted with its outcome.
    R"sql(
    CREATE TABLE intents (
      stage      TEXT     NOT NULL,
      event_id   BLOB(32) NOT NULL CHECK (length(event_id) = 32),
      created_at INTEGER  NOT NULL,  -- ms since the epoch
      PRIMARY KEY (event_id, stage)
    ) WITHOUT ROWID;
    )sql",
    // 3: the scheduler's durable state (store/run_rows.h; written by apply_scheduler_batch in
    // run_store.cpp, one transaction per scheduler step). Times are ms since the epoch, 0 = unset.
    // States are not CHECKed: SQLite cannot alter a CHECK, and the scheduler owns their meaning.
    // task_instances is the hot table (tens of thousands of upserts per step): WITHOUT ROWID
    // keeps each row in its (run_id, task_id) B-tree, so an upsert touches one B-tree and a
    // run's tasks are contiguous. dag_runs_by_dag carries run_id so "a DAG's runs, newest first"
    // is an index walk with no sort; dag_runs_by_state finds the unfinished runs at recovery.
    // audit is append-only: the triggers refuse UPDATE and DELETE from any connection, and
    // AUTOINCREMENT never reuses an id, so ids order the trail.
    R"sql(
    CREATE TABLE dag_runs (
      run_id          TEXT    NOT NULL PRIMARY KEY,
      dag_id          TEXT    NOT NULL,
      state           TEXT    NOT NULL,  -- queued | running | success | failed | cancelled
      conf_json       TEXT    NOT NULL,
      trigger         TEXT    NOT NULL,
      logical_ms      INTEGER NOT NULL,
      created_ms      INTEGER NOT NULL,
      started_ms      INTEGER NOT NULL,
      ended_ms        INTEGER NOT NULL,
      deadline_ms     INTEGER NOT NULL,  -- 0: none
      deadline_missed INTEGER NOT NULL CHECK (deadline_missed IN (0, 1))
    );
    CREATE INDEX dag_runs_by_dag ON dag_runs (dag_id, created_ms, run_id);
    CREATE INDEX dag_runs_by_state ON dag_runs (state);
    CREATE TABLE task_instances (
      run_id       TEXT    NOT NULL,
      task_id      TEXT    NOT NULL,
      state        TEXT    NOT NULL,
      try_number   INTEGER NOT NULL,
      dispatch_seq INTEGER NOT NULL,
      next_try_ms  INTEGER NOT NULL,
      started_ms   INTEGER NOT NULL,
      ended_ms     INTEGER NOT NULL,
      output_json  TEXT    NOT NULL,  -- '' when none
      error        TEXT    NOT NULL,
      PRIMARY KEY (run_id, task_id)
    ) WITHOUT ROWID;
    CREATE TABLE approvals (
      run_id       TEXT    NOT NULL,
      task_id      TEXT    NOT NULL,
      state        TEXT    NOT NULL,  -- pending | approved | rejected | expired
      requested_ms INTEGER NOT NULL,
      expires_ms   INTEGER NOT NULL,  -- 0: never
      decided_by   TEXT    NOT NULL,
      decided_ms   INTEGER NOT NULL,
      comment      TEXT    NOT NULL,
      bound_to     TEXT    NOT NULL,
      PRIMARY KEY (run_id, task_id)
    );
    CREATE TABLE audit (
      id         INTEGER PRIMARY KEY AUTOINCREMENT,
      at_ms      INTEGER NOT NULL,
      actor      TEXT    NOT NULL,
      action     TEXT    NOT NULL,
      object     TEXT    NOT NULL,
      result     TEXT    NOT NULL,
      detail     TEXT    NOT NULL,
      request_id TEXT    NOT NULL
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
      BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
      BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    CREATE TABLE scheduler_kv (
      key   TEXT NOT NULL PRIMARY KEY,
      value TEXT NOT NULL
    ) WITHOUT ROWID;
    )sql",
};

constexpr std::string_view kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)";
constexpr std::string_view kSchemaVersion =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";
constexpr std::string_view kInsertMigration =
    "INSERT INTO schema_migrations(version, applied_at) VALUES (?1, ?2)";

// Parameters: ?1 event_id, ?2 stage, ?3 time.
constexpr std::string_view kSelectProcessed =
    "SELECT 1 FROM processed WHERE event_id = ?1 AND stage = ?2";
constexpr std::string_view kInsertProcessed =
    "INSERT INTO processed(stage, event_id, processed_at) VALUES (?2, ?1, ?3) "
    "ON CONFLICT(event_id, stage) DO NOTHING";
constexpr std::string_view kDeleteIntent = "DELETE FROM intents WHERE event_id = ?1 AND stage = ?2";
constexpr std::string_view kInsertIntent =
    "INSERT INTO intents(stage, event_id, created_at) VALUES (?2, ?1, ?3) "
    "ON CONFLICT(event_id, stage) DO NOTHING";
// The stage is not a key prefix, so these two scan their table: intents are few (in flight
// only) and processed_count is not on the hot path. The NOT EXISTS makes an intent recorded
// after its outcome (a caller's protocol slip) not look like an interrupted side effect.
constexpr std::string_view kOpenIntents =
    "SELECT event_id FROM intents AS i WHERE stage = ?2 AND NOT EXISTS ("
    "SELECT 1 FROM processed AS p WHERE p.event_id = i.event_id AND p.stage = i.stage) "
    "ORDER BY created_at, event_id";
constexpr std::string_view kProcessedCount = "SELECT count(*) FROM processed WHERE stage = ?2";
// ?2 stage, ?3 cutoff (ms), ?4 and ?5 the slice's bounds: a range of the primary key, so one
// slice is a short sequential walk of the B-tree and no index is kept for pruning.
constexpr std::string_view kPruneProcessed =
    "DELETE FROM processed WHERE event_id >= ?4 AND event_id < ?5 AND stage = ?2 "
    "AND processed_at < ?3";

Status check_stage(std::string_view stage) {
  if (stage.empty()) return Status::invalid_argument("store: the stage name is empty");
  return Status::ok_status();
}

void bind_id(sqlite3_stmt* s, const EventId& id) {
  sqlite3_bind_blob(s, 1, id.digest.data(), EventId::kSize, SQLITE_STATIC);
}
void bind_stage(sqlite3_stmt* s, std::string_view stage) {
  sqlite3_bind_text(s, 2, stage.data(), static_cast<int>(stage.size()), SQLITE_STATIC);
}

}  // namespace

namespace internal {

std::string describe(std::string_view path, std::string_view what) {
  return "store '" + std::string(path) + "': " + std::string(what) + ": ";
}

Status to_status(int rc, std::string_view message, std::string_view path, std::string_view what) {
  std::string m =
      describe(path, what) + std::string(message) + " (SQLite code " + std::to_string(rc) + ")";
  if ((rc & 0xff) == SQLITE_FULL) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    return Status::no_space(describe(path, what) + "the disk holding '" + dir + "' is full (" +
                            std::string(message) +
                            "); nothing was written. Free space on that disk: writes resume by "
                            "themselves, no restart needed");
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::busy(m);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::corruption(m);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
      return Status::io_error(m);
    default:
      return Status::internal(m);
  }
}

}  // namespace internal

std::span<const std::string_view> SqliteStore::builtin_migrations() { return kMigrations; }

Result<std::unique_ptr<MetaStore>> open_sqlite_store(const StoreOptions& options) {
  Result<std::unique_ptr<SqliteStore>> s =
      SqliteStore::open(options, SqliteStore::builtin_migrations());
  if (!s.ok()) return s.status();
  return std::unique_ptr<MetaStore>(std::move(*s));
}

SqliteStore::SqliteStore(const StoreOptions& options, std::string path)
    : options_(options), path_(std::move(path)) {}

SqliteStore::~SqliteStore() = default;

int64_t SqliteStore::now_ms() const {
  return options_.now_ms ? options_.now_ms() : base::SystemClock::instance()->now_ms();
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(
    const StoreOptions& options, std::span<const std::string_view> migrations) {
  if (options.dir.empty()) return Status::invalid_argument("StoreOptions.dir is empty");
  // Conn relies on SQLite being usable from several threads (one connection per thread).
  if (sqlite3_threadsafe() == 0) return Status::internal("store: SQLite was built without threads");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return Status::io_error("cannot create store dir '" + options.dir + "': " + ec.message() +
                            "; check the path and its permissions");
  }
  std::string path = (std::filesystem::path(options.dir) / "factory.db").string();
  std::unique_ptr<SqliteStore> store(new SqliteStore(options, path));
  Result<std::unique_ptr<Conn>> writer = store->open_conn(/*writer=*/true);
  if (!writer.ok()) return writer.status();
  {
    base::MutexLock l(&store->write_mu_);
    store->writer_ = std::move(*writer);
  }
  FACTORY_RETURN_IF_ERROR(store->migrate(migrations));
  return store;
}

Result<std::unique_ptr<SqliteStore::Conn>> SqliteStore::open_conn(bool writer) {
  sqlite3* db = nullptr;
  // NOMUTEX: a Conn is only ever used by one thread at a time, so SQLite's own per-connection
  // mutex would be pure overhead. Readers are opened without CREATE: the writer made the file.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path_.c_str(), &db, flags,
                           options_.vfs_for_test.empty() ? nullptr : options_.vfs_for_test.c_str());
  if (rc != SQLITE_OK) {
    Status s = to_status(rc, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), path_, "open");
    sqlite3_close(db);
    return s;
  }
  auto conn = std::make_unique<Conn>(db, path_);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(
      db, static_cast<int>(std::clamp<int64_t>(options_.busy_timeout_ms, 0, INT32_MAX)));
  Status s = with_retry(conn.get(), "configure connection", [&](Conn* c) -> Status {
    if (writer) {
      // WAL: readers keep a snapshot and never block the writer or each other. The mode is
      // stored in the file, so readers inherit it.
      Result<sqlite3_stmt*> st = c->stmt("PRAGMA journal_mode=WAL");
      if (!st.ok()) return st.status();
      StmtScope scope(*st);
      int step = sqlite3_step(*st);
      if (step != SQLITE_ROW) return c->error(step, "set journal_mode=WAL");
      std::string mode = reinterpret_cast<const char*>(sqlite3_column_text(*st, 0));
      if (mode != "wal") {
        return Status::io_error(describe(path_, "open") + "cannot use WAL mode (journal_mode is '" +
                                mode + "'); is the data dir on a network file system?");
      }
      // FULL: the WAL is fsynced at every commit, so an acknowledged commit survives power loss;
      // NORMAL would sync only at checkpoints (safe against a process crash, not a power cut).
      FACTORY_RETURN_IF_ERROR(c->exec(
          options_.sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", "configure"));
      return c->exec("PRAGMA foreign_keys=ON", "configure");
    }
    // A reader that tried to write would be a bug here; make SQLite refuse it.
    return c->exec("PRAGMA query_only=ON", "configure");
  });
  if (!s.ok()) return s;
  return conn;
}

Status SqliteStore::migrate(std::span<const std::string_view> migrations) {
  base::MutexLock l(&write_mu_);
  const auto known = static_cast<int64_t>(migrations.size());
  int64_t from = -1;  // the version found at open, once known
  for (;;) {
    int64_t version = 0;
    Status s = with_retry(writer_.get(), "migrate", [&](Conn* c) -> Status {
      FACTORY_RETURN_IF_ERROR(c->run(kBeginWrite, "begin migration"));
      FACTORY_RETURN_IF_ERROR(c->exec(kCreateMigrationsTable, "create schema_migrations"));
      // Read inside the write transaction: another process may have migrated meanwhile.
      Result<sqlite3_stmt*> q = c->stmt(kSchemaVersion);
      if (!q.ok()) return q.status();
      {
        StmtScope scope(*q);
        int rc = sqlite3_step(*q);
        if (rc != SQLITE_ROW) return c->error(rc, "read schema version");
        version = sqlite3_column_int64(*q, 0);
      }
      if (from < 0) from = version;
      if (version > known) {
        return Status::failed_precondition(
            describe(path_, "open") + "the database has schema version " + std::to_string(version) +
            " but this factoryd knows versions up to " + std::to_string(known) +
            ": it was written by a newer factoryd. Run that version, or use another data dir");
      }
      if (version < known) {
        const int64_t next = version + 1;
        FACTORY_RETURN_IF_ERROR(c->exec(migrations[static_cast<size_t>(version)],
                                        "migration " + std::to_string(next) + " failed"));
        Result<sqlite3_stmt*> ins = c->stmt(kInsertMigration);
        if (!ins.ok()) return ins.status();
        StmtScope scope(*ins);
        sqlite3_bind_int64(*ins, 1, next);
        sqlite3_bind_int64(*ins, 2, now_ms());
        int rc = sqlite3_step(*ins);
        if (rc != SQLITE_DONE) return c->error(rc, "record migration " + std::to_string(next));
        version = next;
      }
      return c->run(kCommit, "commit migration");
    });
    if (!s.ok()) return s;
    if (version == known) {
      if (from != known)
        obs::info("store schema migrated", {{"db", path_}, {"from", from}, {"to", known}});
      return Status();
    }
  }
}

Result<std::vector<bool>> SqliteStore::is_processed(std::string_view stage,
                                                    std::span<const EventId> ids) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  std::vector<bool> out;
  if (ids.empty()) return out;
  Status s = read_txn("is_processed", [&](Conn* c) -> Status {
    out.assign(ids.size(), false);
    Result<sqlite3_stmt*> q = c->stmt(kSelectProcessed);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_stage(*q, stage);  // bindings survive sqlite3_reset: bind the stage once per batch
    for (size_t i = 0; i < ids.size(); ++i) {
      bind_id(*q, ids[i]);
      int rc = sqlite3_step(*q);
      if (rc == SQLITE_ROW) {
        out[i] = true;
      } else if (rc != SQLITE_DONE) {
        return c->error(rc, "is_processed");
      }
      sqlite3_reset(*q);
    }
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<bool>> SqliteStore::record_intents(std::string_view stage,
                                                      std::span<const EventId> ids) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  std::vector<bool> was_open(ids.size(), false);
  if (ids.empty()) return was_open;
  const int64_t now = now_ms();
  Status s = write_txn("record_intents", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> ins = c->stmt(kInsertIntent);
    if (!ins.ok()) return ins.status();
    StmtScope scope(*ins);
    bind_stage(*ins, stage);
    sqlite3_bind_int64(*ins, 3, now);
    for (size_t i = 0; i < ids.size(); ++i) {
      bind_id(*ins, ids[i]);
      int rc = sqlite3_step(*ins);
      if (rc != SQLITE_DONE) return c->error(rc, "record_intents");
      // ON CONFLICT DO NOTHING changes no row when the intent was already there.
      was_open[i] = sqlite3_changes(c->db()) == 0;
      sqlite3_reset(*ins);
    }
    return Status();
  });
  if (!s.ok()) return s;
  return was_open;
}

Status SqliteStore::commit_processed(std::string_view stage, std::span<const EventId> ids) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  if (ids.empty()) return Status();
  MarkWaiter w{stage, ids};
  std::vector<MarkWaiter*> group;
  {
    base::MutexLock l(&mark_mu_);
    mark_queue_.push_back(&w);
    while (!w.done && mark_queue_.front() != &w) mark_cv_.wait();
    if (w.done) return w.status;
    // This caller leads: it writes its own marks and those of every caller queued behind it
    // (up to kMaxGroupMarks more), in one transaction.
    size_t marks = 0;
    for (MarkWaiter* q : mark_queue_) {
      if (!group.empty() && marks + q->ids.size() > ids.size() + kMaxGroupMarks) break;
      group.push_back(q);
      marks += q->ids.size();
    }
  }
  Status s = write_marks(group);
  base::MutexLock l(&mark_mu_);
  for (MarkWaiter* g : group) {
    mark_queue_.pop_front();  // the group is the queue's prefix: later callers queued behind it
    g->status = s;
    g->done = true;
  }
  mark_cv_.signal_all();
  return s;
}

Status SqliteStore::write_marks(std::span<MarkWaiter* const> group) {
  // In key order (event_id, stage): consecutive inserts land on the same or the next B-tree
  // page instead of one random page each, so a transaction dirties fewer pages.
  struct Mark {
    const EventId* id;
    std::string_view stage;
  };
  std::vector<Mark> marks;
  for (const MarkWaiter* g : group) {
    for (const EventId& id : g->ids) marks.push_back({&id, g->stage});
  }
  std::sort(marks.begin(), marks.end(), [](const Mark& a, const Mark& b) {
    int c = std::memcmp(a.id->digest.data(), b.id->digest.data(), EventId::kSize);
    return c != 0 ? c < 0 : a.stage < b.stage;
  });
  const int64_t now = now_ms();
  return write_txn("commit_processed", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> ins = c->stmt(kInsertProcessed);
    if (!ins.ok()) return ins.status();
    Result<sqlite3_stmt*> del = c->stmt(kDeleteIntent);
    if (!del.ok()) return del.status();
    StmtScope ins_scope(*ins);
    StmtScope del_scope(*del);
    sqlite3_bind_int64(*ins, 3, now);
    for (const Mark& m : marks) {
      bind_id(*ins, *m.id);
      bind_stage(*ins, m.stage);
      int rc = sqlite3_step(*ins);
      if (rc != SQLITE_DONE) return c->error(rc, "commit_processed");
      sqlite3_reset(*ins);
      bind_id(*del, *m.id);
      bind_stage(*del, m.stage);
      rc = sqlite3_step(*del);
      if (rc != SQLITE_DONE) return c->error(rc, "commit_processed (resolve intent)");
      sqlite3_reset(*del);
    }
    return Status();
  });
}

Result<std::vector<EventId>> SqliteStore::open_intents(std::string_view stage) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  std::vector<EventId> out;
  Status s = read_txn("open_intents", [&](Conn* c) -> Status {
    out.clear();
    Result<sqlite3_stmt*> q = c->stmt(kOpenIntents);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_stage(*q, stage);
    for (;;) {
      int rc = sqlite3_step(*q);
      if (rc == SQLITE_DONE) return Status();
      if (rc != SQLITE_ROW) return c->error(rc, "open_intents");
      const void* blob = sqlite3_column_blob(*q, 0);
      if (blob == nullptr || sqlite3_column_bytes(*q, 0) != static_cast<int>(EventId::kSize)) {
        return Status::corruption(describe(path_, "open_intents") +
                                  "an intent's event_id is not 32 bytes");
      }
      EventId& id = out.emplace_back();
      std::memcpy(id.digest.data(), blob, EventId::kSize);
    }
  });
  if (!s.ok()) return s;
  return out;
}

Result<int64_t> SqliteStore::processed_count(std::string_view stage) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  int64_t n = 0;
  Status s = read_txn("processed_count", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> q = c->stmt(kProcessedCount);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    bind_stage(*q, stage);
    int rc = sqlite3_step(*q);
    if (rc != SQLITE_ROW) return c->error(rc, "processed_count");
    n = sqlite3_column_int64(*q, 0);
    return Status();
  });
  if (!s.ok()) return s;
  return n;
}

Result<int64_t> SqliteStore::prune_processed(std::string_view stage, int64_t before_ms,
                                             uint8_t slice) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  // [slice 00..00, slice+1 00..00); the last slice's upper bound is 33 bytes of 0xff, above every
  // 32-byte id (blobs compare by memcmp, then length).
  std::string lo(EventId::kSize, '\0');
  lo[0] = static_cast<char>(slice);
  std::string hi(EventId::kSize + (slice == 0xff ? 1 : 0), slice == 0xff ? '\xff' : '\0');
  if (slice != 0xff) hi[0] = static_cast<char>(slice + 1);
  int64_t deleted = 0;
  Status s = write_txn("prune_processed", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> del = c->stmt(kPruneProcessed);
    if (!del.ok()) return del.status();
    StmtScope scope(*del);
    bind_stage(*del, stage);
    sqlite3_bind_int64(*del, 3, before_ms);
    sqlite3_bind_blob(*del, 4, lo.data(), static_cast<int>(lo.size()), SQLITE_STATIC);
    sqlite3_bind_blob(*del, 5, hi.data(), static_cast<int>(hi.size()), SQLITE_STATIC);
    int rc = sqlite3_step(*del);
    if (rc != SQLITE_DONE) return c->error(rc, "prune_processed");
    deleted = sqlite3_changes(c->db());
    return Status();
  });
  if (!s.ok()) return s;
  return deleted;
}

Status SqliteStore::writable() {
  if (!no_space_.load()) return Status();
  // Space counts as back when the disk has room for a few transactions (WAL frames of the
  // biggest scheduler steps); the next write then clears the flag for good.
  constexpr uint64_t kEnoughFree = 1 << 20;
  struct statvfs v;
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (::statvfs(dir.c_str(), &v) == 0 &&
      static_cast<uint64_t>(v.f_bavail) * v.f_frsize >= kEnoughFree) {
    return Status();
  }
  return Status::no_space(describe(path_, "write") + "the disk holding '" + dir +
                          "' is full; writes resume by themselves once space is freed");
}

Result<int64_t> SqliteStore::schema_version() {
  int64_t v = 0;
  Status s = read_txn("schema_version", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> q = c->stmt(kSchemaVersion);
    if (!q.ok()) return q.status();
    StmtScope scope(*q);
    int rc = sqlite3_step(*q);
    if (rc != SQLITE_ROW) return c->error(rc, "schema_version");
    v = sqlite3_column_int64(*q, 0);
    return Status();
  });
  if (!s.ok()) return s;
  return v;
}

}  // namespace factory::store
