// GET /metrics (metrics_routes.cpp) through a Router without a server, over a real log, store,
// Scheduler and Engine in a temp dir: the scrape is valid exposition text, follows factoryd's
// naming rules, and its values follow what the log, the stages and the scheduler did. Recorded
// metrics live in the process-wide registry, so checks on them compare before and after.
#include "http/metrics_routes.h"

#include <string>
#include <vector>

#include "http/api.h"
#include "http/router.h"
#include "obs/exposition_check.h"
#include "obs/metrics.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler_harness.h"

namespace factory::http {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

constexpr char kGated[] = R"(
dag_id: gated
tasks:
  build: {stage: noop}
  approve: {stage: approval, upstream: [build]}
  deploy: {stage: noop, upstream: [approve]}
)";

runtime::Binding binding(std::string name, std::string stage) {
  runtime::Binding b;
  b.name = name;
  b.group = name;
  b.stage = std::move(stage);
  b.input_topic = "t";
  b.dead_letter_topic = "t.dlq";
  b.concurrency = 1;
  return b;
}

// A log with topic "t" (2 partitions), a store, a Scheduler running `gated`, and an Engine
// running its task bindings plus "pass" (noop, with a breaker "api") and "reject" (fail,
// permanently: every event is dead-lettered) on "t"; /metrics on a Router.
scheduler::Dag gated_dag() {
  auto dag = scheduler::parse_dag_yaml(kGated, "gated.yaml", {});
  REQUIRE_OK(dag);
  return std::move(*dag);
}

test::SchedulerHarnessOptions daemon_options() {
  test::SchedulerHarnessOptions o{.start = false};
  runtime::Binding pass = binding("pass", "noop");
  pass.breakers.push_back({.name = "api"});
  o.bindings.push_back(pass);
  runtime::Binding reject = binding("reject", "fail");
  reject.config_json = R"({"failures": 100, "mode": "permanent"})";
  o.bindings.push_back(reject);
  return o;
}

struct Daemon : test::SchedulerHarness {
  ApiContext ctx;
  Router router;

  Daemon() : SchedulerHarness({gated_dag()}, daemon_options()) {
    REQUIRE_OK(log->create_topic({.name = "t", .partitions = 2}));
    start();
    ctx.log = log.get();
    ctx.store = store.get();
    ctx.scheduler = sched.get();
    ctx.engine = engine.get();
    add_metrics_routes(&router, &ctx);
  }

  test::Exposition scrape() {
    Router::Match m = router.match("GET", "/metrics");
    REQUIRE(m.route);
    CHECK(m.route->role == Role::kViewer);
    Request req;
    req.method = "GET";
    req.path = "/metrics";
    Response r = m.route->handler(req);
    CHECK(r.status == 200);
    CHECK(r.content_type == "text/plain; version=0.0.4; charset=utf-8");
    test::Exposition e = test::parse_exposition(r.body);
    INFO(e.error_text());
    REQUIRE(e.ok());
    std::vector<std::string> naming = test::check_factory_conventions(e);
    std::string all;
    for (const auto& n : naming) all += n + "\n";
    INFO(all);
    CHECK(naming.empty());
    return e;
  }

  int64_t stat(const std::string& name, int64_t runtime::BindingStats::*field) {
    for (const auto& s : engine->stats())
      if (s.binding == name) return s.*field;
    return -1;
  }
};

double val(const test::Exposition& e, std::string_view name, Labels labels = {}) {
  return e.value(name, std::move(labels)).value_or(0);
}

TEST_CASE("/metrics: log, groups, stages and breakers", "[http][metrics]") {
  Daemon d;
  test::Exposition before = d.scrape();
  REQUIRE(before.all("factory_build_info").size() == 1);
  const test::ParsedSample* info = before.all("factory_build_info")[0];
  CHECK(info->value == 1);
  REQUIRE(info->labels.size() == 1);
  CHECK(info->labels[0].first == "version");
  CHECK(info->labels[0].second.find('.') != std::string::npos);  // e.g. 0.1.0, not "unknown"
  CHECK(before.value("factory_log_end_offset", {{"topic", "t"}, {"partition", "0"}}) == 0);

  std::vector<ProducerRecord> recs = {test::rec(R"({"n":1})"), test::rec(R"({"n":2})"),
                                      test::rec(R"({"n":3})")};
  for (auto& r : recs) r.partition = 0;
  test::append_ok(d.log.get(), "t", recs);
  REQUIRE_OK(
      d.log->commit_offsets("watcher", std::vector<TopicPartitionOffset>{{"t", 0, Offset(1)}}));
  REQUIRE(test::eventually([&] {
    return d.stat("pass", &runtime::BindingStats::processed) == 3 &&
           d.stat("reject", &runtime::BindingStats::dead_lettered) == 3;
  }));

  test::Exposition e = d.scrape();
  const Labels t = {{"topic", "t"}};
  CHECK(val(e, "factory_log_appends_total", t) - val(before, "factory_log_appends_total", t) == 1);
  CHECK(val(e, "factory_log_append_records_total", t) -
            val(before, "factory_log_append_records_total", t) ==
        3);
  CHECK(val(e, "factory_log_append_bytes_total", t) >
        val(before, "factory_log_append_bytes_total", t));
  CHECK(val(e, "factory_log_append_duration_seconds_count", t) -
            val(before, "factory_log_append_duration_seconds_count", t) ==
        1);
  CHECK(e.value("factory_log_end_offset", {{"topic", "t"}, {"partition", "0"}}) == 3);
  CHECK(e.value("factory_log_end_offset", {{"topic", "t"}, {"partition", "1"}}) == 0);
  CHECK(e.value("factory_log_end_offset", {{"topic", "t.dlq"}, {"partition", "0"}}) == 3);
  CHECK(e.value("factory_log_start_offset", {{"topic", "t"}, {"partition", "0"}}) == 0);

  const Labels watcher0 = {{"group", "watcher"}, {"topic", "t"}, {"partition", "0"}};
  CHECK(e.value("factory_consumer_group_committed_offset", watcher0) == 1);
  CHECK(e.value("factory_consumer_group_lag", watcher0) == 2);
  CHECK(e.value("factory_consumer_group_lag",
                {{"group", "pass"}, {"topic", "t"}, {"partition", "0"}}) == 0);

  CHECK(e.value("factory_stage_events_total",
                {{"binding", "pass"}, {"stage", "noop"}, {"outcome", "ok"}}) == 3);
  CHECK(e.value("factory_stage_events_total",
                {{"binding", "reject"}, {"stage", "fail"}, {"outcome", "dead_letter"}}) == 3);
  CHECK(e.value("factory_stage_events_total",
                {{"binding", "reject"}, {"stage", "fail"}, {"outcome", "ok"}}) == 0);
  const Labels pass = {{"binding", "pass"}, {"stage", "noop"}};
  CHECK(val(e, "factory_stage_duration_seconds_count", pass) -
            val(before, "factory_stage_duration_seconds_count", pass) ==
        3);
  CHECK(e.value("factory_stage_workers", pass) == 1);
  CHECK(e.value("factory_circuit_breaker_state", {{"binding", "pass"}, {"breaker", "api"}}) == 0);
  CHECK(e.value("factory_circuit_breaker_opened_total",
                {{"binding", "pass"}, {"breaker", "api"}}) == 0);
  CHECK(e.value("factory_stage_backpressure_paused", {{"binding", "pass"}}) == 0);
  CHECK(e.types["factory_stage_events_total"] == "counter");
  CHECK(e.types["factory_log_append_duration_seconds"] == "histogram");
}

TEST_CASE("/metrics: DAG runs, task instances, approvals and the heartbeat", "[http][metrics]") {
  Daemon d;
  test::Exposition before = d.scrape();
  const Labels gated_success = {{"dag", "gated"}, {"state", "success"}};
  // Zero-filled: every state of a loaded DAG is a series before anything ran.
  CHECK(before.value("factory_dag_runs_in_state", {{"dag", "gated"}, {"state", "running"}}) == 0);
  CHECK(before.value("factory_task_instances_in_state",
                     {{"dag", "gated"}, {"state", "awaiting_approval"}}) == 0);
  CHECK(before.value("factory_approvals_pending") == 0);

  auto run = d.sched->trigger("gated", "{}", "m1");
  REQUIRE_OK(run);
  REQUIRE(test::eventually([&] {
    auto p = d.store->list_approvals("pending");
    return p.ok() && p->size() == 1;
  }));
  test::Exposition parked = d.scrape();
  CHECK(parked.value("factory_dag_runs_in_state", {{"dag", "gated"}, {"state", "running"}}) == 1);
  CHECK(parked.value("factory_task_instances_in_state",
                     {{"dag", "gated"}, {"state", "awaiting_approval"}}) == 1);
  CHECK(parked.value("factory_task_instances_in_state", gated_success) == 1);
  CHECK(parked.value("factory_approvals_pending") == 1);
  CHECK(val(parked, "factory_approval_oldest_pending_age_seconds") >= 0);
  CHECK(val(parked, "factory_scheduler_heartbeat_timestamp_seconds") > 1.7e9);

  REQUIRE_OK(d.sched->decide("m1", "approve", true, "test", ""));
  auto ended = d.sched->wait_for_run("m1", 20'000);
  REQUIRE_OK(ended);
  REQUIRE(ended->run.state == "success");
  test::Exposition e = d.scrape();
  CHECK(val(e, "factory_dag_runs_total", gated_success) -
            val(before, "factory_dag_runs_total", gated_success) ==
        1);
  CHECK(val(e, "factory_dag_run_duration_seconds_count", {{"dag", "gated"}}) -
            val(before, "factory_dag_run_duration_seconds_count", {{"dag", "gated"}}) ==
        1);
  CHECK(val(e, "factory_task_instances_total", gated_success) -
            val(before, "factory_task_instances_total", gated_success) ==
        3);
  // build and deploy ran as tries; the approval never did.
  CHECK(val(e, "factory_task_duration_seconds_count", {{"stage", "noop"}}) -
            val(before, "factory_task_duration_seconds_count", {{"stage", "noop"}}) ==
        2);
  CHECK(e.value("factory_dag_runs_in_state", gated_success) == 1);
  CHECK(e.value("factory_dag_runs_in_state", {{"dag", "gated"}, {"state", "running"}}) == 0);
  CHECK(e.value("factory_task_instances_in_state", gated_success) == 3);
  CHECK(e.value("factory_approvals_pending") == 0);
  CHECK(e.value("factory_approval_oldest_pending_age_seconds") == 0);
}

TEST_CASE("HTTP requests and webhook deliveries are recorded with bounded labels",
          "[http][metrics]") {
  obs::Registry reg;
  record_http_request(&reg, {.method = "GET",
                             .route = "/api/v1/runs/{run_id}",
                             .status = 200,
                             .duration_s = 0.003,
                             .principal = "ops",
                             .request_id = "r-1"});
  record_http_request(&reg, {.method = "GET", .route = "/api/v1/runs/{run_id}", .status = 404});
  record_http_request(&reg, {.method = "BREW", .route = "", .status = 404, .duration_s = 0.001});
  record_webhook_delivery(&reg, "github", WebhookOutcome::kAccepted);
  record_webhook_delivery(&reg, "github", WebhookOutcome::kAccepted);
  record_webhook_delivery(&reg, "jira", WebhookOutcome::kBadSignature);
  record_webhook_delivery(&reg, "gitlab", WebhookOutcome::kDuplicate);

  test::Exposition e = test::parse_exposition(reg.render());
  INFO(e.error_text());
  REQUIRE(e.ok());
  CHECK(test::check_factory_conventions(e).empty());
  const std::string route = "/api/v1/runs/{run_id}";
  CHECK(e.value("factory_http_requests_total",
                {{"route", route}, {"method", "GET"}, {"code", "200"}}) == 1);
  CHECK(e.value("factory_http_requests_total",
                {{"route", route}, {"method", "GET"}, {"code", "404"}}) == 1);
  CHECK(e.value("factory_http_requests_total",
                {{"route", "unmatched"}, {"method", "other"}, {"code", "404"}}) == 1);
  CHECK(e.value("factory_http_request_duration_seconds_count", {{"route", route}}) == 2);
  CHECK(e.value("factory_http_request_duration_seconds_bucket",
                {{"route", route}, {"le", "0.0025"}}) == 1);  // the 404 took 0 s
  CHECK(e.value("factory_http_request_duration_seconds_bucket",
                {{"route", route}, {"le", "0.005"}}) == 2);
  CHECK(e.value("factory_webhook_deliveries_total",
                {{"source", "github"}, {"outcome", "accepted"}}) == 2);
  CHECK(e.value("factory_webhook_deliveries_total",
                {{"source", "jira"}, {"outcome", "bad_signature"}}) == 1);
  CHECK(e.value("factory_webhook_deliveries_total",
                {{"source", "other"}, {"outcome", "duplicate"}}) == 1);
  for (auto o :
       {WebhookOutcome::kAccepted, WebhookOutcome::kDuplicate, WebhookOutcome::kBadSignature,
        WebhookOutcome::kInvalid, WebhookOutcome::kRejected, WebhookOutcome::kFailed}) {
    CHECK(obs::valid_label_name(webhook_outcome_name(o)));  // snake_case words
  }
}

}  // namespace
}  // namespace factory::http
