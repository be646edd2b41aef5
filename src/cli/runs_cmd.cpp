// factoryd runs list [DAG] | show RUN | cancel RUN
// factoryd tasks list RUN | clear RUN TASK [--downstream] | test (dag_test_cmd.cpp)
// factoryd approvals list [--all] | approve|reject RUN TASK [--comment C] [--bound-to COMMIT]
// factoryd approvals auto [status|pause|resume]
//
// Listing and showing read the store beside whoever holds the data dir; cancel, clear and the
// decisions go through a Host's scheduler, durable (with an audit row) when they return
// (dag_support.h). With a daemon holding the data dir (remote.h), all of them ask its API and
// print the same.
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "base/clock.h"
#include "cli/common.h"
#include "cli/dag_support.h"
#include "cli/remote.h"
#include "http/scheduler_views.h"
#include "scheduler/error_budget.h"

namespace factory::cli {
namespace {

namespace json = boost::json;

// One API call whose answer must be an object; nullopt (exit code in *code) otherwise.
std::optional<json::object> call_for_object(http::Client* client, std::string_view method,
                                            const std::string& target, std::string_view body,
                                            int* code) {
  auto answer = call_daemon(client, method, target, body, code);
  if (!answer) return std::nullopt;
  const json::object* o = answer_object(*answer, code);
  if (!o) return std::nullopt;
  return *o;
}

// Reads a run's view with its task instances (ordered by its DAG file when it still parses).
int load_run(const CommonOptions& common, const std::string& config_dir, const std::string& run_id,
             json::object* view) {
  auto store = open_store_or_report(common);
  if (!store) return kExitRuntime;
  if (!*store) return run_not_found(common, run_id);
  auto row = (*store)->get_run(run_id);
  if (!row.ok()) {
    if (row.status().is_not_found()) return run_not_found(common, run_id);
    return status_error("cannot read run '" + run_id + "'", row.status(), "retry");
  }
  auto rows = (*store)->list_tasks(run_id);
  if (!rows.ok()) {
    return status_error("cannot read the tasks of run '" + run_id + "'", rows.status(), "retry");
  }
  std::vector<scheduler::Dag> dags = load_dags_unchecked(config_dir);
  std::vector<scheduler::TaskView> tasks =
      http::order_tasks(*row, std::move(*rows), find_dag(dags, row->dag_id));
  *view = http::run_view(*row, &tasks);
  return kExitOk;
}

class RunsList : public Command {
 public:
  explicit RunsList(const CommonOptions* common) : common_(common) {}
  std::string dag_id;
  int limit = 100;
  bool unfinished = false;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::array runs;
    if (client) {
      std::string target = "/api/v1/runs?limit=" + std::to_string(limit);
      if (!dag_id.empty()) target += "&dag_id=" + url_escape(dag_id);
      if (unfinished) target += "&state=unfinished";
      auto answer = call_daemon(client.get(), "GET", target, "", &code);
      if (!answer) return code;
      const json::array* a = answer_array(*answer, "runs", &code);
      if (!a) return code;
      runs = *a;
    } else {
      auto store = open_store_or_report(*common_);
      if (!store) return kExitRuntime;
      if (*store) {
        auto r =
            (*store)->list_runs({.dag_id = dag_id, .unfinished_only = unfinished, .limit = limit});
        if (!r.ok()) return status_error("cannot list runs", r.status(), "retry");
        for (const store::RunRow& row : *r) runs.push_back(http::run_view(row));
      }
    }
    if (common_->json()) {
      write_json_line(runs);
      return kExitOk;
    }
    Table table({"RUN_ID", "DAG_ID", "STATE", "TRIGGER", "STARTED", "ENDED", "DURATION"});
    for (const json::value& v : runs) {
      if (!v.is_object()) continue;
      const json::object& r = v.get_object();
      table.add_row({view_text(r, "run_id"), view_text(r, "dag_id"), view_text(r, "state"),
                     view_text(r, "trigger"), view_text(r, "started"), view_text(r, "ended"),
                     view_duration(r)});
    }
    write_stdout(table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

// `runs show RUN` (with the run's header) and `tasks list RUN` (the task table alone).
class RunTasks : public Command {
 public:
  RunTasks(const CommonOptions* common, bool with_header)
      : common_(common), with_header_(with_header) {}
  std::string config_dir = "config";
  std::string run_id;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::object run;
    if (client) {
      auto o =
          call_for_object(client.get(), "GET", "/api/v1/runs/" + url_escape(run_id), "", &code);
      if (!o) return code;
      run = std::move(*o);
    } else if (int c = load_run(*common_, config_dir, run_id, &run); c != kExitOk) {
      return c;
    }
    const json::value* t = run.if_contains("tasks");
    json::array tasks = t && t->is_array() ? t->get_array() : json::array();
    if (common_->json()) {
      write_json_line(with_header_ ? json::value(run) : json::value(tasks));
      return kExitOk;
    }
    std::string out;
    if (with_header_) {
      const json::value* conf = run.if_contains("conf");
      Table head({"run_id:", view_text(run, "run_id")});
      head.add_row({"dag_id:", view_text(run, "dag_id")});
      head.add_row({"state:", view_text(run, "state")});
      head.add_row({"trigger:", view_text(run, "trigger")});
      head.add_row({"conf:", clip(conf ? http::to_json(*conf) : "{}", 200)});
      head.add_row({"started:", view_text(run, "started")});
      head.add_row({"ended:", view_text(run, "ended")});
      head.add_row({"duration:", view_duration(run)});
      std::string deadline = view_text(run, "deadline", "");
      if (!deadline.empty()) {
        head.add_row({"deadline:",
                      deadline + (view_text(run, "deadline_missed") == "true" ? " (missed)" : "")});
      }
      out = head.render() + "\n";
    }
    out += task_table(tasks);
    write_stdout(out);
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
  bool with_header_;
};

// Checks before a change: the run exists (NotFound → exit 1 naming it) and has not ended.
// Returns kExitOk to go on.
int check_run_for_change(const CommonOptions& common, Host* host, const std::string& run_id,
                         const char* verb, store::RunRow* run) {
  auto row = host->store()->get_run(run_id);
  if (!row.ok()) {
    if (row.status().is_not_found()) return run_not_found(common, run_id);
    return status_error("cannot read run '" + run_id + "'", row.status(), "retry");
  }
  *run = *row;
  if (verb && http::run_ended(row->state)) {
    return runtime_error(
        "run '" + run_id + "' already ended (" + row->state + "); nothing to " + verb, "");
  }
  return kExitOk;
}

class RunsCancel : public Command {
 public:
  explicit RunsCancel(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string run_id;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    if (client) {
      auto o = call_for_object(client.get(), "POST",
                               "/api/v1/runs/" + url_escape(run_id) + "/cancel", "", &code);
      if (!o) return code;
    } else {
      auto host = open_host_for_change(*common_, config_dir);
      if (!host) return kExitRuntime;
      store::RunRow run;
      if (int c = check_run_for_change(*common_, host.get(), run_id, "cancel", &run); c) {
        return c;
      }
      Status s = host->scheduler()->cancel(run_id, cli_actor());
      (void)host->close(0);
      if (!s.ok()) return status_error("cannot cancel run '" + run_id + "'", s, "retry");
    }
    if (common_->json()) {
      write_json_line(json::object{{"run_id", run_id}, {"state", "cancelled"}});
    } else {
      write_stdout("run '" + run_id + "' cancelled\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class TasksClear : public Command {
 public:
  explicit TasksClear(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string run_id;
  std::string task_id;
  bool downstream = false;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    std::vector<std::string> cleared;
    if (client) {
      auto answer = call_daemon(
          client.get(), "POST",
          "/api/v1/runs/" + url_escape(run_id) + "/tasks/" + url_escape(task_id) + "/clear",
          http::to_json(json::object{{"downstream", downstream}}), &code);
      if (!answer) return code;
      const json::array* ids = answer_array(*answer, "cleared", &code);
      if (!ids) return code;
      for (const json::value& id : *ids) {
        if (id.is_string()) cleared.emplace_back(id.get_string());
      }
    } else if (int c = clear_local(&cleared); c != kExitOk) {
      return c;
    }
    if (common_->json()) {
      json::array ids;
      for (const std::string& id : cleared) ids.emplace_back(id);
      write_json_line(json::object{{"run_id", run_id}, {"cleared", std::move(ids)}});
    } else {
      std::string list;
      for (const std::string& id : cleared) list += (list.empty() ? "" : ", ") + id;
      write_stdout("cleared " + list + " in run '" + run_id +
                   "'; 'factoryd run' runs them again\n");
    }
    return kExitOk;
  }

 private:
  int clear_local(std::vector<std::string>* cleared) {
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    store::RunRow run;
    if (int code = check_run_for_change(*common_, host.get(), run_id, nullptr, &run); code) {
      return code;
    }
    const scheduler::Dag* dag = find_dag(host->scheduler()->dags(), run.dag_id);
    if (!dag) return dag_not_found(run.dag_id, config_dir);
    int t = dag->index.find(task_id);
    if (t < 0) {
      return runtime_error("task '" + task_id + "' not found in DAG '" + dag->dag_id + "'",
                           "list the run's tasks with 'factoryd tasks list " + run_id + "'");
    }
    // What will be cleared, for the report: the task, and with --downstream all below it.
    *cleared = http::tasks_to_clear(*dag, t, downstream);
    Status s = host->scheduler()->clear(run_id, task_id, downstream, cli_actor());
    (void)host->close(0);
    if (!s.ok()) {
      return status_error("cannot clear task '" + task_id + "' of run '" + run_id + "'", s,
                          "retry");
    }
    return kExitOk;
  }

  const CommonOptions* common_;
};

class ApprovalsList : public Command {
 public:
  explicit ApprovalsList(const CommonOptions* common) : common_(common) {}
  bool all = false;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::array approvals;
    if (client) {
      auto answer = call_daemon(client.get(), "GET",
                                std::string("/api/v1/approvals?state=") + (all ? "all" : "pending"),
                                "", &code);
      if (!answer) return code;
      const json::array* a = answer_array(*answer, "approvals", &code);
      if (!a) return code;
      approvals = *a;
    } else {
      auto store = open_store_or_report(*common_);
      if (!store) return kExitRuntime;
      if (*store) {
        auto r = (*store)->list_approvals(all ? "" : "pending");
        if (!r.ok()) return status_error("cannot list approvals", r.status(), "retry");
        int64_t now = base::SystemClock::instance()->now_ms();
        for (const store::ApprovalRow& a : *r) approvals.push_back(http::approval_view(a, now));
      }
    }
    if (common_->json()) {
      write_json_line(approvals);
      return kExitOk;
    }
    std::vector<std::string> header = {"RUN", "TASK", "REQUESTED", "EXPIRES"};
    if (all) header.insert(header.end(), {"STATE", "DECIDED_BY", "COMMENT"});
    Table table(header);
    for (const json::value& v : approvals) {
      if (!v.is_object()) continue;
      const json::object& a = v.get_object();
      std::vector<std::string> row = {view_text(a, "run_id"), view_text(a, "task_id"),
                                      view_text(a, "requested"), view_text(a, "expires", "never")};
      if (all) {
        std::string by = view_text(a, "decided_by", "");
        std::string comment = view_text(a, "comment", "");
        row.insert(row.end(), {view_text(a, "state"), by.empty() ? "-" : by,
                               comment.empty() ? "-" : clip(comment, 200)});
      }
      table.add_row(std::move(row));
    }
    write_stdout(table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class ApprovalsDecide : public Command {
 public:
  ApprovalsDecide(const CommonOptions* common, bool approve) : common_(common), approve_(approve) {}
  std::string config_dir = "config";
  std::string run_id;
  std::string task_id;
  std::string comment;
  std::string bound_to;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::object decided;
    if (client) {
      json::object body;
      if (!comment.empty()) body["comment"] = comment;
      if (!bound_to.empty()) body["bound_to"] = bound_to;
      auto o = call_for_object(client.get(), "POST",
                               "/api/v1/runs/" + url_escape(run_id) + "/tasks/" +
                                   url_escape(task_id) + (approve_ ? "/approve" : "/reject"),
                               http::to_json(body), &code);
      if (!o) return code;
      decided = std::move(*o);
    } else if (int c = decide_local(&decided); c != kExitOk) {
      return c;
    }
    if (common_->json()) {
      write_json_line(decided);
    } else {
      write_stdout(std::string(approve_ ? "approved " : "rejected ") + run_id + " " + task_id +
                   " as " + view_text(decided, "decided_by") + "\n");
    }
    return kExitOk;
  }

 private:
  int decide_local(json::object* decided) {
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    store::RunRow run;
    if (int code = check_run_for_change(*common_, host.get(), run_id, "decide", &run); code) {
      return code;
    }
    std::string actor = cli_actor();
    Status s = host->scheduler()->decide(run_id, task_id, approve_, actor, comment,
                                         scheduler::AuditMode::kAudit, bound_to);
    (void)host->close(0);
    const char* verb = approve_ ? "approve" : "reject";
    if (s.code() == Status::Code::kFailedPrecondition) {
      return status_error(std::string("cannot ") + verb + " '" + task_id + "'", s,
                          "list pending approvals with 'factoryd approvals list'");
    }
    if (!s.ok()) {
      return status_error(std::string("cannot ") + verb + " '" + task_id + "'", s, "retry");
    }
    // The shape the API answers with (api_scheduler.cpp).
    *decided = json::object{{"run_id", run_id},
                            {"task_id", task_id},
                            {"state", approve_ ? "approved" : "rejected"},
                            {"decided_by", actor},
                            {"comment", comment}};
    return kExitOk;
  }

  const CommonOptions* common_;
  bool approve_;
};

// `approvals auto [status|pause|resume]`: the daemon-wide auto-approval switch and the error
// budgets that pause it (scheduler/error_budget.h). status reads the store (the budgets'
// windows as stored, evaluated now); pause and resume go through a Host's scheduler.
class ApprovalsAuto : public Command {
 public:
  explicit ApprovalsAuto(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string action = "status";

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::object state;
    if (client) {
      auto o = call_for_object(
          client.get(), action == "status" ? "GET" : "POST",
          action == "status" ? "/api/v1/auto-approval" : "/api/v1/auto-approval/" + action, "",
          &code);
      if (!o) return code;
      state = std::move(*o);
    } else if (int c = action == "status" ? status_local(&state) : change_local(&state);
               c != kExitOk) {
      return c;
    }
    if (common_->json()) {
      write_json_line(state);
      return kExitOk;
    }
    write_stdout(render(state));
    return kExitOk;
  }

 private:
  int status_local(json::object* state) {
    auto store = open_store_or_report(*common_);
    if (!store) return kExitRuntime;
    auto paused = http::auto_approval_paused(store->get());
    if (!paused.ok())
      return status_error("cannot read the auto-approval switch", paused.status(), "retry");
    std::vector<scheduler::ErrorBudgetState> budgets;
    if (*store) {
      auto b = scheduler::read_error_budgets(store->get(), load_dags_unchecked(config_dir),
                                             base::SystemClock::instance()->now_ms());
      if (!b.ok()) return status_error("cannot read the error budgets", b.status(), "retry");
      budgets = std::move(*b);
    }
    *state = http::auto_approval_view(*paused, budgets);
    return kExitOk;
  }

  int change_local(json::object* state) {
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    scheduler::Scheduler* sched = host->scheduler();
    Status s = sched->set_auto_approval_paused(action == "pause", cli_actor());
    *state = http::auto_approval_view(sched->auto_approval_paused(), sched->error_budgets());
    (void)host->close(0);
    if (!s.ok()) return status_error("cannot " + action + " auto-approval", s, "retry");
    return kExitOk;
  }

  static std::string render(const json::object& state) {
    const json::value* p = state.if_contains("paused");
    bool paused = p && p->is_bool() && p->get_bool();
    std::string out = paused ? "auto-approval: paused (every approval waits for a person; resume "
                               "it with 'factoryd approvals auto resume')\n"
                             : "auto-approval: on (approvals with auto_approve are approved as "
                               "policy:auto)\n";
    const json::value* b = state.if_contains("error_budget");
    if (!b || !b->is_object() || b->get_object().empty()) return out;
    Table table({"DAG", "STAGE", "SAMPLES", "FAILURES", "RATIO", "MAX", "MIN_SAMPLES", "WINDOW",
                 "IN_BREACH", "BREACHES", "LAST_POSTMORTEM"});
    auto percent = [](const json::object& o, std::string_view key) {
      const json::value* v = o.if_contains(key);
      return v && v->is_number() ? scheduler::percent_text(v->to_number<double>()) : "-";
    };
    for (const auto& [dag, v] : b->get_object()) {
      if (!v.is_object()) continue;
      const json::object& o = v.get_object();
      const json::value* w = o.if_contains("window_ms");
      table.add_row({std::string(dag), view_text(o, "stage"), view_text(o, "samples"),
                     view_text(o, "failures"), percent(o, "ratio"), percent(o, "max_failure_ratio"),
                     view_text(o, "min_samples"),
                     w && w->is_int64() ? format_duration(w->get_int64()) : "-",
                     view_text(o, "in_breach"), view_text(o, "breaches"),
                     view_text(o, "last_postmortem_run_id")});
    }
    return out + "\n" + table.render();
  }

  const CommonOptions* common_;
};

}  // namespace

void add_runs_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* runs = root->add_subcommand("runs", "List, show and cancel DAG runs");
  runs->require_subcommand(1);
  {
    auto cmd = std::make_unique<RunsList>(common);
    CLI::App* app = runs->add_subcommand("list", "List runs, newest first");
    app->add_option("dag", cmd->dag_id, "Only the runs of this DAG");
    app->add_option("-n,--limit", cmd->limit, "At most this many runs (0: all)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app->add_flag("--unfinished", cmd->unfinished, "Only queued and running runs");
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<RunTasks>(common, /*with_header=*/true);
    CLI::App* app = runs->add_subcommand("show", "Show a run and each of its task instances");
    app->add_option("run", cmd->run_id, "Run id")->required();
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<RunsCancel>(common);
    CLI::App* app =
        runs->add_subcommand("cancel", "Cancel a run: running tasks fail, the others are skipped");
    app->add_option("run", cmd->run_id, "Run id")->required();
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

void add_tasks_list_commands(CLI::App* tasks, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  {
    auto cmd = std::make_unique<RunTasks>(common, /*with_header=*/false);
    CLI::App* app = tasks->add_subcommand("list", "List a run's task instances");
    app->add_option("run", cmd->run_id, "Run id")->required();
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<TasksClear>(common);
    CLI::App* app = tasks->add_subcommand(
        "clear", "Clear a task instance (and with --downstream everything below it) to run again");
    app->add_option("run", cmd->run_id, "Run id")->required();
    app->add_option("task", cmd->task_id, "Task id")->required();
    app->add_flag("--downstream", cmd->downstream, "Also clear every task downstream of it");
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

void add_tasks_command(CLI::App* root, CommandRegistry* registry) {
  CLI::App* tasks = root->add_subcommand("tasks", "List, clear and test task instances");
  tasks->require_subcommand(1);
  add_tasks_list_commands(tasks, registry);
  add_tasks_test_command(tasks, registry);
}

void add_approvals_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* approvals = root->add_subcommand("approvals", "List pending approvals and decide them");
  approvals->require_subcommand(1);
  {
    auto cmd = std::make_unique<ApprovalsList>(common);
    CLI::App* app = approvals->add_subcommand("list", "List pending approvals, oldest first");
    app->add_flag("--all", cmd->all, "Also decided and expired ones, with who and the comment");
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  for (bool approve : {true, false}) {
    auto cmd = std::make_unique<ApprovalsDecide>(common, approve);
    CLI::App* app = approvals->add_subcommand(
        approve ? "approve" : "reject",
        approve ? "Approve a task awaiting approval: it succeeds and the run goes on"
                : "Reject a task awaiting approval: it fails and its downstream tasks follow "
                  "their trigger rules");
    app->add_option("run", cmd->run_id, "Run id")->required();
    app->add_option("task", cmd->task_id, "Task id")->required();
    app->add_option("--comment", cmd->comment, "Recorded with the decision in the audit trail");
    app->add_option("--bound-to", cmd->bound_to,
                    "What you reviewed, e.g. the commit (7+ characters of it): the decision is "
                    "refused when the approval is for something else");
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<ApprovalsAuto>(common);
    CLI::App* app = approvals->add_subcommand(
        "auto",
        "Show, pause or resume auto-approval (an error budget breach pauses it until an "
        "operator resumes it)");
    app->add_option("action", cmd->action,
                    "status (the default): the switch and each DAG's error budget; pause; resume")
        ->check(CLI::IsMember({"status", "pause", "resume"}))
        ->capture_default_str();
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

}  // namespace factory::cli
