// /api/v1/dags, runs, tasks, approvals, auto-approval and audit: the scheduler half of the API.
//
// Reads come from the store (so they work without a scheduler, and see what the CLI sees);
// writes go through the scheduler's commands, durable when they return. Every answer is one of
// the views in scheduler_views.h, the same JSON the CLI prints.
//
// Audit: the write routes are `audited`, so the server appends one row per request (caller,
// action, outcome, request id), also for refused ones. The scheduler commands are called with
// AuditMode::kCallerAudits so they do not append a second row for the same change.
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "base/clock.h"
#include "http/api.h"
#include "http/json_input.h"
#include "http/router.h"
#include "http/scheduler_views.h"
#include "scheduler/audit.h"

namespace factory::http {

namespace json = boost::json;

namespace {

constexpr size_t kSmallBodyLimit = 64 * 1024;  // pause/cancel/clear/approve: a few fields
constexpr int64_t kMaxLimit = std::numeric_limits<int>::max();  // the store's limit is an int
constexpr std::string_view kRunStates[] = {"queued", "running",   "success",
                                           "failed", "cancelled", "unfinished"};
constexpr std::string_view kApprovalStates[] = {"pending", "approved",  "rejected", "expired",
                                                "cleared", "cancelled", "all"};

std::string details(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  json::object o;
  for (const auto& [k, v] : kv) o[k] = v;
  return json::serialize(o);
}

Response view(const json::value& v, int status = 200) { return json_response(to_json(v), status); }

Response invalid(const Status& s, std::string_view field = {}) {
  return status_response(s, field.empty() ? "{}" : details({{"field", field}}));
}

Response dag_not_found(const ApiContext* ctx, std::string_view dag_id) {
  std::string why = ctx->scheduler ? "is not loaded by this daemon"
                                   : "is not loaded: this daemon runs no DAGs (none in its "
                                     "config's dags/ directory)";
  return error_response(404, "not_found",
                        "DAG '" + std::string(dag_id) + "' " + why +
                            "; list the DAGs with GET /api/v1/dags or 'factoryd dags list'",
                        details({{"dag_id", dag_id}}));
}

Response run_not_found(std::string_view run_id) {
  return error_response(404, "not_found",
                        "run '" + std::string(run_id) +
                            "' not found; list runs with GET /api/v1/runs or 'factoryd runs list'",
                        details({{"run_id", run_id}}));
}

Response no_scheduler(std::string_view what) {
  return error_response(503, "unavailable",
                        "cannot " + std::string(what) +
                            ": this daemon runs no scheduler (no DAG files in its config's dags/ "
                            "directory); add the DAG files and restart it",
                        "{}");
}

Response no_store() {
  return error_response(503, "unavailable", "the metadata store is not open; retry", "{}");
}

// Refuses query parameters the route does not take (a typo would otherwise widen a listing).
Status check_query(const Request& req, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : req.query) {
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    return Status::invalid_argument("unknown query parameter '" + k +
                                    "'; allowed: " + (list.empty() ? std::string("none") : list));
  }
  return Status();
}

// A write's body where every field is optional: an empty body means {}.
Result<json::object> optional_body(const Request& req) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  return parse_body(req);
}

template <size_t N>
Result<std::string> one_of(const Request& req, std::string_view name, std::string_view def,
                           const std::string_view (&allowed)[N]) {
  auto v = req.query_value(name);
  std::string value(v ? *v : def);
  for (std::string_view a : allowed) {
    if (a == value) return value;
  }
  std::string list;
  for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return Status::invalid_argument("query parameter " + std::string(name) + "=" + value +
                                  " is not one of: " + list);
}

const scheduler::Dag* loaded_dag(const ApiContext* ctx, std::string_view dag_id) {
  if (!ctx->scheduler) return nullptr;
  for (const scheduler::Dag& d : ctx->scheduler->dags()) {
    if (d.dag_id == dag_id) return &d;
  }
  return nullptr;
}

// The run's row, or the response to send instead (404, or the store's error).
std::optional<Response> read_run(const ApiContext* ctx, std::string_view run_id,
                                 store::RunRow* run) {
  if (!ctx->store) return no_store();
  auto row = ctx->store->get_run(run_id);
  if (!row.ok()) {
    if (row.status().is_not_found()) return run_not_found(run_id);
    return status_response(row.status());
  }
  *run = std::move(*row);
  return std::nullopt;
}

// The run's task instances in its DAG's order (task_id order when the DAG is not loaded).
Result<std::vector<scheduler::TaskView>> run_tasks(const ApiContext* ctx,
                                                   const store::RunRow& run) {
  auto rows = ctx->store->list_tasks(run.run_id);
  if (!rows.ok()) return rows.status();
  return order_tasks(run, std::move(*rows), loaded_dag(ctx, run.dag_id));
}

// A run a change applies to must exist, not have ended, and have a scheduler to change it.
std::optional<Response> run_for_change(const ApiContext* ctx, std::string_view run_id,
                                       std::string_view verb, store::RunRow* run) {
  if (auto r = read_run(ctx, run_id, run)) return r;
  if (!verb.empty() && run_ended(run->state)) {
    return error_response(409, "failed_precondition",
                          "run '" + std::string(run_id) + "' already ended (" + run->state +
                              "); nothing to " + std::string(verb),
                          details({{"run_id", run_id}, {"state", run->state}}));
  }
  if (!ctx->scheduler) return no_scheduler(std::string(verb.empty() ? "change" : verb) + " runs");
  return std::nullopt;
}

// --- handlers ---

Response list_dags(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return invalid(s);
  json::array out;
  if (ctx->scheduler) {
    for (const scheduler::Dag& d : ctx->scheduler->dags()) {
      out.push_back(dag_summary_view(d, dag_paused(ctx->store, d.dag_id)));
    }
  }
  return view(json::object{{"dags", std::move(out)}});
}

Response show_dag(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return invalid(s);
  std::string_view dag_id = req.param("dag_id");
  const scheduler::Dag* dag = loaded_dag(ctx, dag_id);
  if (!dag) return dag_not_found(ctx, dag_id);
  return view(dag_view(*dag, dag_paused(ctx->store, dag_id)));
}

Response pause_dag(ApiContext* ctx, const Request& req, bool paused) {
  auto body = optional_body(req);
  if (!body.ok()) return invalid(body.status());
  if (Status s = FieldReader(*body, "body", {}).check_unknown(); !s.ok()) return invalid(s);
  std::string_view dag_id = req.param("dag_id");
  if (!loaded_dag(ctx, dag_id)) return dag_not_found(ctx, dag_id);
  Status s = ctx->scheduler->set_paused(dag_id, paused, req.principal.actor(),
                                        scheduler::AuditMode::kCallerAudits);
  if (s.is_not_found()) return dag_not_found(ctx, dag_id);
  if (!s.ok()) return status_response(s);
  return view(json::object{{"dag_id", dag_id}, {"paused", paused}});
}

// A run id the API can address: one path segment of printable characters.
Status check_run_id(std::string_view id) {
  if (id.empty()) {
    return Status::invalid_argument(
        "body.run_id must not be empty; leave it out for a generated id");
  }
  if (id.size() > 250) return Status::invalid_argument("body.run_id is longer than 250 bytes");
  for (char c : id) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '/' || c == '?' || c == '#' || c == '%') {
      return Status::invalid_argument(
          "body.run_id must not contain '/', '?', '#', '%' or control characters; use letters, "
          "digits and _.:+-");
    }
  }
  return Status();
}

Response trigger_dag(ApiContext* ctx, const Request& req) {
  auto body = optional_body(req);
  if (!body.ok()) return invalid(body.status());
  FieldReader r(*body, "body", {"conf", "run_id"});
  if (Status s = r.check_unknown(); !s.ok()) return invalid(s);
  const json::object* conf = r.object("conf");
  std::optional<std::string> run_id = r.string("run_id");
  if (!r.status().ok()) return invalid(r.status());
  if (run_id) {
    if (Status s = check_run_id(*run_id); !s.ok()) return invalid(s, "run_id");
  }
  std::string_view dag_id = req.param("dag_id");
  if (!loaded_dag(ctx, dag_id)) return dag_not_found(ctx, dag_id);
  auto made = ctx->scheduler->trigger(dag_id, conf ? json::serialize(*conf) : std::string(),
                                      run_id.value_or(""), "manual");
  if (!made.ok()) {
    const Status& s = made.status();
    if (s.is_not_found()) return dag_not_found(ctx, dag_id);
    if (s.is_invalid_argument()) return invalid(s, "conf");
    if (s.is_already_exists()) return invalid(s, "run_id");
    return status_response(s);
  }
  store::RunRow row;
  if (auto r2 = read_run(ctx, *made, &row)) return *r2;
  json::object out = run_view(row);
  std::optional<bool> paused = dag_paused(ctx->store, dag_id);
  out["dag_paused"] = paused.value_or(false);
  Response resp = view(out, 201);
  resp.headers.emplace_back("Location", "/api/v1/runs/" + *made);
  resp.audit_detail = scheduler::trigger_detail(*made);
  return resp;
}

Response list_runs(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {"dag_id", "state", "limit"}); !s.ok()) return invalid(s);
  auto limit = query_int(req, "limit", 100, 0, kMaxLimit);
  if (!limit.ok()) return invalid(limit.status(), "limit");
  std::string state;
  if (req.query_value("state")) {
    auto st = one_of(req, "state", "", kRunStates);
    if (!st.ok()) return invalid(st.status(), "state");
    state = *st;
  }
  if (!ctx->store) return no_store();
  store::RunFilter filter;
  filter.dag_id = std::string(req.query_value("dag_id").value_or(""));
  filter.unfinished_only = state == "unfinished" || state == "queued" || state == "running";
  // One exact state: the store filters by unfinished at most, so read all and filter here.
  bool exact = !state.empty() && state != "unfinished";
  filter.limit = exact ? 0 : static_cast<int>(*limit);
  auto runs = ctx->store->list_runs(filter);
  if (!runs.ok()) return status_response(runs.status());
  json::array out;
  for (const store::RunRow& r : *runs) {
    if (exact && r.state != state) continue;
    if (*limit > 0 && static_cast<int64_t>(out.size()) >= *limit) break;
    out.push_back(run_view(r));
  }
  return view(json::object{{"runs", std::move(out)}});
}

Response show_run(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return invalid(s);
  store::RunRow run;
  if (auto r = read_run(ctx, req.param("run_id"), &run)) return *r;
  auto tasks = run_tasks(ctx, run);
  if (!tasks.ok()) return status_response(tasks.status());
  return view(run_view(run, &*tasks));
}

Response list_run_tasks(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return invalid(s);
  store::RunRow run;
  if (auto r = read_run(ctx, req.param("run_id"), &run)) return *r;
  auto tasks = run_tasks(ctx, run);
  if (!tasks.ok()) return status_response(tasks.status());
  json::array out;
  for (const scheduler::TaskView& t : *tasks) out.push_back(task_view(t));
  return view(json::object{{"tasks", std::move(out)}});
}

Response show_task(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return invalid(s);
  store::RunRow run;
  std::string_view run_id = req.param("run_id");
  std::string_view task_id = req.param("task_id");
  if (auto r = read_run(ctx, run_id, &run)) return *r;
  auto tasks = run_tasks(ctx, run);
  if (!tasks.ok()) return status_response(tasks.status());
  for (const scheduler::TaskView& t : *tasks) {
    if (t.row.task_id == task_id) return view(task_view(t));
  }
  return error_response(404, "not_found",
                        "task '" + std::string(task_id) + "' not found in run '" +
                            std::string(run_id) + "'; list its tasks with GET /api/v1/runs/" +
                            std::string(run_id) + "/tasks",
                        details({{"run_id", run_id}, {"task_id", task_id}}));
}

Response cancel_run(ApiContext* ctx, const Request& req) {
  auto body = optional_body(req);
  if (!body.ok()) return invalid(body.status());
  if (Status s = FieldReader(*body, "body", {}).check_unknown(); !s.ok()) return invalid(s);
  std::string_view run_id = req.param("run_id");
  store::RunRow run;
  if (auto r = run_for_change(ctx, run_id, "cancel", &run)) return *r;
  Status s =
      ctx->scheduler->cancel(run_id, req.principal.actor(), scheduler::AuditMode::kCallerAudits);
  if (!s.ok()) return status_response(s, details({{"run_id", run_id}}));
  return view(json::object{{"run_id", run_id}, {"state", "cancelled"}});
}

Response clear_task(ApiContext* ctx, const Request& req) {
  auto body = optional_body(req);
  if (!body.ok()) return invalid(body.status());
  FieldReader r(*body, "body", {"downstream"});
  if (Status s = r.check_unknown(); !s.ok()) return invalid(s);
  bool downstream = r.boolean("downstream").value_or(false);
  if (!r.status().ok()) return invalid(r.status(), "downstream");
  std::string_view run_id = req.param("run_id");
  std::string_view task_id = req.param("task_id");
  store::RunRow run;
  if (auto resp = run_for_change(ctx, run_id, "", &run)) return *resp;
  const scheduler::Dag* dag = loaded_dag(ctx, run.dag_id);
  if (!dag) {
    return error_response(409, "failed_precondition",
                          "run '" + run.run_id + "' is of DAG '" + run.dag_id +
                              "', which this daemon does not load; it cannot run again",
                          details({{"run_id", run_id}, {"dag_id", run.dag_id}}));
  }
  int t = dag->index.find(task_id);
  if (t < 0) {
    return error_response(404, "not_found",
                          "task '" + std::string(task_id) + "' not found in DAG '" + dag->dag_id +
                              "'; list the run's tasks with GET /api/v1/runs/" +
                              std::string(run_id) + "/tasks",
                          details({{"run_id", run_id}, {"task_id", task_id}}));
  }
  std::vector<std::string> cleared = tasks_to_clear(*dag, t, downstream);
  Status s = ctx->scheduler->clear(run_id, task_id, downstream, req.principal.actor(),
                                   scheduler::AuditMode::kCallerAudits);
  if (!s.ok()) return status_response(s, details({{"run_id", run_id}, {"task_id", task_id}}));
  json::array ids;
  for (const std::string& id : cleared) ids.push_back(json::string(id));
  Response resp = view(json::object{{"run_id", run_id}, {"cleared", std::move(ids)}});
  if (downstream) resp.audit_detail = "with downstream";  // as the scheduler's own row says
  return resp;
}

Response decide(ApiContext* ctx, const Request& req, bool approve) {
  auto body = optional_body(req);
  if (!body.ok()) return invalid(body.status());
  FieldReader r(*body, "body", {"comment", "bound_to"});
  if (Status s = r.check_unknown(); !s.ok()) return invalid(s);
  std::string comment = r.string("comment").value_or("");
  // What the caller reviewed (a commit, or 7+ characters of it): the scheduler refuses the
  // decision (409) when the approval is bound to something else.
  std::string bound_to = r.string("bound_to").value_or("");
  if (!r.status().ok()) return invalid(r.status());
  std::string_view run_id = req.param("run_id");
  std::string_view task_id = req.param("task_id");
  store::RunRow run;
  // An ended run is the scheduler's to explain: it names the approval's state and why.
  if (auto resp = run_for_change(ctx, run_id, "", &run)) return *resp;
  std::string actor = req.principal.actor();
  Status s = ctx->scheduler->decide(run_id, task_id, approve, actor, comment,
                                    scheduler::AuditMode::kCallerAudits, bound_to);
  if (!s.ok()) return status_response(s, details({{"run_id", run_id}, {"task_id", task_id}}));
  Response resp = view(json::object{{"run_id", run_id},
                                    {"task_id", task_id},
                                    {"state", approve ? "approved" : "rejected"},
                                    {"decided_by", actor},
                                    {"comment", comment}});
  resp.audit_detail = comment;
  return resp;
}

Response list_approvals(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {"state"}); !s.ok()) return invalid(s);
  auto state = one_of(req, "state", "pending", kApprovalStates);
  if (!state.ok()) return invalid(state.status(), "state");
  if (!ctx->store) return no_store();
  auto rows = ctx->store->list_approvals(*state == "all" ? "" : *state);
  if (!rows.ok()) return status_response(rows.status());
  int64_t now = base::SystemClock::instance()->now_ms();
  json::array out;
  for (const store::ApprovalRow& a : *rows) out.push_back(approval_view(a, now));
  return view(json::object{{"approvals", std::move(out)}});
}

// The auto-approval switch and the error budgets that pause it (Scheduler::error_budgets).
// Without a scheduler: the switch as stored, and no budgets (nothing keeps them).
Response show_auto_approval(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return invalid(s);
  if (ctx->scheduler) {
    return view(auto_approval_view(ctx->scheduler->auto_approval_paused(),
                                   ctx->scheduler->error_budgets()));
  }
  if (!ctx->store) return no_store();
  auto paused = auto_approval_paused(ctx->store);
  if (!paused.ok()) return status_response(paused.status());
  return view(auto_approval_view(*paused, {}));
}

Response set_auto_approval(ApiContext* ctx, const Request& req, bool paused) {
  auto body = optional_body(req);
  if (!body.ok()) return invalid(body.status());
  if (Status s = FieldReader(*body, "body", {}).check_unknown(); !s.ok()) return invalid(s);
  if (!ctx->scheduler) return no_scheduler(paused ? "pause auto-approval" : "resume auto-approval");
  Status s = ctx->scheduler->set_auto_approval_paused(paused, req.principal.actor(),
                                                      scheduler::AuditMode::kCallerAudits);
  if (!s.ok()) return status_response(s);
  return view(
      auto_approval_view(ctx->scheduler->auto_approval_paused(), ctx->scheduler->error_budgets()));
}

Response list_audit(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {"limit"}); !s.ok()) return invalid(s);
  auto limit = query_int(req, "limit", 100, 0, kMaxLimit);
  if (!limit.ok()) return invalid(limit.status(), "limit");
  if (!ctx->store) return no_store();
  auto rows = ctx->store->list_audit(static_cast<int>(*limit));
  if (!rows.ok()) return status_response(rows.status());
  json::array out;
  for (const store::AuditRow& a : *rows) out.push_back(audit_view(a));
  return view(json::object{{"audit", std::move(out)}});
}

}  // namespace

void add_scheduler_routes(Router* router, ApiContext* ctx) {
  auto get = [&](std::string pattern, Response (*fn)(ApiContext*, const Request&)) {
    router->add({.method = "GET",
                 .pattern = std::move(pattern),
                 .role = Role::kViewer,
                 .handler = [ctx, fn](const Request& req) { return fn(ctx, req); }});
  };
  // Audited as the scheduler audits the same change from the CLI (scheduler/audit.h): the
  // object from the path's ids, not the path.
  auto post = [&](std::string pattern, std::string action, Handler handler,
                  size_t body_limit = kSmallBodyLimit) {
    std::function<std::string(const Request&)> object;
    if (pattern.find("{task_id}") != std::string::npos) {
      object = [](const Request& r) {
        return scheduler::task_object(r.param("run_id"), r.param("task_id"));
      };
    } else if (pattern.find("{run_id}") != std::string::npos) {
      object = [](const Request& r) { return scheduler::run_object(r.param("run_id")); };
    } else if (pattern.find("{dag_id}") != std::string::npos) {
      object = [](const Request& r) { return scheduler::dag_object(r.param("dag_id")); };
    } else if (pattern.starts_with("/api/v1/auto-approval/")) {
      object = [](const Request&) { return std::string(scheduler::kAutoApprovalObject); };
    }
    router->add({.method = "POST",
                 .pattern = std::move(pattern),
                 .role = Role::kOperator,
                 .handler = std::move(handler),
                 .body_limit = body_limit,
                 .audited = true,
                 .action = std::move(action),
                 .audit_object = std::move(object)});
  };

  get("/api/v1/dags", list_dags);
  get("/api/v1/dags/{dag_id}", show_dag);
  post("/api/v1/dags/{dag_id}/pause", "dag.pause",
       [ctx](const Request& req) { return pause_dag(ctx, req, true); });
  post("/api/v1/dags/{dag_id}/unpause", "dag.unpause",
       [ctx](const Request& req) { return pause_dag(ctx, req, false); });
  post(
      "/api/v1/dags/{dag_id}/runs", "run.trigger",
      [ctx](const Request& req) { return trigger_dag(ctx, req); }, kDefaultBodyLimit);

  get("/api/v1/runs", list_runs);
  get("/api/v1/runs/{run_id}", show_run);
  post("/api/v1/runs/{run_id}/cancel", "run.cancel",
       [ctx](const Request& req) { return cancel_run(ctx, req); });
  get("/api/v1/runs/{run_id}/tasks", list_run_tasks);
  get("/api/v1/runs/{run_id}/tasks/{task_id}", show_task);
  post("/api/v1/runs/{run_id}/tasks/{task_id}/clear", "task.clear",
       [ctx](const Request& req) { return clear_task(ctx, req); });
  post("/api/v1/runs/{run_id}/tasks/{task_id}/approve", "approval.approve",
       [ctx](const Request& req) { return decide(ctx, req, true); });
  post("/api/v1/runs/{run_id}/tasks/{task_id}/reject", "approval.reject",
       [ctx](const Request& req) { return decide(ctx, req, false); });

  get("/api/v1/approvals", list_approvals);
  // One route per direction, like a DAG's pause/unpause, so each change has its own audit
  // action.
  get("/api/v1/auto-approval", show_auto_approval);
  post("/api/v1/auto-approval/pause", "approval.auto_pause",
       [ctx](const Request& req) { return set_auto_approval(ctx, req, true); });
  post("/api/v1/auto-approval/resume", "approval.auto_resume",
       [ctx](const Request& req) { return set_auto_approval(ctx, req, false); });
  get("/api/v1/audit", list_audit);
}

}  // namespace factory::http
