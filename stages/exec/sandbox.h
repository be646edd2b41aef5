// run_sandboxed: the one runner for generated and third-party code — the tests testsynth runs,
// the gate's configured commands, the deploy canary's health_command and the deploy `command`
// target. factoryd must assume every such program is hostile: it was written by a model from a
// ticket anyone could file.
//
// What every run gets:
//   - A clean, explicit environment: PATH (factoryd's), HOME=<work_dir>, LANG=C.UTF-8,
//     TMPDIR, plus only the NAME=value entries the caller's configuration names. Never
//     factoryd's own environment, never a FACTORY_SECRET_* variable (refused if named).
//   - Bounded resources: the wall-clock deadline (then SIGKILL to the whole process tree), CPU
//     seconds, address space, file size and open files (setrlimit before exec), the number of
//     processes it starts (counted by run_subprocess), and the bytes of output kept.
//   - When Debian's bubblewrap (`bwrap`) is installed and passes a self-test here: a sandbox
//     with no network (unless options.network), its own pid/ipc/uts namespaces and session, the
//     system directories (/usr, /etc, /bin, /lib...) read-only with /etc's credentials hidden
//     (shadow, ssl/private, /etc/factoryd), a private /tmp, the work tree read-write and
//     nothing else of the host (not factoryd's data or config dir, not $HOME, not /opt); it dies
//     with factoryd (--die-with-parent) and everything in it dies with its first process.
//   - Otherwise (no bwrap, or its self-test failed): the rlimits and the clean environment
//     alone, with a private TMPDIR that is removed afterwards.
// Which one is used is decided once per process (isolation()); stages log it once and count
// runs per kind (note_isolation), so `factoryd` metrics show sandbox_runs_bwrap or
// sandbox_runs_rlimits.
//
// Thread-safe: calls may run concurrently; the bwrap probe runs once, on first use.
//
// Example (the gate running a linter in its checkout):
//   SandboxOptions opts{.work_dir = checkout, .deadline = Clock::now() + 60s};
//   Result<SubprocessResult> r = run_sandboxed({"ruff", "check", "--", "./app.py"}, opts);
//   if (r.ok() && r->outcome == SubprocessResult::Outcome::kExited && r->exit_code == 0) ...
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exec/subprocess.h"
#include "factory/stage.h"
#include "factory/status.h"

namespace factory::stages {

enum class Isolation {
  kBwrap,    // bubblewrap namespaces + rlimits + clean environment
  kRlimits,  // rlimits + clean environment only
};
std::string_view isolation_name(Isolation isolation);  // "bwrap" or "rlimits"

// Limits for one run. The defaults suit a test suite or a linter on a small project.
struct SandboxLimits {
  int64_t cpu_seconds = 600;                  // RLIMIT_CPU
  uint64_t address_space_bytes = 8ULL << 30;  // RLIMIT_AS (virtual memory per process)
  uint64_t file_size_bytes = 1ULL << 30;      // RLIMIT_FSIZE (a larger write gets SIGXFSZ)
  uint64_t open_files = 1024;                 // RLIMIT_NOFILE
  int max_processes = 128;                    // processes alive at once (run_subprocess)
};

struct SandboxOptions {
  std::filesystem::path work_dir;  // absolute; the working directory, HOME, the writable tree
  std::vector<std::string> env;    // NAME=value entries the configuration names explicitly
  bool network = false;            // bwrap only: keep the host's network (deploy tools)
  // bwrap only: more host paths (absolute, existing) shown read-only or read-write, for what
  // the configuration names (a deploy tool's credentials, an output directory).
  std::vector<std::filesystem::path> read_only;
  std::vector<std::filesystem::path> writable;
  bool merge_stderr = false;  // stderr into stdout, in order (r->out); r->err empty
  std::chrono::steady_clock::time_point deadline;
  std::function<bool()> cancelled;
  size_t max_stdout_bytes = 4 << 20;
  size_t max_stderr_bytes = 16 << 10;
  SandboxLimits limits;
};

// Runs argv[0] (a name on PATH or a path) in options.work_dir as described above. Returns the
// outcome as run_subprocess does (kSpawnFailed when the program does not exist outside bwrap;
// inside bwrap a missing program exits 127 with bwrap's message in err). Errors:
// InvalidArgument for an empty argv, a relative or missing work_dir, read_only or writable
// path, or an env entry that is not NAME=value or names FACTORY_SECRET_*; IOError when the system
// refused to start it.
Result<SubprocessResult> run_sandboxed(const std::vector<std::string>& argv,
                                       const SandboxOptions& options);

// The isolation run_sandboxed uses in this process: kBwrap when `bwrap` is on PATH and a
// self-test (an empty sandbox with the same namespaces running `true`) exits 0. Probed once.
Isolation isolation();

// Logs the isolation in use once per process (why, when it is the fallback) and counts this
// run as sandbox_runs_<name>. Call next to each run_sandboxed.
void note_isolation(StageContext& ctx);

// Tests: force an isolation (nullopt: back to the probe's answer). Not for production.
void set_isolation_for_test(std::optional<Isolation> forced);

}  // namespace factory::stages
