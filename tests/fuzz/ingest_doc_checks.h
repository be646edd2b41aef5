// Properties every ticket parser's Document keeps, whatever the input (document.h): one line per
// block, squashed text, valid UTF-8 out of valid UTF-8 in, and criteria that are squashed,
// non-empty and unique. Shared by the ingest, markdown, jira_wiki and adf harnesses.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "ingest/criteria.h"
#include "ingest/document.h"

namespace factory::fuzz {

inline void check_document(const stages::ingest::Document& doc, bool input_utf8) {
  using Kind = stages::ingest::Block::Kind;
  for (const auto& b : doc) {
    FUZZ_CHECK(b.text.find('\n') == std::string::npos, "a block holds one line: " + b.text);
    if (input_utf8) FUZZ_CHECK(valid_utf8(b.text), "block text is not UTF-8: " + b.text);
    if (b.kind != Kind::kCode && b.kind != Kind::kBreak) {
      FUZZ_CHECK(stages::ingest::squash_spaces(b.text) == b.text, "unsquashed: " + b.text);
      FUZZ_CHECK(!b.text.empty(), "an empty text block");
    }
    if (b.kind == Kind::kHeading) FUZZ_CHECK(b.level >= 1 && b.level <= 6, b.text);
  }
  std::string plain = stages::ingest::to_plain_text(doc);
  if (input_utf8) FUZZ_CHECK(valid_utf8(plain), "plain text is not UTF-8");
  FUZZ_CHECK(plain.empty() || (plain.front() != '\n' && plain.back() != '\n'),
             "plain text starts or ends with a blank line");

  std::vector<std::string> criteria = stages::ingest::extract_criteria(doc);
  std::set<std::string> seen;
  for (const std::string& c : criteria) {
    FUZZ_CHECK(!c.empty(), "an empty criterion");
    FUZZ_CHECK(stages::ingest::squash_spaces(c) == c, "criterion not squashed: " + c);
    if (input_utf8) FUZZ_CHECK(valid_utf8(c), "criterion is not UTF-8: " + c);
    FUZZ_CHECK(seen.insert(c).second, "duplicate criterion: " + c);
  }
}

}  // namespace factory::fuzz
