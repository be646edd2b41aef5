// Ticket: what ingest reads out of the three shapes of ticket it accepts, before the target
// project is resolved and the criteria are extracted.
//
//   JIRA webhook   {"webhookEvent": "jira:issue_created"|"jira:issue_updated", "issue": {"key",
//                   "self", "fields": {"summary", "description", "labels", "priority": {"name"},
//                   "components": [{"name"}], "project": {"key"}}}}. The description is wiki
//                   markup (a string) or Atlassian Document Format (an object). A bare REST
//                   issue {"key", "self", "fields"} is read the same way.
//   GitHub webhook {"action": "opened"|"edited"|"reopened", "issue": {"number", "title",
//                   "body", "html_url", "labels": [{"name"}]}, "repository": {"full_name"}}
//                   (the `issues` event). The body is markdown. Priority and component come
//                   from labels "priority: high" / "priority/high" and "component: api" /
//                   "area/api" (the labels stay in the list too).
//   Plain ticket   {"id", "title", "description"?, "labels"?, "priority"?, "component"?,
//                   "project"?, "link"?, "acceptance_criteria"?: ["..."]}. The description is
//                   markdown (plain text is markdown too) or an ADF object.
//
// Thread-safety: plain values and a pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "factory/status.h"
#include "ingest/document.h"

namespace factory::stages::ingest {

struct Ticket {
  std::string id;      // "INV-101", "acme/invoices#103"
  std::string source;  // "jira", "github", "ticket"
  std::string link;    // the browse / html URL; "" when the source has none
  std::string title;
  Document description;
  std::vector<std::string> labels;
  std::string priority;
  std::string component;
  // What picks the target project: the JIRA project key, the GitHub repository's full name,
  // or a plain ticket's `project` (then `explicit_project` is true) or its id's prefix
  // ("INV" of "INV-104").
  std::string project_key;
  bool explicit_project = false;
  std::vector<std::string> criteria;  // a plain ticket's own acceptance_criteria
};

// The ticket in `payload`. InvalidArgument saying which shape was expected and what is wrong
// or missing (with the field's path) when `payload` is none of the three, or an event of a kind
// ingest does not handle (jira:issue_deleted, a GitHub "closed" action).
Result<Ticket> read_ticket(const boost::json::value& payload);

// The longest ticket id accepted (a JIRA key or owner/repo#number is far shorter).
inline constexpr size_t kMaxTicketIdBytes = 200;

// OK when `id` is one printable line of at most kMaxTicketIdBytes: no control character
// (0x00-0x1F, 0x7F), since the id reaches branch names, commit subjects and logs.
// InvalidArgument naming `field` and showing the id with control characters as \xNN otherwise.
// read_ticket applies it to every id it reads.
Status check_ticket_id(std::string_view id, std::string_view field);

}  // namespace factory::stages::ingest
