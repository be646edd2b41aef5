// Code providers for the codegen and testsynth stages: what turns a feature spec into files.
//
//   template  deterministic and offline (template_provider.cpp). For the bundled sample tickets
//             of the invoices project it returns real, working Python code with unit tests;
//             for any other ticket a clearly-marked skeleton whose test is skipped.
//   openai    any OpenAI-compatible /v1/chat/completions endpoint (openai_provider.cpp).
//
// Both are pure functions of their inputs except for the network call, so a stage can rebuild
// the same prompt (and prompt hash) on every try. The prompt is built in one place
// (build_code_prompt / build_tests_prompt) and hashed the same way whichever provider answers.
//
// testsynth includes this header too (stages/testsynth): the providers are shared.
//
// Thread-safety: every function is thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/workspace.h"
#include "factory/status.h"

namespace factory::stages {

// A feature_spec event (config/schemas/feature_spec.json).
struct FeatureSpec {
  std::string id, source, link, title, description, priority, component, project;
  std::vector<std::string> acceptance_criteria;
  std::vector<std::string> labels;
};

// Reads a feature_spec JSON object (already schema-checked by the runtime). InvalidArgument
// naming the field when a required one is missing or has the wrong type.
Result<FeatureSpec> parse_feature_spec(std::string_view json_text);

// What the openai provider sends: a system and a user message.
struct Prompt {
  std::string system;
  std::string user;
  // SHA-256 hex of the messages array as sent ([{"role":"system",...},{"role":"user",...}]).
  std::string hash() const;
};

// The project's Python package: its name with every character outside [A-Za-z0-9_] as '_'.
std::string python_package(std::string_view project);

// The code prompt: the spec, the round (1-based) and, from round 2 on, the previous round's
// gate report that the new code must address.
Prompt build_code_prompt(const FeatureSpec& spec, int attempt, std::string_view gate_report);
// The tests prompt: one test per acceptance criterion, against `code` (the files the code
// commit changed, with their content).
Prompt build_tests_prompt(const FeatureSpec& spec, const std::vector<FileContent>& code);

// What a provider answers.
struct Generated {
  std::vector<FileContent> files;
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool skeleton = false;  // template only: no template matched, a person must implement it
};

// ---- template ----
inline constexpr std::string_view kTemplateModel = "template-v1";

// The sample feature a spec maps to ("export_csv", "total_with_tax", ...), by ticket id
// (INV-101, acme/invoices#103, ...) or, failing that, by keywords of the title; nullopt when none
// fits or the project is not "invoices".
std::optional<std::string> match_sample_feature(const FeatureSpec& spec);

// The code for `spec` at round `attempt`: for a sample feature its module and unit tests (for
// "apply_discount", round 1 plants a hard-coded credential, round >= 2 reads the environment);
// otherwise the skeleton.
Generated template_code(const FeatureSpec& spec, int attempt);
// Tests for the acceptance criteria: for a sample feature one test method per criterion, each
// mapped onto a check of that feature; otherwise a skipped test listing the criteria.
Generated template_tests(const FeatureSpec& spec);

// ---- openai ----
struct OpenAiSettings {
  std::string base_url;  // "http://127.0.0.1:11434", "https://api.openai.com" (no /v1)
  std::string model;
  std::string api_key;  // resolved from the secret; "" sends no Authorization header
  int64_t timeout_ms = 60000;
  int64_t max_tokens = 4096;
  std::string ca_file;  // https: a PEM bundle to verify the server with; "" = the system's
};

// POSTs the prompt to <base_url>/v1/chat/completions asking for a JSON object
// {"files": [{"path", "content"}, ...]} and parses choices[0].message.content. Errors:
//   Unavailable  connection refused/reset, DNS, TLS, HTTP 5xx or 429 (retry later)
//   TimedOut     no complete answer within timeout_ms
//   Corruption   the endpoint answered 2xx but not with the JSON asked for (message says what)
//   InvalidArgument  a bad base_url or an unreadable ca_file, or HTTP 4xx other than 408/429
//                    (the body's start is quoted): a key, model or URL problem no retry fixes
Result<Generated> openai_generate(const OpenAiSettings& settings, const Prompt& prompt);

}  // namespace factory::stages
