// Approval tasks with params (scheduler/approval_params.h): bind_to and its invalidation by a
// new commit, auto_approve and the daemon-wide pause switch, notify through the
// approval_notify stage.
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

#include "scheduler/approval_params.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_harness.h"
#include "stages/http_sink.h"

using namespace factory;
using namespace factory::scheduler;

namespace {

// Emits {"commit": "<40 hex>"}: a new value on every execution of the same (run, task), as
// codegen makes a new commit each round.
std::mutex g_mu;
std::map<std::string, int> g_execs;
// While true, CommitStage waits before it commits (a codegen round still running).
std::condition_variable g_cv;
bool g_hold = false;

// Holds CommitStage until destroyed.
struct Hold {
  Hold() {
    std::lock_guard<std::mutex> lock(g_mu);
    g_hold = true;
  }
  ~Hold() {
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_hold = false;
    }
    g_cv.notify_all();
  }
};

std::string fake_commit(const std::string& key, int n) {
  std::string c = std::to_string(std::hash<std::string>()(key + "#" + std::to_string(n)));
  while (c.size() < 40) c += c;
  for (char& ch : c) ch = "0123456789abcdef"[(ch - '0') % 16];
  return c.substr(0, 40);
}

class CommitStage final : public Stage {
 public:
  StageInfo info() const override { return {.name = "approval-test-commit", .version = "1"}; }
  StageResult process(const Event& e, StageContext& ctx) override {
    int n;
    {
      std::unique_lock<std::mutex> lock(g_mu);
      g_cv.wait(lock, [] { return !g_hold; });
      n = ++g_execs[e.payload];
    }
    ctx.emit({.payload = R"({"commit":")" + fake_commit(e.payload, n) + R"(","n":)" +
                         std::to_string(n) + "}"});
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(CommitStage);

Result<Dag> try_parse(const std::string& yaml) {
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) {
    return s == "approval-test-commit" || s == "noop" || s == "approval";
  };
  return parse_dag_yaml(yaml, "t.yaml", po);
}

Dag parse(const std::string& yaml) {
  auto d = try_parse(yaml);
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

struct Harness : test::SchedulerHarness {
  explicit Harness(std::vector<Dag> d, test::SchedulerHarnessOptions o = {})
      : SchedulerHarness(std::move(d), std::move(o)) {}

  std::string task_state(const std::string& run, const std::string& task) {
    auto v = sched->show_run(run);
    if (!v.ok()) return "";
    for (const auto& t : v->tasks) {
      if (t.row.task_id == task) return t.row.state;
    }
    return "";
  }
  store::TaskRow task_row(const std::string& run, const std::string& task) {
    auto v = sched->show_run(run);
    REQUIRE_OK(v);
    for (const auto& t : v->tasks) {
      if (t.row.task_id == task) return t.row;
    }
    FAIL("no task " << task);
    return {};
  }
  store::ApprovalRow approval(const std::string& run, const std::string& task) {
    auto rows = store->list_approvals("");
    REQUIRE_OK(rows);
    for (const auto& a : *rows) {
      if (a.run_id == run && a.task_id == task) return a;
    }
    FAIL("no approval row for " << run << "/" << task);
    return {};
  }
  bool awaiting(const std::string& run, const std::string& task = "approve") {
    return test::eventually([&] { return task_state(run, task) == "awaiting_approval"; });
  }
  // The commit the build task's output names.
  std::string commit_of(const std::string& run) {
    std::string out = task_row(run, "build").output_json;
    size_t at = out.find("\"commit\":\"");
    REQUIRE(at != std::string::npos);
    return out.substr(at + 10, 40);
  }
};

constexpr char kBoundDag[] = R"(
dag_id: bound
tasks:
  build: {stage: approval-test-commit, params: {run: "{{ run.id }}"}}
  approve:
    stage: approval
    upstream: [build]
    params: {bind_to: "{{ tasks.build.output.commit }}"}
  deploy: {stage: noop, upstream: [approve], params: {commit: "{{ tasks.build.output.commit }}"}}
)";

}  // namespace

TEST_CASE("approval params are checked when the DAG file loads", "[scheduler][approval]") {
  struct Case {
    const char* name;
    const char* params;
    const char* message;
  };
  const Case cases[] = {
      {"unknown key", "{bind: x}", "unknown key 'bind'"},
      {"bind_to not text", "{bind_to: [a]}", "bind_to must be text"},
      {"auto_approve a list", "{auto_approve: [true]}", "auto_approve must be true, false"},
      {"notify without url", "{notify: {text: hi}}", "exactly one of webhook_url"},
      {"notify with both", "{notify: {webhook_url: 'http://x', webhook_url_secret: S}}",
       "exactly one of webhook_url"},
      {"notify unknown key", "{notify: {webhook_url: 'http://x', channel: c}}",
       "notify has an unknown key 'channel'"},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      auto d = try_parse(std::string("dag_id: d\ntasks:\n  a: {stage: approval, params: ") +
                         c.params + "}\n");
      REQUIRE_FALSE(d.ok());
      CHECK(d.status().message().find("t.yaml:3:") != std::string::npos);
      CHECK(d.status().message().find(c.message) != std::string::npos);
    }
  }
  SECTION("good params, and a non-approval task's params are its own") {
    REQUIRE(try_parse(R"(
dag_id: d
tasks:
  b: {stage: noop, params: {bind: anything}}
  a:
    stage: approval
    upstream: [b]
    params:
      bind_to: "{{ tasks.b.output.x }}"
      auto_approve: "{{ run.conf.auto }}"
      notify: {webhook_url_secret: SLACK, text: "Approve {{ run.id }}?", api_url: "http://h:1"}
)")
                .ok());
  }
}

TEST_CASE("approval settings render from params, commits match by 7+ character prefix",
          "[scheduler][approval]") {
  auto s = parse_approval_settings(
      R"({"bind_to":"abc1234def","auto_approve":"true","notify":{"webhook_url":"http://x"}})");
  REQUIRE_OK(s);
  CHECK(s->bound_to == "abc1234def");
  CHECK(s->auto_approve);
  REQUIRE(s->notify);
  CHECK(s->notify->webhook_url == "http://x");
  auto odd = parse_approval_settings(R"({"auto_approve":"maybe"})");
  REQUIRE_OK(odd);
  CHECK_FALSE(odd->auto_approve);
  CHECK(odd->auto_approve_problem.find("\"maybe\"") != std::string::npos);
  CHECK(binding_matches("abc1234def", "abc1234def"));
  CHECK(binding_matches("abc1234def", "abc1234"));
  CHECK_FALSE(binding_matches("abc1234def", "abc123"));  // too short to name a commit
  CHECK_FALSE(binding_matches("abc1234def", "abc1235"));
}

TEST_CASE("an approval binds to the commit, a decision naming another commit is refused",
          "[scheduler][approval]") {
  Harness h({parse(kBoundDag)});
  auto run = h.sched->trigger("bound", "{}");
  REQUIRE_OK(run);
  REQUIRE(h.awaiting(*run));
  std::string commit = h.commit_of(*run);
  store::ApprovalRow a = h.approval(*run, "approve");
  CHECK(a.state == "pending");
  CHECK(a.bound_to == commit);

  Status wrong = h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit,
                                 "0000000000000000000000000000000000000000");
  CHECK(wrong.code() == Status::Code::kFailedPrecondition);
  CHECK(wrong.message().find("is for '" + commit + "'") != std::string::npos);
  CHECK(h.task_state(*run, "approve") == "awaiting_approval");

  // A 7-character abbreviation names it, as git shows it.
  REQUIRE_OK(h.sched->decide(*run, "approve", true, "alice", "lgtm", AuditMode::kAudit,
                             commit.substr(0, 7)));
  auto v = h.sched->wait_for_run(*run, 20'000);
  REQUIRE_OK(v);
  CHECK(v->run.state == "success");
  CHECK(h.task_row(*run, "approve").output_json ==
        R"({"approved_by":"alice","bound_to":")" + commit + R"("})");
  a = h.approval(*run, "approve");
  CHECK(a.state == "approved");
  CHECK(a.bound_to == commit);
}

TEST_CASE("a new commit invalidates the approval: it is asked again for the new commit",
          "[scheduler][approval]") {
  Harness h({parse(kBoundDag)});
  SECTION("approved, then the build and everything after it run again") {
    auto run = h.sched->trigger("bound", "{}");
    REQUIRE_OK(run);
    REQUIRE(h.awaiting(*run));
    std::string first = h.commit_of(*run);
    REQUIRE_OK(h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit, first));
    REQUIRE_OK(h.sched->wait_for_run(*run, 20'000));

    // The gate -> codegen round: build runs again and makes a new commit.
    REQUIRE_OK(h.sched->clear(*run, "build", true, "ops"));
    REQUIRE(test::eventually([&] {
      return h.task_state(*run, "approve") == "awaiting_approval" && h.commit_of(*run) != first;
    }));
    std::string second = h.commit_of(*run);
    store::ApprovalRow a = h.approval(*run, "approve");
    CHECK(a.state == "pending");  // the approval for the first commit no longer counts
    CHECK(a.bound_to == second);
    CHECK(a.decided_by.empty());
    CHECK(h.task_state(*run, "deploy") == "none");
    // Approving the commit that was approved before is refused.
    Status stale = h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit, first);
    CHECK(stale.code() == Status::Code::kFailedPrecondition);
    REQUIRE_OK(h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit, second));
    auto v = h.sched->wait_for_run(*run, 20'000);
    REQUIRE_OK(v);
    CHECK(v->run.state == "success");
    CHECK(h.task_row(*run, "deploy").output_json.find(second) != std::string::npos);
  }
  SECTION("pending, when an upstream runs again without clearing the approval") {
    auto run = h.sched->trigger("bound", "{}");
    REQUIRE_OK(run);
    REQUIRE(h.awaiting(*run));
    std::string first = h.commit_of(*run);
    REQUIRE_OK(h.sched->clear(*run, "build", /*downstream=*/false, "ops"));
    REQUIRE(test::eventually(
        [&] { return h.task_state(*run, "build") == "success" && h.commit_of(*run) != first; }));
    std::string second = h.commit_of(*run);
    REQUIRE(test::eventually([&] { return h.approval(*run, "approve").bound_to == second; }));
    CHECK(h.approval(*run, "approve").state == "pending");
    CHECK(h.task_state(*run, "approve") == "awaiting_approval");
    Status stale = h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit, first);
    CHECK(stale.code() == Status::Code::kFailedPrecondition);
    REQUIRE_OK(h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit));
    auto v = h.sched->wait_for_run(*run, 20'000);
    REQUIRE_OK(v);
    CHECK(h.task_row(*run, "approve").output_json.find(second) != std::string::npos);
  }
}

TEST_CASE("no approval while the commit it is bound to is being rebuilt", "[scheduler][approval]") {
  Harness h({parse(kBoundDag)});
  auto run = h.sched->trigger("bound", "{}");
  REQUIRE_OK(run);
  REQUIRE(h.awaiting(*run));
  std::string first = h.commit_of(*run);
  std::string second;
  {
    Hold hold;  // the new round of build cannot finish until this scope ends
    REQUIRE_OK(h.sched->clear(*run, "build", /*downstream=*/false, "ops"));
    Status early = h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit, first);
    CHECK(early.code() == Status::Code::kFailedPrecondition);
    CHECK(early.message().find("being rebuilt") != std::string::npos);
    CHECK(h.task_state(*run, "approve") == "awaiting_approval");
    CHECK(h.approval(*run, "approve").bound_to == first);  // never re-bound to nothing
  }
  REQUIRE(test::eventually(
      [&] { return h.task_state(*run, "build") == "success" && h.commit_of(*run) != first; }));
  second = h.commit_of(*run);
  REQUIRE(test::eventually([&] { return h.approval(*run, "approve").bound_to == second; }));
  REQUIRE_OK(h.sched->decide(*run, "approve", true, "alice", "", AuditMode::kAudit, second));
  REQUIRE_OK(h.sched->wait_for_run(*run, 20'000));
}

TEST_CASE("auto_approve approves at once as policy:auto unless auto-approval is paused",
          "[scheduler][approval]") {
  Harness h({parse(R"(
dag_id: auto
tasks:
  build: {stage: approval-test-commit, params: {run: "{{ run.id }}"}}
  approve:
    stage: approval
    upstream: [build]
    params: {bind_to: "{{ tasks.build.output.commit }}", auto_approve: "{{ run.conf.auto }}"}
  deploy: {stage: noop, upstream: [approve], params: {x: 1}}
)")});
  CHECK_FALSE(h.sched->auto_approval_paused());
  auto yes = h.sched->trigger("auto", R"({"auto": true})");
  REQUIRE_OK(yes);
  auto v = h.sched->wait_for_run(*yes, 20'000);
  REQUIRE_OK(v);
  CHECK(v->run.state == "success");
  store::ApprovalRow a = h.approval(*yes, "approve");
  CHECK(a.state == "approved");
  CHECK(a.decided_by == "policy:auto");
  CHECK(a.bound_to == h.commit_of(*yes));

  // A template rendering false waits for a person.
  auto no = h.sched->trigger("auto", R"({"auto": false})");
  REQUIRE_OK(no);
  REQUIRE(h.awaiting(*no));
  CHECK(h.approval(*no, "approve").state == "pending");

  // Paused (the error budget's switch): auto_approve is ignored, the run waits for a person.
  REQUIRE_OK(h.sched->set_auto_approval_paused(true, "error-budget"));
  CHECK(h.sched->auto_approval_paused());
  auto paused = h.sched->trigger("auto", R"({"auto": true})");
  REQUIRE_OK(paused);
  REQUIRE(h.awaiting(*paused));
  a = h.approval(*paused, "approve");
  CHECK(a.state == "pending");
  CHECK(a.comment.find("auto-approval is paused") != std::string::npos);

  // The switch survives a restart.
  h.stop();
  h.start();
  CHECK(h.sched->auto_approval_paused());
  CHECK(h.task_state(*paused, "approve") == "awaiting_approval");
  REQUIRE_OK(h.sched->decide(*paused, "approve", true, "carol", "checked by hand"));
  v = h.sched->wait_for_run(*paused, 20'000);
  REQUIRE_OK(v);
  CHECK(h.approval(*paused, "approve").decided_by == "carol");

  // Resumed by an operator: auto-approval applies again.
  REQUIRE_OK(h.sched->set_auto_approval_paused(false, "ops"));
  auto resumed = h.sched->trigger("auto", R"({"auto": true})");
  REQUIRE_OK(resumed);
  v = h.sched->wait_for_run(*resumed, 20'000);
  REQUIRE_OK(v);
  CHECK(h.approval(*resumed, "approve").decided_by == "policy:auto");

  auto audit = h.store->list_audit(0);
  REQUIRE_OK(audit);
  std::map<std::string, std::string> actions;  // action -> actor (newest first: first wins)
  for (const auto& row : *audit) actions.emplace(row.action, row.actor);
  CHECK(actions["approval.auto_pause"] == "error-budget");
  CHECK(actions["approval.auto_resume"] == "ops");
  CHECK(actions["approval.approve"] == "policy:auto");
}

TEST_CASE("a pending approval posts a message to the configured webhook, failures are not fatal",
          "[scheduler][approval]") {
  test::HttpSink sink(200);
  Harness h({parse(std::string(R"(
dag_id: notified
tasks:
  build: {stage: approval-test-commit, params: {run: "{{ run.id }}"}}
  approve:
    stage: approval
    upstream: [build]
    params:
      bind_to: "{{ tasks.build.output.commit }}"
      notify:
        webhook_url: ")") +
                   sink.url() + R"(/services/T0/B0/secret"
        text: "Approve {{ run.conf.ticket }}"
        api_url: "http://factory.example:7070"
  broken:
    stage: approval
    upstream: [build]
    params:
      notify: {webhook_url: "http://127.0.0.1:1/nobody-listens"}
)")});
  auto run = h.sched->trigger("notified", R"({"ticket": "INV-105"})");
  REQUIRE_OK(run);
  REQUIRE(h.awaiting(*run));
  REQUIRE(h.awaiting(*run, "broken"));
  REQUIRE(sink.wait_for(1, 10'000));
  std::string commit = h.commit_of(*run);
  auto reqs = sink.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].method == "POST");
  CHECK(reqs[0].target == "/services/T0/B0/secret");
  const std::string& body = reqs[0].body;
  INFO(body);
  CHECK(body.find(R"({"text":"Approve INV-105 ()" + commit.substr(0, 12) + ")") !=
        std::string::npos);
  CHECK(body.find("http://factory.example:7070/api/v1/runs/") != std::string::npos);
  CHECK(body.find("/tasks/approve") != std::string::npos);
  // The unreachable webhook changed nothing: both approvals still wait for a person.
  REQUIRE_OK(h.sched->decide(*run, "broken", true, "bob", ""));
  REQUIRE_OK(h.sched->decide(*run, "approve", true, "bob", ""));
  auto v = h.sched->wait_for_run(*run, 20'000);
  REQUIRE_OK(v);
  CHECK(v->run.state == "success");
}

TEST_CASE("cancelling a run closes its waiting approvals, deciding one then names its state",
          "[scheduler][approval]") {
  Harness h({parse(kBoundDag)});
  auto run = h.sched->trigger("bound", "{}");
  REQUIRE_OK(run);
  REQUIRE(h.awaiting(*run));
  std::string commit = h.commit_of(*run);
  REQUIRE_OK(h.sched->cancel(*run, "cli:ana"));

  store::ApprovalRow a = h.approval(*run, "approve");
  CHECK(a.state == "cancelled");
  CHECK(a.decided_by == "cli:ana");
  CHECK(a.comment == "run cancelled by cli:ana");
  CHECK(a.bound_to == commit);
  CHECK(a.decided_ms > 0);
  auto pending = h.store->list_approvals("pending");
  REQUIRE_OK(pending);
  CHECK(pending->empty());
  // The closing is audited, as the person who cancelled.
  auto audit = h.store->list_audit(20);
  REQUIRE_OK(audit);
  bool audited = false;
  for (const store::AuditRow& row : *audit) {
    if (row.action == "approval.cancelled" && row.object == "run/" + *run + "/task/approve" &&
        row.actor == "cli:ana" && row.detail == "run cancelled by cli:ana") {
      audited = true;
    }
  }
  CHECK(audited);

  for (bool approve : {true, false}) {
    Status s = h.sched->decide(*run, "approve", approve, "bob", "");
    CHECK(s.code() == Status::Code::kFailedPrecondition);
    INFO(s.message());
    CHECK(s.message().find("approval 'approve' of run '" + *run +
                           "' is cancelled (run cancelled by cli:ana); nothing to " +
                           (approve ? "approve" : "reject")) != std::string::npos);
  }
  CHECK(h.approval(*run, "approve").state == "cancelled");
}

TEST_CASE("a pending approval left from before, whose run ended, is closed at start",
          "[scheduler][approval]") {
  Harness h({parse(kBoundDag)}, {.start = false});
  store::SchedulerBatch b;
  for (const char* state : {"cancelled", "failed"}) {
    store::RunRow r;
    r.run_id = std::string("old_") + state;
    r.dag_id = "bound";
    r.state = state;
    r.conf_json = "{}";
    r.created_ms = r.started_ms = 1000;
    r.ended_ms = 2000;
    b.runs.push_back(r);
    store::ApprovalRow a;
    a.run_id = r.run_id;
    a.task_id = "approve";
    a.state = "pending";
    a.requested_ms = 1500;
    a.bound_to = "abc1234";
    b.approvals.push_back(a);
  }
  REQUIRE_OK(h.store->apply_scheduler_batch(b));
  h.start();
  REQUIRE(test::eventually([&] {
    auto p = h.store->list_approvals("pending");
    return p.ok() && p->empty();
  }));
  store::ApprovalRow cancelled = h.approval("old_cancelled", "approve");
  CHECK(cancelled.state == "cancelled");
  CHECK(cancelled.decided_by == "scheduler");
  CHECK(cancelled.comment == "its run ended (cancelled) before a decision");
  CHECK(cancelled.bound_to == "abc1234");
  store::ApprovalRow expired = h.approval("old_failed", "approve");
  CHECK(expired.state == "expired");
  CHECK(expired.comment == "its run ended (failed) before a decision");
  Status s = h.sched->decide("old_failed", "approve", true, "bob", "");
  CHECK(s.code() == Status::Code::kFailedPrecondition);
  CHECK(s.message().find("is expired (its run ended (failed) before a decision)") !=
        std::string::npos);
}
