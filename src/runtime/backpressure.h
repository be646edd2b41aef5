// BackpressureGate: decides whether a stage polls its input, from its downstream lag.
//
// A stage whose output topic's consumers lag by more than `high` records stops polling and
// resumes only once the lag is below `low`. The gap between the two marks is hysteresis: with a
// single threshold a lag hovering around it would flip the stage on and off every poll.
//
// Usage, in a stage worker's poll loop:
//   BackpressureGate gate({.high = 10000, .low = 2000});
//   if (gate.update(downstream_lag())) { wait_for_progress(); continue; }
//
// Not thread-safe; owner serializes (one gate per stage worker loop).
#pragma once

#include <cstdint>

#include "factory/status.h"

namespace factory::runtime {

// Lags in records.
struct Watermarks {
  int64_t high;  // pause when lag > high
  int64_t low;   // resume when lag < low
};

// OK, or invalid_argument: 0 < low < high (lag is never negative, so low = 0 never resumes).
Status validate(const Watermarks& marks);

class BackpressureGate {
 public:
  // `marks` must be valid (validate()); aborts otherwise. Starts unpaused.
  explicit BackpressureGate(Watermarks marks);

  // Feeds the current lag; returns true while polling should stay paused.
  bool update(int64_t lag);

  bool paused() const { return paused_; }
  // Times the gate went from polling to paused.
  uint64_t pauses() const { return pauses_; }
  const Watermarks& marks() const { return marks_; }

 private:
  const Watermarks marks_;
  bool paused_ = false;
  uint64_t pauses_ = 0;
};

}  // namespace factory::runtime
