// testsynth: writes tests for a ticket's acceptance criteria, commits them on top of codegen's
// commit, runs the project's test command in a clean checkout and emits test_results
// (README.md).
//
// Input (config/schemas/testsynth_input.json): {spec, artifact, provider, project_dir,
// timeout_ms, openai}. Steps:
//   1. the repository is <data_dir>/factory/repos/<artifact.project> (artifact.repo must name
//      it: a task's params never point the stage at another directory);
//   2. if a commit with "Factory-Round: <round key>" (a hash of the spec, codegen's commit, the
//      provider and the model) exists, the tests were committed before (redelivery, DAG retry,
//      the same round run again): reuse it; otherwise ask the provider (template: one test
//      per criterion; openai: behind ctx.breaker("llm")) and commit the tests with artifact.commit
//      as parent: "<id>: tests for the acceptance criteria";
//   3. check that commit out into the binding's scratch dir, run factory-project.yaml's
//      test_command there (timeout_ms), parse the unittest (or pytest) summary, emit.
// Failing tests are a result, not a stage failure: the gate judges them. A test run that hangs
// past timeout_ms is a result too (timed_out, one error). Running the tests twice for one event
// is harmless, so the stage is kIdempotent.
//
// Thread-safe: the branch's lock serializes the check-and-commit; each run has its own
// checkout.
#include <chrono>
#include <filesystem>
#include <string>

#include <boost/json.hpp>

#include "codegen/provider.h"
#include "common/schemas.h"
#include "common/workspace.h"
#include "exec/sandbox.h"
#include "factory/event.h"
#include "factory/stage.h"

namespace factory::stages {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using Outcome = SubprocessResult::Outcome;

constexpr std::string_view kTrailerEvent = "Factory-Event";
constexpr std::string_view kTrailerRound = "Factory-Round";
constexpr size_t kLogExcerptBytes = 4096;

struct Artifact {
  std::string ticket, project, repo, branch, commit;
  int64_t attempt = 1;
  bool skeleton = false;
  std::vector<std::string> files;
};

struct Input {
  FeatureSpec spec;
  json::value spec_json;
  Artifact artifact;
  std::string provider = "template";
  int64_t timeout_ms = 120000;
  OpenAiSettings openai;
  std::string api_key_secret;
};

Result<Input> parse_input(std::string_view payload) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return Status::invalid_argument("the event is not a JSON object");
  const json::object& o = v.as_object();
  Input in;
  const json::value* spec = o.if_contains("spec");
  if (!spec) return Status::invalid_argument("'spec' (the feature_spec) is missing");
  Result<FeatureSpec> s = parse_feature_spec(json::serialize(*spec));
  if (!s.ok()) return s.status();
  in.spec = std::move(*s);
  in.spec_json = *spec;
  const json::value* art = o.if_contains("artifact");
  if (!art || !art->is_object()) {
    return Status::invalid_argument("'artifact' (codegen's code_artifact) is missing");
  }
  const json::object& a = art->as_object();
  for (auto [key, out] : {std::pair{"ticket", &in.artifact.ticket},
                          {"project", &in.artifact.project},
                          {"repo", &in.artifact.repo},
                          {"branch", &in.artifact.branch},
                          {"commit", &in.artifact.commit}}) {
    const json::value* x = a.if_contains(key);
    if (!x || !x->is_string() || x->as_string().empty()) {
      return Status::invalid_argument(std::string("artifact.") + key + " is missing");
    }
    *out = std::string(x->as_string());
  }
  if (const json::value* x = a.if_contains("attempt"); x && x->is_int64()) {
    in.artifact.attempt = x->as_int64();
  }
  if (const json::value* x = a.if_contains("skeleton"); x && x->is_bool()) {
    in.artifact.skeleton = x->as_bool();
  }
  if (const json::value* x = a.if_contains("files"); x && x->is_array()) {
    for (const json::value& f : x->as_array()) {
      if (f.is_string()) in.artifact.files.emplace_back(f.as_string());
    }
  }
  if (const json::value* p = o.if_contains("provider"); p && p->is_string()) {
    in.provider = std::string(p->as_string());
  }
  if (in.provider != "template" && in.provider != "openai") {
    return Status::invalid_argument("'provider' must be \"template\" or \"openai\"");
  }
  if (const json::value* t = o.if_contains("timeout_ms"); t && t->is_int64()) {
    in.timeout_ms = std::max<int64_t>(1, t->as_int64());
  }
  if (in.provider == "openai") {
    const json::value* oa = o.if_contains("openai");
    if (!oa || !oa->is_object()) {
      return Status::invalid_argument("provider \"openai\" needs an 'openai' object");
    }
    const json::object& c = oa->as_object();
    auto str = [&](const char* k) -> std::string {
      const json::value* x = c.if_contains(k);
      return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    in.openai.base_url = str("base_url");
    in.openai.model = str("model");
    in.api_key_secret = str("api_key_secret");
    in.openai.ca_file = str("ca_file");
    if (const json::value* t = c.if_contains("timeout_ms"); t && t->is_int64()) {
      in.openai.timeout_ms = t->as_int64();
    }
    if (const json::value* m = c.if_contains("max_tokens"); m && m->is_int64()) {
      in.openai.max_tokens = m->as_int64();
    }
  }
  return in;
}

// One tests commit per distinct key: the spec, the code under test and who writes the tests.
std::string round_key(const Input& in) {
  json::object k{
      {"stage", "testsynth"},
      {"spec", in.spec_json},
      {"code_commit", in.artifact.commit},
      {"provider", in.provider},
      {"model", in.provider == "openai" ? in.openai.model : std::string(kTemplateModel)}};
  Result<EventId> id = event_id_for(json::serialize(k));
  return id.ok() ? id->hex() : event_id_for_bytes(json::serialize(k)).hex();
}

struct Counts {
  int64_t passed = 0, failed = 0, errors = 0, skipped = 0;
  bool recognised = false;
};

// Splits "a, b, c" at ", ".
std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(", ");
    out.emplace_back(s.substr(0, comma));
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 2);
  }
  return out;
}

// The number a string starts with (-1 when it starts with no digit).
int64_t leading_number(std::string_view s) {
  int64_t n = -1;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    n = (n < 0 ? 0 : n * 10) + (c - '0');
  }
  return n;
}

// unittest: "Ran N tests in 0.01s" then "OK", "OK (skipped=S)" or
// "FAILED (failures=F, errors=E, skipped=S, expected failures=X, unexpected successes=U)".
// pytest: "=== 2 failed, 10 passed, 1 skipped, 1 error in 0.12s ===". Plain string handling
// (std::regex trips GCC's -Wmaybe-uninitialized under the sanitizers).
Counts parse_summary(const std::string& out) {
  Counts c;
  int64_t ran = -1;
  bool verdict = false;
  std::string details, pytest_line;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    std::string_view line(out.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (line.starts_with("Ran ") && leading_number(line.substr(4)) >= 0 &&
        line.find(" test") != std::string_view::npos) {
      ran = leading_number(line.substr(4));
      verdict = false;
      details.clear();
    } else if (ran >= 0 && (line == "OK" || line == "FAILED")) {
      verdict = true;
    } else if (ran >= 0 && (line.starts_with("OK (") || line.starts_with("FAILED (")) &&
               line.ends_with(")")) {
      verdict = true;
      size_t open = line.find('(');
      details = std::string(line.substr(open + 1, line.size() - open - 2));
    } else if (line == "NO TESTS RAN") {
      ran = 0;
      verdict = true;
    } else if (line.starts_with("=") && line.find(" in ") != std::string_view::npos) {
      std::string_view inner = line;
      while (!inner.empty() && (inner.front() == '=' || inner.front() == ' '))
        inner.remove_prefix(1);
      inner = inner.substr(0, inner.rfind(" in "));
      if (inner.find(" passed") != std::string_view::npos ||
          inner.find(" failed") != std::string_view::npos ||
          inner.find(" error") != std::string_view::npos ||
          inner.find(" skipped") != std::string_view::npos) {
        pytest_line = std::string(inner);
      }
    }
  }
  if (ran >= 0 && verdict) {
    int64_t failures = 0, errors = 0, skipped = 0, unexpected = 0;
    for (const std::string& pair : split_list(details)) {
      size_t eq = pair.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = pair.substr(0, eq);
      const int64_t n = std::max<int64_t>(0, leading_number(std::string_view(pair).substr(eq + 1)));
      if (key == "failures") failures = n;
      if (key == "errors") errors = n;
      if (key == "skipped") skipped = n;
      if (key == "unexpected successes") unexpected = n;
    }
    c.failed = failures + unexpected;
    c.errors = errors;
    c.skipped = skipped;
    c.passed = std::max<int64_t>(0, ran - failures - errors - skipped - unexpected);
    c.recognised = true;
  } else if (!pytest_line.empty()) {
    for (const std::string& part : split_list(pytest_line)) {
      const int64_t n = leading_number(part);
      if (n < 0) continue;
      const std::string kind = part.substr(part.find(' ') + 1);
      if (kind == "passed") c.passed = n;
      if (kind == "failed") c.failed = n;
      if (kind == "skipped") c.skipped = n;
      if (kind == "error" || kind == "errors") c.errors = n;
    }
    c.recognised = true;
  }
  return c;
}

// The last ~4 KB of `out`, starting on a UTF-8 character boundary.
std::string tail(const std::string& out) {
  if (out.size() <= kLogExcerptBytes) return out;
  size_t from = out.size() - kLogExcerptBytes;
  while (from < out.size() && (static_cast<unsigned char>(out[from]) & 0xC0) == 0x80) ++from;
  return out.substr(from);
}

class TestsynthStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "testsynth",
            .version = "1.0.0",
            .input_schema = std::string(schema("testsynth_input")),
            .output_schema = std::string(schema("test_results")),
            .side_effects = SideEffects::kIdempotent,
            .blocking = true,
            .default_concurrency = 4,
            .default_batch_size = 1};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    Result<Input> in = parse_input(event.payload);
    if (!in.ok()) return StageResult::permanent("testsynth input: " + in.status().message());
    if (ctx.data_dir().empty()) {
      return StageResult::permanent("testsynth needs a data dir (ctx.data_dir() is empty)");
    }
    const Artifact& art = in->artifact;
    Status name_ok = check_project_name(art.project);
    if (!name_ok.ok()) return StageResult::permanent(name_ok.message());
    const std::string repo =
        std::filesystem::absolute(repo_path(ctx.data_dir(), art.project)).lexically_normal();
    if (std::filesystem::path(art.repo).lexically_normal() != repo) {
      return StageResult::permanent("artifact.repo '" + art.repo +
                                    "' is not the project's repository under the data dir ('" +
                                    repo + "')");
    }
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(repo) / ".git", ec)) {
      return StageResult::permanent("the repository " + repo +
                                    " does not exist; codegen creates it before testsynth runs");
    }
    TestsCommit tests = committed_tests(repo, round_key(*in), idempotency_key(event), *in, ctx);
    if (tests.stop) return *tests.stop;
    return run_tests(repo, tests.commit, *in, ctx);
  }

 private:
  // The commit holding the synthesized tests, or `stop`: what process() returns instead.
  struct TestsCommit {
    std::string commit;
    std::optional<StageResult> stop;
  };

  // Finds the commit by the event's trailer, or makes it now.
  TestsCommit committed_tests(const std::string& repo, const std::string& key,
                              const std::string& event_key, const Input& in, StageContext& ctx) {
    auto stop = [](StageResult r) { return TestsCommit{.stop = std::move(r)}; };
    {
      RepoLock lock = lock_branch(repo, in.artifact.branch);
      auto found = find_commit_with_trailer(repo, in.artifact.branch, kTrailerRound, key);
      if (!found.ok()) return stop(stage_failure(found.status(), "looking for earlier tests"));
      if (found->has_value()) {
        ctx.count("testsynth_redeliveries");
        return {.commit = **found};
      }
    }
    Generated generated;
    std::string prompt_hash;
    if (in.provider == "template") {
      generated = template_tests(in.spec);
      std::vector<FileContent> code = read_code(repo, in.artifact);
      prompt_hash = build_tests_prompt(in.spec, code).hash();
    } else {
      std::vector<FileContent> code = read_code(repo, in.artifact);
      const Prompt prompt = build_tests_prompt(in.spec, code);
      prompt_hash = prompt.hash();
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline() - Clock::now());
      if (left.count() <= 0) {
        return stop(StageResult::retryable("the task's deadline passed before the LLM call"));
      }
      Breaker& breaker = ctx.breaker("llm");
      if (!breaker.allow()) {
        ctx.count("testsynth_breaker_open");
        const std::string& topic = breaker.fallback_topic();
        return stop(StageResult::route(topic.empty() ? "human-review" : topic,
                                       "the LLM circuit breaker is open (" + in.openai.base_url +
                                           " kept failing); tests for " + in.spec.id +
                                           " need a person or a later retry"));
      }
      OpenAiSettings settings = in.openai;
      if (!in.api_key_secret.empty()) {
        std::optional<std::string> secret = ctx.secret(in.api_key_secret);
        if (!secret) {
          breaker.record_failure();
          return stop(StageResult::permanent("the secret '" + in.api_key_secret +
                                             "' (openai.api_key_secret) is not set"));
        }
        settings.api_key = *secret;
      }
      settings.timeout_ms =
          std::max<int64_t>(1, std::min<int64_t>(settings.timeout_ms, left.count()));
      Result<Generated> g = openai_generate(settings, prompt);
      if (!g.ok()) {
        breaker.record_failure();
        ctx.count("testsynth_llm_failures");
        return stop(g.status().is_invalid_argument()
                        ? StageResult::permanent(g.status().message())
                        : StageResult::retryable(g.status().message()));
      }
      breaker.record_success();
      generated = std::move(*g);
    }

    CommitRequest req;
    req.branch = in.artifact.branch;
    req.parent = in.artifact.commit;
    req.files = std::move(generated.files);
    req.message = in.spec.id + ": tests for the acceptance criteria";
    req.trailers = {{std::string(kTrailerEvent), event_key},
                    {std::string(kTrailerRound), key},
                    {"Factory-Attempt", std::to_string(in.artifact.attempt)},
                    {"Factory-Provider", in.provider},
                    {"Factory-Model", generated.model},
                    {"Factory-Prompt-Hash", prompt_hash},
                    {"Factory-Tokens", std::to_string(generated.prompt_tokens) + "/" +
                                           std::to_string(generated.completion_tokens)}};
    RepoLock lock = lock_branch(repo, in.artifact.branch);
    auto found = find_commit_with_trailer(repo, in.artifact.branch, kTrailerRound, key);
    if (!found.ok()) return stop(stage_failure(found.status(), "looking for earlier tests"));
    if (found->has_value()) return {.commit = **found};
    Result<std::string> commit = commit_files(repo, req, lock);
    if (!commit.ok()) return stop(stage_failure(commit.status(), "committing the tests"));
    ctx.count("testsynth_commits");
    ctx.log_info("committed tests " + *commit + " on " + in.artifact.branch);
    return {.commit = *commit};
  }

  // The files codegen changed, as they are in its commit (for the tests prompt).
  static std::vector<FileContent> read_code(const std::string& repo, const Artifact& art) {
    std::vector<FileContent> code;
    for (const std::string& f : art.files) {
      Result<std::string> text = git(repo, {"show", art.commit + ":" + f});
      if (text.ok()) code.push_back({f, std::move(*text)});
    }
    return code;
  }

  StageResult run_tests(const std::string& repo, const std::string& commit, const Input& in,
                        StageContext& ctx) {
    Result<Checkout> checkout = clean_checkout(repo, commit, ctx.scratch_dir() / "testsynth");
    if (!checkout.ok()) return stage_failure(checkout.status(), "checking out " + commit);
    Result<ProjectConfig> project = load_project(checkout->path());
    if (!project.ok()) return stage_failure(project.status(), "the project file");

    const auto start = Clock::now();
    const auto test_deadline = start + std::chrono::milliseconds(in.timeout_ms);
    const bool stage_deadline_first = ctx.deadline() < test_deadline;
    // Generated code: sandboxed, clean environment, bounded (exec/sandbox.h).
    SandboxOptions opts;
    opts.work_dir = std::filesystem::absolute(checkout->path());
    opts.env = {"PYTHONDONTWRITEBYTECODE=1"};
    opts.merge_stderr = true;
    opts.deadline = stage_deadline_first ? ctx.deadline() : test_deadline;
    opts.cancelled = [&ctx] { return ctx.cancelled(); };
    opts.max_stdout_bytes = 8 << 20;
    note_isolation(ctx);
    Result<SubprocessResult> run = run_sandboxed(project->test_command, opts);
    const int64_t duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (!run.ok()) return stage_failure(run.status(), "running the tests");
    if (run->outcome == Outcome::kCancelled) return StageResult::retryable("cancelled");
    if (run->outcome == Outcome::kTimedOut && stage_deadline_first) {
      return StageResult::retryable("the stage's deadline passed while the tests ran");
    }

    Counts counts = parse_summary(run->out);
    const bool timed_out = run->outcome == Outcome::kTimedOut;
    const bool exited = run->outcome == Outcome::kExited;
    std::string note;
    if (timed_out) {
      note = "factoryd: the test command was killed after " + std::to_string(in.timeout_ms) +
             " ms (timeout_ms)\n";
    } else if (run->outcome == Outcome::kSpawnFailed) {
      note = "factoryd: the test command could not start\n";
    } else if (run->outcome == Outcome::kOutputTooLarge) {
      note = "factoryd: the test command printed more than 8 MiB; it was killed\n";
    } else if (run->outcome == Outcome::kProcessLimit) {
      note = "factoryd: the test command started more than " +
             std::to_string(SandboxLimits{}.max_processes) + " processes; it was killed\n";
    } else if (!counts.recognised) {
      note = "factoryd: no unittest or pytest summary in the output\n";
    }
    // A run that did not end cleanly with a summary counts as one error on top of what it said.
    if (!note.empty() || (exited && run->exit_code != 0 && counts.failed + counts.errors == 0)) {
      counts.errors += 1;
    }

    json::object r;
    r["ticket"] = in.spec.id;
    r["project"] = in.artifact.project;
    r["repo"] = repo;
    r["branch"] = in.artifact.branch;
    r["commit"] = commit;
    r["tests_commit"] = commit;
    r["code_commit"] = in.artifact.commit;
    r["attempt"] = in.artifact.attempt;
    r["passed"] = counts.passed;
    r["failed"] = counts.failed;
    r["errors"] = counts.errors;
    r["skipped"] = counts.skipped;
    r["exit_code"] = exited ? run->exit_code : -1;
    r["timed_out"] = timed_out;
    r["duration_ms"] = duration_ms;
    r["log_excerpt"] = tail(note + run->out);
    r["skeleton"] = in.artifact.skeleton;
    ctx.count("testsynth_runs");
    ctx.log_info("tests of " + in.spec.id + " at " + commit + ": " + std::to_string(counts.passed) +
                 " passed, " + std::to_string(counts.failed) + " failed, " +
                 std::to_string(counts.errors) + " errors");
    ctx.emit({.payload = json::serialize(r)});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(TestsynthStage);

}  // namespace
}  // namespace factory::stages
