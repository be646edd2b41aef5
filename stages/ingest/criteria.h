// Acceptance criteria read from a ticket's Document, in the order they appear, each once.
//
// A criterion is:
//  - every list item, checklist item or text line in an acceptance-criteria section: after a
//    heading "Acceptance criteria" (any level, any case, a trailing ':' allowed) up to the next
//    heading of the same or a higher level (sub-headings stay in it), or after a line
//    "Acceptance criteria:" up to the next heading or the next label line ("Notes:"). Headings
//    and label lines inside a section ("Edge cases:") are not criteria, and neither is prose
//    after a list: once a section (or a sub-heading in it) has list items, a text paragraph
//    that follows them after a paragraph break ("See the runbook for context.") is
//    description. A text line right under the last item, with no blank line, still counts;
//  - anywhere, a line "AC: text", "AC1: text", "AC-2: text", "AC 3) text" (the text after it);
//  - anywhere, a Given/When/Then scenario: its Given, When, Then, And and But lines (list items
//    or text, across paragraphs) joined with spaces into one criterion. A scenario ends at a
//    line that is none of those, at a heading, or where a new one starts (a Given after a When
//    or Then, a When after a Then). Outside a section a scenario counts only if it has a Then,
//    so prose starting with "Given ..." is not mistaken for one. "Scenario: name" lines
//    separate scenarios and are not criteria themselves;
//  - anywhere, a checklist item, checked or not.
// Code blocks are never criteria. Duplicates (after squashing whitespace) are dropped.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ingest/document.h"

namespace factory::stages::ingest {

std::vector<std::string> extract_criteria(const Document& doc);

// Appends `criterion` (whitespace squashed) to *list unless it is empty or already there.
void add_criterion(std::vector<std::string>* list, std::string_view criterion);

}  // namespace factory::stages::ingest
