#include "runtime/backpressure.h"

#include <string>

#include "test_util.h"

using namespace factory;
using runtime::BackpressureGate;
using runtime::Watermarks;

TEST_CASE("backpressure pauses above high and resumes only below low", "[runtime]") {
  BackpressureGate gate({.high = 100, .low = 20});
  CHECK_FALSE(gate.paused());
  CHECK_FALSE(gate.update(0));
  CHECK_FALSE(gate.update(100));  // at high: still polling
  CHECK(gate.update(101));
  CHECK(gate.pauses() == 1);
  CHECK(gate.update(500));
  CHECK(gate.update(50));  // between the marks: stays paused (hysteresis)
  CHECK(gate.update(20));  // at low: still paused
  CHECK_FALSE(gate.update(19));
  CHECK_FALSE(gate.paused());
  CHECK_FALSE(gate.update(50));  // between the marks: stays polling
  CHECK_FALSE(gate.update(100));
  CHECK(gate.pauses() == 1);
  CHECK(gate.update(101));
  CHECK(gate.pauses() == 2);  // counts transitions, not paused polls
  CHECK(gate.update(101));
  CHECK(gate.pauses() == 2);
}

TEST_CASE("backpressure gate: a lag oscillating around one mark does not flap", "[runtime]") {
  BackpressureGate gate({.high = 1000, .low = 200});
  int flips = 0;
  bool last = false;
  for (int i = 0; i < 100; ++i) {
    bool p = gate.update(i % 2 == 0 ? 1001 : 999);
    flips += p != last;
    last = p;
  }
  CHECK(flips == 1);
  CHECK(gate.pauses() == 1);
}

TEST_CASE("watermark validation", "[runtime]") {
  CHECK(runtime::validate(Watermarks{.high = 10, .low = 1}).ok());
  Status s = runtime::validate(Watermarks{.high = 10, .low = 10});
  CHECK(s.is_invalid_argument());
  CHECK(s.message() == "watermarks: low (10) must be below high (10)");
  s = runtime::validate(Watermarks{.high = 10, .low = 20});
  CHECK(s.message() == "watermarks: low (20) must be below high (10)");
  s = runtime::validate(Watermarks{.high = 10, .low = 0});
  CHECK(s.is_invalid_argument());
  CHECK(s.message().find("low must be > 0") != std::string::npos);
}
