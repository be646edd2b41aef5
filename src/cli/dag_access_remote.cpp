// DagAccess over a daemon's /api/v1 (dag_access.h): one API call per method; call_daemon
// (remote.h) prints the daemon's error the way the local command prints its own.
#include <string>
#include <utility>
#include <vector>

#include "cli/dag_access.h"
#include "cli/dag_support.h"
#include "cli/remote.h"
#include "http/log_access.h"
#include "http/scheduler_views.h"
#include "scheduler/dag_parser.h"

namespace factory::cli {
namespace {

namespace json = boost::json;

int unexpected_answer(std::string_view what) {
  return runtime_error("unexpected answer from the daemon: " + std::string(what),
                       "check that the CLI and the daemon are the same factoryd version");
}

// "/api/v1/<path>" with each segment percent-encoded by the caller.
std::string api(std::string_view path) { return "/api/v1/" + std::string(path); }
std::string seg(std::string_view s) { return http::url_encode(s); }

class RemoteDagAccess : public DagAccess {
 public:
  explicit RemoteDagAccess(std::unique_ptr<http::Client> client) : client_(std::move(client)) {}

  Reported<json::array> list_dags() override { return get_list(api("dags"), "dags"); }

  Reported<json::object> show_dag(const std::string& dag_id) override {
    return call_for_object("GET", api("dags/" + seg(dag_id)), "");
  }

  int set_paused(const std::string& dag_id, bool paused) override {
    int code = kExitOk;
    auto answer =
        call_daemon(client_.get(), "POST",
                    api("dags/" + seg(dag_id) + (paused ? "/pause" : "/unpause")), "", &code);
    return answer ? kExitOk : code;
  }

  // The daemon checks the conf against the DAG's schema; whether it is a JSON object at all is
  // checked here, with the message the local path gives.
  Reported<TriggeredRun> trigger(const TriggerRequest& request) override {
    using Out = Reported<TriggeredRun>;
    scheduler::Dag shape;  // no params schema: resolve_run_conf checks the JSON only
    shape.dag_id = request.dag_id;
    auto resolved = scheduler::resolve_run_conf(shape, request.conf);
    if (!resolved.ok()) return Out::failed(trigger_conf_error(request.dag_id, resolved.status()));
    json::object body;
    boost::system::error_code ec;
    json::value given = json::parse(request.conf, ec);
    if (!ec && given.is_object()) body["conf"] = std::move(given);
    if (!request.run_id.empty()) body["run_id"] = request.run_id;
    // The daemon judges the conf against the DAG's params schema: its refusal is reported as
    // the local path reports the same check (a usage error, exit 2).
    auto refused = [&request](std::string_view field, const Status& s) {
      return field == "conf" ? trigger_conf_error(request.dag_id, s)
                             : trigger_error(request.dag_id, s);
    };
    auto o = call_for_object("POST", api("dags/" + seg(request.dag_id) + "/runs"),
                             http::to_json(body), refused);
    if (!o.ok()) return Out::failed(o.exit_code());
    TriggeredRun out;
    out.run = std::move(*o);
    // Not part of the run's view: the API adds it so the caller needs no second call.
    if (const json::value* p = out.run.if_contains("dag_paused")) {
      out.dag_paused = p->is_bool() && p->get_bool();
    }
    out.run.erase("dag_paused");
    return out;
  }

  Reported<json::array> list_runs(const RunFilter& filter) override {
    std::string target = api("runs?limit=" + std::to_string(filter.limit));
    if (!filter.dag_id.empty()) target += "&dag_id=" + seg(filter.dag_id);
    if (filter.unfinished) target += "&state=unfinished";
    return get_list(target, "runs");
  }

  Reported<json::object> show_run(const std::string& run_id) override {
    return call_for_object("GET", api("runs/" + seg(run_id)), "");
  }

  int cancel_run(const std::string& run_id) override {
    auto o = call_for_object("POST", api("runs/" + seg(run_id) + "/cancel"), "");
    return o.exit_code();
  }

  Reported<std::vector<std::string>> clear_task(const std::string& run_id,
                                                const std::string& task_id,
                                                bool downstream) override {
    using Out = Reported<std::vector<std::string>>;
    auto ids =
        call_for_list("POST", api("runs/" + seg(run_id) + "/tasks/" + seg(task_id) + "/clear"),
                      http::to_json(json::object{{"downstream", downstream}}), "cleared");
    if (!ids.ok()) return Out::failed(ids.exit_code());
    std::vector<std::string> cleared;
    for (const json::value& id : *ids) {
      if (id.is_string()) cleared.emplace_back(id.get_string());
    }
    return cleared;
  }

  Reported<json::array> list_approvals(bool all) override {
    return get_list(api(std::string("approvals?state=") + (all ? "all" : "pending")), "approvals");
  }

  Reported<json::object> decide(const Decision& d) override {
    json::object body;
    if (!d.comment.empty()) body["comment"] = d.comment;
    if (!d.bound_to.empty()) body["bound_to"] = d.bound_to;
    return call_for_object("POST",
                           api("runs/" + seg(d.run_id) + "/tasks/" + seg(d.task_id) +
                               (d.approve ? "/approve" : "/reject")),
                           http::to_json(body));
  }

  Reported<json::object> auto_approval(const std::string& action) override {
    if (action == "status") return call_for_object("GET", api("auto-approval"), "");
    return call_for_object("POST", api("auto-approval/" + action), "");
  }

  Reported<json::array> list_audit(int limit) override {
    return get_list(api("audit?limit=" + std::to_string(limit)), "audit");
  }

 private:
  // One API call whose answer must be an object.
  Reported<json::object> call_for_object(std::string_view method, const std::string& target,
                                         std::string_view body,
                                         const InvalidInputReport& on_invalid = {}) {
    int code = kExitOk;
    auto answer = call_daemon(client_.get(), method, target, body, &code, on_invalid);
    if (!answer) return Reported<json::object>::failed(code);
    if (!answer->is_object()) {
      return Reported<json::object>::failed(unexpected_answer("not a JSON object"));
    }
    return std::move(answer->get_object());
  }

  // One API call answering {"<key>": [...]}: the list.
  Reported<json::array> call_for_list(std::string_view method, const std::string& target,
                                      std::string_view body, std::string_view key) {
    int code = kExitOk;
    auto answer = call_daemon(client_.get(), method, target, body, &code);
    if (!answer) return Reported<json::array>::failed(code);
    json::value* v = answer->is_object() ? answer->get_object().if_contains(key) : nullptr;
    if (!v || !v->is_array()) {
      return Reported<json::array>::failed(unexpected_answer("no '" + std::string(key) + "' list"));
    }
    return std::move(v->get_array());
  }

  Reported<json::array> get_list(const std::string& target, std::string_view key) {
    return call_for_list("GET", target, "", key);
  }

  std::unique_ptr<http::Client> client_;
};

}  // namespace

std::unique_ptr<DagAccess> remote_dag_access(std::unique_ptr<http::Client> client) {
  return std::make_unique<RemoteDagAccess>(std::move(client));
}

}  // namespace factory::cli
