// JIRA wiki markup (the `description` of a JIRA Server / Data Center issue, and of Cloud's
// REST v2 API) to a Document.
//
// Recognised: headings "h1." .. "h6.", lists "*", "#", "-" with nesting ("**", "#*"), checklist
// items ("* [ ] text", "* [x] text"), {code}/{noformat} blocks (verbatim), "bq." quotes, tables
// ("||head||" and "|cell|", cells joined with " | "), "----" rules, "\\" line breaks. Inline:
// *bold*, _italic_, -strike-, +under+, ^sup^, ~sub~, ??cite?? lose their markers; {{mono}} is
// kept verbatim; [text|url] becomes "text (url)", [url] "url", [~user] "@user"; images
// (!file.png!) and macros ({color:red}, {quote}, {panel} ...) are dropped, their contents
// kept; a line opening with {panel:title=X} or {expand:X} gives a level-6 heading X (so a
// panel titled "Acceptance criteria" opens that section). Anything else is text.
//
// Thread-safety: a pure function.
#pragma once

#include <string_view>

#include "ingest/document.h"

namespace factory::stages::ingest {

Document parse_jira_wiki(std::string_view markup);

// One line of inline wiki markup to plain text (exposed for tests).
std::string jira_wiki_inline(std::string_view line);

}  // namespace factory::stages::ingest
