// factoryd runs list [DAG] | show RUN | cancel RUN
// factoryd tasks list RUN | clear RUN TASK [--downstream] | test (dag_test_cmd.cpp)
// factoryd approvals list [--all] | approve|reject RUN TASK [--comment C] [--bound-to COMMIT]
// factoryd approvals auto [status|pause|resume]
//
// Each command makes its DagAccess call (dag_access.h: the daemon's API, or the store and a
// Host's scheduler) and renders the view it gets, so it prints the same either way.
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/common.h"
#include "cli/dag_access.h"
#include "cli/dag_support.h"
#include "http/scheduler_views.h"
#include "scheduler/error_budget.h"

namespace factory::cli {
namespace {

namespace json = boost::json;

class RunsList : public Command {
 public:
  explicit RunsList(const CommonOptions* common) : common_(common) {}
  RunFilter filter;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, "config", &code);
    if (!access) return code;
    auto runs = access->list_runs(filter);
    if (!runs.ok()) return runs.exit_code();
    if (common_->json()) {
      write_json_line(*runs);
      return kExitOk;
    }
    Table table({"RUN_ID", "DAG_ID", "STATE", "TRIGGER", "STARTED", "ENDED", "DURATION"});
    for (const json::value& v : *runs) {
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

// The run's header lines for `runs show`.
std::string run_header(const json::object& run) {
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
    head.add_row(
        {"deadline:", deadline + (view_text(run, "deadline_missed") == "true" ? " (missed)" : "")});
  }
  return head.render() + "\n";
}

// `runs show RUN` (with the run's header) and `tasks list RUN` (the task table alone).
class RunTasks : public Command {
 public:
  RunTasks(const CommonOptions* common, bool with_header)
      : common_(common), with_header_(with_header) {}
  std::string config_dir = "config";
  std::string run_id;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto run = access->show_run(run_id);
    if (!run.ok()) return run.exit_code();
    const json::value* t = run->if_contains("tasks");
    json::array tasks = t && t->is_array() ? t->get_array() : json::array();
    if (common_->json()) {
      write_json_line(with_header_ ? json::value(*run) : json::value(tasks));
      return kExitOk;
    }
    write_stdout((with_header_ ? run_header(*run) : "") + task_table(tasks));
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
  bool with_header_;
};

class RunsCancel : public Command {
 public:
  explicit RunsCancel(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string run_id;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    if (int c = access->cancel_run(run_id); c != kExitOk) return c;
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
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto cleared = access->clear_task(run_id, task_id, downstream);
    if (!cleared.ok()) return cleared.exit_code();
    if (common_->json()) {
      json::array ids;
      for (const std::string& id : *cleared) ids.emplace_back(id);
      write_json_line(json::object{{"run_id", run_id}, {"cleared", std::move(ids)}});
    } else {
      std::string list;
      for (const std::string& id : *cleared) list += (list.empty() ? "" : ", ") + id;
      write_stdout("cleared " + list + " in run '" + run_id +
                   "'; 'factoryd run' runs them again\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class ApprovalsList : public Command {
 public:
  explicit ApprovalsList(const CommonOptions* common) : common_(common) {}
  bool all = false;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, "config", &code);
    if (!access) return code;
    auto approvals = access->list_approvals(all);
    if (!approvals.ok()) return approvals.exit_code();
    if (common_->json()) {
      write_json_line(*approvals);
      return kExitOk;
    }
    // BOUND_TO: what a decision approves (the commit), so a person sees it before deciding.
    std::vector<std::string> header = {"RUN", "TASK", "BOUND_TO", "REQUESTED", "EXPIRES"};
    if (all) header.insert(header.end(), {"STATE", "DECIDED_BY", "COMMENT"});
    Table table(header);
    for (const json::value& v : *approvals) {
      if (!v.is_object()) continue;
      const json::object& a = v.get_object();
      std::vector<std::string> row = {view_text(a, "run_id"), view_text(a, "task_id"),
                                      view_text(a, "bound_to", "-"), view_text(a, "requested"),
                                      view_text(a, "expires", "never")};
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
  ApprovalsDecide(const CommonOptions* common, bool approve) : common_(common) {
    decision.approve = approve;
  }
  std::string config_dir = "config";
  Decision decision;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto decided = access->decide(decision);
    if (!decided.ok()) return decided.exit_code();
    if (common_->json()) {
      write_json_line(*decided);
    } else {
      write_stdout(std::string(decision.approve ? "approved " : "rejected ") + decision.run_id +
                   " " + decision.task_id + " as " + view_text(*decided, "decided_by") + "\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

// `approvals auto [status|pause|resume]`: the daemon-wide auto-approval switch and the error
// budgets that pause it (scheduler/error_budget.h).
class ApprovalsAuto : public Command {
 public:
  explicit ApprovalsAuto(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string action = "status";

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto state = access->auto_approval(action);
    if (!state.ok()) return state.exit_code();
    if (common_->json()) {
      write_json_line(*state);
      return kExitOk;
    }
    write_stdout(render(*state));
    return kExitOk;
  }

 private:
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
    app->add_option("dag", cmd->filter.dag_id, "Only the runs of this DAG");
    app->add_option("-n,--limit", cmd->filter.limit, "At most this many runs (0: all)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app->add_flag("--unfinished", cmd->filter.unfinished, "Only queued and running runs");
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
    app->add_option("run", cmd->decision.run_id, "Run id")->required();
    app->add_option("task", cmd->decision.task_id, "Task id")->required();
    app->add_option("--comment", cmd->decision.comment,
                    "Recorded with the decision in the audit trail");
    app->add_option("--bound-to", cmd->decision.bound_to,
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
