#include "scheduler/approval_params.h"

#include <boost/json.hpp>

namespace factory::scheduler {
namespace json = boost::json;
namespace {

constexpr std::string_view kExample =
    "e.g. params: {bind_to: \"{{ tasks.generate_code.output.commit }}\", auto_approve: false, "
    "notify: {webhook_url_secret: SLACK_WEBHOOK}}";

Status bad(std::string what) {
  return Status::invalid_argument("approval params: " + std::move(what));
}

Result<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return bad("must be a JSON object");
  return std::move(v.as_object());
}

Status check_notify(const json::value& v) {
  if (!v.is_object()) {
    return bad(
        "notify must be a mapping, e.g. notify: {webhook_url_secret: SLACK_WEBHOOK, text: "
        "\"Approve?\"}");
  }
  int urls = 0;
  for (const auto& [k, val] : v.as_object()) {
    if (k == "webhook_url" || k == "webhook_url_secret") {
      ++urls;
    } else if (k != "text" && k != "api_url" && k != "link") {
      return bad("notify has an unknown key '" + std::string(k) +
                 "'; it takes webhook_url or webhook_url_secret, text, api_url and link");
    }
    if (!val.is_string() || val.as_string().empty()) {
      return bad("notify." + std::string(k) + " must be non-empty text");
    }
  }
  if (urls != 1) {
    return bad(std::string("notify needs exactly one of webhook_url (the URL) and "
                           "webhook_url_secret (the name of a secret holding it)") +
               (urls > 1 ? "; remove one" : ""));
  }
  return Status();
}

std::string text_of(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}

}  // namespace

Status check_approval_params(std::string_view params_json) {
  auto o = parse_object(params_json);
  if (!o.ok()) return o.status();
  for (const auto& [k, v] : *o) {
    if (k == "bind_to") {
      if (!v.is_string()) {
        return bad(
            "bind_to must be text, usually a template: bind_to: \"{{ "
            "tasks.generate_code.output.commit }}\"");
      }
    } else if (k == "auto_approve") {
      if (!v.is_bool() && !v.is_string()) {
        return bad(
            "auto_approve must be true, false or a template that renders to one, e.g. "
            "auto_approve: \"{{ run.conf.auto_approve }}\"");
      }
    } else if (k == "notify") {
      FACTORY_RETURN_IF_ERROR(check_notify(v));
    } else {
      return bad("unknown key '" + std::string(k) +
                 "'; an approval task takes bind_to, auto_approve and notify, " +
                 std::string(kExample));
    }
  }
  return Status();
}

Result<ApprovalSettings> parse_approval_settings(std::string_view rendered_params_json) {
  auto o = parse_object(rendered_params_json);
  if (!o.ok()) return o.status();
  ApprovalSettings s;
  if (const json::value* b = o->if_contains("bind_to")) s.bound_to = text_of(*b);
  if (const json::value* a = o->if_contains("auto_approve")) {
    if (a->is_bool()) {
      s.auto_approve = a->as_bool();
    } else if (a->is_string() && (a->as_string() == "true" || a->as_string() == "false")) {
      s.auto_approve = a->as_string() == "true";
    } else if (!a->is_null() && !(a->is_string() && a->as_string().empty())) {
      s.auto_approve_problem = "auto_approve rendered to " + json::serialize(*a) +
                               ", not true or false: waiting for a person";
    }
  }
  if (const json::value* n = o->if_contains("notify"); n && n->is_object()) {
    ApprovalNotify an;
    const json::object& no = n->as_object();
    auto field = [&](const char* k) -> std::string {
      const json::value* f = no.if_contains(k);
      return f ? text_of(*f) : std::string();
    };
    an.webhook_url = field("webhook_url");
    an.webhook_url_secret = field("webhook_url_secret");
    an.text = field("text");
    an.api_url = field("api_url");
    an.link = field("link");
    s.notify = std::move(an);
  }
  return s;
}

bool binding_matches(std::string_view bound_to, std::string_view named) {
  if (named == bound_to) return true;
  return named.size() >= 7 && named.size() < bound_to.size() && bound_to.starts_with(named);
}

std::string notify_params_json(const ApprovalNotify& notify, std::string_view run_id,
                               std::string_view dag_id, std::string_view task_id,
                               std::string_view bound_to, int64_t requested_ms) {
  json::object o;
  if (!notify.webhook_url.empty()) o["webhook_url"] = notify.webhook_url;
  if (!notify.webhook_url_secret.empty()) o["webhook_url_secret"] = notify.webhook_url_secret;
  if (!notify.text.empty()) o["text"] = notify.text;
  if (!notify.api_url.empty()) o["api_url"] = notify.api_url;
  if (!notify.link.empty()) o["link"] = notify.link;
  o["run_id"] = run_id;
  o["dag_id"] = dag_id;
  o["task_id"] = task_id;
  o["bound_to"] = bound_to;
  o["requested_ms"] = requested_ms;
  return json::serialize(o);
}

}  // namespace factory::scheduler
