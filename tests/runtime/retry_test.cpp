#include "runtime/retry.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>

#include "test_util.h"

using namespace factory;
using runtime::retry_delay_ms;
using runtime::RetryPolicy;
using runtime::should_retry;

TEST_CASE("retry schedule without jitter: doubling from initial, capped at max", "[runtime]") {
  RetryPolicy p;
  p.jitter = 0.0;
  const int64_t expected[] = {1000,  2000,   4000,   8000,   16000, 32000,
                              64000, 128000, 256000, 300000, 300000};
  for (int attempt = 1; attempt <= 11; ++attempt) {
    INFO("attempt " << attempt);
    CHECK(retry_delay_ms(p, attempt, 12345) == expected[attempt - 1]);
  }
  // Attempts below 1 count as the first; huge attempts stay at the cap (no overflow).
  CHECK(retry_delay_ms(p, 0, 1) == 1000);
  CHECK(retry_delay_ms(p, -5, 1) == 1000);
  CHECK(retry_delay_ms(p, 5000, 1) == 300000);
  CHECK(retry_delay_ms(p, std::numeric_limits<int>::max(), 1) == 300000);
}

TEST_CASE("retry schedule for another policy: multiplier 3, cap 10 s", "[runtime]") {
  RetryPolicy p{.max_attempts = 6,
                .initial_delay_ms = 250,
                .multiplier = 3.0,
                .max_delay_ms = 10000,
                .jitter = 0.0};
  const int64_t expected[] = {250, 750, 2250, 6750, 10000};
  for (int attempt = 1; attempt <= 5; ++attempt) {
    CHECK(retry_delay_ms(p, attempt, 0) == expected[attempt - 1]);
  }
  p.multiplier = 1.0;  // constant backoff
  CHECK(retry_delay_ms(p, 1, 0) == 250);
  CHECK(retry_delay_ms(p, 40, 0) == 250);
  p.initial_delay_ms = 0;  // immediate retries, even where multiplier^n overflows
  p.multiplier = 10.0;
  CHECK(retry_delay_ms(p, 1000, 0) == 0);
}

TEST_CASE("retry jitter stays within +-jitter of the base and under the cap", "[runtime]") {
  uint64_t seed0 = test::test_seed();
  INFO("seed " << seed0);
  RetryPolicy p;  // jitter 0.1, cap 300 s
  for (int attempt = 1; attempt <= 12; ++attempt) {
    const double base = std::min(1000.0 * std::pow(2.0, attempt - 1), 300000.0);
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
    for (uint64_t i = 0; i < 5000; ++i) {
      int64_t d = retry_delay_ms(p, attempt, seed0 + i * 0x9e3779b97f4a7c15ULL);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    INFO("attempt " << attempt << " lo " << lo << " hi " << hi);
    CHECK(lo >= static_cast<int64_t>(std::floor(base * 0.9)));
    CHECK(hi <= static_cast<int64_t>(std::min(base * 1.1, 300000.0)));
    CHECK(hi <= p.max_delay_ms);
    // The spread is used on both sides (below the cap), not just one value.
    CHECK(lo < static_cast<int64_t>(base * 0.92));
    if (base * 1.1 < 300000) CHECK(hi > static_cast<int64_t>(base * 1.08));
  }
  // Full jitter: anywhere in [0, 2 * base], never negative.
  p.jitter = 1.0;
  for (uint64_t i = 0; i < 5000; ++i) {
    int64_t d = retry_delay_ms(p, 2, seed0 + i);
    REQUIRE(d >= 0);
    REQUIRE(d <= 4000);
  }
}

TEST_CASE("retry jitter is deterministic per seed and attempt", "[runtime]") {
  RetryPolicy p;
  // Pinned values: a schedule must not change between builds (splitmix64(seed ^ attempt)).
  CHECK(retry_delay_ms(p, 1, 42) == 1045);
  CHECK(retry_delay_ms(p, 2, 42) == 1885);
  CHECK(retry_delay_ms(p, 3, 42) == 3654);
  CHECK(retry_delay_ms(p, 1, 7) == 1047);
  std::set<int64_t> distinct;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    int64_t d = retry_delay_ms(p, 4, seed);
    CHECK(retry_delay_ms(p, 4, seed) == d);
    distinct.insert(d);
  }
  // Tasks that failed together do not retry in lock step.
  CHECK(distinct.size() > 100);
}

TEST_CASE("should_retry allows max_attempts in total", "[runtime]") {
  RetryPolicy p;  // 3 attempts
  CHECK(should_retry(p, 1));
  CHECK(should_retry(p, 2));
  CHECK_FALSE(should_retry(p, 3));
  CHECK_FALSE(should_retry(p, 4));
  p.max_attempts = 1;
  CHECK_FALSE(should_retry(p, 1));
}

TEST_CASE("retry policy validation names the bad field", "[runtime]") {
  CHECK(runtime::validate(RetryPolicy{}).ok());
  auto msg = [](RetryPolicy p) {
    Status s = runtime::validate(p);
    CHECK(s.is_invalid_argument());
    return s.message();
  };
  CHECK(msg({.max_attempts = 0}) == "retry policy: max_attempts must be >= 1 (got 0)");
  CHECK(msg({.initial_delay_ms = -1}) == "retry policy: initial_delay_ms must be >= 0 (got -1)");
  CHECK(msg({.multiplier = 0.5}) ==
        "retry policy: multiplier must be a finite number >= 1 (got 0.5)");
  CHECK(msg({.multiplier = std::numeric_limits<double>::infinity()}).find("multiplier") !=
        std::string::npos);
  CHECK(msg({.initial_delay_ms = 5000, .max_delay_ms = 1000}) ==
        "retry policy: max_delay_ms (1000) must be >= initial_delay_ms (5000)");
  CHECK(msg({.jitter = 1.5}) == "retry policy: jitter must be in [0, 1] (got 1.5)");
  CHECK(msg({.jitter = -0.1}).find("jitter") != std::string::npos);
  CHECK(msg({.jitter = std::nan("")}).find("jitter") != std::string::npos);
}
