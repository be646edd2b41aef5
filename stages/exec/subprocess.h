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
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"

namespace factory::stages {

struct SubprocessOptions {
  std::chrono::steady_clock::time_point deadline;
  // The child's whole environment ("NAME=value" entries); nullopt: factoryd's own.
  std::optional<std::vector<std::string>> env;
  // The child's working directory; empty: factoryd's.
  std::filesystem::path working_dir;
  // setrlimit(resource, {value, value}) in the child before exec (RLIMIT_CPU, RLIMIT_AS, ...).
  std::vector<std::pair<int, uint64_t>> rlimits;
  // When > 0: the processes the child started (its descendants and its process group), counted
  // about every 100 ms, may not exceed this; more kills them all and ends the call with
  // kProcessLimit. Not RLIMIT_NPROC: that counts every process and thread of the user (factoryd's
  // own threads included) and does not apply to root at all.
  int max_processes = 0;
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
    kProcessLimit,    // it started more than max_processes processes; we killed them all
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
