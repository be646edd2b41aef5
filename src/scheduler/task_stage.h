// TaskStage: runs one DAG task try from its dispatch record with the task's real stage, and
// reports the outcome as a result record for the scheduler.
//
// Dispatch record (topic "<dispatch_prefix><stage>", key = "<run id>/<task id>", header
// factory.auth) in, result record (on results_topic, key = run id, header factory.auth) out:
// their shapes, writers and readers are in task_records.h.
// The inner stage sees the rendered params as its event payload (validated against its input
// schema); its outputs go to the task's output_topic, and the first one is the task's output
// (XCom) in the result. Every failure — retryable, permanent, a bad output — is reported as a
// failed result: retries are the scheduler's decision (the DAG's retry policy), so the engine
// never retries a dispatch itself. A fenced inner stage keeps its fence: recover() is
// forwarded.
//
// Live tries (live_tries.h). With the scheduler's LiveTries, a worker acts only on the try the
// scheduler has running: a dispatch of another try (superseded by an execution_timeout, a
// cancel, a clear, or already finished) is not run; the inner stage's StageContext reports
// cancelled() as soon as its try stops being live, so a long stage can stop early; and when the
// try is no longer live once the stage returns, nothing is appended — no outputs, no result.
// Limitation: a try superseded between that last check and the engine's append of its outputs
// still appends them (the window is the engine's append, not the stage's work); its result is
// then ignored by the scheduler, which applies results only to the live try. A dispatch with
// "kind": "notify" (an approval's message, not a task's try) is not checked.
//
// Authentication (record_auth.h). With the daemon's RecordAuth, a dispatch is acted on only
// when its factory.auth MAC matches (else it is refused — a permanent failure the engine
// dead-letters with the reason — and counted in factory_records_refused_total), and every
// result carries the MAC the scheduler checks. An authentic dispatch also carries the task's
// literal params, which the inner stage reads as its config(), and the commits the run's
// granted approvals were bound to, which it sees as kApprovedCommitHeader headers (any such
// header the record itself had is dropped). A stage output aimed at an internal topic fails
// the try. Without a RecordAuth (`factoryd tasks test`) nothing is checked or signed.
//
// Thread-safe when the inner stage is (the engine calls process() concurrently).
#pragma once

#include <memory>
#include <string>

#include "factory/stage.h"
#include "scheduler/live_tries.h"
#include "scheduler/record_auth.h"

namespace factory::scheduler {

class TaskStage final : public Stage {
 public:
  // InvalidArgument when the inner stage's schemas do not compile. `live` and `auth` null:
  // every dispatch is run and none is checked (`factoryd tasks test`, which has no scheduler).
  static Result<std::unique_ptr<TaskStage>> create(
      std::unique_ptr<Stage> inner, std::shared_ptr<const LiveTries> live = nullptr,
      std::shared_ptr<const RecordAuth> auth = nullptr);
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
