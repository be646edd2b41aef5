#include "runtime/retry.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace factory::runtime {

namespace {

// splitmix64 (Steele, Lea, Flood 2014): a full-avalanche mix, so seeds that differ in one bit
// and consecutive attempts give unrelated factors.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, 1): the top 53 bits fill a double's mantissa exactly.
double unit_interval(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

std::string str(double v) {
  std::string s = std::to_string(v);
  // to_string gives "2.000000"; trim trailing zeros for readable messages.
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

}  // namespace

Status validate(const RetryPolicy& p) {
  if (p.max_attempts < 1) {
    return Status::invalid_argument("retry policy: max_attempts must be >= 1 (got " +
                                    std::to_string(p.max_attempts) + ")");
  }
  if (p.initial_delay_ms < 0) {
    return Status::invalid_argument("retry policy: initial_delay_ms must be >= 0 (got " +
                                    std::to_string(p.initial_delay_ms) + ")");
  }
  if (!std::isfinite(p.multiplier) || p.multiplier < 1.0) {
    return Status::invalid_argument("retry policy: multiplier must be a finite number >= 1 (got " +
                                    str(p.multiplier) + ")");
  }
  if (p.max_delay_ms < p.initial_delay_ms) {
    return Status::invalid_argument(
        "retry policy: max_delay_ms (" + std::to_string(p.max_delay_ms) +
        ") must be >= initial_delay_ms (" + std::to_string(p.initial_delay_ms) + ")");
  }
  if (!(p.jitter >= 0.0 && p.jitter <= 1.0)) {  // also rejects NaN
    return Status::invalid_argument("retry policy: jitter must be in [0, 1] (got " + str(p.jitter) +
                                    ")");
  }
  return Status::ok_status();
}

bool should_retry(const RetryPolicy& p, int attempt) { return attempt < p.max_attempts; }

int64_t retry_delay_ms(const RetryPolicy& p, int attempt, uint64_t jitter_seed) {
  attempt = std::max(attempt, 1);
  const double cap = static_cast<double>(std::max<int64_t>(p.max_delay_ms, 0));
  // pow overflows to +inf for large attempts, and min() then yields the cap: no loop, no UB.
  const double initial = static_cast<double>(std::max<int64_t>(p.initial_delay_ms, 0));
  double base = initial == 0.0 ? 0.0 : initial * std::pow(p.multiplier, attempt - 1);
  if (std::isnan(base)) base = cap;  // only from an invalid (NaN) multiplier
  base = std::min(base, cap);

  double jitter = std::isnan(p.jitter) ? 0.0 : std::clamp(p.jitter, 0.0, 1.0);
  double u = unit_interval(splitmix64(jitter_seed ^ static_cast<uint64_t>(attempt)));
  double delay = base * (1.0 - jitter + 2.0 * jitter * u);
  // Jitter at the cap only shortens the delay: the cap is a promise to the operator.
  delay = std::clamp(delay, 0.0, cap);
  return static_cast<int64_t>(delay);
}

}  // namespace factory::runtime
