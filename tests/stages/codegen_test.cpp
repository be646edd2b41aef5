// The codegen stage: the template provider on every sample ticket (its code passes its own tests
// in a clean checkout), the planted credential of INV-105, the git history, idempotency, the
// skeleton, and the openai provider against a local fake server (answers, 5xx, timeout,
// malformed JSON, 401) behind a real circuit breaker that opens, routes to human-review and
// closes again.
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "base/clock.h"
#include "codegen/provider.h"
#include "common/schemas.h"
#include "common/workspace.h"
#include "config/contract.h"
#include "runtime/circuit_breaker.h"
#include "runtime/fake_stage_context.h"
#include "runtime/stage_registry.h"
#include "stages/fake_openai_server.h"
#include "stages/sample_specs.h"
#include "test_util.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace factory;
using namespace factory::stages;
using factory::test::FakeStageContext;

namespace {

std::unique_ptr<Stage> codegen() {
  auto s = runtime::create_stage("codegen");
  REQUIRE_OK(s);
  return std::move(*s);
}

// Validates against the stage's schemas as the runtime would, then processes.
StageResult run(Stage& stage, FakeStageContext& ctx, const std::string& payload,
                StageContext* outer = nullptr) {
  auto in = config::Contract::compile(stage.info().input_schema, "codegen input");
  REQUIRE_OK(in);
  REQUIRE_OK((*in)->validate(payload));
  StageResult r = stage.process(factory::test::make_event(payload), outer ? *outer : ctx);
  auto out = config::Contract::compile(stage.info().output_schema, "code_artifact");
  REQUIRE_OK(out);
  for (const Output& o : ctx.outputs()) REQUIRE_OK((*out)->validate(o.payload));
  return r;
}

json::object last_output(const FakeStageContext& ctx) {
  REQUIRE(!ctx.outputs().empty());
  return json::parse(ctx.outputs().back().payload).as_object();
}

std::string git_out(const std::string& repo, std::vector<std::string> args) {
  Result<std::string> r = git(repo, args);
  REQUIRE_OK(r);
  return *r;
}

struct Env {
  test::TempDir dir;
  FakeStageContext ctx;
  Env() {
    ctx.set_data_dir(dir.path() / "data");
    ctx.set_scratch_dir(dir.path() / "scratch");
  }
  std::string repo() const { return fs::absolute(repo_path(dir.path() / "data", "invoices")); }
};

// Runs `python3 -m unittest` in a clean checkout of `commit`; returns the output, or fails.
std::string unittest_in_checkout(const std::string& repo, const std::string& commit,
                                 const fs::path& scratch) {
  Result<Checkout> co = clean_checkout(repo, commit, scratch);
  REQUIRE_OK(co);
  SubprocessOptions opts{.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60)};
  Result<SubprocessResult> r =
      run_in_dir(co->path(), {"python3", "-m", "unittest", "discover", "-s", "tests", "-t", "."},
                 opts, {"PYTHONDONTWRITEBYTECODE=1"});
  REQUIRE_OK(r);
  INFO(r->out);
  CHECK(r->exit_code == 0);
  return r->out;
}

// A real runtime breaker behind the stage API, on a manual clock.
class RealBreaker final : public Breaker {
 public:
  RealBreaker(base::Clock* clock)
      : cb_("llm",
            {.window = 4,
             .min_calls = 2,
             .failure_rate_threshold = 0.5,
             .open_ms = 1000,
             .half_open_probes = 1},
            clock) {}
  bool allow() override { return cb_.allow(); }
  void record_success() override { cb_.on_success(); }
  void record_failure() override { cb_.on_failure(); }
  const std::string& fallback_topic() const override { return fallback_; }
  runtime::CircuitBreaker& cb() { return cb_; }

 private:
  runtime::CircuitBreaker cb_;
  const std::string fallback_ = "human-review";
};

// FakeStageContext with a real breaker named "llm".
class BreakerContext final : public StageContext {
 public:
  BreakerContext(FakeStageContext* inner, Breaker* llm) : inner_(inner), llm_(llm) {}
  void emit(Output o) override { inner_->emit(std::move(o)); }
  const std::string& config() const override { return inner_->config(); }
  std::optional<std::string> secret(std::string_view n) const override { return inner_->secret(n); }
  void log_info(std::string_view m) override { inner_->log_info(m); }
  void log_warn(std::string_view m) override { inner_->log_warn(m); }
  void count(std::string_view m, int64_t d) override { inner_->count(m, d); }
  std::chrono::steady_clock::time_point deadline() const override { return inner_->deadline(); }
  bool cancelled() const override { return inner_->cancelled(); }
  const fs::path& scratch_dir() const override { return inner_->scratch_dir(); }
  const fs::path& data_dir() const override { return inner_->data_dir(); }
  Breaker& breaker(std::string_view name) override {
    return name == "llm" ? *llm_ : inner_->breaker(name);
  }

 private:
  FakeStageContext* inner_;
  Breaker* llm_;
};

// The openai settings come from the config (codegen_stage.cpp): as in a DAG, whose literal
// params are the task's config, the payload's `openai` is also the context's.
void configure_openai(FakeStageContext* ctx, const std::string& payload) {
  json::object p = json::parse(payload).as_object();
  ctx->set_config(json::serialize(json::object{{"openai", p.at("openai")}}));
}

std::string openai_payload(FakeStageContext* ctx, const std::string& spec,
                           const std::string& base_url, int64_t timeout_ms = 5000,
                           int attempt = 1) {
  json::object p = json::parse(test::codegen_payload(spec, attempt)).as_object();
  p["provider"] = "openai";
  p["openai"] = json::object{{"base_url", base_url},
                             {"model", "llama3.1:8b"},
                             {"api_key_secret", "LLM_KEY"},
                             {"timeout_ms", timeout_ms}};
  std::string text = json::serialize(p);
  configure_openai(ctx, text);
  return text;
}

}  // namespace

TEST_CASE("codegen template: every sample ticket's code passes its own tests", "[codegen]") {
  Env env;
  auto stage = codegen();
  for (const test::SampleSpec& s : test::sample_specs()) {
    INFO(s.id);
    env.ctx.clear_outputs();
    StageResult r = run(*stage, env.ctx, test::codegen_payload(s.json(), 1));
    INFO(r.reason());
    REQUIRE(r.kind() == StageResult::Kind::kSuccess);
    json::object a = last_output(env.ctx);
    CHECK(a["ticket"].as_string() == s.id);
    CHECK(a["branch"].as_string() == "feature/" + s.id);
    CHECK(a["repo"].as_string() == env.repo());
    CHECK(a["provider"].as_string() == "template");
    CHECK(a["model"].as_string() == "template-v1");
    CHECK(a["attempt"].as_int64() == 1);
    CHECK(a["skeleton"].as_bool() == false);
    CHECK(a["tokens"].as_object()["prompt"].as_int64() == 0);
    CHECK(a["files"].as_array().size() == 2);
    CHECK(a["diff_stats"].as_object()["insertions"].as_int64() > 10);
    CHECK(a["base_commit"].as_string() == git_out(env.repo(), {"rev-parse", "main"}).substr(0, 40));
    // The prompt hash is the openai provider's prompt for the same input.
    FeatureSpec spec = *parse_feature_spec(s.json());
    CHECK(a["prompt_hash"].as_string() == build_code_prompt(spec, 1, "").hash());
    std::string out = unittest_in_checkout(env.repo(), std::string(a["commit"].as_string()),
                                           env.dir.path() / "checkouts");
    CHECK(out.find("OK") != std::string::npos);
    CHECK(out.find("skipped") == std::string::npos);
  }
}

TEST_CASE("codegen template: INV-105 plants a credential in round 1 only", "[codegen]") {
  Env env;
  auto stage = codegen();
  const test::SampleSpec& s = test::sample_spec("INV-105");
  REQUIRE(run(*stage, env.ctx, test::codegen_payload(s.json(), 1)).kind() ==
          StageResult::Kind::kSuccess);
  std::string c1(last_output(env.ctx)["commit"].as_string());
  const std::string report =
      "secret_scan: FAILED invoices/discounts.py:7 looks like a live API key (sk_live_...)";
  StageResult r = run(*stage, env.ctx, test::codegen_payload(s.json(), 2, report));
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);
  json::object a2 = last_output(env.ctx);
  std::string c2(a2["commit"].as_string());
  CHECK(a2["attempt"].as_int64() == 2);

  std::string v1 = git_out(env.repo(), {"show", c1 + ":invoices/discounts.py"});
  std::string v2 = git_out(env.repo(), {"show", c2 + ":invoices/discounts.py"});
  CHECK(v1.find("DISCOUNT_API_KEY = \"sk_live_4eC39HqLyjWDarjtT1zdp7dc\"") != std::string::npos);
  CHECK(v2.find("sk_live_") == std::string::npos);
  CHECK(v2.find("os.environ.get(\"DISCOUNT_API_KEY\"") != std::string::npos);
  // Round 2's prompt carries the gate report.
  FeatureSpec spec = *parse_feature_spec(s.json());
  CHECK(a2["prompt_hash"].as_string() == build_code_prompt(spec, 2, report).hash());
  CHECK(build_code_prompt(spec, 2, report).user.find(report) != std::string::npos);
  unittest_in_checkout(env.repo(), c1, env.dir.path() / "checkouts");
  unittest_in_checkout(env.repo(), c2, env.dir.path() / "checkouts");

  // The history: one commit per round, by factoryd, with the event trailer.
  CHECK(git_out(env.repo(), {"log", "--format=%an <%ae> %s", "main..feature/INV-105"}) ==
        "factoryd <factoryd@localhost> INV-105: Apply discount codes (attempt 2)\n"
        "factoryd <factoryd@localhost> INV-105: Apply discount codes (attempt 1)\n");
  CHECK(git_out(env.repo(), {"log", "-1", "--format=%B", c2}).find("Factory-Event: ") !=
        std::string::npos);
  CHECK(git_out(env.repo(), {"status", "--porcelain"}).empty());
}

TEST_CASE("codegen is idempotent: a redelivered event makes no second commit", "[codegen]") {
  Env env;
  auto stage = codegen();
  const std::string payload = test::codegen_payload(test::sample_spec("INV-101").json(), 1);
  REQUIRE(run(*stage, env.ctx, payload).kind() == StageResult::Kind::kSuccess);
  const std::string first = env.ctx.outputs().back().payload;
  REQUIRE(run(*stage, env.ctx, payload).kind() == StageResult::Kind::kSuccess);
  CHECK(env.ctx.outputs().back().payload == first);
  // Inside a DAG the event id is the dispatch record's (it changes per try); the payload is not.
  Event retry = test::make_event(payload);
  retry.id = event_id_for_bytes("another try of the same task");
  REQUIRE(stage->process(retry, env.ctx).kind() == StageResult::Kind::kSuccess);
  CHECK(env.ctx.outputs().back().payload == first);
  // The same round of the same spec with another gate report text (a gate re-run after a
  // crash) is still that round: no second commit for it.
  REQUIRE(run(*stage, env.ctx,
              test::codegen_payload(test::sample_spec("INV-101").json(), 1, "report 2"))
              .kind() == StageResult::Kind::kSuccess);
  CHECK(env.ctx.outputs().back().payload == first);
  CHECK(git_out(env.repo(), {"rev-list", "--count", "main..feature/INV-101"}) == "1\n");
  CHECK(env.ctx.counter("codegen_redeliveries") == 3);
  CHECK(env.ctx.counter("codegen_commits") == 1);
  // A new round is a new commit.
  REQUIRE(
      run(*stage, env.ctx, test::codegen_payload(test::sample_spec("INV-101").json(), 2)).kind() ==
      StageResult::Kind::kSuccess);
  CHECK(git_out(env.repo(), {"rev-list", "--count", "main..feature/INV-101"}) == "2\n");
}

TEST_CASE("codegen template: other tickets get a marked skeleton", "[codegen]") {
  Env env;
  auto stage = codegen();
  test::SampleSpec other{"SHOP-7",
                         "Improve the dashboard look and feel",
                         {"The dashboard uses the new colours", "Charts load in under 1s"}};
  REQUIRE(run(*stage, env.ctx, test::codegen_payload(other.json(), 1)).kind() ==
          StageResult::Kind::kSuccess);
  json::object a = last_output(env.ctx);
  CHECK(a["skeleton"].as_bool());
  std::string commit(a["commit"].as_string());
  std::string module =
      git_out(env.repo(), {"show", commit + ":invoices/improve_the_dashboard_look_and_feel.py"});
  CHECK(module.find("GENERATED SKELETON \u2014 no template for this ticket; a person must "
                    "implement it") != std::string::npos);
  CHECK(module.find("raise NotImplementedError") != std::string::npos);
  CHECK(module.find("- Charts load in under 1s") != std::string::npos);
  std::string out = unittest_in_checkout(env.repo(), commit, env.dir.path() / "checkouts");
  CHECK(out.find("OK (skipped=1)") != std::string::npos);
}

TEST_CASE("template: tickets match a sample by id or by title words", "[codegen]") {
  auto spec = [](std::string id, std::string title, std::string project = "invoices") {
    test::SampleSpec s{std::move(id), std::move(title), {"x"}, std::move(project)};
    return *parse_feature_spec(s.json());
  };
  CHECK(match_sample_feature(spec("INV-101", "anything")) == "export_csv");
  CHECK(match_sample_feature(spec("acme/invoices#103", "anything")) == "is_valid_email");
  CHECK(match_sample_feature(spec("X-1", "Add taxes to invoices")) == "total_with_tax");
  CHECK(match_sample_feature(spec("X-2", "Check e-mail addresses")) == "is_valid_email");
  CHECK(match_sample_feature(spec("X-3", "Sorting invoices")) == "sort_by_due_date");
  CHECK(match_sample_feature(spec("X-4", "Format the amount")) == "format_amount");
  CHECK(match_sample_feature(spec("X-5", "New invoice numbers")) == "next_invoice_number");
  CHECK(!match_sample_feature(spec("X-6", "Fix syntax highlighting")));  // not "tax"
  CHECK(!match_sample_feature(spec("X-7", "Resort the menu")));          // not "sort"
  CHECK(!match_sample_feature(spec("X-8", "Amounts")));  // "format" and "amount" both needed
  CHECK(!match_sample_feature(spec("INV-101", "Export as CSV", "shop")));  // another project
}

TEST_CASE("codegen refuses bad settings with a clear message", "[codegen]") {
  Env env;
  auto stage = codegen();
  json::object p =
      json::parse(test::codegen_payload(test::sample_spec("INV-101").json(), 1)).as_object();
  p["project_dir"] = (env.dir.path() / "nowhere").string();
  StageResult r = stage->process(test::make_event(json::serialize(p)), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("does not exist") != std::string::npos);

  p = json::parse(test::codegen_payload(test::sample_spec("INV-101").json(), 1)).as_object();
  p["provider"] = "openai";
  r = stage->process(test::make_event(json::serialize(p)), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("needs an 'openai' object") != std::string::npos);
  // The schema says the same before the stage runs.
  auto in = config::Contract::compile(stage->info().input_schema, "codegen input");
  REQUIRE_OK(in);
  CHECK(!(*in)->validate(json::serialize(p)).ok());
}

TEST_CASE("codegen openai: answers become a commit with the model and tokens", "[codegen]") {
  Env env;
  factory::test::FakeOpenAiServer server;
  server.set_files_json(
      R"({"files":[{"path":"invoices/hello.py","content":"def hello():\n    return 'hi'\n"},)"
      R"({"path":"tests/test_hello.py","content":"import unittest\nfrom invoices.hello import hello\n\n\nclass T(unittest.TestCase):\n    def test_hello(self):\n        self.assertEqual(hello(), 'hi')\n"}]})");
  env.ctx.set_secret("LLM_KEY", "sk-test-123");
  auto stage = codegen();
  const std::string spec = test::sample_spec("INV-101").json();
  StageResult r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url()));
  INFO(r.reason());
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);
  json::object a = last_output(env.ctx);
  CHECK(a["provider"].as_string() == "openai");
  CHECK(a["model"].as_string() == "fake-model-1");
  CHECK(a["tokens"].as_object()["prompt"].as_int64() == 123);
  CHECK(a["tokens"].as_object()["completion"].as_int64() == 45);
  CHECK(a["prompt_hash"].as_string() == build_code_prompt(*parse_feature_spec(spec), 1, "").hash());
  CHECK(a["files"].as_array().size() == 2);
  unittest_in_checkout(env.repo(), std::string(a["commit"].as_string()),
                       env.dir.path() / "checkouts");

  // What was sent: the key as a bearer token, JSON mode, the prompt's two messages.
  CHECK(server.last_head().find("POST /v1/chat/completions HTTP/1.1") == 0);
  CHECK(server.last_head().find("Bearer sk-test-123") != std::string::npos);
  json::object sent = json::parse(server.last_body()).as_object();
  CHECK(sent["model"].as_string() == "llama3.1:8b");
  CHECK(sent["response_format"].as_object()["type"].as_string() == "json_object");
  CHECK(sent["messages"].as_array().size() == 2);
  CHECK(env.ctx.breaker("llm").allow());  // the fake breaker saw one success
  CHECK(static_cast<factory::test::FakeBreaker&>(env.ctx.breaker("llm")).successes() == 1);

  // A base URL may end in /v1 or carry a path prefix (a proxy).
  for (auto [suffix, target] : {std::pair{"/v1", "POST /v1/chat/completions "},
                                {"/proxy/", "POST /proxy/v1/chat/completions "}}) {
    json::object p =
        json::parse(openai_payload(&env.ctx, spec, server.base_url() + suffix, 5000, 2))
            .as_object();
    p["openai"].as_object()["model"] = std::string("m") + suffix;  // another round each time
    configure_openai(&env.ctx, json::serialize(p));
    REQUIRE(stage->process(test::make_event(json::serialize(p)), env.ctx).kind() ==
            StageResult::Kind::kSuccess);
    CHECK(server.last_head().starts_with(target));
  }
}

TEST_CASE(
    "codegen openai: 5xx and timeouts and malformed answers open the breaker and recovery "
    "closes it",
    "[codegen]") {
  Env env;
  factory::test::FakeOpenAiServer server;
  env.ctx.set_secret("LLM_KEY", "sk-test-123");
  base::ManualClock clock(1'000'000);
  RealBreaker llm(&clock);
  BreakerContext ctx(&env.ctx, &llm);
  auto stage = codegen();
  const std::string spec = test::sample_spec("INV-102").json();
  using State = runtime::CircuitBreaker::State;

  // 503: retryable, one failure.
  server.set_mode(factory::test::FakeOpenAiServer::Mode::kError);
  StageResult r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url()), &ctx);
  CHECK(r.kind() == StageResult::Kind::kRetryable);
  CHECK(r.reason().find("HTTP 503") != std::string::npos);
  CHECK(llm.cb().state() == State::kClosed);

  // No answer within timeout_ms: retryable, the second failure opens the breaker.
  server.set_mode(factory::test::FakeOpenAiServer::Mode::kHang);
  auto start = std::chrono::steady_clock::now();
  r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url(), 300), &ctx);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.kind() == StageResult::Kind::kRetryable);
  CHECK(r.reason().find("no answer within 300 ms") != std::string::npos);
  CHECK(took < std::chrono::seconds(5));
  CHECK(llm.cb().state() == State::kOpen);

  // Open: the provider is not called; the event goes to human-review with the reason.
  const int calls = server.requests();
  server.set_mode(factory::test::FakeOpenAiServer::Mode::kOk);
  r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url()), &ctx);
  CHECK(r.kind() == StageResult::Kind::kRoute);
  CHECK(r.route_topic() == "human-review");
  CHECK(r.reason().find("circuit breaker is open") != std::string::npos);
  CHECK(server.requests() == calls);
  CHECK(env.ctx.outputs().empty());

  // After open_ms a probe goes through; it succeeds and the breaker closes.
  clock.advance_ms(1000);
  r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url()), &ctx);
  INFO(r.reason());
  CHECK(r.kind() == StageResult::Kind::kSuccess);
  CHECK(llm.cb().state() == State::kClosed);
  CHECK(env.ctx.outputs().size() == 1);

  // A malformed answer: retryable, with a clear message, and a failure on the breaker.
  server.set_mode(factory::test::FakeOpenAiServer::Mode::kMalformed);
  r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url(), 5000, 2), &ctx);
  CHECK(r.kind() == StageResult::Kind::kRetryable);
  CHECK(r.reason().find("malformed") != std::string::npos);
  CHECK(r.reason().find("not the JSON object asked for") != std::string::npos);
  CHECK(llm.cb().snapshot().failures_in_window == 1);

  // 401: a key problem no retry fixes.
  server.set_mode(factory::test::FakeOpenAiServer::Mode::kForbidden);
  r = run(*stage, env.ctx, openai_payload(&env.ctx, spec, server.base_url(), 5000, 2), &ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("HTTP 401") != std::string::npos);

  // One commit in all: only the successful call made one.
  CHECK(git_out(env.repo(), {"rev-list", "--count", "main..feature/INV-102"}) == "1\n");
}

TEST_CASE("codegen openai: a missing key secret or a bad URL is permanent", "[codegen]") {
  Env env;
  auto stage = codegen();
  const std::string spec = test::sample_spec("INV-101").json();
  StageResult r = stage->process(
      test::make_event(openai_payload(&env.ctx, spec, "http://127.0.0.1:9")), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("'LLM_KEY'") != std::string::npos);
  env.ctx.set_secret("LLM_KEY", "k");
  r = stage->process(test::make_event(openai_payload(&env.ctx, spec, "http://[::1")), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("base_url") != std::string::npos);
  // Nothing listens on port 9: unavailable, retryable.
  r = stage->process(test::make_event(openai_payload(&env.ctx, spec, "http://127.0.0.1:9")),
                     env.ctx);
  CHECK(r.kind() == StageResult::Kind::kRetryable);
  CHECK(r.reason().find("connecting to 127.0.0.1:9") != std::string::npos);
  // https:// to a server that never speaks TLS: the handshake is bounded by the timeout too.
  factory::test::FakeOpenAiServer plain;
  std::string url = plain.base_url();
  url.replace(0, 4, "https");
  // (1.5 s: connecting to 127.0.0.1 must be done by then even under a sanitizer.)
  r = stage->process(test::make_event(openai_payload(&env.ctx, spec, url, 1500)), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kRetryable);
  CHECK(r.reason().find("no answer within 1500 ms (while the TLS handshake with 127.0.0.1)") !=
        std::string::npos);
}

// Issue 12: the endpoint and the bearer token's secret come from configuration only: an event
// (a forged dispatch, a rendered ticket) naming another endpoint or another FACTORY_SECRET_* is
// refused before any connection, and so is one that brings openai settings with none configured.
TEST_CASE("codegen openai: an event cannot choose the endpoint or the secret sent",
          "[codegen][security]") {
  Env env;
  factory::test::FakeOpenAiServer configured;
  factory::test::FakeOpenAiServer attacker;
  env.ctx.set_secret("LLM_KEY", "sk-test-123");
  env.ctx.set_secret("FACTORY_SECRET_DEMO", "the-crown-jewels");
  auto stage = codegen();
  const std::string spec = test::sample_spec("INV-101").json();
  std::string good = openai_payload(&env.ctx, spec, configured.base_url());  // the config
  for (auto [field, value] : {std::pair{"base_url", attacker.base_url()},
                              {"api_key_secret", std::string("FACTORY_SECRET_DEMO")}}) {
    json::object p = json::parse(good).as_object();
    p["openai"].as_object()[field] = value;
    StageResult r = stage->process(test::make_event(json::serialize(p)), env.ctx);
    INFO(field);
    CHECK(r.kind() == StageResult::Kind::kPermanent);
    CHECK(r.reason().find("differ from the configured ones") != std::string::npos);
  }
  // Settings in the event, none in the config: refused too.
  env.ctx.set_config("{}");
  StageResult r = stage->process(test::make_event(good), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("never from an upstream output") != std::string::npos);
  CHECK(attacker.requests() == 0);
  CHECK(configured.requests() == 0);
}

TEST_CASE("schemas: the embedded feature_spec and code_artifact copies match their files",
          "[codegen]") {
  auto strip = [](json::value v) {
    v.as_object().erase("$schema");
    v.as_object().erase("title");
    return v;
  };
  json::value spec = strip(json::parse(schema("feature_spec")));
  json::value artifact = strip(json::parse(schema("code_artifact")));
  json::value cin = json::parse(schema("codegen_input"));
  json::value tin = json::parse(schema("testsynth_input"));
  CHECK(cin.as_object()["definitions"].as_object()["feature_spec"] == spec);
  CHECK(tin.as_object()["definitions"].as_object()["feature_spec"] == spec);
  CHECK(tin.as_object()["definitions"].as_object()["code_artifact"] == artifact);
}

TEST_CASE("codegen openai over HTTPS verifies the server against ca_file", "[codegen]") {
  Env env;
  const std::string cert = (env.dir.path() / "server.crt").string();
  const std::string key = (env.dir.path() / "server.key").string();
  SubprocessOptions opts{.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60)};
  Result<SubprocessResult> made = run_subprocess(
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert},
      "", opts);
  REQUIRE_OK(made);
  INFO(made->err);
  REQUIRE(made->exit_code == 0);
  factory::test::FakeOpenAiServer server(cert, key);
  REQUIRE(server.base_url().starts_with("https://127.0.0.1:"));
  env.ctx.set_secret("LLM_KEY", "sk-test-123");
  auto stage = codegen();
  const std::string spec = test::sample_spec("INV-107").json();
  auto with_ca = [&](const std::string& ca) {
    json::object p = json::parse(openai_payload(&env.ctx, spec, server.base_url())).as_object();
    if (!ca.empty()) p["openai"].as_object()["ca_file"] = ca;
    configure_openai(&env.ctx, json::serialize(p));
    return json::serialize(p);
  };

  // Not in the system's store: the handshake fails, retryable.
  StageResult r = stage->process(test::make_event(with_ca("")), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kRetryable);
  CHECK(r.reason().find("the TLS handshake with 127.0.0.1 failed") != std::string::npos);
  // A CA file that cannot be read: permanent.
  r = stage->process(test::make_event(with_ca((env.dir.path() / "missing.pem").string())), env.ctx);
  CHECK(r.kind() == StageResult::Kind::kPermanent);
  CHECK(r.reason().find("cannot read openai.ca_file") != std::string::npos);
  // Trusted through ca_file: the answer becomes a commit.
  r = run(*stage, env.ctx, with_ca(cert));
  INFO(r.reason());
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);
  CHECK(last_output(env.ctx)["provider"].as_string() == "openai");
  CHECK(server.last_head().find("Bearer sk-test-123") != std::string::npos);
}

TEST_CASE("codegen in parallel: tickets commit side by side and a round only once", "[codegen]") {
  Env env;
  auto stage = codegen();
  std::vector<std::string> payloads;
  for (const test::SampleSpec& s : test::sample_specs()) {
    payloads.push_back(test::codegen_payload(s.json(), 1));
  }
  // The same round of INV-101 four more times, at the same time as the others.
  for (int i = 0; i < 4; ++i) payloads.push_back(payloads[0]);
  std::vector<StageResult::Kind> kinds(payloads.size(), StageResult::Kind::kPermanent);
  {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < payloads.size(); ++i) {
      threads.emplace_back(
          [&, i] { kinds[i] = stage->process(test::make_event(payloads[i]), env.ctx).kind(); });
    }
    for (std::thread& t : threads) t.join();
  }
  for (StageResult::Kind k : kinds) CHECK(k == StageResult::Kind::kSuccess);
  for (const test::SampleSpec& s : test::sample_specs()) {
    INFO(s.id);
    CHECK(git_out(env.repo(), {"rev-list", "--count", "main..feature/" + s.id}) == "1\n");
  }
  CHECK(env.ctx.counter("codegen_commits") == 8);
  CHECK(env.ctx.outputs().size() == payloads.size());
  CHECK(git_out(env.repo(), {"fsck", "--no-progress"}).empty());
}
