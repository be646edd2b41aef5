// gate: the quality gate. Checks out the tested commit (test_results.commit: the code plus its
// synthesized tests; artifact.commit when the results name none) in a scratch directory and
// runs the configured checks there — test results over a threshold, the built-in secret
// scanner (secret_scan.h), the dependency licence allow-list (licences.h), and configured
// commands (linters) — then emits a gate_verdict (config/schemas/gate_verdict.json). A failed
// gate is a successful task whose verdict says gate_passed: false; its `report` is what codegen
// gets back on its next round. Reference: stages/gate/README.md.
//
// Idempotent: a clean checkout per call, nothing written outside it. Blocking: runs git and
// the commands. Stateless, so thread-safe.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "common/schemas.h"
#include "common/workspace.h"
#include "exec/sandbox.h"
#include "exec/subprocess.h"
#include "factory/stage.h"
#include "gate/files_arg.h"
#include "gate/licences.h"
#include "gate/secret_scan.h"

namespace factory::stages::gate {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kDefaultCommandTimeoutMs = 60'000;
constexpr size_t kOutputTail = 3000;  // of a failed command's output, in its report
constexpr size_t kLogTail = 1500;     // of the tests' log excerpt, in the tests report
const std::vector<std::string> kDefaultAllow = {"MIT", "BSD-3-Clause", "Apache-2.0", "PSF-2.0"};

struct Check {
  std::string name;
  bool passed = false;
  std::string report;
  int64_t duration_ms = 0;
};

std::string str(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t num(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}

std::string tail(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t from = s.size() - n;
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
  return "..." + std::string(s.substr(from));
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

Check tests_check(const json::object& tests, double min_ratio) {
  Check c{.name = "tests"};
  int64_t passed = num(tests, "passed");
  int64_t failed = num(tests, "failed");
  int64_t errors = num(tests, "errors");
  int64_t total = passed + failed + errors;
  if (total == 0) {
    c.report =
        "no test ran (0 passed, 0 failed, 0 errors): the gate needs at least one test that runs; "
        "check that the tests are discovered by the project's test_command";
  } else {
    double ratio = static_cast<double>(passed) / static_cast<double>(total);
    c.passed = ratio + 1e-9 >= min_ratio;
    c.report = std::to_string(passed) + " of " + std::to_string(total) + " tests passed (" +
               std::to_string(failed) + " failed, " + std::to_string(errors) +
               " errors): pass ratio " + fixed2(ratio) + (c.passed ? ", at least " : ", below ") +
               fixed2(min_ratio);
  }
  std::string log = str(tests, "log_excerpt");
  if (!c.passed && !log.empty()) c.report += "\ntest log (end):\n" + tail(log, kLogTail);
  return c;
}

Check secrets_check(const fs::path& root, const std::vector<std::string>& changed) {
  Check c{.name = "secrets"};
  auto found = scan_tree(root, {});
  if (!found.ok()) {
    c.report = "the secret scan could not read the checkout: " + found.status().to_string();
    return c;
  }
  if (found->empty()) {
    c.passed = true;
    c.report = "no secrets found";
    return c;
  }
  c.report = std::to_string(found->size()) +
             " possible secret(s) in the code; move each out of it (read it from the environment "
             "or a secret store), rotate it, and commit again (a line holding a deliberate fake "
             "may say factory:allow-secret):";
  for (const SecretFinding& f : *found) {
    bool is_changed = std::find(changed.begin(), changed.end(), f.path) != changed.end();
    c.report += "\n  " + describe(f) + (is_changed ? " (changed in this commit)" : "");
  }
  return c;
}

Check licences_check(const fs::path& root, const json::value* cfg) {
  Check c{.name = "licences"};
  LicenceConfig config{.allow = kDefaultAllow};
  if (cfg && cfg->is_object()) {
    const json::object& o = cfg->as_object();
    if (const json::value* a = o.if_contains("allow")) {
      config.allow.clear();
      for (const json::value& id : a->as_array()) config.allow.emplace_back(id.as_string());
    }
    if (std::string m = str(o, "manifest"); !m.empty()) config.manifest = m;
    if (const json::value* k = o.if_contains("known"); k && k->is_object()) {
      for (const auto& kv : k->as_object()) {
        if (kv.value().is_string()) {
          config.known.emplace_back(std::string(kv.key()), std::string(kv.value().as_string()));
        }
      }
    }
    if (std::string f = str(o, "known_file"); !f.empty()) config.known_file = f;
  }
  auto r = check_licences(root, config);
  if (!r.ok()) {
    c.report = r.status().message();
    return c;
  }
  c.passed = r->passed;
  c.report = r->report;
  return c;
}

// The program argv[0] names: a path (relative to the checkout) or a name on PATH. Empty when
// there is no such executable.
std::string find_program(const std::string& name, const fs::path& checkout) {
  if (name.find('/') != std::string::npos) {
    fs::path p = fs::path(name).is_absolute() ? fs::path(name) : checkout / name;
    return ::access(p.c_str(), X_OK) == 0 ? p.string() : "";
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string_view::npos) end = dirs.size();
    fs::path p = fs::path(std::string(dirs.substr(pos, end - pos))) / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0) return p.string();
    pos = end + 1;
  }
  return "";
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Runs one configured command in the checkout, sandboxed (exec/sandbox.h). nullopt when the
// stage was cancelled.
std::optional<Check> command_check(const json::object& cmd, const fs::path& checkout,
                                   const std::vector<std::string>& changed, StageContext& ctx) {
  Check c{.name = str(cmd, "name")};
  std::vector<std::string> argv;
  std::string files_arg;  // the {files...} argument, when there is one
  size_t matched = 0;
  for (const json::value& a : cmd.at("argv").as_array()) {
    std::string arg(a.as_string());
    if (is_files_arg(arg)) {
      files_arg = arg;
      for (std::string& f : expand_files_arg(arg, changed, checkout)) {
        argv.push_back(std::move(f));
        ++matched;
      }
      continue;
    }
    argv.push_back(std::move(arg));
  }
  if (argv.empty()) {
    c.report = "argv has nothing to run; name a program first, e.g. [ruff, check, {files:.py}]";
    return c;
  }
  const std::string tool = argv.front();
  if (!files_arg.empty() && matched == 0) {
    c.passed = true;
    c.report = "skipped: no changed file matches " + files_arg;
    return c;
  }
  if (find_program(tool, checkout).empty()) {
    c.report = tool + " is not installed; install it or remove the check";
    return c;
  }
  int64_t timeout_ms = num(cmd, "timeout_ms");
  if (timeout_ms <= 0) timeout_ms = kDefaultCommandTimeoutMs;
  auto start = Clock::now();
  SandboxOptions opts;
  opts.work_dir = checkout;
  opts.deadline = std::min(start + std::chrono::milliseconds(timeout_ms), ctx.deadline());
  opts.cancelled = [&ctx] { return ctx.cancelled(); };
  opts.max_stdout_bytes = 4 << 20;
  opts.max_stderr_bytes = 16 << 10;
  if (const json::value* env = cmd.if_contains("env"); env && env->is_object()) {
    for (const auto& kv : env->as_object()) {
      if (kv.value().is_string()) {
        opts.env.push_back(std::string(kv.key()) + "=" + std::string(kv.value().as_string()));
      }
    }
  }
  note_isolation(ctx);
  auto r = run_sandboxed(argv, opts);
  c.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  if (!r.ok()) {
    c.report = "`" + joined(argv) + "` could not start: " + r.status().to_string();
    return c;
  }
  std::string output = r->out;
  if (!r->err.empty()) output += (output.empty() ? "" : "\n") + r->err;
  switch (r->outcome) {
    case SubprocessResult::Outcome::kExited:
      c.passed = r->exit_code == 0;
      if (c.passed) {
        c.report = "`" + joined(argv) + "` passed";
      } else if ((r->exit_code == 127 && output.find("No such file") != std::string::npos) ||
                 output.starts_with("bwrap: execvp ")) {  // not visible inside the sandbox
        c.report = tool + " is not installed; install it or remove the check";
      } else {
        c.report = "`" + joined(argv) + "` exited with " + std::to_string(r->exit_code) +
                   (output.empty() ? "" : ":\n" + tail(output, kOutputTail));
      }
      break;
    case SubprocessResult::Outcome::kTimedOut:
      if (ctx.deadline() <= Clock::now() &&
          start + std::chrono::milliseconds(timeout_ms) > ctx.deadline()) {
        return std::nullopt;  // the task's own deadline: not the command's fault
      }
      c.report = "`" + joined(argv) + "` did not finish within " + std::to_string(timeout_ms) +
                 " ms (timeout_ms); it was killed" +
                 (output.empty() ? "" : ":\n" + tail(output, kOutputTail));
      break;
    case SubprocessResult::Outcome::kCancelled:
      return std::nullopt;
    case SubprocessResult::Outcome::kSignaled:
      c.report = "`" + joined(argv) + "` was killed by signal " + std::to_string(r->signal);
      break;
    case SubprocessResult::Outcome::kOutputTooLarge:
      c.report = "`" + joined(argv) + "` wrote more than 4 MiB of output; it was killed";
      break;
    case SubprocessResult::Outcome::kSpawnFailed:
      c.report = tool + " is not installed; install it or remove the check";
      break;
    case SubprocessResult::Outcome::kProcessLimit:
      c.report = "`" + joined(argv) + "` started more than " +
                 std::to_string(SandboxLimits{}.max_processes) + " processes; it was killed";
      break;
  }
  return c;
}

class GateStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "gate",
            .version = "1.0.0",
            .input_schema = std::string(schema("gate_input")),
            .output_schema = std::string(schema("gate_verdict")),
            .side_effects = SideEffects::kIdempotent,
            .blocking = true,
            .default_concurrency = 2};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    json::object in = json::parse(event.payload).as_object();
    const json::object& artifact = in.at("artifact").as_object();
    const json::object& tests = in.at("tests").as_object();
    json::object checks_cfg;
    if (const json::value* c = in.if_contains("checks")) checks_cfg = c->as_object();

    std::string project = str(artifact, "project");
    if (Status s = check_project_name(project); !s.ok()) {
      return StageResult::permanent("artifact.project: " + s.message());
    }
    std::string repo = str(artifact, "repo");
    if (repo.empty()) repo = repo_path(ctx.data_dir(), project).string();
    std::string commit = str(tests, "commit");
    if (commit.empty()) commit = str(artifact, "commit");
    std::vector<std::string> changed;
    if (const json::value* f = artifact.if_contains("files"); f && f->is_array()) {
      for (const json::value& p : f->as_array()) {
        if (p.is_string()) changed.emplace_back(p.as_string());
      }
    }

    auto checkout = clean_checkout(repo, commit, ctx.scratch_dir() / "gate");
    std::vector<Check> results;
    if (!checkout.ok() && checkout.status().is_failed_precondition()) {
      // A symlink, a submodule or a bad path in the tree: nothing of it is checked out or run,
      // and the verdict says why, so the next round of codegen can fix it.
      results.push_back(Check{.name = "tree", .report = checkout.status().message()});
      return emit_verdict(in, artifact, repo, commit, std::move(results), ctx);
    }
    if (!checkout.ok()) {
      if (checkout.status().is_not_found()) {
        return StageResult::permanent("commit " + commit + " is not in " + repo + ": " +
                                      checkout.status().message());
      }
      return StageResult::retryable("checkout of " + commit +
                                    " failed: " + checkout.status().to_string());
    }
    const fs::path& root = checkout->path();

    double min_ratio = 1.0;
    if (const json::value* m = checks_cfg.if_contains("min_pass_ratio"))
      min_ratio = m->to_number<double>();
    results.push_back(tests_check(tests, min_ratio));
    const json::value* scan = checks_cfg.if_contains("secret_scan");
    if (!scan || scan->as_bool())
      results.push_back(timed([&] { return secrets_check(root, changed); }));
    const json::value* lic = checks_cfg.if_contains("licences");
    if (!lic || !lic->is_bool() || lic->as_bool()) {
      results.push_back(timed([&] { return licences_check(root, lic); }));
    }
    if (const json::value* cmds = checks_cfg.if_contains("commands")) {
      for (const json::value& cmd : cmds->as_array()) {
        auto c = command_check(cmd.as_object(), root, changed, ctx);
        if (!c) return StageResult::retryable("cancelled while running the gate's commands");
        results.push_back(std::move(*c));
      }
    }
    return emit_verdict(in, artifact, repo, commit, std::move(results), ctx);
  }

 private:
  static StageResult emit_verdict(const json::object& in, const json::object& artifact,
                                  const std::string& repo, const std::string& commit,
                                  std::vector<Check> results, StageContext& ctx) {
    const std::string project = str(artifact, "project");
    bool passed =
        std::all_of(results.begin(), results.end(), [](const Check& c) { return c.passed; });
    json::object v;
    std::string ticket = str(artifact, "ticket");
    if (ticket.empty()) {
      if (const json::value* s = in.if_contains("spec"); s && s->is_object())
        ticket = str(s->as_object(), "id");
    }
    v["ticket"] = ticket;
    v["project"] = project;
    v["repo"] = repo;
    v["branch"] = str(artifact, "branch");
    v["commit"] = commit;
    if (int64_t attempt = num(artifact, "attempt"); attempt > 0) v["attempt"] = attempt;
    v["gate_passed"] = passed;
    json::array checks;
    std::string report;
    for (const Check& c : results) {
      checks.push_back(json::object{{"name", c.name},
                                    {"passed", c.passed},
                                    {"report", c.report},
                                    {"duration_ms", c.duration_ms}});
      if (!c.passed) report += (report.empty() ? "" : "\n\n") + ("[" + c.name + "] " + c.report);
    }
    v["checks"] = std::move(checks);
    v["report"] = report;
    if (const json::value* b = in.if_contains("branch"); b && b->is_object()) {
      if (const json::value* ids = b->as_object().if_contains(passed ? "passed" : "failed")) {
        v["_branch"] = *ids;
      } else {
        v["_branch"] = json::array();
      }
    }
    ctx.count(passed ? "gate_passed" : "gate_failed");
    if (!passed) ctx.log_info("gate failed for " + commit + ": " + report.substr(0, 500));
    ctx.emit({.payload = json::serialize(v)});
    return StageResult::success();
  }

  template <typename F>
  static Check timed(F&& f) {
    auto start = Clock::now();
    Check c = f();
    c.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    return c;
  }
};

FACTORY_REGISTER_STAGE(GateStage);

}  // namespace
}  // namespace factory::stages::gate
