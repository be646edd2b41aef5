// LiveTries: which try of each task is running right now, as the scheduler's loop sees it.
// The scheduler writes it (a task becomes running: its try is live; it leaves running — result,
// execution_timeout, cancel, clear: no try is live), the task workers read it (task_stage.h):
// a dispatch whose try is not live is not run, a running try whose task moved on sees
// StageContext::cancelled(), and what a superseded try produced is dropped, not appended.
// Without it a timed-out try keeps running beside its retry and appends its outputs too —
// two tries at once, with different event ids, so the engine's idempotency cannot tell.
//
// The scheduler rebuilds it from the store whenever it (re)loads its state, before any worker
// of this process runs a dispatch, so it is the store's view plus the loop's unwritten step.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "base/mutex.h"

namespace factory::scheduler {

class LiveTries {
 public:
  // Try `try_number` of the task is the live one (replacing any other).
  void start(std::string_view run_id, std::string_view task_id, int64_t try_number) {
    base::MutexLock lock(&mu_);
    live_[{std::string(run_id), std::string(task_id)}] = try_number;
  }
  // The task has no live try any more (its try `try_number` ended or was superseded).
  void end(std::string_view run_id, std::string_view task_id, int64_t try_number) {
    base::MutexLock lock(&mu_);
    auto it = live_.find({std::string(run_id), std::string(task_id)});
    if (it != live_.end() && it->second == try_number) live_.erase(it);
  }
  void clear() {
    base::MutexLock lock(&mu_);
    live_.clear();
  }
  bool is_live(std::string_view run_id, std::string_view task_id, int64_t try_number) const {
    base::MutexLock lock(&mu_);
    auto it = live_.find({std::string(run_id), std::string(task_id)});
    return it != live_.end() && it->second == try_number;
  }

 private:
  mutable base::Mutex mu_;
  std::map<std::pair<std::string, std::string>, int64_t> live_ GUARDED_BY(mu_);
};

}  // namespace factory::scheduler
