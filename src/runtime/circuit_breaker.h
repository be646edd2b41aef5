// CircuitBreaker: stops calling a dependency (an LLM provider, a deploy target) that keeps
// failing, and probes it again after a pause, so a stage fails fast instead of piling up
// timeouts and retries against something that is down.
//
// Operation: closed, every call is allowed and its outcome enters a sliding window of the last
// `window` calls. Once the window holds at least `min_calls` outcomes and the failure rate is
// >= failure_rate_threshold, the breaker opens. Open: allow() is false until open_ms have
// passed on the clock, then the breaker is half-open: allow() admits up to half_open_probes
// trial calls; when all of them succeed it closes with an empty window, and any failing probe
// reopens it for another open_ms. The open -> half-open move happens lazily, in whichever call
// (allow, state, snapshot, on_*) first sees the time has passed.
//
// Usage:
//   CircuitBreaker cb("llm", {.window = 20, .min_calls = 10, .failure_rate_threshold = 0.5},
//                     base::SystemClock::instance());
//   if (!cb.allow()) return Status::unavailable("llm circuit open");
//   Status s = call_llm();
//   s.ok() ? cb.on_success() : cb.on_failure();
//
// Concurrency: thread-safe (one mutex). The listener runs with that mutex held, so transitions
// reach it in order; it must be quick and must not call back into this breaker.
//
// Limitations: every allowed call must report exactly one outcome, or a half-open breaker
// waits forever for its probe. Outcomes are not tied to the allow() that admitted them: a call
// admitted while closed that finishes during half-open counts as a probe if one is in flight;
// outcomes arriving while open, or in half-open with no probe in flight, are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "factory/status.h"

namespace factory::runtime {

struct CircuitBreakerConfig {
  // The last N call outcomes the failure rate is computed over.
  int window = 20;
  // Outcomes needed in the window before the rate can open the breaker; 1..window.
  int min_calls = 10;
  // Opens when failures / calls >= this; in (0, 1].
  double failure_rate_threshold = 0.5;
  // Time spent open before probing.
  int64_t open_ms = 30000;
  // Trial calls admitted in half-open; all must succeed to close.
  int half_open_probes = 1;
};

// OK, or invalid_argument naming the field and the allowed range.
Status validate(const CircuitBreakerConfig& config);

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  struct Transition {
    State from;
    State to;
    int64_t at_ms;        // clock time of the transition
    double failure_rate;  // of the window at the time (what tripped it, when opening)
  };
  using Listener = std::function<void(const std::string& name, const Transition&)>;

  // For display and metrics; a copy taken under the mutex.
  struct Snapshot {
    State state = State::kClosed;
    double failure_rate = 0.0;  // failures / calls in the window; 0 when empty. Kept while open.
    int calls_in_window = 0;
    int failures_in_window = 0;
    int64_t last_transition_ms = 0;  // construction time until the first transition
    uint64_t times_opened = 0;
    uint64_t rejected_calls = 0;  // allow() returned false
    int probes_in_flight = 0;     // half-open only
  };

  // Validates, then constructs; invalid_argument for a bad config.
  static Result<std::unique_ptr<CircuitBreaker>> create(std::string name,
                                                        CircuitBreakerConfig config,
                                                        const base::Clock* clock,
                                                        Listener listener = {});
  // `config` must be valid (aborts otherwise). *clock is borrowed and must outlive the breaker.
  CircuitBreaker(std::string name, CircuitBreakerConfig config, const base::Clock* clock,
                 Listener listener = {});

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // True when the caller may make the call now (and must then report its outcome).
  bool allow();
  void on_success();
  void on_failure();

  State state();
  Snapshot snapshot();
  const std::string& name() const { return name_; }

 private:
  void maybe_half_open() REQUIRES(mu_);
  void record(bool failure) REQUIRES(mu_);
  void transition(State to) REQUIRES(mu_);
  double failure_rate() const REQUIRES(mu_);

  const std::string name_;
  const CircuitBreakerConfig config_;
  const base::Clock* const clock_;
  const Listener listener_;

  base::Mutex mu_;
  State state_ GUARDED_BY(mu_) = State::kClosed;
  // Ring of the last config_.window outcomes (1 = failure); the oldest is overwritten.
  std::vector<uint8_t> ring_ GUARDED_BY(mu_);
  int ring_next_ GUARDED_BY(mu_) = 0;
  int calls_ GUARDED_BY(mu_) = 0;
  int failures_ GUARDED_BY(mu_) = 0;
  int probes_admitted_ GUARDED_BY(mu_) = 0;
  int probe_successes_ GUARDED_BY(mu_) = 0;
  int64_t last_transition_ms_ GUARDED_BY(mu_) = 0;
  uint64_t times_opened_ GUARDED_BY(mu_) = 0;
  uint64_t rejected_ GUARDED_BY(mu_) = 0;
};

// "closed", "open", "half_open": for logs, metrics labels and the UI.
std::string_view state_name(CircuitBreaker::State state);

}  // namespace factory::runtime
