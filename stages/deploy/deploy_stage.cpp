// deploy: releases an approved, gated commit and emits a deployment
// (config/schemas/deployment.json). Targets:
//   local    installs the commit (git archive) as <data_dir>/factory/releases/<project>/<release>,
//            switches `current` to it atomically, runs the health command N times (the canary)
//            and keeps it (deployed) or switches back to the previous release (rolled_back);
//            keeps the newest `keep` releases (releases.h).
//   command  installs the release directory the same way and runs a templated command
//            (kubectl apply -f {release_dir}, gcloud run deploy ...) in it.
//   webhook  POSTs the deployment JSON to a URL.
// Reference: stages/deploy/README.md.
//
// At most once per release: the release id is derived from the ticket and the commit, so a
// redelivered event, a DAG retry or a recovered intent finds the outcome record the first
// deploy wrote and emits it again instead of deploying twice (kFenced; recover() reads the
// record). A local deploy interrupted by a crash resumes where it stopped (releases.h).
//
// Thread-safe: a deploy holds its project's lock (lock_repo on the project's releases dir).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/json.hpp>

#include "common/schemas.h"
#include "common/workspace.h"
#include "deploy/http_post.h"
#include "deploy/releases.h"
#include "exec/sandbox.h"
#include "exec/subprocess.h"
#include "factory/stage.h"

namespace factory::stages::deploy {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kDefaultKeep = 3;
constexpr int kDefaultCanaryChecks = 3;
constexpr int64_t kDefaultHealthTimeoutMs = 30'000;
constexpr int64_t kDefaultCommandTimeoutMs = 300'000;
constexpr int64_t kDefaultWebhookTimeoutMs = 10'000;
constexpr size_t kMessageTail = 2000;

std::string str(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t num(const json::object* o, std::string_view k, int64_t fallback) {
  if (!o) return fallback;
  const json::value* v = o->if_contains(k);
  return v && v->is_int64() ? v->as_int64() : fallback;
}

const json::object* obj(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::string tail(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t from = s.size() - n;
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
  return "..." + std::string(s.substr(from));
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

bool same_commit(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return false;
  size_t n = std::min(a.size(), b.size());
  return n >= 7 && a.substr(0, n) == b.substr(0, n);
}

// What one event asks for, resolved and checked.
struct Plan {
  json::object in;
  std::string ticket, project, repo, commit, release, target;
  fs::path dir;          // the project's releases directory
  json::object command;  // target command: {argv, timeout_ms}, from the config only
};

// Trust (README.md "What comes from where"): the event is data. The commit is deployed only when
// the scheduler's authenticated dispatch says a granted approval of this run was bound to it
// (kApprovedCommitHeader, task_stage.h); what the event's `approval` says is not enough.
std::optional<StageResult> check_approved(const Event& event, const std::string& commit) {
  std::string approved;
  for (const Header& h : event.headers) {
    if (h.key != kApprovedCommitHeader) continue;
    if (same_commit(h.value, commit)) return std::nullopt;
    approved += (approved.empty() ? "" : ", ") + h.value;
  }
  return StageResult::permanent(
      "refusing to deploy " + commit + ": no granted approval of this run is bound to it (" +
      (approved.empty() ? std::string("the run has none") : "approved: " + approved) +
      "); deploy acts only on the commit an approval task of the same DAG run approved — add an "
      "approval task upstream with bind_to: the commit, and approve it");
}

// The repository is the project's under the data dir: a path from the event may only name it.
std::optional<StageResult> check_repo(const std::string& given, const fs::path& repo) {
  if (given.empty()) return std::nullopt;
  std::error_code ec1, ec2;
  fs::path a = fs::weakly_canonical(given, ec1);
  fs::path b = fs::weakly_canonical(repo, ec2);
  if (!ec1 && !ec2 && a == b) return std::nullopt;
  return StageResult::permanent("artifact.repo '" + given + "' is not the project's repository " +
                                repo.string() +
                                "; deploy reads only <data_dir>/factory/repos/<project>: drop "
                                "artifact.repo or make it that path");
}

// The command target's {argv, timeout_ms}: from the config (a DAG task's params as written in
// the DAG file, or a pipeline binding's config block), never from rendered upstream output. An
// event whose `command` differs from the config's is refused.
std::variant<json::object, StageResult> command_from_config(const json::object& in,
                                                            StageContext& ctx) {
  boost::system::error_code ec;
  json::value config = json::parse(ctx.config(), ec);
  const json::object* cmd =
      !ec && config.is_object() ? obj(config.as_object(), "command") : nullptr;
  if (!cmd || !cmd->contains("argv")) {
    return StageResult::permanent(
        "target command needs command: {argv: [...]} written in the DAG file's task params (or "
        "the binding's config), with no {{ }} template in it: the argv is never taken from an "
        "upstream output or the run's conf");
  }
  if (const json::value* given = in.if_contains("command"); given && *given != json::value(*cmd)) {
    return StageResult::permanent(
        "refusing the event's command: it differs from the command in the task's configuration "
        "(a rendered value may not choose what runs); write the command literally in the DAG "
        "file");
  }
  return *cmd;
}

// The plan, or the StageResult refusing the event.
std::variant<Plan, StageResult> make_plan(const Event& event, StageContext& ctx) {
  Plan p;
  p.in = json::parse(event.payload).as_object();
  const json::object& artifact = p.in.at("artifact").as_object();
  p.project = str(artifact, "project");
  if (Status s = check_project_name(p.project); !s.ok()) {
    return StageResult::permanent("artifact.project: " + s.message());
  }
  p.ticket = str(artifact, "ticket");
  if (p.ticket.empty()) {
    if (const json::object* spec = obj(p.in, "spec")) p.ticket = str(*spec, "id");
  }
  p.repo = repo_path(ctx.data_dir(), p.project).string();
  if (auto refused = check_repo(str(artifact, "repo"), p.repo)) return *refused;
  const json::object* verdict = obj(p.in, "verdict");
  p.commit = str(p.in, "commit");
  if (p.commit.empty() && verdict) p.commit = str(*verdict, "commit");
  if (p.commit.empty()) p.commit = str(artifact, "commit");
  if (verdict) {
    const json::value* passed = verdict->if_contains("gate_passed");
    if (passed && passed->is_bool() && !passed->as_bool()) {
      return StageResult::permanent("refusing to deploy " + p.commit +
                                    ": its gate verdict says gate_passed: false");
    }
  }
  if (const json::object* approval = obj(p.in, "approval")) {
    std::string bound = str(*approval, "bound_to");
    if (!bound.empty() && !same_commit(bound, p.commit) &&
        !same_commit(bound, str(artifact, "commit"))) {
      return StageResult::permanent("refusing to deploy " + p.commit + ": the approval is for " +
                                    bound + ", not this commit; approve this commit first");
    }
  }
  if (auto refused = check_approved(event, p.commit)) return *refused;
  p.release = str(p.in, "release");
  if (p.release.empty()) p.release = release_id(p.ticket, p.commit);
  p.target = str(p.in, "target");
  if (p.target.empty()) p.target = "local";
  p.dir = project_dir(ctx.data_dir(), p.project);
  if (p.target == "command") {
    auto cmd = command_from_config(p.in, ctx);
    if (auto* refused = std::get_if<StageResult>(&cmd)) return *refused;
    p.command = std::get<json::object>(std::move(cmd));
  }
  return p;
}

struct Canary {
  int checks = 0;
  int passed = 0;
  std::string message;
};

Canary run_canary(const Plan& p, StageContext& ctx) {
  const json::object* local = obj(p.in, "local");
  fs::path release_dir = p.dir / p.release;
  std::vector<std::string> health;
  if (local) {
    if (const json::value* h = local->if_contains("health_command")) {
      for (const json::value& a : h->as_array()) health.emplace_back(a.as_string());
    }
  }
  if (health.empty()) {
    auto project = load_project(release_dir);
    if (project.ok()) health = project->health_command;
  }
  Canary c;
  if (health.empty()) {
    c.message = "no health command (local.health_command or factory-project.yaml): not checked";
    return c;
  }
  const json::object* canary = local ? obj(*local, "canary") : nullptr;
  c.checks = static_cast<int>(num(canary, "checks", kDefaultCanaryChecks));
  int64_t timeout_ms = num(local, "health_timeout_ms", kDefaultHealthTimeoutMs);
  std::string shown;
  for (const std::string& a : health) shown += (shown.empty() ? "" : " ") + a;
  for (int i = 0; i < c.checks; ++i) {
    // The health command usually comes from the generated factory-project.yaml: sandboxed,
    // with a clean environment (exec/sandbox.h).
    SandboxOptions opts;
    opts.work_dir = fs::absolute(release_dir);
    opts.deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    opts.max_stdout_bytes = 1 << 20;
    opts.max_stderr_bytes = 4096;
    note_isolation(ctx);
    auto r = run_sandboxed(health, opts);
    bool ok = r.ok() && r->outcome == SubprocessResult::Outcome::kExited && r->exit_code == 0;
    if (ok) {
      ++c.passed;
      continue;
    }
    std::string why;
    if (!r.ok()) {
      why = r.status().to_string();
    } else if (r->outcome == SubprocessResult::Outcome::kTimedOut) {
      why = "timed out after " + std::to_string(timeout_ms) + " ms";
    } else if (r->outcome == SubprocessResult::Outcome::kExited) {
      why = r->exit_code == 127 ? "exit code 127 (is " + health.front() + " installed?)"
                                : "exit code " + std::to_string(r->exit_code);
      std::string out = r->out + r->err;
      if (!out.empty()) why += ":\n" + tail(out, kMessageTail);
    } else if (r->outcome == SubprocessResult::Outcome::kProcessLimit) {
      why = "it started too many processes; killed";
    } else if (r->outcome == SubprocessResult::Outcome::kOutputTooLarge) {
      why = "it printed more than 1 MiB; killed";
    } else {
      why = "it did not exit normally";
    }
    c.message = "health check " + std::to_string(i + 1) + " of " + std::to_string(c.checks) +
                " (`" + shown + "`) failed: " + why;
    ctx.log_warn("canary of " + p.release + " failed: " + c.message);
    return c;
  }
  c.message = "health check `" + shown + "` passed " + std::to_string(c.passed) + " of " +
              std::to_string(c.checks) + " times";
  return c;
}

json::object base_output(const Plan& p) {
  return json::object{{"ticket", p.ticket},
                      {"project", p.project},
                      {"commit", p.commit},
                      {"target", p.target},
                      {"release", p.release},
                      {"status", "deployed"},
                      {"canary", json::object{{"checks", 0}, {"passed", 0}}}};
}

// Installs the release directory (local and command targets). The StageResult on failure.
std::optional<StageResult> install(const Plan& p) {
  json::object marker{{"release", p.release},
                      {"commit", p.commit},
                      {"ticket", p.ticket},
                      {"project", p.project},
                      {"seq", next_release_seq(p.dir)},
                      {"installed_ms", wall_ms()}};
  auto installed = install_release(p.repo, p.commit, p.dir, p.release, json::serialize(marker));
  if (installed.ok()) return std::nullopt;
  if (installed.status().is_not_found() || installed.status().is_failed_precondition()) {
    return StageResult::permanent(installed.status().message());
  }
  return StageResult::retryable("installing " + p.release +
                                " failed: " + installed.status().to_string());
}

// The outcome, recorded before it is emitted: from now on this release is done.
StageResult finish(const Plan& p, json::object out, StageContext& ctx) {
  out["deployed_ms"] = wall_ms();
  std::string text = json::serialize(out);
  if (Status s = write_record(p.dir, p.release, text); !s.ok()) {
    return StageResult::retryable("recording the outcome of " + p.release +
                                  " failed: " + s.to_string());
  }
  remove_record(p.dir, p.release + ".pending");
  ctx.count(std::string("deploy_") + std::string(out.at("status").as_string()));
  ctx.emit({.payload = std::move(text)});
  return StageResult::success();
}

StageResult deploy_local(const Plan& p, StageContext& ctx) {
  if (auto refused = install(p)) return *refused;
  const std::string pending_name = p.release + ".pending";
  json::object pending;
  if (auto text = read_record(p.dir, pending_name)) {
    boost::system::error_code ec;
    json::value v = json::parse(*text, ec);
    if (!ec && v.is_object()) pending = v.as_object();
  }
  if (!pending.contains("previous")) {
    std::string previous = current_release(p.dir);
    pending["previous"] = previous == p.release ? "" : previous;
    if (Status s = write_record(p.dir, pending_name, json::serialize(pending)); !s.ok()) {
      return StageResult::retryable(s.to_string());
    }
  }
  const std::string previous(pending.at("previous").as_string());
  if (!pending.contains("decision")) {
    if (Status s = switch_current(p.dir, p.release); !s.ok()) {
      return StageResult::retryable(s.to_string());
    }
    Canary c = run_canary(p, ctx);
    if (ctx.cancelled()) return StageResult::retryable("cancelled during the canary");
    pending["decision"] = c.passed == c.checks ? "deployed" : "rolled_back";
    pending["canary"] = json::object{{"checks", c.checks}, {"passed", c.passed}};
    pending["message"] = c.message;
    if (Status s = write_record(p.dir, pending_name, json::serialize(pending)); !s.ok()) {
      return StageResult::retryable(s.to_string());
    }
  }
  const std::string decision(pending.at("decision").as_string());
  if (Status s = switch_current(p.dir, decision == "deployed" ? p.release : previous); !s.ok()) {
    return StageResult::retryable(s.to_string());
  }
  const json::object* local = obj(p.in, "local");
  int keep = static_cast<int>(num(local, "keep", kDefaultKeep));
  std::string current = current_release(p.dir);
  std::vector<std::string> pruned = prune_releases(p.dir, keep, current, previous);
  json::object out = base_output(p);
  out["status"] = decision;
  out["canary"] = pending.at("canary");
  out["path"] = (p.dir / p.release).string();
  out["previous"] = previous;
  out["current"] = current;
  std::string message(pending.at("message").as_string());
  if (decision == "rolled_back") {
    message += previous.empty() ? "; rolled back: no previous release, current removed"
                                : "; rolled back to " + previous;
  }
  if (!pruned.empty()) message += "; removed old releases: " + std::to_string(pruned.size());
  out["message"] = message;
  return finish(p, std::move(out), ctx);
}

StageResult deploy_command(const Plan& p, StageContext& ctx) {
  if (auto refused = install(p)) return *refused;
  const json::object& cmd = p.command;  // from the stage's config, never the event
  fs::path release_dir = fs::absolute(p.dir / p.release);
  std::vector<std::string> argv;
  std::string shown;
  for (const json::value& a : cmd.at("argv").as_array()) {
    std::string arg(a.as_string());
    for (auto [k, v] :
         {std::pair<std::string_view, std::string>{"release_dir", release_dir.string()},
          {"release", p.release},
          {"commit", p.commit},
          {"ticket", p.ticket},
          {"project", p.project}}) {
      replace_all(&arg, "{{" + std::string(k) + "}}", v);
      replace_all(&arg, "{" + std::string(k) + "}", v);
    }
    shown += (shown.empty() ? "" : " ") + arg;
    argv.push_back(std::move(arg));
  }
  int64_t timeout_ms = num(&cmd, "timeout_ms", kDefaultCommandTimeoutMs);
  // It runs in the release, which is generated code: sandboxed with a clean environment; the
  // network and extra variables only when command.network / command.env say so.
  SandboxOptions opts;
  opts.work_dir = release_dir;
  opts.deadline = std::min(Clock::now() + std::chrono::milliseconds(timeout_ms), ctx.deadline());
  opts.cancelled = [&ctx] { return ctx.cancelled(); };
  opts.max_stdout_bytes = 1 << 20;
  opts.max_stderr_bytes = 8192;
  if (const json::value* net = cmd.if_contains("network"); net && net->is_bool()) {
    opts.network = net->as_bool();
  }
  for (auto [key, into] : {std::pair{"read_only", &opts.read_only}, {"writable", &opts.writable}}) {
    if (const json::value* paths = cmd.if_contains(key); paths && paths->is_array()) {
      for (const json::value& path : paths->as_array()) {
        if (path.is_string()) into->emplace_back(std::string(path.as_string()));
      }
    }
  }
  if (const json::object* env = obj(cmd, "env")) {
    for (const auto& kv : *env) {
      if (kv.value().is_string()) {
        opts.env.push_back(std::string(kv.key()) + "=" + std::string(kv.value().as_string()));
      }
    }
  }
  note_isolation(ctx);
  auto r = run_sandboxed(argv, opts);
  if (!r.ok())
    return StageResult::retryable("`" + shown + "` could not start: " + r.status().to_string());
  std::string output = tail(r->out + r->err, kMessageTail);
  if (r->outcome != SubprocessResult::Outcome::kExited || r->exit_code != 0) {
    std::string why = r->outcome == SubprocessResult::Outcome::kTimedOut
                          ? "did not finish within " + std::to_string(timeout_ms) + " ms"
                      : r->outcome == SubprocessResult::Outcome::kExited
                          ? "exited with " + std::to_string(r->exit_code)
                          : "did not exit normally";
    // Retried per the DAG's policy; nothing is recorded, so a retry runs it again.
    return StageResult::retryable("deploy command `" + shown + "` " + why +
                                  (output.empty() ? "" : ":\n" + output));
  }
  json::object out = base_output(p);
  out["path"] = release_dir.string();
  out["message"] = "`" + shown + "` succeeded" + (output.empty() ? "" : ":\n" + output);
  return finish(p, std::move(out), ctx);
}

StageResult deploy_webhook(const Plan& p, StageContext& ctx) {
  const json::object* hook = obj(p.in, "webhook");
  std::string url = hook ? str(*hook, "url") : "";
  if (url.empty() && hook && !str(*hook, "url_secret").empty()) {
    auto secret = ctx.secret(str(*hook, "url_secret"));
    if (!secret || secret->empty()) {
      return StageResult::permanent("secret '" + str(*hook, "url_secret") +
                                    "' (the webhook URL) is not set; define it in the "
                                    "environment or the secrets file");
    }
    url = *secret;
  }
  if (url.empty()) {
    return StageResult::permanent(
        "target webhook needs webhook.url or webhook.url_secret, e.g. webhook: {url: "
        "http://deployer:8080/deploy}");
  }
  json::object body = base_output(p);
  body["url"] = redact_url(url);
  body["deployed_ms"] = wall_ms();
  auto r = post_json(url, json::serialize(body), num(hook, "timeout_ms", kDefaultWebhookTimeoutMs));
  if (!r.ok()) {
    return StageResult::retryable("POST to " + redact_url(url) +
                                  " failed: " + r.status().to_string());
  }
  json::object out = base_output(p);
  out["url"] = redact_url(url);
  out["message"] =
      "HTTP " + std::to_string(r->status) + (r->body.empty() ? "" : ": " + tail(r->body, 500));
  if (r->status / 100 == 5 || r->status == 429 || r->status == 408) {
    return StageResult::retryable("POST to " + redact_url(url) + " answered " +
                                  std::string(out.at("message").as_string()));
  }
  // Any other non-2xx: the receiver refused this deployment; retrying will not change that.
  if (r->status / 100 != 2) out["status"] = "failed";
  return finish(p, std::move(out), ctx);
}

class DeployStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "deploy",
            .version = "1.0.0",
            .input_schema = std::string(schema("deploy_input")),
            .output_schema = std::string(schema("deployment")),
            .side_effects = SideEffects::kFenced,
            .blocking = true,
            .default_concurrency = 2};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    auto plan = make_plan(event, ctx);
    if (auto* refused = std::get_if<StageResult>(&plan)) return *refused;
    const Plan& p = std::get<Plan>(plan);
    RepoLock lock = lock_repo(p.dir);
    if (auto done = read_record(p.dir, p.release)) {
      ctx.log_info("release " + p.release + " was already deployed; emitting its outcome again");
      ctx.emit({.payload = *done});
      return StageResult::success();
    }
    if (p.target == "command") return deploy_command(p, ctx);
    if (p.target == "webhook") return deploy_webhook(p, ctx);
    return deploy_local(p, ctx);
  }

  // The outcome record says whether the deploy happened; without one, process() resumes it
  // (each local step is idempotent, releases.h).
  Recovery recover(const Event& event, StageContext& ctx) override {
    auto plan = make_plan(event, ctx);
    if (std::holds_alternative<StageResult>(plan)) return Recovery::kNotDone;
    const Plan& p = std::get<Plan>(plan);
    RepoLock lock = lock_repo(p.dir);
    auto done = read_record(p.dir, p.release);
    if (!done) return Recovery::kNotDone;
    ctx.emit({.payload = *done});
    return Recovery::kDone;
  }
};

FACTORY_REGISTER_STAGE(DeployStage);

}  // namespace
}  // namespace factory::stages::deploy
