// The template provider's data: one entry per bundled sample feature of the invoices project
// (config/samples/tickets/). Each holds a module invoices/<module>.py, its unit tests
// tests/test_<module>.py, and the acceptance checks testsynth maps the ticket's criteria onto.
//
// Thread-safety: immutable (a function-local static, built once).
#pragma once

#include <string_view>
#include <vector>

namespace factory::stages {

// One acceptance check: a test method body (Python, unindented) and the phrases (comma
// separated, lower case) that tie a criterion's text to it.
struct SampleCheck {
  std::string_view keywords;
  std::string_view body;
};

struct SampleFeature {
  std::string_view feature;                  // the function the ticket asks for, e.g. "export_csv"
  std::string_view module;                   // invoices/<module>.py
  std::vector<std::string_view> ticket_ids;  // the sample tickets' ids
  // The title matches when it contains every word of one group (lower case).
  std::vector<std::vector<std::string_view>> title_words;
  std::string_view code;         // "@@KEY@@" stands for the planted credential (apply_discount)
  std::string_view code_round2;  // non-empty: the code from round 2 on
  std::string_view unit_tests;   // tests/test_<module>.py
  std::string_view unit_tests_round2;  // non-empty: the unit tests from round 2 on
  std::string_view prelude;            // imports and helpers of tests/test_<module>_acceptance.py
  std::vector<SampleCheck> checks;
};

const std::vector<SampleFeature>& sample_features();

}  // namespace factory::stages
