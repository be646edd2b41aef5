// Internal to src/store: what SqliteStore's source files share (sqlite_store.cpp: connections,
// migrations, idempotency; run_store.cpp: scheduler state). SqliteStore::Conn, a connection with
// its prepared-statement cache; StmtScope; and the transaction helpers with_retry, write_txn and
// read_txn (templates, so defined here). Never include it outside src/store.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include <sqlite3.h>

#include "store/sqlite_store.h"

namespace factory::store {
namespace internal {

inline constexpr std::string_view kBeginRead = "BEGIN";
// IMMEDIATE takes the write lock up front: a deferred transaction that upgrades later can fail
// with SQLITE_BUSY_SNAPSHOT, which no busy handler can wait out.
inline constexpr std::string_view kBeginWrite = "BEGIN IMMEDIATE";
inline constexpr std::string_view kCommit = "COMMIT";
inline constexpr std::string_view kRollback = "ROLLBACK";

// Reader connections kept open for reuse; more may exist while many threads read at once.
inline constexpr size_t kMaxIdleReaders = 8;

// "store '<path>': <what>: ", the prefix of every error message.
std::string describe(std::string_view path, std::string_view what);

// The one place SQLite result codes become Status (sqlite_store.cpp). `message` is
// sqlite3_errmsg, read right after the failing call (any later call on the connection replaces
// it).
Status to_status(int rc, std::string_view message, std::string_view path, std::string_view what);

}  // namespace internal

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
    return internal::to_status(rc, sqlite3_errmsg(db_), path_, what);
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
    if (in_transaction()) (void)run(internal::kRollback, "rollback");
  }

 private:
  sqlite3* const db_;
  const std::string path_;
  std::unordered_map<std::string_view, sqlite3_stmt*> stmts_;
};

namespace internal {

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

}  // namespace internal

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
      return Status::busy(internal::describe(path_, what) +
                          "still locked by another connection after " +
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
  Status s = with_retry(writer_.get(), what, [&](Conn* c) -> Status {
    FACTORY_RETURN_IF_ERROR(c->run(internal::kBeginWrite, what));
    FACTORY_RETURN_IF_ERROR(fn(c));
    return c->run(internal::kCommit, what);
  });
  // SQLite rolls a transaction that hit a full disk back and takes the next one as usual; the
  // flag is only for writable().
  no_space_.store(s.is_no_space());
  return s;
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
    FACTORY_RETURN_IF_ERROR(c->run(internal::kBeginRead, what));
    FACTORY_RETURN_IF_ERROR(fn(c));
    return c->run(internal::kCommit, what);
  });
  base::MutexLock l(&read_mu_);
  if (idle_readers_.size() < internal::kMaxIdleReaders) idle_readers_.push_back(std::move(conn));
  return s;
}

}  // namespace factory::store
