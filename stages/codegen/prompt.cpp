// Feature specs and prompts (provider.h): one place builds what an LLM is asked, so the prompt
// hash in a code_artifact is the same whichever provider answered.
#include <cctype>
#include <string>

#include <boost/json.hpp>

#include "codegen/provider.h"
#include "factory/event.h"

namespace factory::stages {
namespace json = boost::json;

namespace {

Status read_string(const json::object& o, const char* key, std::string* out) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) {
    return Status::invalid_argument(std::string("spec.") + key + " must be a string");
  }
  *out = std::string(v->as_string());
  return Status();
}

Status read_strings(const json::object& o, const char* key, std::vector<std::string>* out) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_array()) {
    return Status::invalid_argument(std::string("spec.") + key + " must be a list of strings");
  }
  for (const json::value& item : v->as_array()) {
    if (!item.is_string()) {
      return Status::invalid_argument(std::string("spec.") + key + " must hold only strings");
    }
    out->emplace_back(item.as_string());
  }
  return Status();
}

std::string spec_text(const FeatureSpec& spec) {
  std::string s = "Ticket: " + spec.id + " (" + spec.source;
  if (!spec.link.empty()) s += ", " + spec.link;
  s += ")\nProject: " + spec.project + " (Python package " + python_package(spec.project) + ")\n";
  s += "Title: " + spec.title + "\n";
  if (!spec.priority.empty()) s += "Priority: " + spec.priority + "\n";
  if (!spec.component.empty()) s += "Component: " + spec.component + "\n";
  if (!spec.labels.empty()) {
    s += "Labels:";
    for (const std::string& l : spec.labels) s += " " + l;
    s += "\n";
  }
  s += "\nDescription:\n" + (spec.description.empty() ? "(none)" : spec.description) + "\n";
  s += "\nAcceptance criteria:\n";
  int n = 0;
  for (const std::string& c : spec.acceptance_criteria) {
    s += std::to_string(++n) + ". " + c + "\n";
  }
  if (n == 0) s += "(none)\n";
  return s;
}

constexpr std::string_view kAnswerFormat =
    "Answer with ONE JSON object and nothing else (no prose, no Markdown fences):\n"
    "{\"files\": [{\"path\": \"<path relative to the repository root>\", "
    "\"content\": \"<the whole file>\"}]}\n"
    "Rules:\n"
    "- Paths are relative and '/'-separated; a file you name replaces the existing one whole.\n"
    "- Python 3, standard library only. Tests are unittest modules tests/test_*.py, run from the "
    "repository root with: python3 -m unittest discover -s tests -t .\n"
    "- Never write credentials, tokens, passwords or API keys into code or tests: read them "
    "from environment variables.\n"
    "- Tests must not use the network or the clock of the machine they run on.\n";

}  // namespace

Result<FeatureSpec> parse_feature_spec(std::string_view json_text) {
  boost::system::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec || !v.is_object()) return Status::invalid_argument("spec must be a JSON object");
  const json::object& o = v.as_object();
  FeatureSpec s;
  for (auto [key, out] : {std::pair{"id", &s.id},
                          {"source", &s.source},
                          {"link", &s.link},
                          {"title", &s.title},
                          {"description", &s.description},
                          {"priority", &s.priority},
                          {"component", &s.component},
                          {"project", &s.project}}) {
    FACTORY_RETURN_IF_ERROR(read_string(o, key, out));
  }
  FACTORY_RETURN_IF_ERROR(read_strings(o, "acceptance_criteria", &s.acceptance_criteria));
  FACTORY_RETURN_IF_ERROR(read_strings(o, "labels", &s.labels));
  if (s.id.empty() || s.title.empty() || s.project.empty()) {
    return Status::invalid_argument("spec.id, spec.title and spec.project must not be empty");
  }
  return s;
}

std::string python_package(std::string_view project) {
  std::string p;
  for (char c : project) {
    p += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  if (p.empty() || std::isdigit(static_cast<unsigned char>(p[0]))) p = "p_" + p;
  return p;
}

std::string Prompt::hash() const {
  json::array messages;
  messages.push_back(json::object{{"role", "system"}, {"content", system}});
  messages.push_back(json::object{{"role", "user"}, {"content", user}});
  return event_id_for_bytes(json::serialize(messages)).hex();
}

Prompt build_code_prompt(const FeatureSpec& spec, int attempt, std::string_view gate_report) {
  Prompt p;
  p.system =
      "You are the code generator of factoryd, a software factory. You implement one ticket in "
      "the Python project '" +
      spec.project +
      "' so that it meets every acceptance criterion, and you add unit tests "
      "for what you write.\n" +
      std::string(kAnswerFormat) + "- The code goes in the package " +
      python_package(spec.project) + "/; add modules rather than rewriting existing ones.\n";
  p.user = spec_text(spec) + "\nThis is attempt " + std::to_string(attempt) + ".\n";
  if (!gate_report.empty()) {
    p.user +=
        "\nThe previous attempt failed the quality gate. Fix everything this report names:\n" +
        std::string(gate_report) + "\n";
  }
  return p;
}

Prompt build_tests_prompt(const FeatureSpec& spec, const std::vector<FileContent>& code) {
  Prompt p;
  p.system =
      "You are the test writer of factoryd, a software factory. For the ticket below write one "
      "unittest test method per acceptance criterion, in the order given, each with the "
      "criterion as its docstring, exercising the code shown. Put them in ONE new module "
      "tests/test_<feature>_acceptance.py.\n" +
      std::string(kAnswerFormat);
  p.user = spec_text(spec) + "\nThe code:\n";
  for (const FileContent& f : code) {
    p.user += "\n--- " + f.path + "\n" + f.content;
    if (!f.content.empty() && f.content.back() != '\n') p.user += "\n";
  }
  return p;
}

}  // namespace factory::stages
