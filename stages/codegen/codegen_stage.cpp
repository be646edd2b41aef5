// codegen: turns a feature_spec into a commit on the ticket's branch of the target project's
// repository, and emits a code_artifact (README.md).
//
// Input (config/schemas/codegen_input.json): {spec, attempt, gate_report, provider,
// project_dir, openai}. One event = one round of one ticket:
//   1. ensure_repo(<data_dir>/factory/repos/<spec.project>) from project_dir;
//   2. if the repository already holds a commit with the trailer "Factory-Round: <round key>"
//      (a hash of the spec, the attempt, the provider and the model), this round was done
//      before (a redelivery after a crash, a retry of the DAG task, or the same ticket run
//      again): emit the artifact of that commit again, commit nothing;
//   3. ask the provider for files (openai: behind ctx.breaker("llm"));
//   4. commit them on the branch, "<id>: <title> (attempt N)", with trailers recording the
//      event, round, provider, model, prompt hash and tokens (so step 2 can rebuild the
//      artifact without any other state);
//   5. emit the artifact.
//
// Side effects: kIdempotent (step 2). blocking: runs git and network calls. Thread-safe: the
// branch's lock serializes the check-and-commit; the provider call runs outside it.
#include <chrono>
#include <string>

#include <boost/json.hpp>

#include "codegen/provider.h"
#include "common/schemas.h"
#include "common/workspace.h"
#include "factory/event.h"
#include "factory/stage.h"

namespace factory::stages {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kTrailerEvent = "Factory-Event";
constexpr std::string_view kTrailerRound = "Factory-Round";
constexpr std::string_view kDefaultFallback = "human-review";

struct Input {
  FeatureSpec spec;
  json::value spec_json;
  int attempt = 1;
  std::string gate_report;
  std::string provider = "template";
  std::string project_dir;
  OpenAiSettings openai;
  std::string api_key_secret;
};

// The openai settings: from the config only (a DAG task's params as written in the DAG file —
// TaskStage hands those on as the config — or a pipeline binding's config block), because
// base_url decides where the prompt and the bearer token go and api_key_secret which secret is
// sent. An event may repeat them (a DAG task's params hold them) but not change them.
Result<json::object> openai_from_config(const json::object& event, std::string_view config) {
  boost::system::error_code ec;
  json::value c = json::parse(config, ec);
  const json::value* oa = !ec && c.is_object() ? c.as_object().if_contains("openai") : nullptr;
  if (!oa || !oa->is_object()) {
    return Status::invalid_argument(
        "provider \"openai\" needs an 'openai' object: {base_url, model, api_key_secret, "
        "timeout_ms, max_tokens}, written in the DAG file's task params with no {{ }} template "
        "(or in the pipeline binding's config): the endpoint and the key's secret come from "
        "configuration, never from an upstream output, the run's conf or a ticket");
  }
  if (const json::value* given = event.if_contains("openai"); given && *given != *oa) {
    return Status::invalid_argument(
        "the event's 'openai' settings differ from the configured ones; an event may not choose "
        "the model endpoint or which secret is sent as the bearer token (write them literally "
        "in the DAG file or the binding's config)");
  }
  return oa->as_object();
}

Result<Input> parse_input(std::string_view payload, std::string_view config) {
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
  if (const json::value* a = o.if_contains("attempt")) {
    if (!a->is_int64() || a->as_int64() < 1 || a->as_int64() > 1000) {
      return Status::invalid_argument("'attempt' must be a round number >= 1");
    }
    in.attempt = static_cast<int>(a->as_int64());
  }
  if (const json::value* g = o.if_contains("gate_report"); g && g->is_string()) {
    in.gate_report = std::string(g->as_string());
  }
  if (const json::value* p = o.if_contains("provider"); p && p->is_string()) {
    in.provider = std::string(p->as_string());
  }
  if (in.provider != "template" && in.provider != "openai") {
    return Status::invalid_argument("'provider' must be \"template\" or \"openai\", not \"" +
                                    in.provider + "\"");
  }
  in.project_dir = "config/projects/" + in.spec.project;
  if (const json::value* d = o.if_contains("project_dir"); d && d->is_string()) {
    in.project_dir = std::string(d->as_string());
  }
  if (in.provider == "openai") {
    auto oa = openai_from_config(o, config);
    if (!oa.ok()) return oa.status();
    const json::object& c = *oa;
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
    if (in.openai.base_url.empty() || in.openai.model.empty()) {
      return Status::invalid_argument("openai.base_url and openai.model are required");
    }
  }
  return in;
}

std::string trailer(const std::vector<std::pair<std::string, std::string>>& trailers,
                    std::string_view key) {
  for (const auto& [k, v] : trailers) {
    if (k == key) return v;
  }
  return "";
}

int64_t to_int(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (...) {
    return 0;
  }
}

// The code_artifact of `commit`, from the repository alone (its trailers and its diff).
Result<std::string> artifact_json(const std::string& repo, const std::string& branch,
                                  const std::string& commit, const FeatureSpec& spec) {
  auto trailers = commit_trailers(repo, commit);
  if (!trailers.ok()) return trailers.status();
  Result<std::string> base = merge_base(repo, "main", commit);
  if (!base.ok()) return base.status();
  Result<DiffStats> stats = diff_stats(repo, *base, commit);
  if (!stats.ok()) return stats.status();
  json::object a;
  a["ticket"] = spec.id;
  a["title"] = spec.title;
  a["project"] = spec.project;
  a["repo"] = repo;
  a["branch"] = branch;
  a["commit"] = commit;
  a["base_commit"] = *base;
  a["attempt"] = std::max<int64_t>(1, to_int(trailer(*trailers, "Factory-Attempt")));
  json::array files;
  for (const std::string& f : stats->files) files.emplace_back(f);
  a["files"] = std::move(files);
  a["diff_stats"] = json::object{{"files", static_cast<int64_t>(stats->files.size())},
                                 {"insertions", stats->insertions},
                                 {"deletions", stats->deletions}};
  std::string provider = trailer(*trailers, "Factory-Provider");
  a["provider"] = provider == "openai" ? "openai" : "template";
  a["model"] = trailer(*trailers, "Factory-Model");
  a["prompt_hash"] = trailer(*trailers, "Factory-Prompt-Hash");
  std::string tokens = trailer(*trailers, "Factory-Tokens");  // "<prompt>/<completion>"
  size_t slash = tokens.find('/');
  a["tokens"] = json::object{
      {"prompt", to_int(tokens.substr(0, slash))},
      {"completion", slash == std::string::npos ? 0 : to_int(tokens.substr(slash + 1))}};
  a["skeleton"] = trailer(*trailers, "Factory-Skeleton") == "true";
  return json::serialize(a);
}

// What makes one round of one ticket: one commit per distinct key. The gate report, the
// project_dir and the openai timeouts are left out, so a retried or re-run round whose report
// text differs a little still finds its commit.
std::string round_key(const Input& in) {
  json::object k{
      {"stage", "codegen"},
      {"spec", in.spec_json},
      {"attempt", in.attempt},
      {"provider", in.provider},
      {"model", in.provider == "openai" ? in.openai.model : std::string(kTemplateModel)}};
  Result<EventId> id = event_id_for(json::serialize(k));
  return id.ok() ? id->hex() : event_id_for_bytes(json::serialize(k)).hex();
}

class CodegenStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "codegen",
            .version = "1.0.0",
            .input_schema = std::string(schema("codegen_input")),
            .output_schema = std::string(schema("code_artifact")),
            .side_effects = SideEffects::kIdempotent,
            .blocking = true,
            .default_concurrency = 4,
            .default_batch_size = 1};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    Result<Input> in = parse_input(event.payload, ctx.config());
    if (!in.ok()) return StageResult::permanent("codegen input: " + in.status().message());
    if (ctx.data_dir().empty()) {
      return StageResult::permanent("codegen needs a data dir (ctx.data_dir() is empty)");
    }
    const std::string key = round_key(*in);
    const std::string branch = feature_branch(in->spec.id);

    Result<std::filesystem::path> seed = resolve_project_dir(in->project_dir);
    if (!seed.ok()) return stage_failure(seed.status(), "project_dir");
    Result<std::string> repo = ensure_repo(ctx.data_dir(), in->spec.project, *seed);
    if (!repo.ok()) return stage_failure(repo.status(), "the repository of " + in->spec.project);

    {
      RepoLock lock = lock_branch(*repo, branch);
      if (StageResult r = StageResult::success(); already_done(*repo, branch, key, *in, ctx, &r)) {
        return r;
      }
    }

    const Prompt prompt = build_code_prompt(in->spec, in->attempt, in->gate_report);
    Generated generated;
    if (in->provider == "template") {
      generated = template_code(in->spec, in->attempt);
    } else {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline() - Clock::now());
      if (left.count() <= 0) {
        return StageResult::retryable("the task's deadline passed before the LLM call");
      }
      Breaker& breaker = ctx.breaker("llm");
      if (!breaker.allow()) {
        ctx.count("codegen_breaker_open");
        const std::string& topic = breaker.fallback_topic();
        return StageResult::route(topic.empty() ? std::string(kDefaultFallback) : topic,
                                  "the LLM circuit breaker is open (" + in->openai.base_url +
                                      " kept failing); ticket " + in->spec.id + " round " +
                                      std::to_string(in->attempt) +
                                      " needs a person or a later retry");
      }
      OpenAiSettings settings = in->openai;
      if (!in->api_key_secret.empty()) {
        std::optional<std::string> secret = ctx.secret(in->api_key_secret);
        if (!secret) {
          breaker.record_failure();  // every admitted call reports an outcome
          return StageResult::permanent("the secret '" + in->api_key_secret +
                                        "' (openai.api_key_secret) is not set; add it to the "
                                        "environment or the secrets file");
        }
        settings.api_key = *secret;
      }
      settings.timeout_ms =
          std::max<int64_t>(1, std::min<int64_t>(settings.timeout_ms, left.count()));
      Result<Generated> g = openai_generate(settings, prompt);
      if (!g.ok()) {
        breaker.record_failure();
        ctx.count("codegen_llm_failures");
        const Status& s = g.status();
        if (s.is_invalid_argument()) return StageResult::permanent(s.message());
        // 5xx, timeouts, and malformed answers: another try may get a good one.
        return StageResult::retryable(s.message());
      }
      breaker.record_success();
      generated = std::move(*g);
    }

    CommitRequest req;
    req.branch = branch;
    req.files = std::move(generated.files);
    std::string title = in->spec.title;
    for (char& c : title) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    req.message = in->spec.id + ": " + title + " (attempt " + std::to_string(in->attempt) + ")";
    req.trailers = {{std::string(kTrailerEvent), idempotency_key(event)},
                    {std::string(kTrailerRound), key},
                    {"Factory-Attempt", std::to_string(in->attempt)},
                    {"Factory-Provider", in->provider},
                    {"Factory-Model", generated.model},
                    {"Factory-Prompt-Hash", prompt.hash()},
                    {"Factory-Tokens", std::to_string(generated.prompt_tokens) + "/" +
                                           std::to_string(generated.completion_tokens)}};
    if (generated.skeleton) req.trailers.emplace_back("Factory-Skeleton", "true");

    RepoLock lock = lock_branch(*repo, branch);
    // Another worker may have handled the same event while the provider ran.
    if (StageResult r = StageResult::success(); already_done(*repo, branch, key, *in, ctx, &r)) {
      return r;
    }
    Result<std::string> commit = commit_files(*repo, req, lock);
    if (!commit.ok()) return stage_failure(commit.status(), "committing on " + branch);
    lock.unlock();
    ctx.count("codegen_commits");
    if (generated.skeleton) ctx.count("codegen_skeletons");
    ctx.log_info("committed " + *commit + " on " + branch + " (attempt " +
                 std::to_string(in->attempt) + ", " + in->provider + ")");
    return emit_artifact(*repo, branch, *commit, *in, ctx);
  }

 private:
  // True when the event's commit exists; *result is then the outcome of re-emitting it.
  bool already_done(const std::string& repo, const std::string& branch, const std::string& key,
                    const Input& in, StageContext& ctx, StageResult* result) {
    auto found = find_commit_with_trailer(repo, branch, kTrailerRound, key);
    if (!found.ok()) {
      *result = stage_failure(found.status(), "looking for an earlier commit on " + branch);
      return true;
    }
    if (!found->has_value()) return false;
    ctx.count("codegen_redeliveries");
    ctx.log_info("event already committed as " + **found + " on " + branch +
                 "; emitting its artifact again");
    *result = emit_artifact(repo, branch, **found, in, ctx);
    return true;
  }

  StageResult emit_artifact(const std::string& repo, const std::string& branch,
                            const std::string& commit, const Input& in, StageContext& ctx) {
    Result<std::string> artifact = artifact_json(repo, branch, commit, in.spec);
    if (!artifact.ok()) return stage_failure(artifact.status(), "describing " + commit);
    ctx.emit({.payload = std::move(*artifact)});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(CodegenStage);

}  // namespace
}  // namespace factory::stages
