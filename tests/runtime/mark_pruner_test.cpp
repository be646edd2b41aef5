#include "runtime/mark_pruner.h"

#include "test_util.h"

using factory::runtime::MarkPruner;

namespace {

constexpr int64_t kT0 = 1'800'000'000'000;
constexpr int64_t kMargin = MarkPruner::kClockMarginMs;

// One topic (id 7), two partitions: {start, end} per partition.
MarkPruner::Positions at(int64_t p0, int64_t p1) { return {{{7, 0}, p0}, {{7, 1}, p1}}; }

}  // namespace

TEST_CASE("marks are kept until retention drops every record noted at a snapshot", "[runtime]") {
  MarkPruner pruner;
  // Snapshot at T0: ends 10 and 4.
  CHECK_FALSE(pruner.observe(kT0, at(0, 0), at(10, 4), 0).has_value());
  // Later, one partition dropped past its noted end, the other not yet: nothing to forget.
  CHECK_FALSE(pruner.observe(kT0 + 1000, at(12, 3), at(20, 8), 0).has_value());
  // Both reached the ends noted at T0: marks before T0 (less the clock margin) may go. The
  // snapshot at T0+1000 (ends 20 and 8) is not passed yet.
  auto cutoff = pruner.observe(kT0 + 2000, at(12, 4), at(25, 9), 0);
  REQUIRE(cutoff.has_value());
  CHECK(*cutoff == kT0 - kMargin);
  // The cutoff never goes back, and moves on with the next passed snapshot.
  CHECK(*pruner.observe(kT0 + 3000, at(12, 4), at(25, 9), 0) == kT0 - kMargin);
  // (the newest passed snapshot is the one at T0+3000)
  CHECK(*pruner.observe(kT0 + 4000, at(25, 9), at(30, 9), 0) == kT0 + 3000 - kMargin);
}

TEST_CASE("a deleted topic has dropped everything, and a topic that keeps everything never prunes",
          "[runtime]") {
  SECTION("deleted and created again under another id") {
    MarkPruner pruner;
    CHECK_FALSE(pruner.observe(kT0, at(0, 0), at(10, 4), 0).has_value());
    MarkPruner::Positions recreated = {{{8, 0}, 0}, {{8, 1}, 0}};
    auto cutoff = pruner.observe(kT0 + 1000, recreated, recreated, 0);
    REQUIRE(cutoff.has_value());
    CHECK(*cutoff == kT0 - kMargin);
  }
  SECTION("retention off: the starts never move") {
    MarkPruner pruner;
    CHECK_FALSE(pruner.observe(kT0, at(0, 0), at(10, 4), 0).has_value());
    for (int i = 1; i < 200; ++i) {
      CHECK_FALSE(pruner.observe(kT0 + i * 1000, at(0, 0), at(10 + i, 4 + i), 0).has_value());
    }
    // Waiting snapshots are bounded (only the newest are kept).
    CHECK(pruner.snapshots_for_test() == MarkPruner::kMaxSnapshots);
  }
  SECTION("an empty topic passes at once") {
    MarkPruner pruner;
    CHECK_FALSE(pruner.observe(kT0, at(0, 0), at(0, 0), 0).has_value());
    auto cutoff = pruner.observe(kT0 + 1000, at(0, 0), at(0, 0), 0);
    REQUIRE(cutoff.has_value());
    CHECK(*cutoff == kT0 - kMargin);
  }
}
