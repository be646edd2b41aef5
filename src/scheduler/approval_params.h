// Approval task params (docs/dags.md "Approvals"): what an approval task's rendered `params`
// ask of the scheduler — the value the approval is bound to (a commit), whether a policy
// approves it at once, and whom to notify when it waits for a person.
//
//   approve:
//     stage: approval
//     upstream: [gate]
//     params:
//       bind_to: "{{ tasks.generate_code.output.commit }}"   # a new value invalidates it
//       auto_approve: "{{ run.conf.auto_approve }}"           # true/false, or a template
//       notify:                                               # optional
//         webhook_url_secret: SLACK_WEBHOOK                   # or webhook_url: http://...
//         text: "Approve {{ tasks.ingest.output.id }}?"
//         api_url: http://factory.example:7070               # base of the link in the message
//
// check_approval_params() runs when the DAG file is loaded (keys and types of what is
// written); parse_approval_settings() reads the params once rendered, when the approval is
// requested. Pure functions: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "factory/status.h"

namespace factory::scheduler {

// Where and what to post when an approval becomes pending (stages/approval/README.md).
struct ApprovalNotify {
  std::string webhook_url;         // exactly one of webhook_url and webhook_url_secret
  std::string webhook_url_secret;  // a secret NAME, resolved by the approval_notify stage
  std::string text;                // "" : a default naming the run, task and binding
  std::string api_url;             // base URL of factoryd's API for the link ("" : a default)
  std::string link;                // the link itself, overriding the API link ("" : none)
};

struct ApprovalSettings {
  std::string bound_to;  // "" when the approval is not bound (no bind_to)
  bool auto_approve = false;
  // Set when auto_approve rendered to something that is neither a boolean nor "true"/"false":
  // the approval then waits for a person, and this says why.
  std::string auto_approve_problem;
  std::optional<ApprovalNotify> notify;
};

// The load-time check of an approval task's params (a JSON object, templates unrendered).
// InvalidArgument "approval params: ..." for an unknown key (approval tasks take only bind_to,
// auto_approve and notify), auto_approve that is neither a boolean nor a string, bind_to that
// is not a string, or notify that is not a mapping with exactly one of webhook_url and
// webhook_url_secret and only text, api_url and link besides.
Status check_approval_params(std::string_view params_json);

// The settings in an approval task's rendered params. bind_to: a string as it is, any other
// JSON value as compact JSON. InvalidArgument when the params are not a JSON object.
Result<ApprovalSettings> parse_approval_settings(std::string_view rendered_params_json);

// True when a decision naming `named` may resolve an approval bound to `bound_to`: the same
// value, or (for a commit hash) a prefix of it of at least 7 characters, as git abbreviates.
bool binding_matches(std::string_view bound_to, std::string_view named);

// The params of an approval_notify dispatch (stages/approval): the notify settings plus the
// run, task and binding the message is about. `requested_ms` makes each request's dispatch a
// distinct event, so a re-requested approval notifies again.
std::string notify_params_json(const ApprovalNotify& notify, std::string_view run_id,
                               std::string_view dag_id, std::string_view task_id,
                               std::string_view bound_to, int64_t requested_ms);

}  // namespace factory::scheduler
