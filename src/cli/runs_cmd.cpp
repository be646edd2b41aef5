// factoryd runs list [DAG] | show RUN | cancel RUN
// factoryd tasks list RUN | clear RUN TASK [--downstream] | test (dag_test_cmd.cpp)
// factoryd approvals list [--all] | approve RUN TASK [--comment C] | reject RUN TASK [--comment C]
//
// Listing and showing read the store beside whoever holds the data dir; cancel, clear and the
// decisions go through a Host's scheduler, durable (with an audit row) when they return
// (dag_support.h).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/dag_support.h"

namespace factory::cli {
namespace {

bool run_ended(const std::string& state) {
  return state == "success" || state == "failed" || state == "cancelled";
}

// Reads a run and its task instances (ordered by its DAG file when it still parses).
int load_run(const CommonOptions& common, const std::string& config_dir, const std::string& run_id,
             store::RunRow* run, std::vector<scheduler::TaskView>* tasks) {
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
  *run = *row;
  *tasks = task_views(*row, std::move(*rows), find_dag(dags, row->dag_id));
  return kExitOk;
}

class RunsList : public Command {
 public:
  explicit RunsList(const CommonOptions* common) : common_(common) {}
  std::string dag_id;
  int limit = 100;
  bool unfinished = false;

  int run() override {
    auto store = open_store_or_report(*common_);
    if (!store) return kExitRuntime;
    std::vector<store::RunRow> runs;
    if (*store) {
      auto r =
          (*store)->list_runs({.dag_id = dag_id, .unfinished_only = unfinished, .limit = limit});
      if (!r.ok()) return status_error("cannot list runs", r.status(), "retry");
      runs = std::move(*r);
    }
    if (common_->json()) {
      std::vector<std::string> items;
      for (const store::RunRow& r : runs) items.push_back(run_json(r));
      write_stdout(json_array(items) + "\n");
      return kExitOk;
    }
    Table table({"RUN_ID", "DAG_ID", "STATE", "TRIGGER", "STARTED", "ENDED", "DURATION"});
    for (const store::RunRow& r : runs) {
      table.add_row({r.run_id, r.dag_id, r.state, r.trigger, format_time(r.started_ms),
                     format_time(r.ended_ms), format_duration(r.started_ms, r.ended_ms)});
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
    store::RunRow run;
    std::vector<scheduler::TaskView> tasks;
    if (int code = load_run(*common_, config_dir, run_id, &run, &tasks); code != kExitOk) {
      return code;
    }
    if (common_->json()) {
      if (with_header_) {
        write_stdout(run_json(run, &tasks) + "\n");
      } else {
        std::vector<std::string> items;
        for (const scheduler::TaskView& t : tasks) items.push_back(task_json(t));
        write_stdout(json_array(items) + "\n");
      }
      return kExitOk;
    }
    std::string out;
    if (with_header_) {
      Table head({"run_id:", run.run_id});
      head.add_row({"dag_id:", run.dag_id});
      head.add_row({"state:", run.state});
      head.add_row({"trigger:", run.trigger});
      head.add_row({"conf:", clip(run.conf_json, 200)});
      head.add_row({"started:", format_time(run.started_ms)});
      head.add_row({"ended:", format_time(run.ended_ms)});
      head.add_row({"duration:", format_duration(run.started_ms, run.ended_ms)});
      if (run.deadline_ms > 0) {
        head.add_row(
            {"deadline:", format_time(run.deadline_ms) + (run.deadline_missed ? " (missed)" : "")});
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
  if (verb && run_ended(row->state)) {
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
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    store::RunRow run;
    if (int code = check_run_for_change(*common_, host.get(), run_id, "cancel", &run); code) {
      return code;
    }
    Status s = host->scheduler()->cancel(run_id, cli_actor());
    (void)host->close(0);
    if (!s.ok()) return status_error("cannot cancel run '" + run_id + "'", s, "retry");
    if (common_->json()) {
      write_stdout(JsonObject().str("run_id", run_id).str("state", "cancelled").done() + "\n");
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
    std::vector<std::string> cleared;
    std::vector<char> seen(dag->tasks.size(), 0);
    std::vector<int> todo = {t};
    seen[t] = 1;
    while (!todo.empty()) {
      int at = todo.back();
      todo.pop_back();
      cleared.push_back(dag->tasks[at].id);
      if (!downstream) break;
      for (int d : dag->index.downstream(at)) {
        if (!seen[d]) {
          seen[d] = 1;
          todo.push_back(d);
        }
      }
    }
    std::sort(cleared.begin() + 1, cleared.end());
    Status s = host->scheduler()->clear(run_id, task_id, downstream, cli_actor());
    (void)host->close(0);
    if (!s.ok()) {
      return status_error("cannot clear task '" + task_id + "' of run '" + run_id + "'", s,
                          "retry");
    }
    if (common_->json()) {
      std::vector<std::string> ids;
      for (const std::string& id : cleared) ids.push_back(json_quote(id));
      write_stdout(JsonObject().str("run_id", run_id).raw("cleared", json_array(ids)).done() +
                   "\n");
    } else {
      std::string list;
      for (const std::string& id : cleared) list += (list.empty() ? "" : ", ") + id;
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
    auto store = open_store_or_report(*common_);
    if (!store) return kExitRuntime;
    std::vector<store::ApprovalRow> rows;
    if (*store) {
      auto r = (*store)->list_approvals(all ? "" : "pending");
      if (!r.ok()) return status_error("cannot list approvals", r.status(), "retry");
      rows = std::move(*r);
    }
    if (common_->json()) {
      std::vector<std::string> items;
      for (const store::ApprovalRow& a : rows) {
        JsonObject o;
        o.str("run_id", a.run_id).str("task_id", a.task_id).str("state", a.state);
        o.str("requested", format_time(a.requested_ms));
        if (a.expires_ms > 0) {
          o.str("expires", format_time(a.expires_ms));
        } else {
          o.null("expires");
        }
        if (a.decided_ms > 0) {
          o.str("decided_by", a.decided_by).str("decided", format_time(a.decided_ms));
        } else {
          o.null("decided_by").null("decided");
        }
        o.str("comment", a.comment);
        items.push_back(o.done());
      }
      write_stdout(json_array(items) + "\n");
      return kExitOk;
    }
    std::vector<std::string> header = {"RUN", "TASK", "REQUESTED", "EXPIRES"};
    if (all) header.insert(header.end(), {"STATE", "DECIDED_BY", "COMMENT"});
    Table table(header);
    for (const store::ApprovalRow& a : rows) {
      std::vector<std::string> row = {a.run_id, a.task_id, format_time(a.requested_ms),
                                      a.expires_ms > 0 ? format_time(a.expires_ms) : "never"};
      if (all) {
        row.insert(row.end(), {a.state, a.decided_by.empty() ? "-" : a.decided_by,
                               a.comment.empty() ? "-" : clip(a.comment, 200)});
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

  int run() override {
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    store::RunRow run;
    if (int code = check_run_for_change(*common_, host.get(), run_id, "decide", &run); code) {
      return code;
    }
    std::string actor = cli_actor();
    Status s = host->scheduler()->decide(run_id, task_id, approve_, actor, comment);
    (void)host->close(0);
    const char* verb = approve_ ? "approve" : "reject";
    if (s.code() == Status::Code::kFailedPrecondition) {
      return status_error(std::string("cannot ") + verb + " '" + task_id + "'", s,
                          "list pending approvals with 'factoryd approvals list'");
    }
    if (!s.ok())
      return status_error(std::string("cannot ") + verb + " '" + task_id + "'", s, "retry");
    if (common_->json()) {
      write_stdout(JsonObject()
                       .str("run_id", run_id)
                       .str("task_id", task_id)
                       .str("state", approve_ ? "approved" : "rejected")
                       .str("decided_by", actor)
                       .str("comment", comment)
                       .done() +
                   "\n");
    } else {
      write_stdout(std::string(approve_ ? "approved " : "rejected ") + run_id + " " + task_id +
                   " as " + actor + "\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
  bool approve_;
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
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

}  // namespace factory::cli
