// Task records: the JSON records the scheduler and its task workers exchange through the log,
// each written by one function and read back by its inverse (the pattern of http/log_views.h).
// The scheduler writes dispatches and task events and reads results; TaskStage (task_stage.h)
// reads dispatches and writes results; `factoryd tasks test` plays both sides without a log;
// benchmarks and tests read the events.
//
// Shapes (members in this order; [..] only when present):
//   dispatch    {"run_id","dag_id","task_id","try":N,["kind":"notify",]"params":<JSON>,
//                ["config":<object>,]["approved":["<commit>",...],]"output_topic",
//                "results_topic"}
//               topic "<dispatch_prefix><stage>", key "<run id>/<task id>", header factory.auth.
//               kind notify is an approval's message (approval_params.h), not a task's try: it
//               carries neither config nor approved.
//   result      {"run_id","task_id","try":N,"state":"success"|"failed","output":<JSON>|null,
//                ["error":"...",]"retryable":bool}
//               topic results_topic, key run id, header factory.auth.
//   task event  {"run_id","dag_id","task_id","state":"<task state>","try":N,"at_ms":N}
//   run event   {"run_id","dag_id","run_state":"<run state>","at_ms":N}
//               topic events_topic, key run id (observer records: derived from the store).
//
// A reader refuses (InvalidArgument, saying what is wrong) a record it cannot act on: the
// scheduler dead-letters such a result to <results_topic>.dlq with that reason and counts it
// (factory_task_results_malformed_total), TaskStage dead-letters such a dispatch.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"
#include "scheduler/dag.h"

namespace factory::scheduler {

// What a task worker runs: one try of one task (or an approval's notify message).
struct DispatchRecord {
  std::string run_id, dag_id, task_id;
  int64_t try_number = 0;
  bool notify = false;                // "kind": "notify"
  std::string params = "{}";          // the rendered params, JSON text
  std::string config;                 // the task's literal params, JSON object text; "" when absent
  std::vector<std::string> approved;  // commits the run's granted approvals were bound to
  bool has_approved = false;          // written (as [] when empty) for task dispatches
  std::string output_topic, results_topic;
};
// `params` and `config` are JSON text, copied as they are (the caller rendered them).
std::string encode_dispatch(const DispatchRecord& d);
// InvalidArgument when the payload is not a JSON object or lacks run_id, task_id, try (>= 1)
// or results_topic.
Result<DispatchRecord> decode_dispatch(std::string_view payload);

// How one try ended, as its worker reports it.
struct ResultRecord {
  std::string run_id, task_id;
  int64_t try_number = 0;
  bool success = false;
  std::string output;  // JSON text of "output"; "" for null or absent
  std::string error;
  bool retryable = true;  // a failure's: absent reads as true (the task's retry policy decides)
};
// An `output` that is not JSON is written as a JSON string.
std::string encode_result(const ResultRecord& r);
// InvalidArgument when the payload is not a JSON object, run_id or task_id is not a non-empty
// string, try is not an integer >= 1, or state is neither "success" nor "failed".
Result<ResultRecord> decode_result(std::string_view payload);

// One task instance's transition.
struct TaskEvent {
  std::string run_id, dag_id, task_id;
  TaskState state = TaskState::kNone;
  int64_t try_number = 0;
  int64_t at_ms = 0;
};
std::string encode_task_event(const TaskEvent& e);
// InvalidArgument when the payload is not a task event (other events share the topic).
Result<TaskEvent> decode_task_event(std::string_view payload);

// A run's end (or any run state change worth observing).
struct RunEvent {
  std::string run_id, dag_id;
  RunState state = RunState::kQueued;
  int64_t at_ms = 0;
};
std::string encode_run_event(const RunEvent& e);
// InvalidArgument when the payload is not a run event.
Result<RunEvent> decode_run_event(std::string_view payload);

}  // namespace factory::scheduler
