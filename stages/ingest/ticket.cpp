#include "ingest/ticket.h"

#include <cctype>
#include <cstdio>
#include <string_view>

#include "ingest/adf.h"
#include "ingest/jira_wiki.h"
#include "ingest/markdown.h"

namespace factory::stages::ingest {
namespace {

namespace json = boost::json;

constexpr std::string_view kExpected =
    "ingest takes a JIRA webhook ({\"webhookEvent\": \"jira:issue_created\" or "
    "\"jira:issue_updated\", \"issue\": {\"key\", \"fields\": {\"summary\", ...}}}), a GitHub "
    "issues webhook ({\"action\": \"opened\" or \"edited\", \"issue\": {\"number\", \"title\", "
    "\"body\", ...}, \"repository\": {\"full_name\"}}) or a plain ticket ({\"id\", \"title\", "
    "\"description\", ...})";

const json::value* field(const json::value& v, std::string_view key) {
  return v.is_object() ? v.as_object().if_contains(key) : nullptr;
}

// The string at `key`, or "" when it is absent or null; an error naming `path` for any other
// type.
Result<std::string> optional_string(const json::value& v, std::string_view key,
                                    std::string_view path) {
  const json::value* f = field(v, key);
  if (f == nullptr || f->is_null()) return std::string();
  if (!f->is_string()) {
    return Status::invalid_argument(std::string(path) + " must be a string, not " +
                                    std::string(json::to_string(f->kind())));
  }
  return std::string(f->get_string());
}

// check_ticket_id on the string at `key` as sent, before squash_spaces would quietly turn a
// newline into a space: an id with control characters is refused, not repaired.
Status check_raw_id(const json::value& v, std::string_view key, const std::string& path) {
  const json::value* f = field(v, key);
  if (f == nullptr || !f->is_string()) return Status();
  return check_ticket_id(f->get_string(), path);
}

// A required, non-empty string.
Result<std::string> required_string(const json::value& v, std::string_view key,
                                    std::string_view path, std::string_view what) {
  auto s = optional_string(v, key, path);
  if (!s.ok()) return s.status();
  std::string text = squash_spaces(*s);
  if (text.empty()) {
    return Status::invalid_argument(std::string(what) + ": " + std::string(path) +
                                    " is missing or empty");
  }
  return text;
}

// An array of strings, or of objects with a "name" (JIRA components, GitHub labels); other
// entries are skipped.
std::vector<std::string> names(const json::value* list) {
  std::vector<std::string> out;
  if (list == nullptr || !list->is_array()) return out;
  for (const json::value& item : list->get_array()) {
    const json::value* name = item.is_string() ? &item : field(item, "name");
    if (name != nullptr && name->is_string() && !name->get_string().empty()) {
      out.emplace_back(name->get_string());
    }
  }
  return out;
}

// A priority given as {"name": "High"} (JIRA) or as "High".
std::string priority_of(const json::value* p) {
  if (p == nullptr) return "";
  if (p->is_string()) return std::string(p->get_string());
  const json::value* name = field(*p, "name");
  return name != nullptr && name->is_string() ? std::string(name->get_string()) : "";
}

// A description: wiki markup or markdown (`is_wiki`) text, or an ADF object.
Result<Document> description_of(const json::value* d, bool is_wiki, std::string_view path) {
  if (d == nullptr || d->is_null()) return Document();
  if (d->is_string()) {
    return is_wiki ? parse_jira_wiki(d->get_string()) : parse_markdown(d->get_string());
  }
  if (d->is_object()) {
    const json::value* type = field(*d, "type");
    if (type == nullptr || !type->is_string() || type->get_string() != "doc") {
      return Status::invalid_argument(std::string(path) +
                                      " is an object but not an Atlassian Document Format "
                                      "document ({\"type\": \"doc\", \"content\": [...]})");
    }
    return parse_adf(*d);
  }
  return Status::invalid_argument(std::string(path) +
                                  " must be text or an Atlassian Document Format object, not " +
                                  std::string(json::to_string(d->kind())));
}

// "https://acme.atlassian.net/rest/api/2/issue/10001" -> "https://acme.atlassian.net/browse/KEY".
std::string browse_url(std::string_view self, std::string_view key) {
  size_t rest = self.find("/rest/api/");
  if (rest == std::string_view::npos) return "";
  return std::string(self.substr(0, rest)) + "/browse/" + std::string(key);
}

// The text after "prefix:" / "prefix/" / "prefix-" in a label, any case; "" if none.
std::string label_value(std::string_view label, std::string_view prefix) {
  if (label.size() <= prefix.size() + 1) return "";
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(label[i])) != prefix[i]) return "";
  }
  char sep = label[prefix.size()];
  if (sep != ':' && sep != '/' && sep != '-') return "";
  return squash_spaces(label.substr(prefix.size() + 1));
}

// `prefix` is where the issue sits in the payload ("issue." in a webhook, "" for a bare issue).
Result<Ticket> read_jira_issue(const json::value& issue, std::string_view what,
                               const std::string& prefix) {
  Ticket t;
  t.source = "jira";
  FACTORY_RETURN_IF_ERROR(check_raw_id(issue, "key", prefix + "key"));
  auto key = required_string(issue, "key", prefix + "key", what);
  if (!key.ok()) return key.status();
  t.id = *key;
  const json::value* fields = field(issue, "fields");
  if (fields == nullptr || !fields->is_object()) {
    return Status::invalid_argument(std::string(what) + " " + t.id + ": " + prefix +
                                    "fields is missing or not an object");
  }
  auto summary = required_string(*fields, "summary", prefix + "fields.summary", what);
  if (!summary.ok()) return summary.status();
  t.title = *summary;
  auto description =
      description_of(field(*fields, "description"), true, prefix + "fields.description");
  if (!description.ok()) {
    return Status::invalid_argument(std::string(what) + " " + t.id + ": " +
                                    description.status().message());
  }
  t.description = std::move(*description);
  auto self = optional_string(issue, "self", prefix + "self");
  if (self.ok()) t.link = browse_url(*self, t.id);
  t.labels = names(field(*fields, "labels"));
  t.priority = priority_of(field(*fields, "priority"));
  std::vector<std::string> components = names(field(*fields, "components"));
  if (!components.empty()) t.component = components.front();
  const json::value* project = field(*fields, "project");
  const json::value* project_key = project != nullptr ? field(*project, "key") : nullptr;
  if (project_key != nullptr && project_key->is_string()) {
    t.project_key = std::string(project_key->get_string());
  } else {
    t.project_key = t.id.substr(0, t.id.find('-'));
  }
  return t;
}

Result<Ticket> read_jira_webhook(const json::value& payload) {
  std::string event(field(payload, "webhookEvent")->get_string());
  if (event != "jira:issue_created" && event != "jira:issue_updated") {
    return Status::invalid_argument("JIRA webhookEvent '" + event +
                                    "' is not a ticket to build: ingest takes "
                                    "jira:issue_created and jira:issue_updated");
  }
  const json::value* issue = field(payload, "issue");
  if (issue == nullptr || !issue->is_object()) {
    return Status::invalid_argument("JIRA webhook " + event + " without an \"issue\" object; " +
                                    std::string(kExpected));
  }
  return read_jira_issue(*issue, "JIRA webhook", "issue.");
}

Result<Ticket> read_github_webhook(const json::value& payload) {
  auto action = optional_string(payload, "action", "action");
  if (!action.ok()) return action.status();
  if (*action != "opened" && *action != "edited" && *action != "reopened") {
    return Status::invalid_argument("GitHub issues action '" + *action +
                                    "' is not a ticket to build: ingest takes opened, edited "
                                    "and reopened");
  }
  const json::value& issue = *field(payload, "issue");
  const json::value& repository = *field(payload, "repository");
  FACTORY_RETURN_IF_ERROR(check_raw_id(repository, "full_name", "repository.full_name"));
  auto repo = required_string(repository, "full_name", "repository.full_name", "GitHub webhook");
  if (!repo.ok()) return repo.status();
  const json::value* number = field(issue, "number");
  if (number == nullptr || !(number->is_int64() || number->is_uint64())) {
    return Status::invalid_argument("GitHub webhook: issue.number is missing or not a number");
  }
  Ticket t;
  t.source = "github";
  t.id = *repo + "#" + json::serialize(*number);
  auto title = required_string(issue, "title", "issue.title", "GitHub webhook " + t.id);
  if (!title.ok()) return title.status();
  t.title = *title;
  auto description = description_of(field(issue, "body"), false, "issue.body");
  if (!description.ok()) {
    return Status::invalid_argument("GitHub webhook " + t.id + ": " +
                                    description.status().message());
  }
  t.description = std::move(*description);
  auto url = optional_string(issue, "html_url", "issue.html_url");
  if (url.ok()) t.link = *url;
  t.labels = names(field(issue, "labels"));
  for (const std::string& label : t.labels) {
    if (t.priority.empty()) t.priority = label_value(label, "priority");
    if (t.component.empty()) t.component = label_value(label, "component");
    if (t.component.empty()) t.component = label_value(label, "area");
  }
  t.project_key = *repo;
  return t;
}

Result<Ticket> read_plain(const json::value& payload) {
  Ticket t;
  t.source = "ticket";
  const json::value* id = field(payload, "id");
  if (id->is_int64() || id->is_uint64()) {
    t.id = json::serialize(*id);
  } else {
    FACTORY_RETURN_IF_ERROR(check_raw_id(payload, "id", "id"));
    auto s = required_string(payload, "id", "id", "plain ticket");
    if (!s.ok()) return s.status();
    t.id = *s;
  }
  auto title = required_string(payload, "title", "title", "ticket " + t.id);
  if (!title.ok()) return title.status();
  t.title = *title;
  auto description = description_of(field(payload, "description"), false, "description");
  if (!description.ok()) {
    return Status::invalid_argument("ticket " + t.id + ": " + description.status().message());
  }
  t.description = std::move(*description);
  for (const char* key : {"link", "url"}) {
    auto link = optional_string(payload, key, key);
    if (!link.ok())
      return Status::invalid_argument("ticket " + t.id + ": " + link.status().message());
    if (t.link.empty()) t.link = *link;
  }
  t.labels = names(field(payload, "labels"));
  t.priority = priority_of(field(payload, "priority"));
  auto component = optional_string(payload, "component", "component");
  if (!component.ok()) {
    return Status::invalid_argument("ticket " + t.id + ": " + component.status().message());
  }
  t.component = *component;
  auto project = optional_string(payload, "project", "project");
  if (!project.ok()) {
    return Status::invalid_argument("ticket " + t.id + ": " + project.status().message());
  }
  t.explicit_project = !project->empty();
  t.project_key = t.explicit_project ? *project : t.id.substr(0, t.id.find('-'));
  if (const json::value* ac = field(payload, "acceptance_criteria"); ac && !ac->is_null()) {
    if (!ac->is_array()) {
      return Status::invalid_argument("ticket " + t.id +
                                      ": acceptance_criteria must be an array of strings");
    }
    for (const json::value& c : ac->get_array()) {
      if (!c.is_string()) {
        return Status::invalid_argument("ticket " + t.id +
                                        ": acceptance_criteria must be an array of strings");
      }
      t.criteria.emplace_back(c.get_string());
    }
  }
  return t;
}

// "an object with keys a, b, c" / "a string": what the payload was, for error messages.
std::string describe(const json::value& v) {
  if (!v.is_object()) return std::string("a JSON ") + std::string(json::to_string(v.kind()));
  std::string keys;
  int n = 0;
  for (const auto& [key, value] : v.as_object()) {
    if (++n > 8) {
      keys += ", ...";
      break;
    }
    keys += (keys.empty() ? "" : ", ") + std::string(key);
  }
  return keys.empty() ? "an empty object" : "an object with keys " + keys;
}

}  // namespace

Status check_ticket_id(std::string_view id, std::string_view field) {
  // The id names a branch, a release and a commit's subject: one printable line only.
  std::string shown;
  bool control = false;
  for (char c : id.substr(0, 80)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", u);
      shown += buf;
    } else {
      shown += c;
    }
  }
  for (char c : id) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) control = true;
  }
  if (control) {
    return Status::invalid_argument("ticket " + std::string(field) + " '" + shown +
                                    "' holds a control character (a newline, a tab, an escape); "
                                    "a ticket id is one printable line such as INV-101 or "
                                    "acme/shop#42");
  }
  if (id.size() > kMaxTicketIdBytes) {
    return Status::invalid_argument("ticket " + std::string(field) + " '" + shown +
                                    "...' is longer than " + std::to_string(kMaxTicketIdBytes) +
                                    " bytes; a ticket id is a short key such as INV-101");
  }
  return Status();
}

Result<Ticket> read_ticket(const json::value& payload) {
  if (!payload.is_object()) {
    return Status::invalid_argument("unrecognised ticket: got " + describe(payload) + "; " +
                                    std::string(kExpected));
  }
  const json::value* event = field(payload, "webhookEvent");
  if (event != nullptr && event->is_string()) return read_jira_webhook(payload);
  const json::value* issue = field(payload, "issue");
  const json::value* repository = field(payload, "repository");
  if (issue != nullptr && issue->is_object() && repository != nullptr && repository->is_object() &&
      field(payload, "action") != nullptr) {
    return read_github_webhook(payload);
  }
  if (field(payload, "key") != nullptr && field(payload, "fields") != nullptr) {
    return read_jira_issue(payload, "JIRA issue", "");
  }
  if (field(payload, "id") != nullptr && field(payload, "title") != nullptr) {
    return read_plain(payload);
  }
  return Status::invalid_argument("unrecognised ticket: got " + describe(payload) + "; " +
                                  std::string(kExpected));
}

}  // namespace factory::stages::ingest
