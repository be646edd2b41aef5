// Retry schedule: how long to wait before the next attempt of a failed task.
//
// Exponential backoff with deterministic jitter. The delay after failed attempt n (1-based) is
//   min(initial_delay_ms * multiplier^(n-1), max_delay_ms) * f,   f in [1 - jitter, 1 + jitter]
// clamped again to [0, max_delay_ms]. f comes from splitmix64(jitter_seed ^ n), not a random
// device, so a run's schedule is reproducible: callers seed with something stable per task try
// (e.g. a hash of run id and task id), which also spreads tasks that failed together.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>

#include "factory/status.h"

namespace factory::runtime {

struct RetryPolicy {
  // Total attempts including the first; 1 means never retry.
  int max_attempts = 3;
  int64_t initial_delay_ms = 1000;
  // Growth per attempt; 1.0 gives a constant delay.
  double multiplier = 2.0;
  // Cap on every delay, jitter included.
  int64_t max_delay_ms = 300000;
  // Relative spread in [0, 1]: 0.1 means +-10%.
  double jitter = 0.1;
};

// OK, or invalid_argument naming the field: max_attempts >= 1, initial_delay_ms >= 0,
// multiplier finite and >= 1, max_delay_ms >= initial_delay_ms, jitter in [0, 1].
Status validate(const RetryPolicy& policy);

// True when another attempt is allowed after `attempt` attempts (1-based) have failed.
bool should_retry(const RetryPolicy& policy, int attempt);

// Milliseconds to wait after failed attempt `attempt` (1-based; values below 1 count as 1).
// Always in [0, max_delay_ms] and the same for the same (policy, attempt, seed). `policy`
// should be valid; an invalid one still yields a delay in that range.
int64_t retry_delay_ms(const RetryPolicy& policy, int attempt, uint64_t jitter_seed);

}  // namespace factory::runtime
