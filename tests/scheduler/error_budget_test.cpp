// The error budget (scheduler/error_budget.h, `error_budget:` in docs/dags.md): the window on
// its own, the DAG file key with its errors, and a real Scheduler whose gate-like stage takes
// its verdict from the run's conf — no breach below min_samples, one postmortem run and
// auto-approval paused per breach, nothing more while it lasts, a new breach after recovery
// (by passing samples, or by the window moving on), a restart that keeps the window and
// triggers nothing again, and an operator resuming auto-approval through the API.
#include "scheduler/error_budget.h"

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "base/clock.h"
#include "factory/stage.h"
#include "http/api.h"
#include "http/router.h"
#include "obs/metrics.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_harness.h"
#include "store/meta_store.h"
#include "test_util.h"

using namespace factory;
using namespace factory::scheduler;
using Catch::Matchers::Contains;

namespace {

namespace json = boost::json;

// A quality gate whose verdict is the `pass` param (the run's conf): {"gate_passed": pass}.
// Without a boolean `pass` it emits an output with no verdict.
class VerdictStage final : public Stage {
 public:
  StageInfo info() const override { return {.name = "eb-gate", .version = "1"}; }
  StageResult process(const Event& e, StageContext& ctx) override {
    json::value p = json::parse(e.payload);
    const json::value* pass = p.as_object().if_contains("pass");
    if (!pass || !pass->is_bool()) {
      ctx.emit({.payload = R"({"report":"no verdict"})"});
    } else {
      ctx.emit({.payload = std::string(R"({"gate_passed":)") +
                           (pass->as_bool() ? "true" : "false") + "}"});
    }
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(VerdictStage);

Dag parse(const std::string& yaml, const std::string& source = "test.yaml") {
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "eb-gate" || s == "noop"; };
  auto d = parse_dag_yaml(yaml, source, po);
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

Status parse_error(const std::string& yaml) {
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "eb-gate" || s == "noop"; };
  auto d = parse_dag_yaml(yaml, "f.yaml", po);
  REQUIRE_FALSE(d.ok());
  return d.status();
}

// The factory in small: a gate whose verdict is the conf's `pass`, then an approval the policy
// approves unless auto-approval is paused.
std::string factory_yaml(double max_ratio, int min_samples) {
  return R"(
dag_id: factory
max_active_runs: 1000
error_budget:
  stage: eb-gate
  field: gate_passed
  window: 1h
  max_failure_ratio: )" +
         std::to_string(max_ratio) + R"(
  min_samples: )" +
         std::to_string(min_samples) + R"(
  postmortem_dag: postmortem
  pause_auto_approval: true
tasks:
  gate: {stage: eb-gate, params: {pass: "{{ run.conf.pass }}"}}
  approve: {stage: approval, upstream: [gate], params: {auto_approve: true}}
)";
}

// The bundled postmortem DAG (config/dags/postmortem.yaml).
Dag bundled_postmortem() {
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "noop"; };
  auto d = load_dag_file(std::string(FACTORY_SOURCE_DIR) + "/config/dags/postmortem.yaml", po);
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

constexpr char kPostmortem[] = R"(
dag_id: postmortem
tasks:
  collect: {stage: noop, output_topic: postmortems, params: {breach: "{{ run.conf }}"}}
  acknowledge: {stage: approval, upstream: [collect]}
)";

// The clock is a base of its own so that it exists before the harness starts the scheduler.
struct TestClock {
  base::ManualClock clock{1'795'860'000'000};  // 2026-11-28T10:00:00Z
};

struct Harness : TestClock, test::SchedulerHarness {
  explicit Harness(std::vector<Dag> d) : SchedulerHarness(std::move(d), {.clock = &clock}) {}

  // Triggers one run per verdict and waits until each gate has finished (every verdict is
  // then counted: a sample is recorded in the step that records the gate's success).
  std::vector<std::string> gates(const std::vector<bool>& verdicts) {
    std::vector<std::string> ids;
    for (bool pass : verdicts) {
      auto id = sched->trigger("factory", pass ? R"({"pass":true})" : R"({"pass":false})");
      REQUIRE_OK(id);
      ids.push_back(*id);
    }
    for (const std::string& id : ids) {
      INFO("run " << id);
      REQUIRE(test::eventually(
          [&] {
            auto tasks = store->list_tasks(id);
            if (!tasks.ok()) return false;
            for (const auto& t : *tasks) {
              if (t.task_id == "gate") return t.state == "success";
            }
            return false;
          },
          20'000));
    }
    return ids;
  }
  std::vector<std::string> passes(int n) { return gates(std::vector<bool>(n, true)); }
  std::vector<std::string> failures(int n) { return gates(std::vector<bool>(n, false)); }

  ErrorBudgetState budget() {
    auto all = sched->error_budgets();
    REQUIRE(all.size() == 1);
    return all[0];
  }
  // The budget once the loop has counted `samples` samples.
  ErrorBudgetState budget_at(int64_t samples) {
    REQUIRE(test::eventually([&] { return budget().samples == samples; }, 20'000));
    return budget();
  }
  std::vector<store::RunRow> postmortems() {
    auto runs = store->list_runs({.dag_id = "postmortem"});
    REQUIRE_OK(runs);
    return *runs;
  }
  std::string approval_state(const std::string& run_id) {
    auto all = store->list_approvals("");
    REQUIRE_OK(all);
    for (const auto& a : *all) {
      if (a.run_id == run_id && a.task_id == "approve") return a.state;
    }
    return "";
  }
  // Audit rows with this action, oldest first.
  std::vector<store::AuditRow> audit(const std::string& action) {
    auto rows = store->list_audit(0);
    REQUIRE_OK(rows);
    std::vector<store::AuditRow> out;
    for (auto it = rows->rbegin(); it != rows->rend(); ++it) {
      if (it->action == action) out.push_back(*it);
    }
    return out;
  }
};

ErrorBudgetSpec spec(double max_ratio, int min_samples, int64_t window_ms = 3'600'000) {
  ErrorBudgetSpec s;
  s.stage = "gate";
  s.field = "gate_passed";
  s.window_ms = window_ms;
  s.max_failure_ratio = max_ratio;
  s.min_samples = min_samples;
  return s;
}

}  // namespace

// ---- the window on its own ----

TEST_CASE("ErrorBudget: a breach needs min_samples and a ratio above the maximum",
          "[scheduler][error_budget]") {
  ErrorBudget b("d", spec(0.02, 20));
  const int64_t t0 = 1'000'000'000;
  for (int i = 0; i < 18; ++i) b.record(t0, true);
  b.record(t0, false);
  CHECK(b.update(t0) == ErrorBudget::Change::kNone);  // 1 of 19: 5.3%, but below 20 samples
  CHECK(b.state().samples == 19);
  CHECK(b.state().failures == 1);
  CHECK_FALSE(b.state().in_breach);
  b.record(t0, true);
  CHECK(b.update(t0) == ErrorBudget::Change::kBreached);  // 1 of 20: 5%
  CHECK(b.state().in_breach);
  CHECK(b.state().breaches == 1);
  CHECK(b.state().last_breach_ms == t0);
  CHECK(b.state().ratio == Approx(0.05));
  b.record(t0, false);
  CHECK(b.update(t0) == ErrorBudget::Change::kNone);  // still the same breach
  CHECK(b.state().breaches == 1);
  for (int i = 0; i < 78; ++i) b.record(t0, true);
  CHECK(b.update(t0) == ErrorBudget::Change::kNone);  // 2 of 99: 2.02%
  b.record(t0, true);
  CHECK(b.update(t0) == ErrorBudget::Change::kRecovered);  // 2 of 100: exactly 2% is within
  CHECK_FALSE(b.state().in_breach);
  b.record(t0, false);
  CHECK(b.update(t0) == ErrorBudget::Change::kBreached);  // a new crossing, a new breach
  CHECK(b.state().breaches == 2);
}

TEST_CASE("ErrorBudget: samples leave the window in 60 buckets, below min_samples no flapping",
          "[scheduler][error_budget]") {
  const int64_t window = 3'600'000;  // buckets of one minute
  ErrorBudget b("d", spec(0.1, 4, window));
  const int64_t t0 = 1'800'000'000'000;  // a whole minute
  b.record(t0, false);
  b.record(t0, false);
  b.record(t0 + 30 * 60'000, true);
  b.record(t0 + 30 * 60'000, true);
  CHECK(b.update(t0 + 30 * 60'000) == ErrorBudget::Change::kBreached);  // 2 of 4
  // 59 minutes later the first bucket is still in; at 60 it is out.
  CHECK(b.update(t0 + 59 * 60'000 + 59'999) == ErrorBudget::Change::kNone);
  CHECK(b.state().samples == 4);
  CHECK(b.update(t0 + 60 * 60'000) == ErrorBudget::Change::kNone);
  // 2 passes left: below min_samples, so no verdict — the breach holds rather than flapping.
  CHECK(b.state().samples == 2);
  CHECK(b.state().failures == 0);
  CHECK(b.state().in_breach);
  // The window empties: nothing is left of the breach.
  CHECK(b.update(t0 + 90 * 60'000) == ErrorBudget::Change::kRecovered);
  CHECK(b.state().samples == 0);
  CHECK(b.state().ratio == 0);
}

TEST_CASE("ErrorBudget: encode and decode keep the window, the breach and its postmortem",
          "[scheduler][error_budget]") {
  const int64_t t0 = 1'800'000'000'000;
  ErrorBudget b("d", spec(0.25, 4));
  for (bool pass : {true, false, true, false}) b.record(t0, pass);
  b.record(t0 + 120'000, true);
  REQUIRE(b.update(t0 + 120'000) == ErrorBudget::Change::kBreached);
  b.set_postmortem_run("error_budget__d__1");
  CHECK(b.take_dirty());
  CHECK_FALSE(b.take_dirty());

  ErrorBudget same("d", spec(0.25, 4));
  REQUIRE_OK(same.decode(b.encode()));
  CHECK(same.encode() == b.encode());
  CHECK(same.update(t0 + 120'000) == ErrorBudget::Change::kNone);  // no second breach
  ErrorBudgetState s = same.state();
  CHECK(s.samples == 5);
  CHECK(s.failures == 2);
  CHECK(s.in_breach);
  CHECK(s.breaches == 1);
  CHECK(s.last_breach_ms == t0 + 120'000);
  CHECK(s.last_postmortem_run_id == "error_budget__d__1");

  // The window changed in the file since: the samples move to the new buckets.
  ErrorBudget wider("d", spec(0.25, 4, 2 * 3'600'000));
  REQUIRE_OK(wider.decode(b.encode()));
  CHECK(wider.update(t0 + 120'000) == ErrorBudget::Change::kNone);
  CHECK(wider.state().samples == 5);
  CHECK(wider.state().failures == 2);

  ErrorBudget broken("d", spec(0.25, 4));
  CHECK_FALSE(broken.decode("{").ok());
  CHECK_FALSE(broken.decode(R"({"v":1,"bucket_ms":60000})").ok());
  Status bad = broken.decode(
      R"({"v":1,"bucket_ms":60000,"buckets":[[1,1,2]],"in_breach":false,"breaches":0,)"
      R"("last_breach_ms":0,"last_postmortem_run_id":""})");
  CHECK_THAT(bad.message(), Contains("DAG 'd'"));
  CHECK(broken.state().samples == 0);
}

// ---- the DAG file ----

TEST_CASE("error_budget in a DAG file: read, and bad values refused at their line",
          "[scheduler][error_budget]") {
  Dag d = parse(factory_yaml(0.02, 20));
  REQUIRE(d.error_budget);
  CHECK(d.error_budget->stage == "eb-gate");
  CHECK(d.error_budget->field == "gate_passed");
  CHECK(d.error_budget->window_ms == 3'600'000);
  CHECK(d.error_budget->max_failure_ratio == Approx(0.02));
  CHECK(d.error_budget->min_samples == 20);
  CHECK(d.error_budget->postmortem_dag == "postmortem");
  CHECK(d.error_budget->pause_auto_approval);
  CHECK(d.error_budget->line == 4);

  auto with = [](const std::string& budget) {
    return "dag_id: d\nerror_budget: " + budget +
           "\ntasks:\n  gate: {stage: eb-gate}\n  other: {stage: noop, upstream: [gate]}\n";
  };
  const std::string ok = "stage: eb-gate, field: gate_passed, window: 1h";
  // Defaults: min_samples 1, no postmortem, no pause.
  Dag minimal = parse(with("{" + ok + ", max_failure_ratio: 0}"));
  CHECK(minimal.error_budget->min_samples == 1);
  CHECK(minimal.error_budget->postmortem_dag.empty());
  CHECK_FALSE(minimal.error_budget->pause_auto_approval);

  struct Bad {
    std::string budget;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {"{" + ok + ", max_failure_ratio: 2%}",
       "f.yaml:2:83: error_budget.max_failure_ratio '2%' "
       "is a percentage; write it as a fraction"},
      {"{" + ok + ", max_failure_ratio: 1}",
       "f.yaml:2:83: error_budget.max_failure_ratio '1' "
       "is out of range"},
      {"{" + ok + ", max_failure_ratio: -0.1}", "is out of range"},
      {"{" + ok + ", max_failure_ratio: lots}", "is not a number"},
      {"{" + ok + "}", "f.yaml:2:15: error_budget has no max_failure_ratio:"},
      {"{stage: eb-gate, field: gate_passed, max_failure_ratio: 0.1}", "has no window:"},
      {"{stage: eb-gat, field: gate_passed, window: 1h, max_failure_ratio: 0.1}",
       "f.yaml:2:23: error_budget.stage 'eb-gat' is not the stage of any task of DAG 'd'; did "
       "you mean 'eb-gate'?"},
      {"{stage: deploy, field: gate_passed, window: 1h, max_failure_ratio: 0.1}",
       "the samples are the task instances of that stage"},
      {"{stage: eb-gate, field: gate.passed, window: 1h, max_failure_ratio: 0.1}",
       "error_budget.field 'gate.passed' is not a field name"},
      {"{stage: eb-gate, field: gate_passed, window: 10ms, max_failure_ratio: 0.1}",
       "error_budget.window: '10ms' is too short; use at least 1000ms"},
      {"{stage: eb-gate, field: gate_passed, window: soon, max_failure_ratio: 0.1}",
       "error_budget.window"},
      {"{" + ok + ", max_failure_ratio: 0.1, min_samples: 0}", "error_budget.min_samples"},
      {"{" + ok + ", max_failure_ratio: 0.1, postmortem_dag: 'a b'}",
       "error_budget.postmortem_dag 'a b' is not a valid dag_id"},
      {"{" + ok + ", max_failure_ratio: 0.1, pause_auto_approval: yes}",
       "error_budget.pause_auto_approval: 'yes' is not true or false"},
      {"{" + ok + ", max_ratio: 0.1}",
       "unknown key 'max_ratio' in error_budget; did you mean "
       "'max_failure_ratio'?"},
      {"[gate]", "f.yaml:2:15: error_budget must be a mapping"},
  };
  for (const Bad& b : bad) {
    INFO(b.budget);
    Status s = parse_error(with(b.budget));
    CHECK(s.code() == Status::Code::kInvalidArgument);
    CHECK_THAT(s.message(), Contains(b.message));
  }
  // An alias at the top level.
  CHECK_THAT(parse_error("dag_id: d\nbudget: {}\ntasks: {gate: {stage: eb-gate}}\n").message(),
             Contains("did you mean 'error_budget'?"));
}

TEST_CASE("load_dags refuses an error_budget whose postmortem DAG no file defines",
          "[scheduler][error_budget]") {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.str() + "/" + name) << text;
  };
  write("factory.yaml", factory_yaml(0.02, 20));
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "eb-gate" || s == "noop"; };
  auto dags = load_dags(dir.str(), po);
  REQUIRE_FALSE(dags.ok());
  CHECK_THAT(dags.status().message(),
             Contains("factory.yaml:4: error_budget.postmortem_dag 'postmortem' is not the "
                      "dag_id of any DAG file in"));
  write("postmortem.yaml", kPostmortem);
  dags = load_dags(dir.str(), po);
  REQUIRE_OK(dags);
  CHECK(dags->size() == 2);
}

TEST_CASE("the bundled DAG files: software_factory keeps an error budget, postmortem is manual",
          "[scheduler][error_budget]") {
  auto dags = load_dags(std::string(FACTORY_SOURCE_DIR) + "/config/dags", {});
  REQUIRE_OK(dags);
  const Dag* factory = nullptr;
  const Dag* postmortem = nullptr;
  for (const Dag& d : *dags) {
    if (d.dag_id == "software_factory") factory = &d;
    if (d.dag_id == "postmortem") postmortem = &d;
  }
  REQUIRE(factory);
  REQUIRE(postmortem);
  REQUIRE(factory->error_budget);
  CHECK(factory->error_budget->stage == "gate");
  CHECK(factory->error_budget->field == "gate_passed");
  CHECK(factory->error_budget->window_ms == 3'600'000);
  CHECK(factory->error_budget->max_failure_ratio == Approx(0.02));
  CHECK(factory->error_budget->min_samples == 20);
  CHECK(factory->error_budget->postmortem_dag == "postmortem");
  CHECK(factory->error_budget->pause_auto_approval);
  CHECK(postmortem->trigger.kind == Trigger::Kind::kManual);
  const Task* collect = postmortem->find_task("collect");
  const Task* ack = postmortem->find_task("acknowledge");
  REQUIRE(collect);
  REQUIRE(ack);
  CHECK(collect->output_topic == "postmortems");
  CHECK(ack->approval);
  // The conf a breach sends is accepted by the postmortem's params schema.
  auto conf = resolve_run_conf(
      *postmortem,
      R"({"dag":"software_factory","ratio":0.05,"failures":1,"samples":20,"window_ms":3600000,)"
      R"("breached_at":"2026-11-28T09:00:00.000Z","max_failure_ratio":0.02,"min_samples":20,)"
      R"("stage":"gate","breach":1,"summary":"1 of 20 gate verdicts failed"})");
  REQUIRE_OK(conf);
}

// ---- a real scheduler ----

TEST_CASE("a breached error budget triggers one postmortem and pauses auto-approval",
          "[scheduler][error_budget]") {
  Harness h({parse(factory_yaml(0.02, 20)), bundled_postmortem()});
  CHECK(h.budget().samples == 0);
  CHECK_FALSE(h.sched->auto_approval_paused());

  // 1 failure in 19 is 5.3%, but 19 samples are too few for a verdict.
  auto first = h.gates({true, true, true, true, true, true, true, true, true, false, true, true,
                        true, true, true, true, true, true, true});
  ErrorBudgetState s = h.budget_at(19);
  CHECK(s.failures == 1);
  CHECK_FALSE(s.in_breach);
  CHECK(s.breaches == 0);
  CHECK(h.postmortems().empty());
  CHECK_FALSE(h.sched->auto_approval_paused());
  // Auto-approval is on: every run went through its approval as policy:auto.
  for (const std::string& id : first) {
    auto v = h.sched->wait_for_run(id, 20'000);
    REQUIRE_OK(v);
    CHECK(v->run.state == "success");
  }

  // The 20th sample: 1 of 20 is 5% > 2%. One postmortem, auto-approval paused.
  h.passes(1);
  s = h.budget_at(20);
  CHECK(s.in_breach);
  CHECK(s.breaches == 1);
  CHECK(s.ratio == Approx(0.05));
  CHECK(s.last_postmortem_run_id == "error_budget__factory__1");
  CHECK(h.sched->auto_approval_paused());
  auto pm = h.postmortems();
  REQUIRE(pm.size() == 1);
  CHECK(pm[0].run_id == "error_budget__factory__1");
  CHECK(pm[0].trigger == "error_budget:factory");
  json::value conf = json::parse(pm[0].conf_json);
  CHECK(conf.at("dag") == "factory");
  CHECK(conf.at("failures") == 1);
  CHECK(conf.at("samples") == 20);
  CHECK(conf.at("window_ms") == 3'600'000);
  CHECK(conf.at("ratio").as_double() == Approx(0.05));
  CHECK(conf.at("breached_at") == "2026-11-28T10:00:00.000Z");
  // The postmortem's collect task records the breach; it then waits for a person.
  REQUIRE(test::eventually([&] {
    auto v = h.sched->show_run("error_budget__factory__1");
    return v.ok() && v->tasks[1].row.state == "awaiting_approval";
  }));
  auto pm_run = h.sched->show_run("error_budget__factory__1");
  REQUIRE_OK(pm_run);
  json::value record = json::parse(pm_run->tasks[0].row.output_json);
  CHECK(record.at("breach").at("samples") == 20);
  CHECK(record.at("postmortem_run_id") == "error_budget__factory__1");
  auto postmortem_records = [&] {
    auto topic = h.log->describe_topic("postmortems");
    REQUIRE_OK(topic);
    int64_t records = 0;
    for (const PartitionInfo& p : topic->partitions) records += p.log_end.value();
    return records;
  };
  // The record is on the postmortems topic (appended by the task's worker).
  REQUIRE(test::eventually([&] { return postmortem_records() == 1; }));
  auto pause = h.audit("approval.auto_pause");
  REQUIRE(pause.size() == 1);
  CHECK(pause[0].actor == "error-budget");
  CHECK_THAT(pause[0].detail, Contains("1 of 20 eb-gate verdicts failed in the last 1h"));
  REQUIRE(h.audit("error_budget.breach").size() == 1);
  CHECK(h.audit("error_budget.breach")[0].object == "dag/factory");

  // While paused, a passing run waits at its approval for a person.
  auto waiting = h.passes(1);
  REQUIRE(test::eventually([&] { return h.approval_state(waiting[0]) == "pending"; }));

  // More failures during the same breach trigger nothing more.
  h.failures(3);
  s = h.budget_at(24);
  CHECK(s.failures == 4);
  CHECK(s.in_breach);
  CHECK(s.breaches == 1);
  CHECK(h.postmortems().size() == 1);
  CHECK(h.audit("approval.auto_pause").size() == 1);

  // A restart keeps the window and the breach, and triggers nothing again.
  h.stop();
  h.start();
  s = h.budget();
  CHECK(s.samples == 24);
  CHECK(s.failures == 4);
  CHECK(s.in_breach);
  CHECK(s.breaches == 1);
  CHECK(h.sched->auto_approval_paused());
  h.failures(1);
  s = h.budget_at(25);
  CHECK(s.failures == 5);
  CHECK(s.breaches == 1);
  CHECK(h.postmortems().size() == 1);

  // An operator resumes auto-approval through the API (the route the CLI uses too).
  http::ApiContext ctx;
  ctx.log = h.log.get();
  ctx.store = h.store.get();
  ctx.scheduler = h.sched.get();
  ctx.engine = h.engine.get();
  http::Router router;
  http::add_scheduler_routes(&router, &ctx);
  auto call = [&](const std::string& method, const std::string& path, http::Role role) {
    http::Request req;
    req.method = method;
    req.path = path;
    req.principal = {.name = "ops", .role = role};
    http::Router::Match m = router.match(method, path);
    REQUIRE(m.route != nullptr);
    CHECK(m.route->role == (method == "GET" ? http::Role::kViewer : http::Role::kOperator));
    return m.route->handler(req);
  };
  http::Response got = call("GET", "/api/v1/auto-approval", http::Role::kViewer);
  REQUIRE(got.status == 200);
  json::value v = json::parse(got.body);
  CHECK(v.at("paused") == true);
  const json::object& eb = v.at("error_budget").at("factory").as_object();
  CHECK(eb.at("samples") == 25);
  CHECK(eb.at("failures") == 5);
  CHECK(eb.at("in_breach") == true);
  CHECK(eb.at("breaches") == 1);
  CHECK(eb.at("last_postmortem_run_id") == "error_budget__factory__1");
  CHECK(eb.at("postmortem_dag") == "postmortem");

  // /metrics shows the same.
  obs::Registry registry;
  ctx.metrics = &registry;
  http::add_metrics_routes(&router, &ctx);
  std::string metrics = call("GET", "/metrics", http::Role::kViewer).body;
  CHECK_THAT(metrics, Contains("factory_auto_approval_paused 1\n"));
  CHECK_THAT(metrics, Contains("factory_error_budget_ratio{dag=\"factory\"} 0.2\n"));
  CHECK_THAT(metrics, Contains("factory_error_budget_samples{dag=\"factory\"} 25\n"));
  CHECK_THAT(metrics, Contains("factory_error_budget_in_breach{dag=\"factory\"} 1\n"));
  CHECK_THAT(metrics, Contains("# TYPE factory_error_budget_breaches_total counter"));
  CHECK_THAT(metrics, Contains("factory_error_budget_breaches_total{dag=\"factory\"} 1\n"));

  http::Response resumed = call("POST", "/api/v1/auto-approval/resume", http::Role::kOperator);
  REQUIRE(resumed.status == 200);
  CHECK(json::parse(resumed.body).at("paused") == false);
  CHECK_FALSE(h.sched->auto_approval_paused());
  CHECK(router.match("POST", "/api/v1/auto-approval/resume").route->action ==
        "approval.auto_resume");
  // The budget is still breached, but a breach pauses only once: auto-approval is back on.
  auto after = h.passes(1);
  auto done = h.sched->wait_for_run(after[0], 20'000);
  REQUIRE_OK(done);
  CHECK(done->run.state == "success");
  CHECK(h.approval_state(after[0]) == "approved");
  CHECK(h.postmortems().size() == 1);
  // The approval that waited while paused still waits for a person.
  CHECK(h.approval_state(waiting[0]) == "pending");
  CHECK(postmortem_records() == 1);
  // And it stays resumed across a restart.
  h.stop();
  h.start();
  CHECK_FALSE(h.sched->auto_approval_paused());
}

TEST_CASE("after a breach ends, the next crossing is a new breach with a new postmortem",
          "[scheduler][error_budget]") {
  // 25% of at least 4 samples.
  Harness h({parse(factory_yaml(0.25, 4)), bundled_postmortem()});
  h.gates({true, false, true, false});  // 2 of 4: breach 1
  ErrorBudgetState s = h.budget_at(4);
  CHECK(s.in_breach);
  CHECK(s.breaches == 1);
  REQUIRE(h.postmortems().size() == 1);

  // Recovery by passing samples: 2 of 8 is 25%, back within the budget.
  h.passes(4);
  s = h.budget_at(8);
  CHECK_FALSE(s.in_breach);
  CHECK(s.breaches == 1);
  CHECK(h.postmortems().size() == 1);
  REQUIRE(h.audit("error_budget.recovered").size() == 1);

  // The next crossing (3 of 9) is breach 2: a second postmortem. Auto-approval is still paused
  // from the first (only an operator resumes it), so no second pause is recorded.
  h.failures(1);
  s = h.budget_at(9);
  CHECK(s.in_breach);
  CHECK(s.breaches == 2);
  CHECK(s.last_postmortem_run_id == "error_budget__factory__2");
  auto pm = h.postmortems();
  REQUIRE(pm.size() == 2);
  CHECK(pm[0].run_id == "error_budget__factory__2");  // newest first
  CHECK(json::parse(pm[0].conf_json).at("failures") == 3);
  CHECK(h.audit("approval.auto_pause").size() == 1);
  CHECK(h.sched->auto_approval_paused());

  // Recovery by time: an hour later every sample has left the window.
  REQUIRE_OK(h.sched->set_auto_approval_paused(false, "ops"));
  h.clock.advance_ms(3'600'000);
  h.log->wake_waiters();
  s = h.budget_at(0);
  CHECK_FALSE(s.in_breach);
  CHECK(s.ratio == 0);
  REQUIRE(h.audit("error_budget.recovered").size() == 2);
  // A gate task that emits no verdict is no sample.
  auto none = h.sched->trigger("factory", R"({"pass":"maybe"})");
  REQUIRE_OK(none);
  REQUIRE_OK(h.sched->wait_for_run(*none, 20'000));
  CHECK(h.budget().samples == 0);
  // A fresh crossing: breach 3, and auto-approval paused again.
  h.failures(4);
  s = h.budget_at(4);
  CHECK(s.breaches == 3);
  CHECK(h.postmortems().size() == 3);
  CHECK(h.sched->auto_approval_paused());
  CHECK(h.audit("approval.auto_pause").size() == 2);
}
