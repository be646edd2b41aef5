#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "store/meta_store.h"
#include "store/run_rows.h"
#include "store/sqlite_store.h"
#include "test_util.h"

using factory::event_id_for_bytes;
using factory::EventId;
using factory::store::ApprovalRow;
using factory::store::AuditRow;
using factory::store::RunFilter;
using factory::store::RunRow;
using factory::store::SchedulerBatch;
using factory::store::SqliteStore;
using factory::store::StoreOptions;
using factory::store::TaskRow;
using factory::test::TempDir;

namespace {

std::unique_ptr<SqliteStore> open_store(
    const StoreOptions& options,
    std::span<const std::string_view> migrations = SqliteStore::builtin_migrations()) {
  auto s = SqliteStore::open(options, migrations);
  REQUIRE_OK(s);
  return std::move(*s);
}

// Rows as text, every field, so a failed CHECK shows both sides in full.
std::string str(const RunRow& r) {
  std::ostringstream o;
  o << "run " << r.run_id << " dag=" << r.dag_id << " state=" << r.state << " conf=" << r.conf_json
    << " trigger=" << r.trigger << " logical=" << r.logical_ms << " created=" << r.created_ms
    << " started=" << r.started_ms << " ended=" << r.ended_ms << " deadline=" << r.deadline_ms
    << " missed=" << r.deadline_missed;
  return o.str();
}
std::string str(const TaskRow& t) {
  std::ostringstream o;
  o << "task " << t.run_id << "/" << t.task_id << " state=" << t.state << " try=" << t.try_number
    << " seq=" << t.dispatch_seq << " next=" << t.next_try_ms << " started=" << t.started_ms
    << " ended=" << t.ended_ms << " output=" << t.output_json << " error=" << t.error
    << " (error bytes " << t.error.size() << ")";
  return o.str();
}
std::string str(const ApprovalRow& a) {
  std::ostringstream o;
  o << "approval " << a.run_id << "/" << a.task_id << " state=" << a.state
    << " requested=" << a.requested_ms << " expires=" << a.expires_ms << " by=" << a.decided_by
    << " at=" << a.decided_ms << " comment=" << a.comment << " bound=" << a.bound_to;
  return o.str();
}
std::string str(const AuditRow& a) {
  std::ostringstream o;
  o << "audit at=" << a.at_ms << " actor=" << a.actor << " action=" << a.action
    << " object=" << a.object << " result=" << a.result << " detail=" << a.detail
    << " request=" << a.request_id;
  return o.str();
}
template <typename Row>
std::vector<std::string> strs(const std::vector<Row>& rows) {
  std::vector<std::string> out;
  for (const Row& r : rows) out.push_back(str(r));
  return out;
}

RunRow run(std::string id, std::string dag, std::string state, int64_t created_ms) {
  return RunRow{.run_id = std::move(id),
                .dag_id = std::move(dag),
                .state = std::move(state),
                .trigger = "manual",
                .logical_ms = created_ms,
                .created_ms = created_ms};
}
TaskRow task(std::string run_id, std::string task_id, std::string state = "scheduled") {
  return TaskRow{
      .run_id = std::move(run_id), .task_id = std::move(task_id), .state = std::move(state)};
}

// Every field set, none to its default; strings with quotes, newlines, UTF-8 and an embedded NUL;
// integers past a double's 53 bits.
RunRow full_run() {
  return RunRow{.run_id = "manual__2026-11-28T10:00:00",
                .dag_id = "release",
                .state = "running",
                .conf_json = R"({"branch":"main","n":[1,2.5],"q":"it's \"x\""})",
                .trigger = "topic:tickets/3/42",
                .logical_ms = 1'764'324'000'000,
                .created_ms = 1'764'324'000'001,
                .started_ms = 1'764'324'000'002,
                .ended_ms = 1'764'324'000'003,
                .deadline_ms = 1'764'327'600'000,
                .deadline_missed = true};
}
TaskRow full_task() {
  return TaskRow{.run_id = "manual__2026-11-28T10:00:00",
                 .task_id = "deploy.eu-west",
                 .state = "up_for_retry",
                 .try_number = 3,
                 .dispatch_seq = 9'007'199'254'740'993,  // 2^53 + 1
                 .next_try_ms = std::numeric_limits<int64_t>::max(),
                 .started_ms = -1,
                 .ended_ms = std::numeric_limits<int64_t>::min(),
                 .output_json = R"({"url":"https://example.test/ü✓","lines":["a\nb"]})",
                 .error = std::string("exit 2:\nline 'one'\0after nul", 29)};
}
ApprovalRow full_approval() {
  return ApprovalRow{.run_id = "manual__2026-11-28T10:00:00",
                     .task_id = "approve-prod",
                     .state = "approved",
                     .requested_ms = 1'764'324'100'000,
                     .expires_ms = 1'764'410'500'000,
                     .decided_by = "token:ops",
                     .decided_ms = 1'764'324'200'000,
                     .comment = "LGTM — ship it\n(2nd line)",
                     .bound_to = "3f786850e387550fdab836ed7e6dc881de23001b"};
}
AuditRow full_audit() {
  return AuditRow{.at_ms = 1'764'324'200'000,
                  .actor = "token:ops",
                  .action = "approval.approve",
                  .object = "run/manual__2026-11-28T10:00:00/task/approve-prod",
                  .result = "ok",
                  .detail = "LGTM — ship it",
                  .request_id = "req-7f3a"};
}

SchedulerBatch full_batch() {
  SchedulerBatch b;
  b.runs = {full_run(), RunRow{.run_id = "defaults", .dag_id = "d", .state = "queued"}};
  b.tasks = {full_task(), TaskRow{.run_id = "defaults", .task_id = "t", .state = "scheduled"}};
  b.approvals = {full_approval(), ApprovalRow{.run_id = "defaults", .task_id = "t"}};
  b.audit = {full_audit(), AuditRow{.action = "run.trigger"}};
  b.kv = {{"cursor:tickets/3", "43"}, {"cron:release", ""}};
  return b;
}

// Checks that the store holds exactly full_batch().
void check_full_batch(SqliteStore* store) {
  const SchedulerBatch b = full_batch();
  for (const RunRow& r : b.runs) {
    auto got = store->get_run(r.run_id);
    REQUIRE_OK(got);
    CHECK(str(*got) == str(r));
  }
  auto tasks = store->list_tasks(full_run().run_id);
  REQUIRE_OK(tasks);
  CHECK(strs(*tasks) == std::vector<std::string>{str(full_task())});
  CHECK((*tasks)[0].error.size() == 29);
  auto defaults = store->list_tasks("defaults");
  REQUIRE_OK(defaults);
  CHECK(strs(*defaults) == std::vector<std::string>{str(b.tasks[1])});
  auto approvals = store->list_approvals("");
  REQUIRE_OK(approvals);
  // Oldest first: the default row's requested_ms is 0.
  CHECK(strs(*approvals) == std::vector<std::string>{str(b.approvals[1]), str(b.approvals[0])});
  auto audit = store->list_audit(0);
  REQUIRE_OK(audit);
  CHECK(strs(*audit) == std::vector<std::string>{str(b.audit[1]), str(b.audit[0])});
  for (const auto& [key, value] : b.kv) {
    auto got = store->get_kv(key);
    REQUIRE_OK(got);
    REQUIRE(got->has_value());
    CHECK(**got == value);
  }
}

std::vector<std::string> run_ids(const std::vector<RunRow>& runs) {
  std::vector<std::string> out;
  for (const RunRow& r : runs) out.push_back(r.run_id);
  return out;
}
std::vector<std::string> task_keys(const std::vector<TaskRow>& tasks) {
  std::vector<std::string> out;
  for (const TaskRow& t : tasks) out.push_back(t.run_id + "/" + t.task_id);
  return out;
}

std::vector<std::string> list_run_ids(SqliteStore* store, const RunFilter& filter) {
  auto r = store->list_runs(filter);
  REQUIRE_OK(r);
  return run_ids(*r);
}

// A connection of its own, as the sqlite3 shell or another process would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  int exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  std::string errmsg() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

TEST_CASE("every field of every scheduler row round-trips", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str()});
  REQUIRE_OK(store->apply_scheduler_batch(full_batch()));
  check_full_batch(store.get());

  auto missing = store->get_kv("never-written");
  REQUIRE_OK(missing);
  CHECK_FALSE(missing->has_value());
}

TEST_CASE("apply_scheduler_batch upserts by key and appends audit", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str()});
  REQUIRE_OK(store->apply_scheduler_batch(
      {.runs = {run("r1", "build", "queued", 100)},
       .tasks = {task("r1", "compile"), task("r1", "test")},
       .approvals = {{.run_id = "r1", .task_id = "gate", .state = "pending", .requested_ms = 5}},
       .audit = {{.at_ms = 1, .action = "run.trigger"}},
       .kv = {{"cursor", "1"}}}));

  SECTION("a later batch replaces every non-key column") {
    RunRow r = full_run();
    r.run_id = "r1";
    TaskRow t = full_task();
    t.run_id = "r1";
    t.task_id = "compile";
    ApprovalRow a = full_approval();
    a.run_id = "r1";
    a.task_id = "gate";
    REQUIRE_OK(store->apply_scheduler_batch({.runs = {r},
                                             .tasks = {t},
                                             .approvals = {a},
                                             .audit = {{.at_ms = 2, .action = "run.start"}},
                                             .kv = {{"cursor", "2"}}}));
    CHECK(str(*store->get_run("r1")) == str(r));
    auto tasks = store->list_tasks("r1");
    REQUIRE_OK(tasks);
    // "test" was not in the batch: untouched.
    CHECK(strs(*tasks) == std::vector<std::string>{str(t), str(task("r1", "test"))});
    CHECK(strs(*store->list_approvals("")) == std::vector<std::string>{str(a)});
    CHECK(**store->get_kv("cursor") == "2");
    auto audit = store->list_audit(0);
    REQUIRE_OK(audit);
    REQUIRE(audit->size() == 2);  // appended, never upserted
    CHECK((*audit)[0].action == "run.start");
    CHECK((*audit)[1].action == "run.trigger");
  }
  SECTION("within one batch the last row for a key wins") {
    REQUIRE_OK(store->apply_scheduler_batch({
        .runs = {run("r1", "build", "running", 100), run("r1", "build", "success", 100)},
        .tasks = {task("r1", "compile", "running"), task("r1", "compile", "success")},
        .kv = {{"cursor", "7"}, {"cursor", "8"}},
    }));
    CHECK(store->get_run("r1")->state == "success");
    auto tasks = store->list_tasks("r1");
    REQUIRE_OK(tasks);
    CHECK(task_keys(*tasks) == std::vector<std::string>{"r1/compile", "r1/test"});
    CHECK((*tasks)[0].state == "success");
    CHECK(**store->get_kv("cursor") == "8");
  }
  SECTION("an empty cursor value is a value, not a missing key") {
    REQUIRE_OK(store->apply_scheduler_batch({.kv = {{"cursor", ""}}}));
    auto v = store->get_kv("cursor");
    REQUIRE_OK(v);
    REQUIRE(v->has_value());
    CHECK(v->value().empty());
  }
}

TEST_CASE("a batch is all or nothing", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str(), .busy_timeout_ms = 100});
  REQUIRE_OK(store->apply_scheduler_batch({.runs = {run("r1", "build", "queued", 1)}}));

  SECTION("a row the database refuses rolls back the rows before it") {
    // A trigger added from outside stands in for any failure in the middle of a batch.
    RawDb raw(store->path());
    REQUIRE(raw.exec("CREATE TRIGGER poison BEFORE INSERT ON task_instances "
                     "WHEN NEW.task_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END") ==
            SQLITE_OK);
    auto s = store->apply_scheduler_batch(
        {.runs = {run("r1", "build", "running", 1), run("r2", "build", "queued", 2)},
         .tasks = {task("r1", "a"), task("r1", "poison")},
         .audit = {{.action = "run.start"}},
         .kv = {{"cursor", "1"}}});
    INFO(s.to_string());
    REQUIRE_FALSE(s.ok());
    CHECK(s.message().find("poisoned") != std::string::npos);
    CHECK(s.message().find("r1/poison") != std::string::npos);
    CHECK(store->get_run("r1")->state == "queued");
    CHECK(store->get_run("r2").status().is_not_found());
    CHECK(store->list_tasks("r1")->empty());
    CHECK(store->list_audit(0)->empty());
    CHECK_FALSE(store->get_kv("cursor")->has_value());
  }
  SECTION("an empty key is refused before anything is written") {
    auto s = store->apply_scheduler_batch(
        {.runs = {run("r2", "build", "queued", 2)}, .tasks = {task("r2", "a"), task("r2", "")}});
    INFO(s.to_string());
    CHECK(s.is_invalid_argument());
    CHECK(s.message().find("tasks[1]") != std::string::npos);
    CHECK(s.message().find("task_id") != std::string::npos);
    CHECK(store->get_run("r2").status().is_not_found());
    CHECK(store->apply_scheduler_batch({.kv = {{"", "x"}}}).is_invalid_argument());
    CHECK(
        store->apply_scheduler_batch({.runs = {run("", "d", "queued", 1)}}).is_invalid_argument());
    CHECK(store->apply_scheduler_batch({.approvals = {{.run_id = "r1"}}}).is_invalid_argument());
  }
  SECTION("an empty batch starts no transaction") {
    // Another connection holds the write lock: an empty batch must not wait for it.
    RawDb raw(store->path());
    REQUIRE(raw.exec("BEGIN IMMEDIATE") == SQLITE_OK);
    REQUIRE_OK(store->apply_scheduler_batch({}));
    CHECK(store->apply_scheduler_batch({.kv = {{"cursor", "1"}}}).is_busy());
    REQUIRE(raw.exec("ROLLBACK") == SQLITE_OK);
  }
}

TEST_CASE("audit rows cannot be updated or deleted", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str()});
  REQUIRE_OK(store->apply_scheduler_batch(
      {.audit = {{.at_ms = 1, .actor = "cli:root", .action = "dag.pause", .result = "ok"}}}));

  RawDb raw(store->path());
  CHECK(raw.exec("UPDATE audit SET actor = 'mallory'") == SQLITE_CONSTRAINT_TRIGGER);
  CHECK(raw.errmsg().find("append-only") != std::string::npos);
  CHECK(raw.exec("DELETE FROM audit") == SQLITE_CONSTRAINT_TRIGGER);
  CHECK(raw.errmsg().find("append-only") != std::string::npos);
  // Appending is still allowed, from any connection.
  CHECK(raw.exec("INSERT INTO audit(at_ms, actor, action, object, result, detail, request_id) "
                 "VALUES (2, 'shell', 'note', '', 'ok', '', '')") == SQLITE_OK);

  auto audit = store->list_audit(0);
  REQUIRE_OK(audit);
  REQUIRE(audit->size() == 2);
  CHECK((*audit)[0].actor == "shell");
  CHECK((*audit)[1].actor == "cli:root");
}

TEST_CASE("list methods filter and order", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str()});
  REQUIRE_OK(store->apply_scheduler_batch({
      .runs = {run("a1", "a", "success", 100), run("a2", "a", "running", 300),
               run("a3", "a", "queued", 300), run("b1", "b", "queued", 200),
               run("b2", "b", "failed", 400), run("c1", "c", "cancelled", 50)},
      .tasks = {task("a2", "z"), task("a2", "b"), task("a2", "a10"), task("a2", "a2"),
                task("a1", "x", "success"), task("b1", "t"), task("b2", "t", "failed")},
      .approvals = {{.run_id = "a2", .task_id = "gate", .state = "pending", .requested_ms = 500},
                    {.run_id = "b1", .task_id = "gate", .state = "approved", .requested_ms = 100},
                    {.run_id = "a3", .task_id = "gate", .state = "pending", .requested_ms = 100}},
  }));

  SECTION("runs: newest first, ties by run_id descending") {
    using V = std::vector<std::string>;
    CHECK(list_run_ids(store.get(), {}) == V{"b2", "a3", "a2", "b1", "a1", "c1"});
    CHECK(list_run_ids(store.get(), {.dag_id = "a"}) == V{"a3", "a2", "a1"});
    CHECK(list_run_ids(store.get(), {.unfinished_only = true}) == V{"a3", "a2", "b1"});
    CHECK(list_run_ids(store.get(), {.dag_id = "a", .unfinished_only = true}) == V{"a3", "a2"});
    CHECK(list_run_ids(store.get(), {.limit = 2}) == V{"b2", "a3"});
    CHECK(list_run_ids(store.get(), {.dag_id = "a", .limit = 1}) == V{"a3"});
    CHECK(list_run_ids(store.get(), {.unfinished_only = true, .limit = 1}) == V{"a3"});
    CHECK(list_run_ids(store.get(), {.dag_id = "nope"}).empty());
    CHECK(store->list_runs({.limit = -1}).status().is_invalid_argument());
  }
  SECTION("get_run names a missing run") {
    auto r = store->get_run("no-such-run");
    INFO(r.status().to_string());
    CHECK(r.status().is_not_found());
    CHECK(r.status().message().find("'no-such-run'") != std::string::npos);
    CHECK(store->get_run("a2")->dag_id == "a");
  }
  SECTION("tasks: by task_id; unfinished: tasks of queued and running runs") {
    CHECK(task_keys(*store->list_tasks("a2")) ==
          std::vector<std::string>{"a2/a10", "a2/a2", "a2/b", "a2/z"});
    CHECK(store->list_tasks("no-such-run")->empty());
    auto unfinished = store->list_unfinished_tasks();
    REQUIRE_OK(unfinished);
    CHECK(task_keys(*unfinished) ==
          std::vector<std::string>{"a2/a10", "a2/a2", "a2/b", "a2/z", "b1/t"});
    // It follows the run's state, not the task's.
    REQUIRE_OK(store->apply_scheduler_batch({.runs = {run("a2", "a", "success", 300)}}));
    CHECK(task_keys(*store->list_unfinished_tasks()) == std::vector<std::string>{"b1/t"});
  }
  SECTION("approvals: oldest first, optionally in one state") {
    auto key = [](const std::vector<ApprovalRow>& rows) {
      std::vector<std::string> out;
      for (const auto& a : rows) out.push_back(a.run_id + "/" + a.task_id);
      return out;
    };
    CHECK(key(*store->list_approvals("")) ==
          std::vector<std::string>{"a3/gate", "b1/gate", "a2/gate"});
    CHECK(key(*store->list_approvals("pending")) == std::vector<std::string>{"a3/gate", "a2/gate"});
    CHECK(store->list_approvals("expired")->empty());
  }
  SECTION("count_by_state: runs and task instances per DAG and state") {
    auto counts = store->count_by_state();
    REQUIRE_OK(counts);
    auto rows = [](const std::vector<factory::store::StateCount>& v) {
      std::vector<std::string> out;
      for (const auto& c : v)
        out.push_back(c.dag_id + "/" + c.state + "=" + std::to_string(c.count));
      return out;
    };
    CHECK(rows(counts->runs) == std::vector<std::string>{"a/queued=1", "a/running=1", "a/success=1",
                                                         "b/failed=1", "b/queued=1",
                                                         "c/cancelled=1"});
    CHECK(rows(counts->tasks) ==
          std::vector<std::string>{"a/scheduled=4", "a/success=1", "b/failed=1", "b/scheduled=1"});
  }
  SECTION("audit: newest first across batches, limited") {
    for (int i = 0; i < 5; ++i) {
      REQUIRE_OK(store->apply_scheduler_batch(
          {.audit = {{.at_ms = i, .action = "a" + std::to_string(i)}}}));
    }
    auto actions = [&](int limit) {
      auto r = store->list_audit(limit);
      REQUIRE_OK(r);
      std::vector<std::string> out;
      for (const auto& a : *r) out.push_back(a.action);
      return out;
    };
    CHECK(actions(0) == std::vector<std::string>{"a4", "a3", "a2", "a1", "a0"});
    CHECK(actions(2) == std::vector<std::string>{"a4", "a3"});
    CHECK(store->list_audit(-1).status().is_invalid_argument());
  }
}

TEST_CASE("a batch of 20,000 task rows is applied in one call", "[store]") {
  TempDir dir;
  auto store = open_store({.dir = dir.str()});
  constexpr int kTasks = 20'000;
  SchedulerBatch batch;
  batch.runs = {run("big", "fanout", "running", 1)};
  for (int i = 0; i < kTasks; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "t%05d", i);
    TaskRow t = task("big", id, "queued");
    t.try_number = 1;
    t.dispatch_seq = i + 1;
    batch.tasks.push_back(std::move(t));
  }
  REQUIRE_OK(store->apply_scheduler_batch(batch));
  auto tasks = store->list_tasks("big");
  REQUIRE_OK(tasks);
  REQUIRE(tasks->size() == kTasks);
  CHECK((*tasks)[0].task_id == "t00000");
  CHECK((*tasks)[kTasks - 1].task_id == "t19999");
  CHECK((*tasks)[kTasks - 1].dispatch_seq == kTasks);
  CHECK(store->list_unfinished_tasks()->size() == kTasks);

  // The same rows again, all changed: upserts, not new rows.
  for (TaskRow& t : batch.tasks) t.state = "running";
  REQUIRE_OK(store->apply_scheduler_batch({.tasks = batch.tasks}));
  tasks = store->list_tasks("big");
  REQUIRE_OK(tasks);
  REQUIRE(tasks->size() == kTasks);
  CHECK((*tasks)[12'345].state == "running");
}

TEST_CASE("scheduler state survives reopen", "[store]") {
  TempDir dir;
  {
    auto store = open_store({.dir = dir.str()});
    REQUIRE_OK(store->apply_scheduler_batch(full_batch()));
  }
  auto store = open_store({.dir = dir.str()});
  check_full_batch(store.get());
  // Appending continues after the rows written before the restart.
  REQUIRE_OK(store->apply_scheduler_batch({.audit = {{.action = "after.reopen"}}}));
  auto audit = store->list_audit(0);
  REQUIRE_OK(audit);
  REQUIRE(audit->size() == 3);
  CHECK((*audit)[0].action == "after.reopen");
}

TEST_CASE("a version-2 database migrates to the scheduler tables keeping its data", "[store]") {
  TempDir dir;
  const StoreOptions options{.dir = dir.str()};
  const auto builtin = SqliteStore::builtin_migrations();
  REQUIRE(builtin.size() >= 3);
  const std::vector<EventId> ids = {event_id_for_bytes("e1"), event_id_for_bytes("e2")};
  {
    auto v2 = open_store(options, builtin.first(2));
    CHECK(*v2->schema_version() == 2);
    REQUIRE_OK(v2->commit_processed("codegen", std::vector<EventId>{ids[0]}));
    REQUIRE_OK(v2->record_intents("deploy", std::vector<EventId>{ids[1]}));
    // Not there yet: a version-2 file has no scheduler tables.
    CHECK_FALSE(v2->list_runs({}).ok());
  }
  auto store = open_store(options);
  CHECK(*store->schema_version() == static_cast<int64_t>(builtin.size()));
  CHECK(*store->is_processed("codegen", ids) == std::vector<bool>{true, false});
  CHECK(*store->open_intents("deploy") == std::vector<EventId>{ids[1]});
  REQUIRE_OK(store->apply_scheduler_batch(full_batch()));
  check_full_batch(store.get());
}
