// Subprocess: a child process the benchmark starts (factoryd, redis-server, a probe of itself),
// with its stdout on a pipe. Started with posix_spawn, so the cost of starting it does not grow
// with the benchmark's own RSS the way fork() would.
//
// Ownership: the Subprocess owns the child. Its destructor SIGKILLs and reaps a child that is
// still running, so an early return never leaks a server.
//
// Thread-safety: not thread-safe; one thread owns a Subprocess.
//
// Example:
//   auto p = Subprocess::spawn({.argv = {"/bin/echo", "hi"}, .capture_stdout = true});
//   auto line = p->read_line(1000);   // "hi"
//   auto code = p->wait(1000);        // 0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "factory/status.h"

namespace factory::bench {

struct SpawnOptions {
  std::vector<std::string> argv;          // argv[0] is an absolute path; no PATH search
  std::optional<std::string> stdin_data;  // fed through a pipe closed afterwards (< 64 KiB);
                                          // nullopt: /dev/null
  bool capture_stdout = false;            // false: /dev/null
  std::string stderr_path;                // "" : /dev/null
};

class Subprocess {
 public:
  // IOError when the child cannot be started (e.g. argv[0] missing or not executable).
  static Result<Subprocess> spawn(const SpawnOptions& options);

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // The next stdout line without its '\n'. TimedOut when none arrives within timeout_ms;
  // OutOfRange at end of output; FailedPrecondition when stdout was not captured.
  Result<std::string> read_line(int64_t timeout_ms);
  // Waits up to timeout_ms for the child to exit. Returns its exit code, or 128 + signal when a
  // signal ended it. TimedOut when it is still running (it is left running).
  Result<int> wait(int64_t timeout_ms);
  // Sends `sig`, then waits up to grace_ms before SIGKILL. Returns as wait() does.
  Result<int> stop(int sig, int64_t grace_ms);

 private:
  Subprocess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  pid_t pid_ = -1;        // -1 once reaped
  int stdout_fd_ = -1;    // read end of the child's stdout, or -1
  std::string buffered_;  // stdout bytes read past the last returned line
  bool eof_ = false;
};

}  // namespace factory::bench
