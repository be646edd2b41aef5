// run_subprocess: runs a program with bytes on its stdin and collects its stdout and stderr,
// bounded by a deadline. The exec stage's engine.
//
// The program runs without a shell (fork + execvp, PATH lookup) as the leader of a new process
// group. Before returning, run_subprocess SIGKILLs that group and reaps the child, whatever
// happened: no zombie, and no background process the command started survives the call (a
// process that moved to another group or session itself is out of reach).
//
// Thread-safe: calls may run concurrently from any number of threads. Every descriptor it
// opens is close-on-exec, so a concurrent call's child never inherits another's pipes. While it
// runs, SIGPIPE is blocked in the calling thread (a child that stops reading its stdin must not
// kill factoryd); a SIGPIPE raised by its own writes is consumed before it returns.
//
// Example:
//   SubprocessOptions opts{.deadline = std::chrono::steady_clock::now() + 5s};
//   Result<SubprocessResult> r = run_subprocess({"tr", "a-z", "A-Z"}, "hello", opts);
//   if (r.ok() && r->outcome == SubprocessResult::Outcome::kExited && r->exit_code == 0) {
//     use(r->out);  // "HELLO"
//   }
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::stages {

struct SubprocessOptions {
  std::chrono::steady_clock::time_point deadline;
  // Polled about every 100 ms; true kills the child and ends the call with kCancelled.
  std::function<bool()> cancelled;
  // More stdout than this kills the child and ends the call with kOutputTooLarge.
  size_t max_stdout_bytes = 16 << 20;
  // Only the first bytes of stderr are kept (cut at a UTF-8 boundary); the rest is discarded.
  size_t max_stderr_bytes = 500;
};

struct SubprocessResult {
  enum class Outcome {
    kExited,          // exit_code holds the status
    kSignaled,        // killed by `signal`, not by us
    kTimedOut,        // the deadline passed; we killed it
    kCancelled,       // options.cancelled() returned true; we killed it
    kOutputTooLarge,  // stdout exceeded max_stdout_bytes; we killed it
    kSpawnFailed,     // execvp failed in the child; spawn_errno says why (ENOENT, EACCES, ...)
  };
  Outcome outcome = Outcome::kExited;
  int exit_code = 0;
  int signal = 0;
  int spawn_errno = 0;
  std::string out;  // stdout, in full (up to the limit)
  std::string err;  // the first max_stderr_bytes of stderr
};

// Runs argv[0] with `input` on stdin. Returns the outcome; a non-ok Status only when the
// system refused to create the process (IOError: out of descriptors or processes; retrying
// later may work) or argv is empty (InvalidArgument).
Result<SubprocessResult> run_subprocess(const std::vector<std::string>& argv,
                                        std::string_view input, const SubprocessOptions& options);

}  // namespace factory::stages
