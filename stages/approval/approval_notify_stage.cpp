// approval_notify: posts a Slack-compatible incoming-webhook message when an approval task
// becomes pending. The scheduler dispatches it (scheduler.h, approval tasks with `notify`
// params) so the POST runs on a stage worker, never on the scheduler's loop; a failure is
// logged and counted, never fatal: the approval itself is already recorded and waits either way.
//
// Input (the scheduler writes it; approval_params.h notify_params_json):
//   {"run_id", "dag_id", "task_id", "bound_to", "requested_ms",
//    "webhook_url" | "webhook_url_secret", "text"?, "api_url"?, "link"?, "timeout_ms"?}
// POSTs {"text": "<text> (<bound_to, 12 chars>) <link>\nDecide: factoryd approvals approve|reject
// <run> <task>"}; emits {"posted": bool, "status": <HTTP status or 0>, "error": "..."}.
//
// Stateless, so thread-safe.
#include <cctype>
#include <string>

#include <boost/json.hpp>

#include "deploy/http_post.h"
#include "factory/stage.h"

namespace factory::stages {
namespace {
namespace json = boost::json;

constexpr char kInputSchema[] = R"({
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "approval_notify input",
  "type": "object",
  "required": ["run_id", "task_id"],
  "properties": {
    "run_id": {"type": "string", "minLength": 1},
    "dag_id": {"type": "string"},
    "task_id": {"type": "string", "minLength": 1},
    "bound_to": {"type": "string"},
    "requested_ms": {"type": "integer"},
    "webhook_url": {"type": "string", "minLength": 1},
    "webhook_url_secret": {"type": "string", "minLength": 1},
    "text": {"type": "string"},
    "api_url": {"type": "string"},
    "link": {"type": "string"},
    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000}
  }
})";
constexpr char kDefaultApiUrl[] = "http://127.0.0.1:7070";  // factoryd serve's default port
constexpr int64_t kDefaultTimeoutMs = 5000;

std::string str(const json::object& o, const char* k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Percent-encodes everything but RFC 3986's unreserved characters (run ids hold ':' and '+').
std::string escape_segment(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class ApprovalNotifyStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "approval_notify",
            .version = "1.0.0",
            .input_schema = kInputSchema,
            // A message repeated after a crash is tolerable; a lost one is not worse than a
            // failed POST (the approval is listed by `factoryd approvals list` either way).
            .side_effects = SideEffects::kIdempotent,
            .blocking = true,
            .default_concurrency = 2};
  }

  StageResult process(const Event& event, StageContext& ctx) override {
    json::object in = json::parse(event.payload).as_object();
    std::string run_id = str(in, "run_id");
    std::string task_id = str(in, "task_id");
    std::string bound = str(in, "bound_to");

    std::string url = str(in, "webhook_url");
    if (url.empty()) {
      std::string name = str(in, "webhook_url_secret");
      if (name.empty()) return done(ctx, false, 0, "notify has neither webhook_url nor secret");
      auto secret = ctx.secret(name);
      if (!secret || secret->empty()) {
        return done(ctx, false, 0,
                    "secret '" + name +
                        "' (the webhook URL) is not set; define it in the environment or the "
                        "secrets file");
      }
      url = *secret;
    }

    std::string text = str(in, "text");
    if (text.empty()) text = "Approval needed: run " + run_id + ", task " + task_id;
    if (!bound.empty() && text.find(bound) == std::string::npos) {
      text += " (" + bound.substr(0, 12) + ")";
    }
    std::string link = str(in, "link");
    if (link.empty()) {
      std::string base = str(in, "api_url");
      if (base.empty()) base = kDefaultApiUrl;
      while (!base.empty() && base.back() == '/') base.pop_back();
      link = base + "/api/v1/runs/" + escape_segment(run_id) + "/tasks/" + escape_segment(task_id);
    }
    text += " " + link + "\nDecide: factoryd approvals approve|reject " + run_id + " " + task_id;

    int64_t timeout_ms = kDefaultTimeoutMs;
    if (const json::value* t = in.if_contains("timeout_ms"); t && t->is_int64())
      timeout_ms = t->as_int64();
    auto r = post_json(url, json::serialize(json::object{{"text", text}}), timeout_ms);
    if (!r.ok()) {
      return done(ctx, false, 0,
                  "POST to " + redact_url(url) + " failed: " + r.status().to_string());
    }
    if (r->status / 100 != 2) {
      return done(ctx, false, r->status,
                  "POST to " + redact_url(url) + " answered HTTP " + std::to_string(r->status));
    }
    return done(ctx, true, r->status, "");
  }

 private:
  static StageResult done(StageContext& ctx, bool posted, int status, const std::string& error) {
    if (!posted) {
      ctx.log_warn("approval message not sent: " + error);
      ctx.count("approval_notify_failed");
    } else {
      ctx.count("approval_notify_sent");
    }
    json::object out{{"posted", posted}, {"status", status}, {"error", error}};
    ctx.emit({.payload = json::serialize(out)});
    return StageResult::success();
  }
};

FACTORY_REGISTER_STAGE(ApprovalNotifyStage);

}  // namespace
}  // namespace factory::stages
