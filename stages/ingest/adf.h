// Atlassian Document Format (the `description` of a JIRA Cloud issue in REST v3 and webhooks:
// {"type":"doc","version":1,"content":[...]}) to a Document.
//
// Block nodes: paragraph, heading (attrs.level), bulletList / orderedList / listItem (nested
// lists one level deeper; a list item's later paragraphs join its text), taskList / taskItem
// (attrs.state "DONE" = checked), decisionList / decisionItem (as list items), codeBlock
// (verbatim lines), blockquote, panel, expand / nestedExpand (attrs.title as a level-6
// heading, then the content), table (one line per row, cells joined with " | "), rule. Inline
// nodes: text (marks dropped; a link mark adds " (href)"), hardBreak (a new line), mention
// (attrs.text, "@name"), emoji (attrs.text or shortName), inlineCard / blockCard (attrs.url),
// status (attrs.text), date (attrs.timestamp as YYYY-MM-DD). Media and placeholders have no text.
// Any other node type is not an error: its "text" and its content are kept.
//
// Thread-safety: a pure function.
#pragma once

#include <boost/json.hpp>

#include "ingest/document.h"

namespace factory::stages::ingest {

// `node` is the doc node (or any ADF node: its content is rendered).
Document parse_adf(const boost::json::value& node);

}  // namespace factory::stages::ingest
