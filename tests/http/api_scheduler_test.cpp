// The scheduler half of the API (api_scheduler.cpp), called through a Router without a server:
// a real log, store, Scheduler and Engine in a temp dir run DAGs of `noop` tasks and approvals.
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "http/api.h"
#include "http/router.h"
#include "http/scheduler_views.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler_harness.h"

namespace factory::http {
namespace {

namespace json = boost::json;

constexpr char kGated[] = R"(
dag_id: gated
description: build, ask a person, deploy
tasks:
  build: {stage: noop, params: {ticket: "{{ run.conf.ticket }}"}}
  approve: {stage: approval, upstream: [build]}
  deploy: {stage: noop, upstream: [approve], retries: 2}
)";

constexpr char kBound[] = R"(
dag_id: bound
tasks:
  approve: {stage: approval, params: {bind_to: "{{ run.conf.commit }}"}}
)";

constexpr char kTyped[] = R"(
dag_id: typed
params:
  defaults: {n: 1}
  schema: {type: object, properties: {n: {type: integer}}}
tasks:
  only: {stage: noop}
)";

scheduler::Dag parse(const std::string& yaml) {
  auto d = scheduler::parse_dag_yaml(yaml, "test.yaml", {});
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

struct Reply {
  int status = 0;
  json::value body;
  Response raw;
  std::string error_code() const {
    const json::object* o = body.if_object();
    if (!o || !o->contains("error")) return "";
    return std::string(o->at("error").at("code").as_string());
  }
  std::string message() const {
    if (error_code().empty()) return "";
    return std::string(body.at("error").at("message").as_string());
  }
};

// A log, store and (unless `with_scheduler` is false) a started Scheduler and Engine, with the
// scheduler routes on a Router.
struct Api : test::SchedulerHarness {
  ApiContext ctx;
  Router router;
  Principal principal{.name = "ops", .role = Role::kOperator};
  int requests = 0;

  explicit Api(bool with_scheduler = true)
      : SchedulerHarness({parse(kGated), parse(kTyped), parse(kBound)}, {.start = with_scheduler}) {
    ctx.log = log.get();
    ctx.store = store.get();
    ctx.scheduler = sched.get();
    ctx.engine = engine.get();
    add_scheduler_routes(&router, &ctx);
  }

  // Routes "METHOD /path?query" with `body` the way the server would, minus auth and audit.
  Reply call(const std::string& method, const std::string& target, const std::string& body = "") {
    Request req;
    req.method = method;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = target.substr(q + 1);
      while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string kv = rest.substr(0, amp);
        size_t eq = kv.find('=');
        req.query.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
        rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
      }
    }
    req.body = body;
    req.principal = principal;
    req.request_id = "req-" + std::to_string(++requests);
    Router::Match m = router.match(method, req.path);
    INFO(method << " " << target);
    REQUIRE(m.route);
    req.params = m.params;
    Reply r;
    r.raw = m.route->handler(req);
    r.status = r.raw.status;
    boost::system::error_code ec;
    r.body = json::parse(r.raw.body, ec);
    INFO(r.raw.body);
    REQUIRE(!ec);
    return r;
  }
  Reply ok(const std::string& method, const std::string& target, const std::string& body = "",
           int status = 200) {
    Reply r = call(method, target, body);
    INFO(method << " " << target << " -> " << r.status << " " << r.raw.body);
    REQUIRE(r.status == status);
    return r;
  }

  std::string run_state(const std::string& run_id) {
    return std::string(ok("GET", "/api/v1/runs/" + run_id).body.at("state").as_string());
  }
  std::string task_state(const std::string& run_id, const std::string& task) {
    return std::string(
        ok("GET", "/api/v1/runs/" + run_id + "/tasks/" + task).body.at("state").as_string());
  }
  bool eventually_run(const std::string& run_id, const std::string& state) {
    return test::eventually([&] { return run_state(run_id) == state; }, 20'000);
  }
  bool eventually_awaiting(const std::string& run_id) {
    return test::eventually([&] { return task_state(run_id, "approve") == "awaiting_approval"; },
                            20'000);
  }
  std::string trigger(const std::string& run_id) {
    Reply r = ok("POST", "/api/v1/dags/gated/runs",
                 R"({"run_id":")" + run_id + R"(","conf":{"ticket":"PROJ-1"}})", 201);
    return std::string(r.body.at("run_id").as_string());
  }
};

void require_error(const Reply& r, int status, const std::string& code, const std::string& part) {
  INFO(r.raw.body);
  CHECK(r.status == status);
  CHECK(r.error_code() == code);
  CHECK(r.message().find(part) != std::string::npos);
}

TEST_CASE("trigger, approve through the API, and the run succeeds", "[http][scheduler]") {
  Api api;
  Reply made = api.ok("POST", "/api/v1/dags/gated/runs",
                      R"({"conf": {"ticket": "PROJ-7"}, "run_id": "r1"})", 201);
  CHECK(made.body.at("run_id") == "r1");
  CHECK(made.body.at("dag_id") == "gated");
  CHECK(made.body.at("conf").at("ticket") == "PROJ-7");
  CHECK(made.body.at("dag_paused") == false);
  REQUIRE(made.raw.headers.size() == 1);
  CHECK(made.raw.headers[0].second == "/api/v1/runs/r1");

  json::value listed = api.ok("GET", "/api/v1/runs?dag_id=gated").body;
  REQUIRE(listed.at("runs").as_array().size() == 1);
  CHECK(listed.at("runs").at(0).at("run_id") == "r1");

  REQUIRE(api.eventually_awaiting("r1"));
  json::value pending = api.ok("GET", "/api/v1/approvals").body;
  REQUIRE(pending.at("approvals").as_array().size() == 1);
  const json::value& a = pending.at("approvals").at(0);
  CHECK(a.at("run_id") == "r1");
  CHECK(a.at("task_id") == "approve");
  CHECK(a.at("state") == "pending");
  CHECK(a.at("age_ms").as_int64() >= 0);

  Reply decided =
      api.ok("POST", "/api/v1/runs/r1/tasks/approve/approve", R"({"comment": "ship it"})");
  CHECK(decided.body.at("state") == "approved");
  CHECK(decided.body.at("decided_by") == "token:ops");
  CHECK(decided.body.at("comment") == "ship it");
  REQUIRE(api.eventually_run("r1", "success"));

  json::value run = api.ok("GET", "/api/v1/runs/r1").body;
  std::vector<std::string> order;
  for (const json::value& t : run.at("tasks").as_array()) {
    order.push_back(std::string(t.at("task_id").as_string()));
    CHECK(t.at("state") == "success");
  }
  CHECK(order == std::vector<std::string>{"build", "approve", "deploy"});
  CHECK(api.ok("GET", "/api/v1/runs/r1/tasks").body.at("tasks").as_array().size() == 3);
  json::value approve_task = api.ok("GET", "/api/v1/runs/r1/tasks/approve").body;
  CHECK(approve_task.at("output").at("approved_by") == "token:ops");
  CHECK(approve_task.at("stage") == "approval");
  CHECK(api.ok("GET", "/api/v1/approvals").body.at("approvals").as_array().empty());
  json::value all = api.ok("GET", "/api/v1/approvals?state=approved").body;
  REQUIRE(all.at("approvals").as_array().size() == 1);
  CHECK(all.at("approvals").at(0).at("decided_by") == "token:ops");
  CHECK(all.at("approvals").at(0).at("comment") == "ship it");
  CHECK(all.at("approvals").at(0).at("age_ms").is_null());

  // The route is audited by the server; the scheduler wrote no second row for the decision.
  json::value audit = api.ok("GET", "/api/v1/audit?limit=0").body;
  for (const json::value& row : audit.at("audit").as_array()) {
    CHECK(row.at("action") != "approval.approve");
  }
  for (const Route& r : api.router.routes()) {
    INFO(r.method << " " << r.pattern);
    CHECK(r.audited == (r.method == "POST"));
    CHECK(r.role == (r.method == "POST" ? Role::kOperator : Role::kViewer));
  }
}

TEST_CASE("reject fails the approval and the run", "[http][scheduler]") {
  Api api;
  api.trigger("r2");
  REQUIRE(api.eventually_awaiting("r2"));
  Reply r = api.ok("POST", "/api/v1/runs/r2/tasks/approve/reject", R"({"comment":"not today"})");
  CHECK(r.body.at("state") == "rejected");
  REQUIRE(api.eventually_run("r2", "failed"));
  CHECK(api.task_state("r2", "deploy") == "upstream_failed");
  json::value rejected = api.ok("GET", "/api/v1/approvals?state=rejected").body;
  REQUIRE(rejected.at("approvals").as_array().size() == 1);
  CHECK(rejected.at("approvals").at(0).at("comment") == "not today");
  // Deciding again: the run ended; the answer names the approval's state and why.
  require_error(api.call("POST", "/api/v1/runs/r2/tasks/approve/approve"), 409,
                "failed_precondition", "approval 'approve' of run 'r2' is rejected (by ");
  require_error(api.call("POST", "/api/v1/runs/r2/tasks/approve/approve"), 409,
                "failed_precondition", "its run failed); nothing to approve");
}

TEST_CASE("cancel a run parked on an approval", "[http][scheduler]") {
  Api api;
  api.trigger("r3");
  REQUIRE(api.eventually_awaiting("r3"));
  Reply r = api.ok("POST", "/api/v1/runs/r3/cancel");
  CHECK(r.body.at("state") == "cancelled");
  CHECK(api.run_state("r3") == "cancelled");
  CHECK(api.task_state("r3", "deploy") == "skipped");
  require_error(api.call("POST", "/api/v1/runs/r3/cancel", "{}"), 409, "failed_precondition",
                "nothing to cancel");
  // Its approval was closed with it: no longer pending, and not decidable.
  CHECK(api.ok("GET", "/api/v1/approvals").body.at("approvals").as_array().empty());
  json::value closed = api.ok("GET", "/api/v1/approvals?state=cancelled").body;
  REQUIRE(closed.at("approvals").as_array().size() == 1);
  CHECK(closed.at("approvals").at(0).at("run_id") == "r3");
  require_error(api.call("POST", "/api/v1/runs/r3/tasks/approve/approve"), 409,
                "failed_precondition",
                "approval 'approve' of run 'r3' is cancelled (run cancelled by ");
  json::value cancelled = api.ok("GET", "/api/v1/runs?state=cancelled").body;
  CHECK(cancelled.at("runs").as_array().size() == 1);
  CHECK(api.ok("GET", "/api/v1/runs?state=success").body.at("runs").as_array().empty());
}

TEST_CASE("pause holds new runs until unpause, clear runs a task again", "[http][scheduler]") {
  Api api;
  Reply p = api.ok("POST", "/api/v1/dags/gated/pause");
  CHECK(p.body.at("paused") == true);
  json::value dags = api.ok("GET", "/api/v1/dags").body;
  REQUIRE(dags.at("dags").as_array().size() == 3);
  CHECK(dags.at("dags").at(0).at("dag_id") == "gated");
  CHECK(dags.at("dags").at(0).at("paused") == true);
  CHECK(dags.at("dags").at(0).at("tasks") == 3);
  CHECK(dags.at("dags").at(1).at("paused") == false);

  Reply made = api.ok("POST", "/api/v1/dags/gated/runs", R"({"conf": {"ticket": "P-2"}})", 201);
  CHECK(made.body.at("dag_paused") == true);
  std::string run_id(made.body.at("run_id").as_string());
  CHECK(made.body.at("state") == "queued");
  api.ok("POST", "/api/v1/dags/gated/unpause", "{}");
  REQUIRE(api.eventually_awaiting(run_id));
  api.ok("POST", "/api/v1/runs/" + run_id + "/tasks/approve/approve");
  REQUIRE(api.eventually_run(run_id, "success"));

  Reply cleared =
      api.ok("POST", "/api/v1/runs/" + run_id + "/tasks/approve/clear", R"({"downstream": true})");
  CHECK(json::serialize(cleared.body.at("cleared")) == R"(["approve","deploy"])");
  // The approval asks again; the run is running once more.
  REQUIRE(api.eventually_awaiting(run_id));
  CHECK(api.run_state(run_id) == "running");
}

TEST_CASE("a decision naming another commit than the approval's is refused", "[http][scheduler]") {
  Api api;
  api.ok("POST", "/api/v1/dags/bound/runs", R"({"run_id":"b1","conf":{"commit":"abcdef0123456"}})",
         201);
  REQUIRE(test::eventually([&] { return api.task_state("b1", "approve") == "awaiting_approval"; },
                           20'000));
  json::value pending = api.ok("GET", "/api/v1/approvals").body;
  REQUIRE(pending.at("approvals").as_array().size() == 1);
  CHECK(pending.at("approvals").at(0).at("bound_to") == "abcdef0123456");
  require_error(
      api.call("POST", "/api/v1/runs/b1/tasks/approve/approve", R"({"bound_to":"fedcba9876"})"),
      409, "failed_precondition", "fedcba9876");
  require_error(api.call("POST", "/api/v1/runs/b1/tasks/approve/approve", R"({"bound_to":7})"), 400,
                "invalid_argument", "body.bound_to must be a string");
  api.ok("POST", "/api/v1/runs/b1/tasks/approve/approve", R"({"bound_to":"abcdef0"})");
  REQUIRE(api.eventually_run("b1", "success"));
  CHECK(api.ok("GET", "/api/v1/runs/b1/tasks/approve").body.at("output").at("bound_to") ==
        "abcdef0123456");
}

TEST_CASE("dags show lists tasks with dependencies, stages and retries", "[http][scheduler]") {
  Api api;
  json::value d = api.ok("GET", "/api/v1/dags/gated").body;
  CHECK(d.at("description") == "build, ask a person, deploy");
  CHECK(d.at("trigger") == "manual");
  CHECK(d.at("paused") == false);
  const json::array& tasks = d.at("tasks").as_array();
  REQUIRE(tasks.size() == 3);
  CHECK(tasks[1].at("stage") == "approval");
  CHECK(tasks[1].at("approval") == true);
  CHECK(json::serialize(tasks[1].at("upstream")) == R"(["build"])");
  CHECK(tasks[2].at("retries") == 2);
  CHECK(tasks[0].at("params").at("ticket") == "{{ run.conf.ticket }}");

  // An empty body triggers with the params defaults.
  Reply made = api.ok("POST", "/api/v1/dags/typed/runs", "", 201);
  CHECK(json::serialize(made.body.at("conf")) == R"({"n":1})");
  CHECK(made.body.at("trigger") == "manual");
}

TEST_CASE("unknown DAGs, runs and tasks answer 404", "[http][scheduler]") {
  Api api;
  require_error(api.call("GET", "/api/v1/dags/nope"), 404, "not_found", "DAG 'nope'");
  require_error(api.call("POST", "/api/v1/dags/nope/runs", "{}"), 404, "not_found", "DAG 'nope'");
  require_error(api.call("POST", "/api/v1/dags/nope/pause"), 404, "not_found", "DAG 'nope'");
  require_error(api.call("GET", "/api/v1/runs/nope"), 404, "not_found", "run 'nope'");
  require_error(api.call("GET", "/api/v1/runs/nope/tasks"), 404, "not_found", "run 'nope'");
  require_error(api.call("POST", "/api/v1/runs/nope/cancel"), 404, "not_found", "run 'nope'");
  require_error(api.call("POST", "/api/v1/runs/nope/tasks/approve/approve"), 404, "not_found",
                "run 'nope'");
  api.trigger("r4");
  require_error(api.call("GET", "/api/v1/runs/r4/tasks/nope"), 404, "not_found", "task 'nope'");
  require_error(api.call("POST", "/api/v1/runs/r4/tasks/nope/clear"), 404, "not_found",
                "task 'nope'");
}

TEST_CASE("approving a task that is not awaiting approval answers 409", "[http][scheduler]") {
  Api api;
  api.trigger("r5");
  REQUIRE(api.eventually_awaiting("r5"));
  require_error(api.call("POST", "/api/v1/runs/r5/tasks/build/approve"), 409, "failed_precondition",
                "not awaiting approval");
  require_error(api.call("POST", "/api/v1/runs/r5/tasks/nope/reject"), 409, "failed_precondition",
                "not awaiting approval");
  // A taken run id.
  Reply again = api.call("POST", "/api/v1/dags/gated/runs", R"({"run_id": "r5"})");
  require_error(again, 409, "already_exists", "already exists");
  CHECK(again.body.at("error").at("details").at("field") == "run_id");
}

TEST_CASE("malformed bodies and queries answer 400 naming the problem", "[http][scheduler]") {
  Api api;
  struct Case {
    std::string method, target, body, part;
  };
  std::vector<Case> cases = {
      {"POST", "/api/v1/dags/gated/runs", "{", "not valid JSON"},
      {"POST", "/api/v1/dags/gated/runs", "[]", "must be a JSON object"},
      {"POST", "/api/v1/dags/gated/runs", R"({"confs": {}})", "unknown field 'confs'"},
      {"POST", "/api/v1/dags/gated/runs", R"({"conf": "x"})", "body.conf must be an object"},
      {"POST", "/api/v1/dags/gated/runs", R"({"run_id": 7})", "body.run_id must be a string"},
      {"POST", "/api/v1/dags/gated/runs", R"({"run_id": "a/b"})", "must not contain '/'"},
      {"POST", "/api/v1/dags/gated/runs", R"({"run_id": ""})", "must not be empty"},
      {"POST", "/api/v1/dags/typed/runs", R"({"conf": {"n": "seven"}})", "params schema"},
      {"POST", "/api/v1/dags/gated/pause", R"({"why": 1})", "unknown field 'why'"},
      {"POST", "/api/v1/runs/x/cancel", R"({"force": true})", "unknown field 'force'"},
      {"POST", "/api/v1/runs/x/tasks/approve/approve", R"({"comment": 5})",
       "body.comment must be a string"},
      {"POST", "/api/v1/runs/x/tasks/approve/clear", R"({"downstream": "yes"})",
       "body.downstream must be a boolean"},
      {"GET", "/api/v1/runs?limit=-1", "", "limit"},
      {"GET", "/api/v1/runs?state=done", "", "state=done is not one of"},
      {"GET", "/api/v1/runs?dag=gated", "", "unknown query parameter 'dag'"},
      {"GET", "/api/v1/approvals?state=open", "", "state=open is not one of"},
      {"GET", "/api/v1/audit?limit=x", "", "limit"},
  };
  for (const Case& c : cases) {
    INFO(c.method << " " << c.target << " " << c.body);
    require_error(api.call(c.method, c.target, c.body), 400, "invalid_argument", c.part);
  }
  // Nothing was started by the refused triggers.
  CHECK(api.ok("GET", "/api/v1/runs?limit=0").body.at("runs").as_array().empty());
}

TEST_CASE("without a scheduler reads work and changes answer 404 or 503", "[http][scheduler]") {
  Api api(/*with_scheduler=*/false);
  store::SchedulerBatch batch;
  batch.runs.push_back({.run_id = "old", .dag_id = "gated", .state = "running"});
  batch.tasks.push_back({.run_id = "old", .task_id = "build", .state = "success"});
  batch.audit.push_back({.at_ms = 1,
                         .actor = "cli:alice",
                         .action = "run.cancel",
                         .object = "run/x",
                         .result = "ok",
                         .request_id = "abc"});
  REQUIRE_OK(api.store->apply_scheduler_batch(batch));

  CHECK(api.ok("GET", "/api/v1/dags").body.at("dags").as_array().empty());
  json::value run = api.ok("GET", "/api/v1/runs/old").body;
  CHECK(run.at("state") == "running");
  CHECK(run.at("tasks").at(0).at("task_id") == "build");
  require_error(api.call("GET", "/api/v1/dags/gated"), 404, "not_found", "runs no DAGs");
  require_error(api.call("POST", "/api/v1/dags/gated/runs"), 404, "not_found", "runs no DAGs");
  require_error(api.call("POST", "/api/v1/runs/old/cancel"), 503, "unavailable",
                "runs no scheduler");
  require_error(api.call("POST", "/api/v1/runs/old/tasks/approve/approve"), 503, "unavailable",
                "runs no scheduler");
  json::value audit = api.ok("GET", "/api/v1/audit").body;
  REQUIRE(audit.at("audit").as_array().size() == 1);
  CHECK(audit.at("audit").at(0).at("request_id") == "abc");
  CHECK(audit.at("audit").at(0).at("at") == "1970-01-01T00:00:00.001Z");
}

TEST_CASE("views replace invalid UTF-8 and order tasks by the DAG", "[http][scheduler]") {
  store::AuditRow row;
  row.detail = std::string("ok\xff", 3);
  CHECK(to_json(audit_view(row).at("detail")) == "\"ok\xEF\xBF\xBD\"");
  scheduler::Dag dag = parse(kGated);
  store::RunRow run{.run_id = "r", .dag_id = "gated"};
  std::vector<store::TaskRow> rows = {{.run_id = "r", .task_id = "zeta", .state = "success"},
                                      {.run_id = "r", .task_id = "deploy", .state = "queued"}};
  std::vector<scheduler::TaskView> v = order_tasks(run, rows, &dag);
  REQUIRE(v.size() == 4);
  CHECK(v[0].row.task_id == "build");
  CHECK(v[0].row.state == "none");
  CHECK(v[2].row.task_id == "deploy");
  CHECK(v[3].row.task_id == "zeta");
  CHECK(tasks_to_clear(dag, 0, true) == std::vector<std::string>{"build", "approve", "deploy"});
  CHECK(tasks_to_clear(dag, 1, false) == std::vector<std::string>{"approve"});
}

}  // namespace
}  // namespace factory::http
