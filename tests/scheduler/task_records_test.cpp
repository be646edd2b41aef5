#include "scheduler/task_records.h"

#include <string>

#include <boost/json.hpp>

#include "test_util.h"

using namespace factory;
using namespace factory::scheduler;

TEST_CASE("a task dispatch round-trips", "[scheduler][records]") {
  DispatchRecord d{.run_id = "manual__1",
                   .dag_id = "chain",
                   .task_id = "build \"x\"",
                   .try_number = 3,
                   .params = R"({"repo":"r","n":2})",
                   .config = R"({"repo":"r"})",
                   .approved = {"abc1234", "def5678"},
                   .has_approved = true,
                   .output_topic = "out",
                   .results_topic = "factory.task-results"};
  std::string text = encode_dispatch(d);
  // The documented member order (task_stage.h and the readers depend only on the names).
  CHECK(text ==
        R"({"run_id":"manual__1","dag_id":"chain","task_id":"build \"x\"","try":3,)"
        R"("params":{"repo":"r","n":2},"config":{"repo":"r"},"approved":["abc1234","def5678"],)"
        R"("output_topic":"out","results_topic":"factory.task-results"})");
  auto back = decode_dispatch(text);
  REQUIRE_OK(back);
  CHECK(back->run_id == d.run_id);
  CHECK(back->dag_id == d.dag_id);
  CHECK(back->task_id == d.task_id);
  CHECK(back->try_number == 3);
  CHECK_FALSE(back->notify);
  CHECK(back->params == d.params);
  CHECK(back->config == d.config);
  CHECK(back->approved == d.approved);
  CHECK(back->has_approved);
  CHECK(back->output_topic == "out");
  CHECK(back->results_topic == "factory.task-results");
  CHECK(encode_dispatch(*back) == text);
}

TEST_CASE("a notify dispatch round-trips without config or approvals", "[scheduler][records]") {
  DispatchRecord d{.run_id = "r",
                   .dag_id = "g",
                   .task_id = "approve",
                   .try_number = 1,
                   .notify = true,
                   .params = R"({"url":"http://x"})",
                   .results_topic = "res"};
  std::string text = encode_dispatch(d);
  CHECK(text == R"({"run_id":"r","dag_id":"g","task_id":"approve","try":1,"kind":"notify",)"
                R"("params":{"url":"http://x"},"output_topic":"","results_topic":"res"})");
  auto back = decode_dispatch(text);
  REQUIRE_OK(back);
  CHECK(back->notify);
  CHECK(back->config.empty());
  CHECK_FALSE(back->has_approved);
  CHECK(encode_dispatch(*back) == text);
}

TEST_CASE("a dispatch that cannot be run is refused", "[scheduler][records]") {
  for (const char* bad : {"", "[]", "{\"run_id\":\"r\"}", "not json",
                          R"({"run_id":"r","task_id":"t","try":0,"results_topic":"x"})",
                          R"({"run_id":"r","task_id":"t","try":1})"}) {
    INFO(bad);
    auto d = decode_dispatch(bad);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Status::Code::kInvalidArgument);
  }
}

TEST_CASE("results round-trip", "[scheduler][records]") {
  SECTION("success with an object output") {
    ResultRecord r{.run_id = "r1",
                   .task_id = "t",
                   .try_number = 2,
                   .success = true,
                   .output = R"({"gate_passed":true})",
                   .retryable = false};
    std::string text = encode_result(r);
    CHECK(text ==
          R"({"run_id":"r1","task_id":"t","try":2,"state":"success","output":{"gate_passed":true},)"
          R"("retryable":false})");
    auto back = decode_result(text);
    REQUIRE_OK(back);
    CHECK(back->run_id == "r1");
    CHECK(back->task_id == "t");
    CHECK(back->try_number == 2);
    CHECK(back->success);
    CHECK(back->output == r.output);
    CHECK(back->error.empty());
    CHECK_FALSE(back->retryable);
    CHECK(encode_result(*back) == text);
  }
  SECTION("failure without output") {
    ResultRecord r{
        .run_id = "r1", .task_id = "t", .try_number = 1, .error = "boom", .retryable = true};
    std::string text = encode_result(r);
    CHECK(text.find(R"("output":null)") != std::string::npos);
    auto back = decode_result(text);
    REQUIRE_OK(back);
    CHECK_FALSE(back->success);
    CHECK(back->output.empty());
    CHECK(back->error == "boom");
    CHECK(back->retryable);
    CHECK(encode_result(*back) == text);
  }
  SECTION("an output that is not JSON is carried as a JSON string") {
    ResultRecord r{
        .run_id = "r", .task_id = "t", .try_number = 1, .success = true, .output = "plain text"};
    auto back = decode_result(encode_result(r));
    REQUIRE_OK(back);
    CHECK(back->output == "\"plain text\"");
  }
  SECTION("an error or output that is not UTF-8 (a command's stderr) still makes JSON") {
    // Before, Boost.JSON wrote the bytes as they were; the record was refused where it went
    // and the try never finished.
    ResultRecord r{.run_id = "r",
                   .task_id = "t",
                   .try_number = 1,
                   .output = "out \xff",
                   .error = "exit 1; stderr: \xfe\xff bad \xc3",
                   .retryable = false};
    auto back = decode_result(encode_result(r));
    REQUIRE_OK(back);
    CHECK(back->error == "exit 1; stderr: \xef\xbf\xbd\xef\xbf\xbd bad \xef\xbf\xbd");
    CHECK(back->output == "\"out \xef\xbf\xbd\"");
  }
  SECTION("retryable absent reads as true") {
    auto back = decode_result(R"({"run_id":"r","task_id":"t","try":1,"state":"failed"})");
    REQUIRE_OK(back);
    CHECK(back->retryable);
  }
}

TEST_CASE("a result that cannot be applied is refused with its reason", "[scheduler][records]") {
  struct Case {
    const char* payload;
    const char* reason;
  };
  for (const Case& c : {
           Case{"", "not JSON"},
           Case{"[1]", "not a JSON object"},
           Case{R"({"task_id":"t","try":1,"state":"success"})", "lacks run_id or task_id"},
           Case{R"({"run_id":"r","try":1,"state":"success"})", "lacks run_id or task_id"},
           Case{R"({"run_id":"r","task_id":"t","state":"success"})", "lacks try"},
           Case{R"({"run_id":"r","task_id":"t","try":"1","state":"success"})", "lacks try"},
           Case{R"({"run_id":"r","task_id":"t","try":1,"state":"running"})", "'running'"},
           Case{R"({"run_id":"r","task_id":"t","try":1})", "state is ''"},
       }) {
    INFO(c.payload);
    auto r = decode_result(c.payload);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(r.status().message().find(c.reason) != std::string::npos);
  }
}

TEST_CASE("task and run events round-trip", "[scheduler][records]") {
  TaskEvent e{.run_id = "r",
              .dag_id = "d",
              .task_id = "t",
              .state = TaskState::kUpForRetry,
              .try_number = 2,
              .at_ms = 1234};
  std::string text = encode_task_event(e);
  CHECK(text ==
        R"({"run_id":"r","dag_id":"d","task_id":"t","state":"up_for_retry","try":2,"at_ms":1234})");
  auto back = decode_task_event(text);
  REQUIRE_OK(back);
  CHECK(back->state == TaskState::kUpForRetry);
  CHECK(encode_task_event(*back) == text);

  RunEvent re{.run_id = "r", .dag_id = "d", .state = RunState::kFailed, .at_ms = 9};
  std::string run_text = encode_run_event(re);
  CHECK(run_text == R"({"run_id":"r","dag_id":"d","run_state":"failed","at_ms":9})");
  auto run_back = decode_run_event(run_text);
  REQUIRE_OK(run_back);
  CHECK(run_back->state == RunState::kFailed);
  CHECK(encode_run_event(*run_back) == run_text);

  // They share a topic: each reader refuses the other's records.
  CHECK_FALSE(decode_task_event(run_text).ok());
  CHECK_FALSE(decode_run_event(text).ok());
}
