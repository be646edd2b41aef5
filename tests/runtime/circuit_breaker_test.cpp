#include "runtime/circuit_breaker.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "test_util.h"

using namespace factory;
using runtime::CircuitBreaker;
using runtime::CircuitBreakerConfig;
using State = CircuitBreaker::State;

namespace {

constexpr int64_t kStart = 1'700'000'000'000;

// Records transitions; the listener runs under the breaker's mutex, on the calling thread.
struct Recorder {
  std::vector<CircuitBreaker::Transition> seen;
  CircuitBreaker::Listener listener() {
    return [this](const std::string& name, const CircuitBreaker::Transition& t) {
      CHECK(name == "llm");
      seen.push_back(t);
    };
  }
};

CircuitBreakerConfig config() {
  return {.window = 10,
          .min_calls = 5,
          .failure_rate_threshold = 0.5,
          .open_ms = 1000,
          .half_open_probes = 2};
}

void fail(CircuitBreaker& cb, int n) {
  for (int i = 0; i < n; ++i) {
    REQUIRE(cb.allow());
    cb.on_failure();
  }
}

void succeed(CircuitBreaker& cb, int n) {
  for (int i = 0; i < n; ++i) {
    REQUIRE(cb.allow());
    cb.on_success();
  }
}

}  // namespace

TEST_CASE("breaker opens on the failure rate only after min_calls", "[runtime]") {
  base::ManualClock clock(kStart);
  Recorder rec;
  CircuitBreaker cb("llm", config(), &clock, rec.listener());
  CHECK(cb.state() == State::kClosed);

  fail(cb, 4);  // 100% failures, but 4 < min_calls
  CHECK(cb.state() == State::kClosed);
  CHECK(cb.snapshot().failure_rate == 1.0);
  CHECK(rec.seen.empty());

  clock.advance_ms(7);
  fail(cb, 1);
  CHECK(cb.state() == State::kOpen);
  auto s = cb.snapshot();
  CHECK(s.times_opened == 1);
  CHECK(s.last_transition_ms == kStart + 7);
  CHECK(s.calls_in_window == 5);
  CHECK(s.failure_rate == 1.0);  // kept while open: what tripped it
  REQUIRE(rec.seen.size() == 1);
  CHECK(rec.seen[0].from == State::kClosed);
  CHECK(rec.seen[0].to == State::kOpen);
  CHECK(rec.seen[0].at_ms == kStart + 7);
  CHECK(rec.seen[0].failure_rate == 1.0);
}

TEST_CASE("breaker opens exactly at the threshold, not below it", "[runtime]") {
  base::ManualClock clock(kStart);
  for (double threshold : {0.3, 0.31}) {
    INFO("threshold " << threshold);
    auto cfg = config();
    cfg.min_calls = 10;
    cfg.failure_rate_threshold = threshold;
    CircuitBreaker cb("llm", cfg, &clock);
    succeed(cb, 7);
    fail(cb, 2);
    succeed(cb, 1);  // 10 calls, rate 0.2
    CHECK(cb.state() == State::kClosed);
    fail(cb, 1);  // the oldest success slides out: 3 failures in 10 = 0.3
    CHECK(cb.snapshot().failure_rate == 0.3);
    CHECK(cb.state() == (threshold == 0.3 ? State::kOpen : State::kClosed));
  }
}

TEST_CASE("breaker: the call reaching min_calls may be a success and still open it", "[runtime]") {
  base::ManualClock clock(kStart);
  auto cfg = config();
  cfg.min_calls = 4;
  CircuitBreaker cb("llm", cfg, &clock);
  fail(cb, 2);
  succeed(cb, 1);
  CHECK(cb.state() == State::kClosed);  // 3 calls < min_calls
  succeed(cb, 1);                       // 4 calls, 2 failures: 0.5 >= 0.5
  CHECK(cb.state() == State::kOpen);
}

TEST_CASE("breaker window slides old failures out", "[runtime]") {
  base::ManualClock clock(kStart);
  CircuitBreaker cb("llm",
                    {.window = 4, .min_calls = 2, .failure_rate_threshold = 0.75, .open_ms = 1000},
                    &clock);
  fail(cb, 1);
  succeed(cb, 1);  // rate 0.5 < 0.75
  succeed(cb, 4);  // the failure slid out
  auto s = cb.snapshot();
  CHECK(s.calls_in_window == 4);
  CHECK(s.failures_in_window == 0);
  CHECK(s.failure_rate == 0.0);
  fail(cb, 2);  // S S F F: 0.5 (lifetime rate would be 3/8 either way; the window decides)
  CHECK(cb.state() == State::kClosed);
  CHECK(cb.snapshot().failures_in_window == 2);
  fail(cb, 1);  // S F F F: 0.75
  CHECK(cb.state() == State::kOpen);
}

TEST_CASE("open breaker rejects calls until open_ms have passed", "[runtime]") {
  base::ManualClock clock(kStart);
  Recorder rec;
  CircuitBreaker cb("llm", config(), &clock, rec.listener());
  fail(cb, 5);
  REQUIRE(cb.state() == State::kOpen);

  clock.advance_ms(999);
  CHECK_FALSE(cb.allow());
  CHECK_FALSE(cb.allow());
  CHECK(cb.state() == State::kOpen);
  CHECK(cb.snapshot().rejected_calls == 2);
  // Outcomes of calls admitted before it opened say nothing about now.
  cb.on_failure();
  cb.on_success();
  CHECK(cb.snapshot().calls_in_window == 5);
  CHECK(cb.state() == State::kOpen);

  clock.advance_ms(1);
  CHECK(cb.state() == State::kHalfOpen);
  REQUIRE(rec.seen.size() == 2);
  CHECK(rec.seen[1].from == State::kOpen);
  CHECK(rec.seen[1].to == State::kHalfOpen);
  CHECK(rec.seen[1].at_ms == kStart + 1000);
  CHECK(cb.snapshot().last_transition_ms == kStart + 1000);
}

TEST_CASE("half-open breaker admits half_open_probes and closes when all succeed", "[runtime]") {
  base::ManualClock clock(kStart);
  Recorder rec;
  CircuitBreaker cb("llm", config(), &clock, rec.listener());
  fail(cb, 5);
  clock.advance_ms(1000);

  CHECK(cb.allow());
  CHECK(cb.allow());
  CHECK_FALSE(cb.allow());  // both probes are out
  CHECK(cb.snapshot().probes_in_flight == 2);
  cb.on_success();
  CHECK(cb.state() == State::kHalfOpen);  // one of two
  CHECK(cb.snapshot().probes_in_flight == 1);
  CHECK_FALSE(cb.allow());  // admitted probes are bounded, not just concurrent ones
  clock.advance_ms(5);
  cb.on_success();
  CHECK(cb.state() == State::kClosed);

  auto s = cb.snapshot();
  CHECK(s.calls_in_window == 0);  // a closed breaker judges only calls since it closed
  CHECK(s.failure_rate == 0.0);
  CHECK(s.last_transition_ms == kStart + 1005);
  CHECK(s.times_opened == 1);
  CHECK(s.rejected_calls == 2);
  REQUIRE(rec.seen.size() == 3);
  CHECK(rec.seen[2].from == State::kHalfOpen);
  CHECK(rec.seen[2].to == State::kClosed);
  // Fresh window: four failures are below min_calls again.
  fail(cb, 4);
  CHECK(cb.state() == State::kClosed);
}

TEST_CASE("half-open breaker reopens on a failing probe", "[runtime]") {
  base::ManualClock clock(kStart);
  Recorder rec;
  CircuitBreaker cb("llm", config(), &clock, rec.listener());
  fail(cb, 5);
  clock.advance_ms(1000);
  REQUIRE(cb.allow());
  REQUIRE(cb.allow());
  cb.on_success();
  clock.advance_ms(3);
  cb.on_failure();
  CHECK(cb.state() == State::kOpen);
  auto s = cb.snapshot();
  CHECK(s.times_opened == 2);
  CHECK(s.last_transition_ms == kStart + 1003);
  CHECK_FALSE(cb.allow());

  // The other probe finishing late is ignored; the new open period runs its full length.
  cb.on_success();
  clock.advance_ms(999);
  CHECK(cb.state() == State::kOpen);
  clock.advance_ms(1);
  CHECK(cb.state() == State::kHalfOpen);
  // A stale outcome with no probe in flight does not count as a probe.
  cb.on_success();
  cb.on_success();
  CHECK(cb.state() == State::kHalfOpen);
  succeed(cb, 2);
  CHECK(cb.state() == State::kClosed);

  std::vector<std::pair<State, State>> path;
  for (const auto& t : rec.seen) path.emplace_back(t.from, t.to);
  CHECK(path == std::vector<std::pair<State, State>>{{State::kClosed, State::kOpen},
                                                     {State::kOpen, State::kHalfOpen},
                                                     {State::kHalfOpen, State::kOpen},
                                                     {State::kOpen, State::kHalfOpen},
                                                     {State::kHalfOpen, State::kClosed}});
}

TEST_CASE("breaker under concurrent callers keeps its probe bound", "[runtime]") {
  uint64_t seed = test::test_seed();
  INFO("seed " << seed);
  base::ManualClock clock(kStart);
  CircuitBreaker cb("llm",
                    {.window = 8,
                     .min_calls = 4,
                     .failure_rate_threshold = 0.5,
                     .open_ms = 10,
                     .half_open_probes = 3},
                    &clock);
  constexpr int kThreads = 4, kCalls = 5000;
  std::atomic<int> bad_probe_count{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t x = seed * 31 + t;
      for (int i = 0; i < kCalls; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if (t == 0 && (x >> 62) == 0) clock.advance_ms(1);
        if (cb.allow()) {
          ((x >> 33) % 3 == 0) ? cb.on_failure() : cb.on_success();
        }
        auto s = cb.snapshot();
        if (s.probes_in_flight < 0 || s.probes_in_flight > 3) ++bad_probe_count;
        if (s.calls_in_window > 8 || s.failures_in_window > s.calls_in_window) ++bad_probe_count;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad_probe_count == 0);
  CHECK(cb.snapshot().times_opened > 0);
}

TEST_CASE("breaker config validation and state names", "[runtime]") {
  CHECK(runtime::validate(CircuitBreakerConfig{}).ok());
  auto msg = [](CircuitBreakerConfig c) {
    Status s = runtime::validate(c);
    CHECK(s.is_invalid_argument());
    return s.message();
  };
  CHECK(msg({.window = 0}) == "circuit breaker: window must be >= 1 (got 0)");
  CHECK(msg({.window = 5, .min_calls = 6}) ==
        "circuit breaker: min_calls must be in [1, window=5] (got 6)");
  CHECK(msg({.min_calls = 0}).find("min_calls") != std::string::npos);
  CHECK(msg({.failure_rate_threshold = 0.0}).find("failure_rate_threshold must be in (0, 1]") !=
        std::string::npos);
  CHECK(msg({.failure_rate_threshold = 1.5}).find("failure_rate_threshold") != std::string::npos);
  CHECK(msg({.open_ms = 0}) == "circuit breaker: open_ms must be > 0 (got 0)");
  CHECK(msg({.half_open_probes = 0}) == "circuit breaker: half_open_probes must be >= 1 (got 0)");

  base::ManualClock clock(kStart);
  auto bad = CircuitBreaker::create("deploy", {.window = 0}, &clock);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "circuit breaker: window must be >= 1 (got 0) for 'deploy'");
  auto good = CircuitBreaker::create("deploy", {}, &clock);
  REQUIRE_OK(good);
  CHECK((*good)->name() == "deploy");
  CHECK((*good)->snapshot().last_transition_ms == kStart);

  CHECK(runtime::state_name(State::kClosed) == "closed");
  CHECK(runtime::state_name(State::kOpen) == "open");
  CHECK(runtime::state_name(State::kHalfOpen) == "half_open");
}
