// The template provider (provider.h): deterministic, offline code for the bundled sample
// tickets (template_samples.cpp) and a clearly-marked skeleton for any other ticket.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "codegen/provider.h"
#include "codegen/template_samples.h"

namespace factory::stages {
namespace {

constexpr std::string_view kSkeletonNote =
    "GENERATED SKELETON \u2014 no template for this ticket; a person must implement it";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// " export invoices as csv ": lower case, every run of other characters one space, padded.
std::string words(std::string_view s) {
  std::string out = " ";
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (out.back() != ' ') {
      out += ' ';
    }
  }
  if (out.back() != ' ') out += ' ';
  return out;
}

// The credential planted in round 1 of apply_discount, for the gate's secret scanner to find.
// Built from pieces so that factoryd's own sources do not hold a key-shaped string.
std::string planted_credential() {
  return std::string("sk_") + "live_" + "4eC39HqLyjWDarjtT1zdp7dc";
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// The text inside a Python "..." literal: one line, backslashes and quotes escaped, control
// characters dropped.
std::string py_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n' || c == '\t') {
      out += ' ';
    } else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
      out += c;
    }
  }
  return out;
}

std::string indent(std::string_view body, int spaces) {
  std::string out;
  const std::string pad(spaces, ' ');
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(start, end - start);
    if (!line.empty()) out += pad;
    out += line;
    out += '\n';
    start = end + 1;
  }
  return out;
}

const SampleFeature* find_sample(const FeatureSpec& spec) {
  if (spec.project != "invoices") return nullptr;
  const std::string id = lower(spec.id);
  for (const SampleFeature& f : sample_features()) {
    for (std::string_view t : f.ticket_ids) {
      if (id == lower(t)) return &f;
    }
  }
  // Words match at a word's start: "tax" in "taxes", not in "syntax".
  const std::string title = words(spec.title);
  for (const SampleFeature& f : sample_features()) {
    for (const auto& group : f.title_words) {
      if (std::all_of(group.begin(), group.end(), [&](std::string_view w) {
            std::string word = words(w);
            word.pop_back();  // " tax " -> " tax"
            return title.find(word) != std::string::npos;
          })) {
        return &f;
      }
    }
  }
  return nullptr;
}

// "Improve the dashboard look and feel" -> "improve_the_dashboard_look_and_feel": a Python
// identifier (module and function name) for a skeleton.
std::string skeleton_name(const FeatureSpec& spec) {
  static constexpr std::array<std::string_view, 35> kKeywords = {
      "false", "none",     "true",  "and",    "as",   "assert", "async",  "await",    "break",
      "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
      "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
      "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};
  std::string name;
  for (char c : lower(spec.title)) {
    if (std::isalnum(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) {
      name += c;
    } else if (!name.empty() && name.back() != '_') {
      name += '_';
    }
    if (name.size() >= 48) break;
  }
  while (!name.empty() && name.back() == '_') name.pop_back();
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) name = "feature_" + name;
  if (std::find(kKeywords.begin(), kKeywords.end(), name) != kKeywords.end()) name += "_feature";
  while (!name.empty() && name.back() == '_') name.pop_back();
  return name;
}

std::string camel(std::string_view snake) {
  std::string out;
  bool up = true;
  for (char c : snake) {
    if (c == '_') {
      up = true;
    } else {
      out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      up = false;
    }
  }
  return out;
}

std::string criteria_comment(const FeatureSpec& spec) {
  std::string s;
  for (const std::string& c : spec.acceptance_criteria) s += "- " + py_escape(c) + "\n";
  return s.empty() ? "(none)\n" : s;
}

Generated skeleton_code(const FeatureSpec& spec) {
  const std::string pkg = python_package(spec.project);
  const std::string name = skeleton_name(spec);
  Generated g;
  g.model = std::string(kTemplateModel);
  g.skeleton = true;
  std::string module = "\"\"\"" + std::string(kSkeletonNote) +
                       ".\n\nTicket: " + py_escape(spec.id) + " \u2014 " + py_escape(spec.title) +
                       "\n";
  if (!spec.link.empty()) module += py_escape(spec.link) + "\n";
  module += "\nAcceptance criteria:\n" + criteria_comment(spec) + "\"\"\"\n\n";
  module += "SKELETON = True\n\n\ndef " + name + "(*args, **kwargs):\n    \"\"\"" +
            py_escape(spec.title) + ".\"\"\"\n    raise NotImplementedError(\n        \"" +
            std::string(kSkeletonNote) + " (ticket " + py_escape(spec.id) + ")\")\n";
  std::string tests = "import unittest\n\nREASON = \"" + std::string(kSkeletonNote) +
                      "\"\n\n\n@unittest.skip(REASON)\nclass " + camel(name) +
                      "Test(unittest.TestCase):\n    def test_implemented(self):\n        from " +
                      pkg + "." + name + " import " + name + "\n\n        " + name + "()\n\n\n" +
                      "if __name__ == \"__main__\":\n    unittest.main()\n";
  g.files.push_back({pkg + "/" + name + ".py", std::move(module)});
  g.files.push_back({"tests/test_" + name + ".py", std::move(tests)});
  return g;
}

// Which check each criterion gets: the one sharing the most phrases with its text, preferring
// checks not used yet; a criterion matching none gets the next unused check (round robin).
std::vector<const SampleCheck*> map_criteria(const FeatureSpec& spec, const SampleFeature& f) {
  std::vector<const SampleCheck*> out;
  std::vector<bool> used(f.checks.size(), false);
  size_t next_unused = 0;
  for (const std::string& criterion : spec.acceptance_criteria) {
    const std::string text = lower(criterion);
    int best = -1, best_score = 0;
    for (size_t i = 0; i < f.checks.size(); ++i) {
      int score = 0;
      std::string_view kw = f.checks[i].keywords;
      while (!kw.empty()) {
        size_t comma = kw.find(',');
        std::string_view phrase = kw.substr(0, comma);
        if (!phrase.empty() && text.find(phrase) != std::string::npos) ++score;
        kw = comma == std::string_view::npos ? std::string_view() : kw.substr(comma + 1);
      }
      // An unused check wins a tie; a used one must match strictly better.
      int rank = score * 2 + (used[i] ? 0 : 1);
      if (score > 0 && rank > best_score) {
        best = static_cast<int>(i);
        best_score = rank;
      }
    }
    if (best < 0) {
      while (next_unused < used.size() && used[next_unused]) ++next_unused;
      best = next_unused < used.size() ? static_cast<int>(next_unused)
                                       : static_cast<int>(out.size() % f.checks.size());
    }
    used[best] = true;
    out.push_back(&f.checks[best]);
  }
  return out;
}

}  // namespace

std::optional<std::string> match_sample_feature(const FeatureSpec& spec) {
  const SampleFeature* f = find_sample(spec);
  if (!f) return std::nullopt;
  return std::string(f->feature);
}

Generated template_code(const FeatureSpec& spec, int attempt) {
  const SampleFeature* f = find_sample(spec);
  if (!f) return skeleton_code(spec);
  Generated g;
  g.model = std::string(kTemplateModel);
  const bool round2 = attempt >= 2;
  std::string code(round2 && !f->code_round2.empty() ? f->code_round2 : f->code);
  std::string tests(round2 && !f->unit_tests_round2.empty() ? f->unit_tests_round2 : f->unit_tests);
  code = replace_all(std::move(code), "@@KEY@@", planted_credential());
  g.files.push_back({"invoices/" + std::string(f->module) + ".py", std::move(code)});
  g.files.push_back({"tests/test_" + std::string(f->module) + ".py", std::move(tests)});
  return g;
}

Generated template_tests(const FeatureSpec& spec) {
  const SampleFeature* f = find_sample(spec);
  Generated g;
  g.model = std::string(kTemplateModel);
  std::string header = "\"\"\"Acceptance tests for " + py_escape(spec.id) + ": " +
                       py_escape(spec.title) +
                       ".\n\nSynthesized by factoryd testsynth (template provider): one test per "
                       "acceptance criterion, in the ticket's order.\n\"\"\"\n\nimport unittest\n";
  if (!f) {
    const std::string name = skeleton_name(spec);
    g.skeleton = true;
    std::string text = header + "\nREASON = \"" + std::string(kSkeletonNote) +
                       "\"\n\n\n@unittest.skip(REASON)\nclass AcceptanceCriteriaTest("
                       "unittest.TestCase):\n";
    int n = 0;
    for (const std::string& c : spec.acceptance_criteria) {
      ++n;
      text += "    def test_criterion_" + std::to_string(n) + "(self):\n        \"\"\"" +
              py_escape(c) + "\"\"\"\n        self.fail(\"not implemented: " + py_escape(c) +
              "\")\n\n";
    }
    if (n == 0) text += "    def test_criteria(self):\n        self.fail(\"no criteria\")\n\n";
    text += "\nif __name__ == \"__main__\":\n    unittest.main()\n";
    g.files.push_back({"tests/test_" + name + "_acceptance.py", std::move(text)});
    return g;
  }
  std::string text = header + "\n" + std::string(f->prelude) +
                     "\n\nclass AcceptanceCriteriaTest(unittest.TestCase):\n";
  std::vector<const SampleCheck*> checks = map_criteria(spec, *f);
  for (size_t i = 0; i < checks.size(); ++i) {
    text += "    def test_criterion_" + std::to_string(i + 1) + "(self):\n        \"\"\"" +
            py_escape(spec.acceptance_criteria[i]) + "\"\"\"\n" + indent(checks[i]->body, 8) + "\n";
  }
  if (checks.empty()) {
    // No criteria (ingest routes such tickets to people, so only a direct call gets here).
    text += "    def test_criteria(self):\n" + indent(f->checks.front().body, 8) + "\n";
  }
  text += "\nif __name__ == \"__main__\":\n    unittest.main()\n";
  g.files.push_back({"tests/test_" + std::string(f->module) + "_acceptance.py", std::move(text)});
  return g;
}

}  // namespace factory::stages
