// The retry schedule of a task: whether a failed try is retried, and after how long. This is
// Airflow's TaskInstance.next_retry_datetime, in milliseconds instead of seconds.
//
// Try n (1-based: 1 is the first run, 2 the first retry) has failed. It is retried when
// n <= retries (so a task runs at most retries + 1 times). The wait before try n + 1:
//
//   constant (exponential_backoff false):  retry_delay_ms, whatever max_retry_delay_ms says
//                                          (Airflow caps only the backed-off delay)
//   exponential:
//     min_backoff = max(1, ceil(retry_delay_ms * 2^(n-1)))          the doubling base
//     hash        = SHA-1("<dag_id>#<task_id>#<logical_date>#<n>") as a 160-bit big-endian
//                   unsigned integer
//     delay       = min_backoff + hash mod min_backoff               in [base, 2*base)
//     delay       = min(delay, kMaxRetryDelayMs, max_retry_delay_ms if set)
//
// which is Airflow's formula (Airflow >= 2.10, where try_number is the failed try's number;
// older releases hashed n + 1 and wrote the exponent as try_number - 2 for the same n - 1)
// with every quantity in ms where Airflow has whole seconds: sub-second delays work and the
// jitter has millisecond resolution. The hash makes the delay deterministic per task try (a
// restarted scheduler computes the same wait, so a durable timer can be recomputed rather than
// trusted blindly) while spreading tasks that failed together over [base, 2*base).
// kMaxRetryDelayMs is Airflow's core.max_task_retry_delay default (24 h); 2^(n-1) saturates
// there instead of overflowing.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "scheduler/dag.h"

namespace factory::scheduler {

inline constexpr int64_t kMaxRetryDelayMs = 24LL * 3600 * 1000;

// Identifies one task of one run for the jitter. `logical_date` is the run's logical date as
// stored (ISO 8601 UTC); use the same text on every call for the same run.
struct RetryKey {
  std::string_view dag_id;
  std::string_view task_id;
  std::string_view logical_date;
};

// True when failed try `try_number` (1-based) gets another try.
bool should_retry(const RetrySpec& spec, int try_number);

// Milliseconds to wait after failed try `try_number` (values below 1 count as 1) before the
// next try, per the formula above. Always in [0, kMaxRetryDelayMs] for exponential backoff.
int64_t next_retry_delay_ms(const RetrySpec& spec, const RetryKey& key, int try_number);

// The jitter hash input, "<dag_id>#<task_id>#<logical_date>#<try_number>" (for tests and docs).
std::string retry_hash_input(const RetryKey& key, int try_number);

}  // namespace factory::scheduler
