#include "runtime/circuit_breaker.h"

#include <string>
#include <utility>

#include "base/check.h"

namespace factory::runtime {

Status validate(const CircuitBreakerConfig& c) {
  auto bad = [](const std::string& m) { return Status::invalid_argument("circuit breaker: " + m); };
  if (c.window < 1) return bad("window must be >= 1 (got " + std::to_string(c.window) + ")");
  if (c.min_calls < 1 || c.min_calls > c.window) {
    return bad("min_calls must be in [1, window=" + std::to_string(c.window) + "] (got " +
               std::to_string(c.min_calls) + ")");
  }
  // 0 would open a breaker that saw no failure at all; NaN fails both comparisons.
  if (!(c.failure_rate_threshold > 0.0 && c.failure_rate_threshold <= 1.0)) {
    return bad("failure_rate_threshold must be in (0, 1] (got " +
               std::to_string(c.failure_rate_threshold) + ")");
  }
  if (c.open_ms <= 0) return bad("open_ms must be > 0 (got " + std::to_string(c.open_ms) + ")");
  if (c.half_open_probes < 1) {
    return bad("half_open_probes must be >= 1 (got " + std::to_string(c.half_open_probes) + ")");
  }
  return Status::ok_status();
}

std::string_view state_name(CircuitBreaker::State s) {
  switch (s) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

Result<std::unique_ptr<CircuitBreaker>> CircuitBreaker::create(std::string name,
                                                               CircuitBreakerConfig config,
                                                               const base::Clock* clock,
                                                               Listener listener) {
  Status s = validate(config);
  if (!s.ok()) return Status::invalid_argument(s.message() + " for '" + name + "'");
  return std::make_unique<CircuitBreaker>(std::move(name), config, clock, std::move(listener));
}

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerConfig config,
                               const base::Clock* clock, Listener listener)
    : name_(std::move(name)), config_(config), clock_(clock), listener_(std::move(listener)) {
  FACTORY_CHECK(validate(config_).ok());
  FACTORY_CHECK(clock_ != nullptr);
  base::MutexLock l(&mu_);
  ring_.assign(config_.window, 0);
  last_transition_ms_ = clock_->now_ms();
}

bool CircuitBreaker::allow() {
  base::MutexLock l(&mu_);
  maybe_half_open();
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      break;
    case State::kHalfOpen:
      // Admitted, not in-flight, is what is bounded: once all probes were let through, the
      // verdict depends on them alone.
      if (probes_admitted_ < config_.half_open_probes) {
        ++probes_admitted_;
        return true;
      }
      break;
  }
  ++rejected_;
  return false;
}

void CircuitBreaker::on_success() {
  base::MutexLock l(&mu_);
  maybe_half_open();
  switch (state_) {
    case State::kClosed:
      record(false);
      break;
    case State::kOpen:
      break;  // a call admitted before the breaker opened: says nothing about now
    case State::kHalfOpen:
      if (probe_successes_ < probes_admitted_) {
        ++probe_successes_;
        if (probe_successes_ == config_.half_open_probes) transition(State::kClosed);
      }
      break;
  }
}

void CircuitBreaker::on_failure() {
  base::MutexLock l(&mu_);
  maybe_half_open();
  switch (state_) {
    case State::kClosed:
      record(true);
      break;
    case State::kOpen:
      break;
    case State::kHalfOpen:
      if (probe_successes_ < probes_admitted_) transition(State::kOpen);
      break;
  }
}

CircuitBreaker::State CircuitBreaker::state() {
  base::MutexLock l(&mu_);
  maybe_half_open();
  return state_;
}

CircuitBreaker::Snapshot CircuitBreaker::snapshot() {
  base::MutexLock l(&mu_);
  maybe_half_open();
  Snapshot s;
  s.state = state_;
  s.failure_rate = failure_rate();
  s.calls_in_window = calls_;
  s.failures_in_window = failures_;
  s.last_transition_ms = last_transition_ms_;
  s.times_opened = times_opened_;
  s.rejected_calls = rejected_;
  s.probes_in_flight = state_ == State::kHalfOpen ? probes_admitted_ - probe_successes_ : 0;
  return s;
}

void CircuitBreaker::maybe_half_open() {
  if (state_ == State::kOpen && clock_->now_ms() - last_transition_ms_ >= config_.open_ms) {
    transition(State::kHalfOpen);
  }
}

void CircuitBreaker::record(bool failure) {
  uint8_t& slot = ring_[ring_next_];
  if (calls_ == config_.window) {
    failures_ -= slot;  // the oldest outcome slides out
  } else {
    ++calls_;
  }
  slot = failure ? 1 : 0;
  failures_ += slot;
  ring_next_ = (ring_next_ + 1) % config_.window;
  // Checked after successes too: the call that reaches min_calls may be a success.
  if (calls_ >= config_.min_calls && failure_rate() >= config_.failure_rate_threshold) {
    transition(State::kOpen);
  }
}

double CircuitBreaker::failure_rate() const {
  return calls_ == 0 ? 0.0 : static_cast<double>(failures_) / calls_;
}

void CircuitBreaker::transition(State to) {
  Transition t{state_, to, clock_->now_ms(), failure_rate()};
  state_ = to;
  last_transition_ms_ = t.at_ms;
  probes_admitted_ = 0;
  probe_successes_ = 0;
  if (to == State::kOpen) ++times_opened_;
  if (to == State::kClosed) {
    // A closed breaker judges only calls made since it closed.
    ring_.assign(config_.window, 0);
    ring_next_ = 0;
    calls_ = 0;
    failures_ = 0;
  }
  if (listener_) listener_(name_, t);
}

}  // namespace factory::runtime
