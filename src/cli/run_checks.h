// What `factoryd run --fail-on dlq,failed-run` checks when the run ends, so a CI job's
// `run --exit-when-idle MS` exits 1 when an event was dead-lettered or a DAG run failed while
// it ran (by default `run` exits 0 whatever happened to the events: dead letters are an
// outcome, not an error of the process).
//
//   check        fails the run when                                  collected from
//   dlq          an event was dead-lettered by this process           the engine's per-binding
//                (also an output or route a topic refused)            counters (BindingStats)
//   failed-run   a DAG run ended `failed` since this process started   the store's runs
//
// Each failure is one error line on stderr naming what failed and how to look at it
// (fail_on_errors()). Collecting reads a Host; deciding and wording are pure.
//
// Not thread-safe; `run` calls these from its one thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/host.h"
#include "factory/status.h"

namespace factory::cli {

struct FailOn {
  bool dlq = false;
  bool failed_run = false;
  bool any() const { return dlq || failed_run; }
};

// The checks named by --fail-on's items ("dlq", "failed-run"; each item may itself be a
// comma-separated list). InvalidArgument naming an unknown item.
Result<FailOn> parse_fail_on(const std::vector<std::string>& items);

// Dead letters written by this process to one dead-letter topic.
struct DeadLetters {
  std::string topic;
  int64_t count = 0;
  std::vector<std::string> bindings;  // the bindings that wrote them, in binding order
};

// A DAG run that ended failed.
struct FailedRun {
  std::string dag_id;
  std::string run_id;
  std::string task_id;  // its first failed task ("" when none is recorded)
  std::string error;    // that task's error
};

// The dead letters the host's engine has written since it started, by topic in first-seen
// binding order. Read it before Host::close(), which discards the engine.
std::vector<DeadLetters> dead_letters_since_start(Host* host);

// The DAG runs that ended `failed` at or after since_ms (ms since the epoch, the store's
// clock), oldest first. A store error is returned.
Result<std::vector<FailedRun>> failed_runs_since(Host* host, int64_t since_ms);

// One "what; how to fix" message per failure the checks in `fail_on` see; empty: the run
// passed. Dead letters come first, then runs.
std::vector<std::string> fail_on_errors(const FailOn& fail_on,
                                        const std::vector<DeadLetters>& letters,
                                        const std::vector<FailedRun>& runs);

}  // namespace factory::cli
