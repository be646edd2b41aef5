// Document: a ticket description reduced to a flat list of blocks, whatever markup it came in
// (JIRA wiki markup, Atlassian Document Format, GitHub markdown). The parsers (jira_wiki.h,
// adf.h, markdown.h) produce it; criteria.h reads acceptance criteria from it and
// to_plain_text() renders the description the feature_spec carries.
//
// Inline markup (bold, italic, links, mentions ...) is already resolved in Block::text: the
// text is plain, one line per block.
//
// Thread-safety: plain values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace factory::stages::ingest {

struct Block {
  enum class Kind {
    kText,     // one line of a paragraph
    kHeading,  // level 1-6
    kItem,     // a list item; level 1 = top level; `ordered` for numbered lists
    kTask,     // a checklist item ("- [ ]", "* [x]", an ADF taskItem); `checked`
    kCode,     // one line of a code block, verbatim
    kBreak,    // a paragraph boundary (blank line, end of a list or block)
  };
  Kind kind = Kind::kText;
  std::string text;
  int level = 0;
  bool ordered = false;
  bool checked = false;
};

using Document = std::vector<Block>;

// Plain text: headings and paragraph lines as they are, list items as "- text" or "1. text"
// (two spaces per nesting level), checklist items as "[ ] text" / "[x] text", code verbatim,
// one blank line between paragraphs and before a heading (none after it). No leading or
// trailing blank lines.
std::string to_plain_text(const Document& doc);

// `text` with runs of whitespace collapsed to one space and no leading or trailing space.
std::string squash_spaces(std::string_view text);

// Appends `block` with its text squashed (squash_spaces; kCode lines stay verbatim), unless it
// is a kText, kHeading, kItem or kTask with no text left, or a kBreak at the start or after
// another kBreak.
void append_block(Document* doc, Block block);

}  // namespace factory::stages::ingest
