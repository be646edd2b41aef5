#include "store/sqlite_store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_map>
#include <utility>

#include <sqlite3.h>

#include "base/clock.h"
#include "obs/logger.h"

namespace factory::store {
namespace {

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

constexpr std::string_view kBeginRead = "BEGIN";
// IMMEDIATE takes the write lock up front: a deferred transaction that upgrades later can fail
// with SQLITE_BUSY_SNAPSHOT, which no busy handler can wait out.
constexpr std::string_view kBeginWrite = "BEGIN IMMEDIATE";
constexpr std::string_view kCommit = "COMMIT";
constexpr std::string_view kRollback = "ROLLBACK";

// Reader connections kept open for reuse; more may exist while many threads read at once.
constexpr size_t kMaxIdleReaders = 8;

std::string describe(std::string_view path, std::string_view what) {
  return "store '" + std::string(path) + "': " + std::string(what) + ": ";
}

// The one place SQLite result codes become Status. `message` is sqlite3_errmsg, read right
// after the failing call (any later call on the connection replaces it).
Status to_status(int rc, std::string_view message, std::string_view path, std::string_view what) {
  std::string m =
      describe(path, what) + std::string(message) + " (SQLite code " + std::to_string(rc) + ")";
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

Status check_stage(std::string_view stage) {
  if (stage.empty()) return Status::invalid_argument("store: the stage name is empty");
  return Status::ok_status();
}

}  // namespace

// One SQLite connection and its prepared statements. Not thread-safe: used by one thread at a
// time (the writer under write_mu_, a reader while taken out of the pool).
class SqliteStore::Conn {
 public:
  Conn(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~Conn() {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close(db_);  // every statement is finalized, so this cannot be refused
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

  Status error(int rc, std::string_view what) const {
    return to_status(rc, sqlite3_errmsg(db_), path_, what);
  }

  // The cached statement for `sql`, which must have static storage (the cache keys on it).
  // The caller binds every parameter before each step and resets it through a StmtScope.
  Result<sqlite3_stmt*> stmt(std::string_view sql) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return error(rc, "prepare '" + std::string(sql) + "'");
    stmts_.emplace(sql, s);
    return s;
  }

  // Runs a statement that returns no rows (BEGIN, COMMIT, pragmas that set).
  Status run(std::string_view sql, std::string_view what) {
    Result<sqlite3_stmt*> s = stmt(sql);
    if (!s.ok()) return s.status();
    int rc = sqlite3_step(*s);
    Status st = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? Status() : error(rc, what);
    sqlite3_reset(*s);
    return st;
  }

  // Runs one or more uncached statements (migrations, one-off pragmas).
  Status exec(std::string_view sql, std::string_view what) {
    int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status() : error(rc, what);
  }

  void rollback() {
    if (in_transaction()) (void)run(kRollback, "rollback");
  }

 private:
  sqlite3* const db_;
  const std::string path_;
  std::unordered_map<std::string_view, sqlite3_stmt*> stmts_;
};

namespace {

// Resets a cached statement and drops its bindings when leaving scope, so no statement keeps a
// read snapshot open or points at a caller's buffers.
class StmtScope {
 public:
  explicit StmtScope(sqlite3_stmt* s) : s_(s) {}
  ~StmtScope() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  sqlite3_stmt* const s_;
};

void bind_id(sqlite3_stmt* s, const EventId& id) {
  sqlite3_bind_blob(s, 1, id.digest.data(), EventId::kSize, SQLITE_STATIC);
}
void bind_stage(sqlite3_stmt* s, std::string_view stage) {
  sqlite3_bind_text(s, 2, stage.data(), static_cast<int>(stage.size()), SQLITE_STATIC);
}

}  // namespace

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

template <typename Fn>
Status SqliteStore::with_retry(Conn* conn, std::string_view what, Fn&& fn) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.busy_timeout_ms);
  auto backoff = std::chrono::milliseconds(1);
  for (int attempt = 1;; ++attempt) {
    Status s = fn(conn);
    if (s.ok()) return s;
    conn->rollback();  // a failed attempt must not leave its transaction (or locks) behind
    if (!s.is_busy()) return s;
    auto now = Clock::now();
    if (now >= deadline) {
      // Reaching here means another connection (another process, or the sqlite3 shell) held a
      // lock for the whole budget: our own threads never wait on SQLite's lock for each other.
      std::string last = s.message();  // "store '<path>': <what>: <SQLite's message>"
      const std::string store_prefix = "store '" + path_ + "': ";
      if (last.starts_with(store_prefix)) last.erase(0, store_prefix.size());
      return Status::busy(describe(path_, what) + "still locked by another connection after " +
                          std::to_string(options_.busy_timeout_ms) + " ms (busy_timeout_ms, " +
                          std::to_string(attempt) + (attempt == 1 ? " attempt" : " attempts") +
                          "); is another process writing to the database? Last error: " + last);
    }
    // SQLite's busy handler already waited inside the call; this covers the lock errors it does
    // not wait for (WAL recovery, a snapshot gone stale) without spinning.
    std::this_thread::sleep_for(std::min<Clock::duration>(backoff, deadline - now));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
  }
}

template <typename Fn>
Status SqliteStore::write_txn(std::string_view what, Fn&& fn) {
  base::MutexLock l(&write_mu_);
  return with_retry(writer_.get(), what, [&](Conn* c) -> Status {
    FACTORY_RETURN_IF_ERROR(c->run(kBeginWrite, what));
    FACTORY_RETURN_IF_ERROR(fn(c));
    return c->run(kCommit, what);
  });
}

template <typename Fn>
Status SqliteStore::read_txn(std::string_view what, Fn&& fn) {
  std::unique_ptr<Conn> conn;
  {
    base::MutexLock l(&read_mu_);
    if (!idle_readers_.empty()) {
      conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
    }
  }
  if (!conn) {
    Result<std::unique_ptr<Conn>> r = open_conn(/*writer=*/false);
    if (!r.ok()) return r.status();
    conn = std::move(*r);
  }
  // One read transaction: every statement in fn sees the same snapshot.
  Status s = with_retry(conn.get(), what, [&](Conn* c) -> Status {
    FACTORY_RETURN_IF_ERROR(c->run(kBeginRead, what));
    FACTORY_RETURN_IF_ERROR(fn(c));
    return c->run(kCommit, what);
  });
  base::MutexLock l(&read_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
  return s;
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
  int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
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

Status SqliteStore::record_intents(std::string_view stage, std::span<const EventId> ids) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  if (ids.empty()) return Status();
  const int64_t now = now_ms();
  return write_txn("record_intents", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> ins = c->stmt(kInsertIntent);
    if (!ins.ok()) return ins.status();
    StmtScope scope(*ins);
    bind_stage(*ins, stage);
    sqlite3_bind_int64(*ins, 3, now);
    for (const EventId& id : ids) {
      bind_id(*ins, id);
      int rc = sqlite3_step(*ins);
      if (rc != SQLITE_DONE) return c->error(rc, "record_intents");
      sqlite3_reset(*ins);
    }
    return Status();
  });
}

Status SqliteStore::commit_processed(std::string_view stage, std::span<const EventId> ids) {
  FACTORY_RETURN_IF_ERROR(check_stage(stage));
  if (ids.empty()) return Status();
  const int64_t now = now_ms();
  return write_txn("commit_processed", [&](Conn* c) -> Status {
    Result<sqlite3_stmt*> ins = c->stmt(kInsertProcessed);
    if (!ins.ok()) return ins.status();
    Result<sqlite3_stmt*> del = c->stmt(kDeleteIntent);
    if (!del.ok()) return del.status();
    StmtScope ins_scope(*ins);
    StmtScope del_scope(*del);
    bind_stage(*ins, stage);
    sqlite3_bind_int64(*ins, 3, now);
    bind_stage(*del, stage);
    for (const EventId& id : ids) {
      bind_id(*ins, id);
      int rc = sqlite3_step(*ins);
      if (rc != SQLITE_DONE) return c->error(rc, "commit_processed");
      sqlite3_reset(*ins);
      bind_id(*del, id);
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
