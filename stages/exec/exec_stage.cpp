// exec: runs a command per event, the event's payload on its stdin, and emits the JSON the
// command prints on stdout. Lets any program (a script, a linter, a CLI tool) be a stage.
//
// Config: {"command": ["prog", "arg", ...], "timeout_ms": N}. No shell is involved: write
// ["sh", "-c", "..."] to get one. Outcomes:
//   exit 0, stdout one JSON document      -> success, stdout emitted (trailing whitespace cut)
//   exit 0, stdout not JSON (or empty)    -> permanent: retrying the same input prints the same
//   exit != 0 or killed by a signal       -> retryable, with the code and the start of stderr
//   timeout (timeout_ms or the binding's) -> retryable; the command's process group is killed
//   program missing or not executable     -> permanent: a config problem no retry fixes
//
// Side effects: idempotent. The command may run more than once for an event (after a crash, or
// when its output could not be appended), so it must be safe to repeat. blocking = true: it
// waits on a child process and so runs on the blocking pool.
//
// Stateless (the config is read per call), so thread-safe.
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "exec/subprocess.h"
#include "factory/stage.h"

namespace factory::stages {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using Outcome = SubprocessResult::Outcome;

constexpr std::string_view kUsage =
    "; write config: {command: [prog, arg, ...], timeout_ms: N} in the binding";

struct ExecConfig {
  std::vector<std::string> command;
  int64_t timeout_ms = 0;  // 0: only the binding's deadline
};

bool parse_config(const std::string& text, ExecConfig* out, std::string* why) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    *why = "config is not a JSON object";
    return false;
  }
  for (const auto& [key, value] : v.as_object()) {
    if (key == "command") {
      if (!value.is_array() || value.as_array().empty()) {
        *why = "config.command must be a non-empty list of strings";
        return false;
      }
      for (const json::value& arg : value.as_array()) {
        if (!arg.is_string()) {
          *why = "config.command must hold only strings (quote numbers: \"5\")";
          return false;
        }
        out->command.emplace_back(arg.get_string());
      }
      if (out->command[0].empty()) {
        *why = "config.command[0], the program, is empty";
        return false;
      }
    } else if (key == "timeout_ms") {
      if (!value.is_int64() || value.as_int64() <= 0) {
        *why = "config.timeout_ms must be a whole number of milliseconds > 0";
        return false;
      }
      out->timeout_ms = value.as_int64();
    } else {
      *why = "unknown config key '" + std::string(key) + "'; exec takes command and timeout_ms";
      return false;
    }
  }
  if (out->command.empty()) {
    *why = "config.command is missing";
    return false;
  }
  return true;
}

std::string trim_right(std::string s) {
  size_t end = s.find_last_not_of(" \t\r\n");
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

std::string stderr_note(const std::string& err) {
  std::string e = trim_right(err);
  return e.empty() ? "; stderr was empty" : "; stderr: " + e;
}

// The first `n` bytes of `s`, not ending inside a UTF-8 sequence (reasons end up in JSON).
std::string prefix_utf8(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);  // thread-safe, unlike strsignal
  return abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig);
}

class ExecStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "exec",
            .version = "1.0.0",
            .side_effects = SideEffects::kIdempotent,
            .blocking = true};
  }

  Status check_config(std::string_view config_json) const override {
    ExecConfig config;
    std::string why;
    if (parse_config(std::string(config_json), &config, &why)) return Status();
    return Status::invalid_argument("exec: " + why + std::string(kUsage));
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    ExecConfig config;
    std::string why;
    if (!parse_config(ctx.config(), &config, &why)) {
      return StageResult::permanent("exec: " + why + std::string(kUsage));
    }
    const std::string prog = "'" + config.command[0] + "'";

    // The earlier of the stage's own timeout and the binding's deadline.
    const Clock::time_point start = Clock::now();
    Clock::time_point deadline = ctx.deadline();
    int64_t timeout_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - start).count();
    std::string timeout_source = "the binding's timeout_ms";
    if (config.timeout_ms > 0 && config.timeout_ms <= timeout_ms) {
      deadline = start + std::chrono::milliseconds(config.timeout_ms);
      timeout_ms = config.timeout_ms;
      timeout_source = "config.timeout_ms";
    }

    if (timeout_ms <= 0) {
      return StageResult::retryable("exec: the deadline passed before " + prog + " could start");
    }
    SubprocessOptions options{.deadline = deadline,
                              .cancelled = [&ctx] { return ctx.cancelled(); }};
    Result<SubprocessResult> run = run_subprocess(config.command, event.payload, options);
    ctx.count("exec_runs");
    if (!run.ok()) {
      return StageResult::retryable("exec: cannot start " + prog + ": " + run.status().message());
    }
    const SubprocessResult& r = *run;
    switch (r.outcome) {
      case Outcome::kSpawnFailed:
        return StageResult::permanent("exec: cannot run " + prog + ": " +
                                      std::strerror(r.spawn_errno) +
                                      "; check config.command[0] and PATH");
      case Outcome::kTimedOut:
        ctx.count("exec_timeouts");
        return StageResult::retryable("exec: " + prog + " timed out after " +
                                      std::to_string(timeout_ms) + " ms (" + timeout_source +
                                      "); killed its process group");
      case Outcome::kCancelled:
        return StageResult::retryable("exec: " + prog +
                                      " was cancelled (factoryd is stopping); killed it");
      case Outcome::kOutputTooLarge:
        return StageResult::permanent("exec: " + prog + " printed more than " +
                                      std::to_string(options.max_stdout_bytes >> 20) +
                                      " MiB on stdout; an event payload must be smaller");
      case Outcome::kProcessLimit:  // the exec stage sets no max_processes
        return StageResult::retryable("exec: " + prog + " started too many processes");
      case Outcome::kSignaled:
        return StageResult::retryable("exec: " + prog + " was killed by " + signal_name(r.signal) +
                                      stderr_note(r.err));
      case Outcome::kExited:
        break;
    }
    if (r.exit_code != 0) {
      return StageResult::retryable("exec: " + prog + " failed with exit code " +
                                    std::to_string(r.exit_code) + stderr_note(r.err));
    }
    std::string out = trim_right(r.out);
    json::error_code ec;
    json::parse(out, ec);
    if (ec) {
      std::string start_of = prefix_utf8(out, 80);
      return StageResult::permanent(
          "exec: " + prog + " printed " +
          (out.empty() ? std::string("nothing")
                       : "output that is not JSON (" + ec.message() + "): " + start_of) +
          "; the command must print exactly one JSON document on stdout");
    }
    ctx.emit({.payload = std::move(out)});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(ExecStage);

}  // namespace
}  // namespace factory::stages
