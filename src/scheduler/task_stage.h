// TaskStage: runs one DAG task try from its dispatch record with the task's real stage, and
// reports the outcome as a result record for the scheduler.
//
// Dispatch record (topic "<dispatch_prefix><stage>", key = "<run id>/<task id>"), JSON:
//   {"run_id", "dag_id", "task_id", "try", "params": {...rendered...}, "output_topic",
//    "results_topic"}
// Result record (on results_topic, key = run id), JSON:
//   {"run_id", "task_id", "try", "state": "success"|"failed", "output": <JSON or null>,
//    "error": "...", "retryable": true|false}
// The inner stage sees the rendered params as its event payload (validated against its input
// schema); its outputs go to the task's output_topic, and the first one is the task's output
// (XCom) in the result. Every failure — retryable, permanent, a bad output — is reported as a
// failed result: retries are the scheduler's decision (the DAG's retry policy), so the engine
// never retries a dispatch itself. A fenced inner stage keeps its fence: recover() is
// forwarded.
//
// Thread-safe when the inner stage is (the engine calls process() concurrently).
#pragma once

#include <memory>
#include <string>

#include "factory/stage.h"

namespace factory::scheduler {

class TaskStage final : public Stage {
 public:
  // InvalidArgument when the inner stage's schemas do not compile.
  static Result<std::unique_ptr<TaskStage>> create(std::unique_ptr<Stage> inner);
  ~TaskStage() override;

  StageInfo info() const override;
  StageResult process(const Event& event, StageContext& ctx) override;
  Recovery recover(const Event& event, StageContext& ctx) override;

  struct Impl;

 private:
  explicit TaskStage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace factory::scheduler
