#include "runtime/backpressure.h"

#include <string>

#include "base/check.h"

namespace factory::runtime {

Status validate(const Watermarks& m) {
  if (m.low <= 0) {
    return Status::invalid_argument(
        "watermarks: low must be > 0, or a paused stage never resumes (got " +
        std::to_string(m.low) + ")");
  }
  if (m.low >= m.high) {
    return Status::invalid_argument("watermarks: low (" + std::to_string(m.low) +
                                    ") must be below high (" + std::to_string(m.high) + ")");
  }
  return Status::ok_status();
}

BackpressureGate::BackpressureGate(Watermarks marks) : marks_(marks) {
  FACTORY_CHECK(validate(marks_).ok());
}

bool BackpressureGate::update(int64_t lag) {
  if (!paused_ && lag > marks_.high) {
    paused_ = true;
    ++pauses_;
  } else if (paused_ && lag < marks_.low) {
    paused_ = false;
  }
  return paused_;
}

}  // namespace factory::runtime
