// Retry schedule (retry_delay.h).
#include "scheduler/retry_delay.h"

#include <algorithm>
#include <array>
#include <string>

#include <openssl/evp.h>

#include "base/check.h"

namespace factory::scheduler {
namespace {

// SHA-1(input) as a 160-bit big-endian integer, reduced mod `m` (m >= 1) byte by byte: the
// remainder stays below m < 2^63, so r * 256 + byte fits in 128 bits.
int64_t sha1_mod(const std::string& input, int64_t m) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  // EVP_Digest fails only when OpenSSL cannot allocate; a retry must be scheduled, so abort.
  FACTORY_CHECK(EVP_Digest(input.data(), input.size(), digest.data(), &len, EVP_sha1(), nullptr) ==
                1);
  FACTORY_CHECK(len == 20);
  unsigned __int128 r = 0;
  for (unsigned int i = 0; i < len; ++i) {
    r = (r * 256 + digest[i]) % static_cast<unsigned __int128>(m);
  }
  return static_cast<int64_t>(r);
}

}  // namespace

std::string retry_hash_input(const RetryKey& key, int try_number) {
  std::string s;
  s.reserve(key.dag_id.size() + key.task_id.size() + key.logical_date.size() + 16);
  s += key.dag_id;
  s += '#';
  s += key.task_id;
  s += '#';
  s += key.logical_date;
  s += '#';
  s += std::to_string(try_number);
  return s;
}

bool should_retry(const RetrySpec& spec, int try_number) { return try_number <= spec.retries; }

int64_t next_retry_delay_ms(const RetrySpec& spec, const RetryKey& key, int try_number) {
  try_number = std::max(try_number, 1);
  if (!spec.exponential_backoff) return std::max<int64_t>(spec.retry_delay_ms, 0);

  int64_t cap = kMaxRetryDelayMs;
  // Airflow: `if max_retry_delay:` -- an unset or zero cap means none.
  if (spec.max_retry_delay_ms && *spec.max_retry_delay_ms > 0) {
    cap = std::min(cap, *spec.max_retry_delay_ms);
  }
  // min_backoff = retry_delay_ms * 2^(n-1), saturating: once it reaches kMaxRetryDelayMs the
  // jittered delay (>= min_backoff) is capped there whatever the hash says.
  const int64_t base = std::max<int64_t>(spec.retry_delay_ms, 0);
  const int shift = try_number - 1;
  int64_t min_backoff = 0;
  if (base == 0) {
    min_backoff = 0;
  } else if (shift >= 62 || base > (kMaxRetryDelayMs >> shift)) {
    return cap;
  } else {
    min_backoff = base << shift;
  }
  min_backoff = std::max<int64_t>(min_backoff, 1);
  const int64_t delay = min_backoff + sha1_mod(retry_hash_input(key, try_number), min_backoff);
  return std::min({delay, kMaxRetryDelayMs, cap});
}

}  // namespace factory::scheduler
