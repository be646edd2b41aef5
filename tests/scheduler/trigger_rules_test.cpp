#include "scheduler/trigger_rules.h"

#include <string>
#include <vector>

#include "test_util.h"

using namespace factory::scheduler;

namespace {

// Upstream states written one letter each: S success, F failed, U upstream_failed, K skipped,
// X removed, R running, Q queued, N none, Y up_for_retry, A awaiting_approval.
UpstreamCounts counts(std::string_view states) {
  UpstreamCounts c;
  for (char ch : states) {
    switch (ch) {
      case 'S':
        c.add(TaskState::kSuccess);
        break;
      case 'F':
        c.add(TaskState::kFailed);
        break;
      case 'U':
        c.add(TaskState::kUpstreamFailed);
        break;
      case 'K':
        c.add(TaskState::kSkipped);
        break;
      case 'X':
        c.add(TaskState::kRemoved);
        break;
      case 'R':
        c.add(TaskState::kRunning);
        break;
      case 'Q':
        c.add(TaskState::kQueued);
        break;
      case 'N':
        c.add(TaskState::kNone);
        break;
      case 'Y':
        c.add(TaskState::kUpForRetry);
        break;
      case 'A':
        c.add(TaskState::kAwaitingApproval);
        break;
      default:
        FAIL("bad state letter " << ch);
    }
  }
  return c;
}

char letter(Readiness r) {
  switch (r) {
    case Readiness::kWait:
      return 'W';
    case Readiness::kRun:
      return 'R';
    case Readiness::kSkip:
      return 'K';
    case Readiness::kUpstreamFailed:
      return 'U';
  }
  return '?';
}

}  // namespace

TEST_CASE("UpstreamCounts counts finished upstreams as done", "[scheduler]") {
  UpstreamCounts c = counts("SFUKXRQNYA");
  CHECK(c.total == 10);
  CHECK(c.done == 5);
  CHECK(c.success == 1);
  CHECK(c.failed == 1);
  CHECK(c.upstream_failed == 1);
  CHECK(c.skipped == 1);
  CHECK(c.removed == 1);
}

// Each row is what Airflow's TriggerRuleDep (with flag_upstream_failed, as its scheduler runs
// it) decides for the upstream states in the column headers, worked out from
// trigger_rule_dep.py: W waits, R runs, K marks skipped, U marks upstream_failed.
TEST_CASE("every trigger rule against a table of upstream states, as Airflow decides",
          "[scheduler]") {
  const std::vector<std::string> columns = {"SS",  "SR", "FR", "FS", "KS", "KK", "FF", "UU", "RR",
                                            "SKF", "KR", "FU", "SY", "AS", "SX", "FK", "U",  "K"};
  struct Row {
    TriggerRule rule;
    const char* expected;  // one letter per column
  };
  // clang-format off
  const Row rows[] = {
      //                                         SS SR FR FS KS KK FF UU RR SKF KR FU SY AS SX FK U K
      {TriggerRule::kAllSuccess,              "RWUUKKUUWUKUWWWUUK"},
      {TriggerRule::kAllFailed,               "KKWKKKRRWKKRKKKKRK"},
      {TriggerRule::kAllDone,                 "RWWRRRRRWRWRWWRRRR"},
      {TriggerRule::kAllDoneMinOneSuccess,    "RWWRKKUUWKKUWWRKUK"},
      {TriggerRule::kAllSkipped,              "KKKKKRKKWKWKKKKKKR"},
      {TriggerRule::kOneSuccess,              "RRWRRKUUWRWURRRUUK"},
      {TriggerRule::kOneFailed,               "KWRRKKRRWRWRWWKRRK"},
      {TriggerRule::kOneDone,                 "RRRRRKRKWRWRRRRRKK"},
      {TriggerRule::kNoneFailed,              "RWUURRUUWUWUWWWUUR"},
      {TriggerRule::kNoneFailedMinOneSuccess, "RWUURKUUWUWUWWWUUK"},
      {TriggerRule::kNoneSkipped,             "RWWRKKRRWKKRWWRKRK"},
      {TriggerRule::kAlways,                  "RRRRRRRRRRRRRRRRRR"},
  };
  // clang-format on
  REQUIRE(std::size(rows) == kAllTriggerRules.size());
  for (const Row& row : rows) {
    std::string got;
    for (const std::string& col : columns) got += letter(evaluate(row.rule, counts(col)));
    INFO(trigger_rule_name(row.rule));
    CHECK(got == row.expected);
  }
}

TEST_CASE("a task without upstreams runs whatever its rule", "[scheduler]") {
  for (TriggerRule r : kAllTriggerRules) {
    INFO(trigger_rule_name(r));
    CHECK(evaluate(r, UpstreamCounts{}) == Readiness::kRun);
  }
}

TEST_CASE("trigger rule cases called out by Airflow's documentation", "[scheduler]") {
  // all_success: a failed upstream fails it, a skipped one skips it (branching).
  CHECK(evaluate(TriggerRule::kAllSuccess, counts("SF")) == Readiness::kUpstreamFailed);
  CHECK(evaluate(TriggerRule::kAllSuccess, counts("SK")) == Readiness::kSkip);
  // A failure wins over a skip.
  CHECK(evaluate(TriggerRule::kAllSuccess, counts("KF")) == Readiness::kUpstreamFailed);
  // none_failed: a join after a branch runs when everything else was skipped.
  CHECK(evaluate(TriggerRule::kNoneFailed, counts("KK")) == Readiness::kRun);
  CHECK(evaluate(TriggerRule::kNoneFailed, counts("SK")) == Readiness::kRun);
  // ... none_failed_min_one_success needs one success for that.
  CHECK(evaluate(TriggerRule::kNoneFailedMinOneSuccess, counts("KK")) == Readiness::kSkip);
  CHECK(evaluate(TriggerRule::kNoneFailedMinOneSuccess, counts("SK")) == Readiness::kRun);
  // one_success runs on the first success without waiting, and only gives up when all are done.
  CHECK(evaluate(TriggerRule::kOneSuccess, counts("SRRR")) == Readiness::kRun);
  CHECK(evaluate(TriggerRule::kOneSuccess, counts("FFR")) == Readiness::kWait);
  CHECK(evaluate(TriggerRule::kOneSuccess, counts("FFK")) == Readiness::kUpstreamFailed);
  // one_failed fires on the first failure; with none at the end it is skipped.
  CHECK(evaluate(TriggerRule::kOneFailed, counts("FRR")) == Readiness::kRun);
  CHECK(evaluate(TriggerRule::kOneFailed, counts("SSK")) == Readiness::kSkip);
  // all_done runs after anything, failures included; a retrying upstream is not done.
  CHECK(evaluate(TriggerRule::kAllDone, counts("FUK")) == Readiness::kRun);
  CHECK(evaluate(TriggerRule::kAllDone, counts("FY")) == Readiness::kWait);
  // all_done_min_one_success: any skip skips it at once, even while others run.
  CHECK(evaluate(TriggerRule::kAllDoneMinOneSuccess, counts("KR")) == Readiness::kSkip);
  CHECK(evaluate(TriggerRule::kAllDoneMinOneSuccess, counts("SF")) == Readiness::kRun);
  // An approval still pending is not done.
  CHECK(evaluate(TriggerRule::kAllSuccess, counts("SA")) == Readiness::kWait);
  CHECK(evaluate(TriggerRule::kNoneSkipped, counts("A")) == Readiness::kWait);
}

TEST_CASE("readiness names", "[scheduler]") {
  CHECK(readiness_name(Readiness::kWait) == "wait");
  CHECK(readiness_name(Readiness::kRun) == "run");
  CHECK(readiness_name(Readiness::kSkip) == "skip");
  CHECK(readiness_name(Readiness::kUpstreamFailed) == "upstream_failed");
}
