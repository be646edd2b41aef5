#include "store/meta_store.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "store/sqlite_store.h"
#include "test_util.h"

using factory::event_id_for_bytes;
using factory::EventId;
using factory::store::open_sqlite_store;
using factory::store::SqliteStore;
using factory::store::StoreOptions;
using factory::test::TempDir;

namespace {

std::vector<EventId> make_ids(std::string_view prefix, int n) {
  std::vector<EventId> ids;
  for (int i = 0; i < n; ++i)
    ids.push_back(event_id_for_bytes(std::string(prefix) + std::to_string(i)));
  return ids;
}

std::vector<std::string_view> migrations_plus(std::vector<std::string_view> extra) {
  auto builtin = SqliteStore::builtin_migrations();
  std::vector<std::string_view> all(builtin.begin(), builtin.end());
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

std::unique_ptr<SqliteStore> open_store(
    const StoreOptions& options,
    std::span<const std::string_view> migrations = SqliteStore::builtin_migrations()) {
  auto s = SqliteStore::open(options, migrations);
  REQUIRE_OK(s);
  return std::move(*s);
}

std::vector<bool> processed(factory::store::MetaStore* store, std::string_view stage,
                            const std::vector<EventId>& ids) {
  auto r = store->is_processed(stage, ids);
  REQUIRE_OK(r);
  return *r;
}

std::vector<EventId> open_intents(factory::store::MetaStore* store, std::string_view stage) {
  auto r = store->open_intents(stage);
  REQUIRE_OK(r);
  return *r;
}

int64_t count(factory::store::MetaStore* store, std::string_view stage) {
  auto r = store->processed_count(stage);
  REQUIRE_OK(r);
  return *r;
}

}  // namespace

TEST_CASE("migrations are applied once and reopening is idempotent", "[store]") {
  TempDir dir;
  StoreOptions options{.dir = dir.str()};
  const auto builtin = static_cast<int64_t>(SqliteStore::builtin_migrations().size());
  {
    auto store = open_store(options);
    CHECK(*store->schema_version() == builtin);
    CHECK(store->path() == (dir.path() / "factory.db").string());
  }
  // The migrations have no IF NOT EXISTS: applying one twice would fail this open.
  for (int i = 0; i < 2; ++i) {
    auto store = open_sqlite_store(options);
    REQUIRE_OK(store);
  }
  // A newer binary adds a migration: only that one is applied, once.
  auto newer = migrations_plus({"CREATE TABLE runs (id INTEGER PRIMARY KEY)"});
  for (int i = 0; i < 2; ++i) {
    auto store = open_store(options, newer);
    CHECK(*store->schema_version() == builtin + 1);
  }
}

TEST_CASE("a database written by a newer factoryd is refused", "[store]") {
  TempDir dir;
  StoreOptions options{.dir = dir.str()};
  auto newer = migrations_plus({"CREATE TABLE runs (id INTEGER PRIMARY KEY)"});
  open_store(options, newer);

  auto old = open_sqlite_store(options);
  REQUIRE_FALSE(old.ok());
  CHECK(old.status().code() == factory::Status::Code::kFailedPrecondition);
  const std::string& m = old.status().message();
  INFO(m);
  CHECK(m.find((dir.path() / "factory.db").string()) != std::string::npos);
  const auto builtin = SqliteStore::builtin_migrations().size();
  CHECK(m.find("schema version " + std::to_string(builtin + 1)) != std::string::npos);
  CHECK(m.find("versions up to " + std::to_string(builtin)) != std::string::npos);
  CHECK(m.find("newer factoryd") != std::string::npos);
}

TEST_CASE("a failing migration is rolled back and names itself", "[store]") {
  TempDir dir;
  StoreOptions options{.dir = dir.str()};
  // Two statements: the first succeeds, the second fails; neither may remain.
  const auto builtin = static_cast<int64_t>(SqliteStore::builtin_migrations().size());
  auto broken = migrations_plus({"CREATE TABLE a (x); CREATE TABLE processed (x)"});
  auto s = SqliteStore::open(options, broken);
  REQUIRE_FALSE(s.ok());
  INFO(s.status().to_string());
  CHECK(s.status().message().find("migration " + std::to_string(builtin + 1) + " failed") !=
        std::string::npos);
  CHECK(s.status().message().find("already exists") != std::string::npos);

  auto store = open_store(options);
  CHECK(*store->schema_version() == builtin);
  store.reset();
  // Table a was rolled back with it, so a fixed migration that creates it applies cleanly.
  auto fixed = migrations_plus({"CREATE TABLE a (x)"});
  CHECK(*open_store(options, fixed)->schema_version() == builtin + 1);
}

TEST_CASE("a file that is not a database is reported as corruption", "[store]") {
  TempDir dir;
  std::ofstream(dir.path() / "factory.db") << std::string(8192, 'x');
  auto s = open_sqlite_store({.dir = dir.str()});
  REQUIRE_FALSE(s.ok());
  INFO(s.status().to_string());
  CHECK(s.status().code() == factory::Status::Code::kCorruption);
  CHECK(s.status().message().find("factory.db") != std::string::npos);
  CHECK(s.status().message().find("not a database") != std::string::npos);

  auto empty = open_sqlite_store({.dir = ""});
  CHECK(empty.status().is_invalid_argument());
}

TEST_CASE("is_processed and commit_processed work on batches", "[store]") {
  TempDir dir;
  auto opened = open_sqlite_store({.dir = dir.str()});
  REQUIRE_OK(opened);
  auto* store = opened->get();
  const auto ids = make_ids("event-", 4);
  const EventId &a = ids[0], &b = ids[1], &c = ids[2], &d = ids[3];

  CHECK(processed(store, "codegen", ids) == std::vector<bool>{false, false, false, false});

  SECTION("duplicates inside one batch are one row") {
    REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{a, b, a, a}));
    CHECK(processed(store, "codegen", {a, b, c, a, d}) ==
          std::vector<bool>{true, true, false, true, false});
    CHECK(count(store, "codegen") == 2);
  }
  SECTION("re-committing the same ids is a no-op, not an error") {
    REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{a, b}));
    REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{a, b}));
    REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{b, c}));
    CHECK(count(store, "codegen") == 3);
    CHECK(processed(store, "codegen", ids) == std::vector<bool>{true, true, true, false});
  }
  SECTION("stages are independent") {
    REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{a}));
    CHECK(processed(store, "testsynth", {a}) == std::vector<bool>{false});
    CHECK(count(store, "testsynth") == 0);
    REQUIRE_OK(store->commit_processed("testsynth", std::vector<EventId>{a}));
    CHECK(count(store, "codegen") == 1);
    CHECK(count(store, "testsynth") == 1);
  }
  SECTION("empty batches and a bad stage name") {
    REQUIRE_OK(store->commit_processed("codegen", {}));
    auto none = store->is_processed("codegen", {});
    REQUIRE_OK(none);
    CHECK(none->empty());
    CHECK(store->commit_processed("", ids).is_invalid_argument());
    CHECK(store->is_processed("", ids).status().is_invalid_argument());
  }
  SECTION("commits survive reopen") {
    REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{a, c}));
    opened->reset();
    auto again = open_sqlite_store({.dir = dir.str()});
    REQUIRE_OK(again);
    CHECK(processed(again->get(), "codegen", ids) == std::vector<bool>{true, false, true, false});
  }
}

TEST_CASE("intents are resolved by commit_processed and survive reopen", "[store]") {
  TempDir dir;
  std::atomic<int64_t> now{1000};
  StoreOptions options{.dir = dir.str(), .now_ms = [&] { return now.load(); }};
  const auto ids = make_ids("deploy-", 4);
  const EventId &a = ids[0], &b = ids[1], &c = ids[2], &d = ids[3];
  {
    auto store = open_store(options);
    auto first = store->record_intents("deploy", std::vector<EventId>{c});
    REQUIRE_OK(first);
    CHECK(*first == std::vector<bool>{false});
    now = 2000;
    REQUIRE_OK(store->record_intents("deploy", std::vector<EventId>{b, a}));
    // Re-recording keeps the first intent (and its time), and says it was already open: an
    // earlier try may have acted.
    auto again = store->record_intents("deploy", std::vector<EventId>{a, c, d});
    REQUIRE_OK(again);
    CHECK(*again == std::vector<bool>{true, true, false});
    REQUIRE_OK(store->commit_processed("deploy", std::vector<EventId>{d}));
    REQUIRE_OK(store->record_intents("notify", std::vector<EventId>{d}));

    // Oldest first, then by id.
    std::vector<EventId> later = {a, b};
    std::sort(later.begin(), later.end());
    CHECK(open_intents(store.get(), "deploy") == std::vector<EventId>{c, later[0], later[1]});

    REQUIRE_OK(store->commit_processed("deploy", std::vector<EventId>{b}));
    CHECK(open_intents(store.get(), "deploy") == std::vector<EventId>{c, a});
    CHECK(open_intents(store.get(), "notify") == std::vector<EventId>{d});
    // An intent recorded after its outcome is not an interrupted side effect.
    REQUIRE_OK(store->record_intents("deploy", std::vector<EventId>{b}));
    CHECK(open_intents(store.get(), "deploy") == std::vector<EventId>{c, a});
  }
  // "Crash": the unresolved intents are still there for recovery.
  auto store = open_store(options);
  CHECK(open_intents(store.get(), "deploy") == std::vector<EventId>{c, a});
  REQUIRE_OK(store->commit_processed("deploy", std::vector<EventId>{a, c}));
  CHECK(open_intents(store.get(), "deploy").empty());
  CHECK(open_intents(store.get(), "notify") == std::vector<EventId>{d});
  CHECK(count(store.get(), "deploy") == 4);  // a, b, c and d
}

TEST_CASE("concurrent commits and checks never see a lock error", "[store]") {
  TempDir dir;
  const uint64_t seed = factory::test::test_seed();
  INFO("seed " << seed);
  // Two stores on one file stand for two processes: their writes contend for SQLite's lock
  // for real, while the threads of one store contend for its writer mutex.
  auto first = open_store({.dir = dir.str()});
  auto second = open_store({.dir = dir.str()});
  constexpr int kThreadsPerStore = 3;
  constexpr int kBatches = 20;
  constexpr int kBatchSize = 50;

  std::atomic<int> errors{0};
  std::mutex error_mu;
  std::vector<std::string> messages;
  auto fail = [&](const factory::Status& s) {
    ++errors;
    std::lock_guard<std::mutex> l(error_mu);
    messages.push_back(s.to_string());
  };
  auto worker = [&](SqliteStore* store, int t) {
    std::mt19937_64 rng(seed + t);
    for (int i = 0; i < kBatches; ++i) {
      std::vector<EventId> batch;
      for (int j = 0; j < kBatchSize; ++j) {
        EventId id;
        for (auto& byte : id.digest) byte = static_cast<uint8_t>(rng());
        batch.push_back(id);
      }
      auto before = store->is_processed("stage", batch);
      if (!before.ok()) fail(before.status());
      if (i % 4 == 0) {
        auto st = store->record_intents("stage", batch);
        if (!st.ok()) fail(st.status());
      }
      auto st = store->commit_processed("stage", batch);
      if (!st.ok()) fail(st);
      auto after = store->is_processed("stage", batch);
      if (!after.ok()) {
        fail(after.status());
      } else if (std::count(after->begin(), after->end(), true) != kBatchSize) {
        fail(factory::Status::internal("a committed id reads as unprocessed"));
      }
      auto open = store->open_intents("stage");
      if (!open.ok()) fail(open.status());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadsPerStore; ++t) {
    threads.emplace_back(worker, first.get(), t);
    threads.emplace_back(worker, second.get(), 100 + t);
  }
  for (auto& t : threads) t.join();

  for (const auto& m : messages) UNSCOPED_INFO(m);
  CHECK(errors == 0);
  CHECK(count(first.get(), "stage") == 2 * kThreadsPerStore * kBatches * kBatchSize);
  CHECK(open_intents(second.get(), "stage").empty());
}

TEST_CASE("a lock held elsewhere past busy_timeout_ms is Busy with a clear message", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str(), .busy_timeout_ms = 100});
  const auto ids = make_ids("x", 3);
  REQUIRE_OK(store->commit_processed("s", std::vector<EventId>{ids[0]}));

  // Another process (say, the sqlite3 shell) holds a write transaction open.
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(store->path().c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);

  factory::Status s = store->commit_processed("s", ids);
  INFO(s.to_string());
  CHECK(s.is_busy());
  CHECK(s.retryable());
  CHECK(s.message().find(store->path()) != std::string::npos);
  CHECK(s.message().find("busy_timeout_ms") != std::string::npos);
  CHECK(s.message().find("commit_processed") != std::string::npos);
  // Readers are not blocked by a writer in WAL mode, and nothing of the batch was written.
  CHECK(processed(store.get(), "s", ids) == std::vector<bool>{true, false, false});

  REQUIRE(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(other);
  REQUIRE_OK(store->commit_processed("s", ids));
  CHECK(processed(store.get(), "s", ids) == std::vector<bool>{true, true, true});
}

TEST_CASE("prune_processed forgets a stage's marks before the cutoff, one id slice at a time",
          "[store]") {
  TempDir dir;
  std::atomic<int64_t> now{1'000};
  auto opened = open_sqlite_store({.dir = dir.str(), .now_ms = [&] { return now.load(); }});
  REQUIRE_OK(opened);
  auto* store = opened->get();
  // Ids in the first and the last slice (byte 0x00 and 0xff), and elsewhere.
  auto id_with_first_byte = [](uint8_t b, uint8_t tag) {
    EventId id = event_id_for_bytes(std::to_string(tag));
    id.digest[0] = b;
    return id;
  };
  const std::vector<EventId> old_ids = {id_with_first_byte(0x00, 1), id_with_first_byte(0x00, 2),
                                        id_with_first_byte(0x7f, 3), id_with_first_byte(0xff, 4),
                                        id_with_first_byte(0xff, 5)};
  const EventId young = id_with_first_byte(0x00, 6);
  REQUIRE_OK(store->commit_processed("codegen", old_ids));  // processed_at 1000
  REQUIRE_OK(store->commit_processed("gate", old_ids));
  REQUIRE_OK(store->record_intents("codegen", std::vector<EventId>{old_ids[2]}));
  now = 5'000;
  REQUIRE_OK(store->commit_processed("codegen", std::vector<EventId>{young}));

  auto first = store->prune_processed("codegen", 2'000, 0x00);
  REQUIRE_OK(first);
  CHECK(*first == 2);  // the slice's old marks; the young one stays
  CHECK(processed(store, "codegen", old_ids) == std::vector<bool>{false, false, true, true, true});
  auto last = store->prune_processed("codegen", 2'000, 0xff);
  REQUIRE_OK(last);
  CHECK(*last == 2);
  int64_t rest = 0;
  for (int s = 1; s < 0xff; ++s) {
    auto n = store->prune_processed("codegen", 2'000, static_cast<uint8_t>(s));
    REQUIRE_OK(n);
    rest += *n;
  }
  CHECK(rest == 1);
  CHECK(processed(store, "codegen", old_ids) == std::vector<bool>(5, false));
  CHECK(processed(store, "codegen", {young}) == std::vector<bool>{true});
  CHECK(count(store, "gate") == 5);  // other stages keep theirs
  auto open = store->open_intents("codegen");
  REQUIRE_OK(open);
  CHECK(open->size() == 1);  // intents are never pruned
  CHECK(store->prune_processed("", 2'000, 0).status().is_invalid_argument());
}

TEST_CASE("concurrent commit_processed calls share transactions and lose nothing", "[store]") {
  TempDir dir;
  auto opened = open_sqlite_store({.dir = dir.str(), .sync = false});
  REQUIRE_OK(opened);
  auto* store = opened->get();
  constexpr int kThreads = 6;
  constexpr int kBatches = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string stage = "stage-" + std::to_string(t % 3);
      for (int b = 0; b < kBatches; ++b) {
        auto ids = make_ids("t" + std::to_string(t) + "-b" + std::to_string(b) + "-", 25);
        if (!store->commit_processed(stage, ids).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  for (int s = 0; s < 3; ++s) {
    CHECK(count(store, "stage-" + std::to_string(s)) == 2 * kBatches * 25);
  }
  // Every call's marks are there, under its own stage only.
  auto ids = make_ids("t4-b39-", 25);
  CHECK(processed(store, "stage-1", ids) == std::vector<bool>(25, true));
  CHECK(processed(store, "stage-0", ids) == std::vector<bool>(25, false));
}
