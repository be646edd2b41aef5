// Trigger rules (trigger_rules.h). Each case mirrors one branch of Airflow's
// TriggerRuleDep._evaluate_direct_relatives: first the state it would set (flag_upstream_failed),
// then whether the dependency passes. A decided state wins over "passes": Airflow sets the state
// and the task never runs (none_failed_min_one_success with every upstream skipped both skips
// and "passes").
#include "scheduler/trigger_rules.h"

namespace factory::scheduler {

std::string_view readiness_name(Readiness r) {
  switch (r) {
    case Readiness::kWait:
      return "wait";
    case Readiness::kRun:
      return "run";
    case Readiness::kSkip:
      return "skip";
    case Readiness::kUpstreamFailed:
      return "upstream_failed";
  }
  return "unknown";
}

void UpstreamCounts::add(TaskState state) {
  ++total;
  switch (state) {
    case TaskState::kSuccess:
      ++success;
      break;
    case TaskState::kFailed:
      ++failed;
      break;
    case TaskState::kUpstreamFailed:
      ++upstream_failed;
      break;
    case TaskState::kSkipped:
      ++skipped;
      break;
    case TaskState::kRemoved:
      ++removed;
      break;
    default:
      return;  // not finished: counts only in total
  }
  ++done;
}

Readiness evaluate(TriggerRule rule, const UpstreamCounts& up) {
  if (up.total == 0 || rule == TriggerRule::kAlways) return Readiness::kRun;
  const int s = up.success;
  const int f = up.failed;
  const int uf = up.upstream_failed;
  const int sk = up.skipped;
  const int u = up.total;
  const bool all_done = up.done >= u;
  auto run_if = [](bool met) { return met ? Readiness::kRun : Readiness::kWait; };

  switch (rule) {
    case TriggerRule::kAllSuccess:
      if (f + uf > 0) return Readiness::kUpstreamFailed;
      if (sk > 0) return Readiness::kSkip;
      return run_if(s >= u);
    case TriggerRule::kAllFailed:
      if (s + sk > 0) return Readiness::kSkip;
      return run_if(f + uf >= u);
    case TriggerRule::kAllDone:
      return run_if(all_done);
    case TriggerRule::kAllDoneMinOneSuccess: {
      // Skipped upstreams are not "done" for this rule: any skip skips it at once.
      if (sk > 0) return Readiness::kSkip;
      const bool non_skipped_done = s + f + uf + up.removed >= u - sk;
      if (non_skipped_done && s == 0) return Readiness::kUpstreamFailed;
      return run_if(non_skipped_done && s > 0);
    }
    case TriggerRule::kAllSkipped:
      if (s + f + uf > 0) return Readiness::kSkip;
      return run_if(sk >= u);
    case TriggerRule::kOneSuccess:
      if (all_done && up.done == sk) return Readiness::kSkip;
      if (all_done && s <= 0) return Readiness::kUpstreamFailed;
      return run_if(s > 0);
    case TriggerRule::kOneFailed:
      if (all_done && f + uf == 0) return Readiness::kSkip;
      return run_if(f + uf > 0);
    case TriggerRule::kOneDone:
      if (all_done && s + f == 0) return Readiness::kSkip;
      return run_if(s + f > 0);
    case TriggerRule::kNoneFailed:
      if (f + uf > 0) return Readiness::kUpstreamFailed;
      return run_if(s + sk >= u);
    case TriggerRule::kNoneFailedMinOneSuccess:
      if (f + uf > 0) return Readiness::kUpstreamFailed;
      if (sk == u) return Readiness::kSkip;
      return run_if(s + sk >= u);
    case TriggerRule::kNoneSkipped:
      if (sk > 0) return Readiness::kSkip;
      return run_if(all_done);
    case TriggerRule::kAlways:
      return Readiness::kRun;
  }
  return Readiness::kWait;
}

}  // namespace factory::scheduler
