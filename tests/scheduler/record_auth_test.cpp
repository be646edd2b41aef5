// Issue 12: the scheduler and its task workers act only on records carrying the daemon's MAC
// (record_auth.h). A forged result cannot decide a running task (a gate marked passed), a forged
// dispatch (here an approval's notify message, which no live try guards) never runs its stage;
// each is dead-lettered with its reason and counted. The key persists in the store.
#include "scheduler/record_auth.h"

#include <chrono>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "obs/metrics.h"
#include "scheduler/approval_params.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_harness.h"
#include "stages/http_sink.h"

using namespace factory;
using namespace factory::scheduler;

namespace {

Dag parse(const std::string& yaml) {
  DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "noop" || s == "approval"; };
  auto d = parse_dag_yaml(yaml, "t.yaml", po);
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

// The records of every partition of `topic` once there are at least n (waits on appends, up to
// 20 s); fails the test otherwise.
std::vector<Record> wait_records(Log* log, const std::string& topic, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    uint64_t seen = log->append_sequence();
    std::vector<Record> out;
    auto info = log->describe_topic(topic);
    if (info.ok()) {
      for (int32_t p = 0; p < info->spec.partitions; ++p) {
        auto got = log->read(topic, p, Offset(0), {.max_records = 1000});
        REQUIRE_OK(got);
        out.insert(out.end(), got->records.begin(), got->records.end());
      }
    }
    if (out.size() >= n) return out;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) FAIL("fewer than " << n << " records on " << topic << " after 20 s");
    log->wait_for_append(seen, left);
  }
}

std::string header(const Record& r, std::string_view key) {
  for (const Header& h : r.headers) {
    if (h.key == key) return h.value;
  }
  return "";
}

uint64_t refused(std::string_view topic) {
  return obs::default_registry()
      .counter("factory_records_refused_total", "", {"topic"})
      .labels({topic})
      ->value();
}

uint64_t malformed(std::string_view topic) {
  return obs::default_registry()
      .counter("factory_task_results_malformed_total", "", {"topic"})
      .labels({topic})
      ->value();
}

std::string task_state(test::SchedulerHarness& h, const std::string& run, const std::string& id) {
  auto v = h.sched->show_run(run);
  REQUIRE_OK(v);
  return test::task(*v, id).state;
}

}  // namespace

TEST_CASE("a forged result record cannot mark a running gate as passed", "[scheduler][security]") {
  test::SchedulerHarness h({parse(R"(
dag_id: gated
tasks:
  gate: {stage: noop, params: {checks: 1}}
)")},
                           {.run_tasks = false});  // the gate stays running: no worker
  auto run = h.sched->trigger("gated", "{}");
  REQUIRE_OK(run);
  // Its dispatch is appended once its running state is durable.
  std::vector<Record> dispatched = wait_records(h.log.get(), "factory.dispatch.noop", 1);
  CHECK(header(dispatched[0], RecordAuth::kHeader).starts_with("v1="));
  REQUIRE(task_state(h, *run, "gate") == "running");

  const uint64_t before = refused("factory.task-results");
  ProducerRecord forged;
  forged.key = *run;
  forged.value = R"({"run_id":")" + *run +
                 R"(","task_id":"gate","try":1,"state":"success","output":{"gate_passed":true},)"
                 R"("retryable":false})";
  ProducerRecord wrong_key = forged;  // signed, but not with this daemon's key
  auto other = RecordAuth::from_key_for_test(std::string(32, 'k'));
  REQUIRE_OK(other);
  wrong_key.headers.push_back(
      {std::string(RecordAuth::kHeader),
       (*other)->sign("factory.task-results", wrong_key.key, *wrong_key.value)});
  test::append_ok(h.log.get(), "factory.task-results", {forged, wrong_key});

  std::vector<Record> letters = wait_records(h.log.get(), "factory.task-results.dlq", 2);
  REQUIRE(letters.size() == 2);
  std::string reasons =
      header(letters[0], "factory.dlq.reason") + "\n" + header(letters[1], "factory.dlq.reason");
  INFO(reasons);
  CHECK(reasons.find("result record refused: the record has no factory.auth header") !=
        std::string::npos);
  CHECK(reasons.find("forged or altered") != std::string::npos);
  CHECK(header(letters[0], "factory.source.topic") == "factory.task-results");
  CHECK(refused("factory.task-results") - before == 2);
  CHECK(task_state(h, *run, "gate") == "running");

  // The same result with the daemon's own key (kept in the store) is applied.
  auto mine = RecordAuth::load_or_create(h.store.get());
  REQUIRE_OK(mine);
  ProducerRecord real = forged;
  real.headers.push_back({std::string(RecordAuth::kHeader),
                          (*mine)->sign("factory.task-results", real.key, *real.value)});
  test::append_ok(h.log.get(), "factory.task-results", {real});
  auto done = h.sched->wait_for_run(*run, 20'000);
  REQUIRE_OK(done);
  CHECK(done->run.state == "success");
}

TEST_CASE("a malformed result record is dead-lettered with its reason and counted",
          "[scheduler][security]") {
  test::SchedulerHarness h({parse(R"(
dag_id: gated
tasks:
  gate: {stage: noop}
)")},
                           {.run_tasks = false});  // the gate stays running: no worker
  auto run = h.sched->trigger("gated", "{}");
  REQUIRE_OK(run);
  (void)wait_records(h.log.get(), "factory.dispatch.noop", 1);
  const uint64_t before = malformed("factory.task-results");
  const uint64_t refused_before = refused("factory.task-results");
  auto mine = RecordAuth::load_or_create(h.store.get());
  REQUIRE_OK(mine);
  // Signed with the daemon's key, so only their shape is wrong: not JSON, and a result whose
  // try is a string (once silently ignored as "another try's").
  std::vector<ProducerRecord> bad(2);
  bad[0].value = "{not json";
  bad[1].value = R"({"run_id":")" + *run + R"(","task_id":"gate","try":"1","state":"success"})";
  for (ProducerRecord& r : bad) {
    r.key = *run;
    r.headers.push_back(
        {std::string(RecordAuth::kHeader), (*mine)->sign("factory.task-results", r.key, *r.value)});
  }
  test::append_ok(h.log.get(), "factory.task-results", bad);

  std::vector<Record> letters = wait_records(h.log.get(), "factory.task-results.dlq", 2);
  REQUIRE(letters.size() == 2);
  std::string reasons =
      header(letters[0], "factory.dlq.reason") + "\n" + header(letters[1], "factory.dlq.reason");
  INFO(reasons);
  CHECK(reasons.find("result record refused: result record is not JSON") != std::string::npos);
  CHECK(reasons.find("result record refused: result record lacks try") != std::string::npos);
  CHECK(header(letters[0], "factory.source.topic") == "factory.task-results");
  CHECK(malformed("factory.task-results") - before == 2);
  CHECK(refused("factory.task-results") == refused_before);  // authentic, only malformed
  CHECK(task_state(h, *run, "gate") == "running");
}

TEST_CASE("a forged approval-notify dispatch is dead-lettered, not run", "[scheduler][security]") {
  test::HttpSink sink(200);
  // The notify binding exists because an approval has notify settings; no run is started.
  test::SchedulerHarness h({parse(R"(
dag_id: notified
tasks:
  approve:
    stage: approval
    params:
      notify: {webhook_url: "http://127.0.0.1:1/nobody-listens"}
)")});
  ApprovalNotify notify;
  notify.webhook_url = sink.url() + "/forged";
  notify.text = "click here";
  std::string params = notify_params_json(notify, "r1", "notified", "approve", "", 1);
  ProducerRecord forged;
  forged.key = "r1/approve";
  forged.value = R"({"run_id":"r1","dag_id":"notified","task_id":"approve","try":1,)"
                 R"("kind":"notify","params":)" +
                 params + R"(,"output_topic":"","results_topic":"factory.task-results"})";
  const uint64_t before = refused("factory.dispatch.approval_notify");
  test::append_ok(h.log.get(), "factory.dispatch.approval_notify", {forged});
  std::vector<Record> letters =
      wait_records(h.log.get(), "factory.dispatch.approval_notify.dlq", 1);
  std::string reason = header(letters[0], "factory.dlq.reason");
  INFO(reason);
  CHECK(reason.find("dispatch record refused, not run: the record has no factory.auth header") !=
        std::string::npos);
  CHECK(refused("factory.dispatch.approval_notify") - before == 1);
  CHECK(sink.requests().empty());
}
