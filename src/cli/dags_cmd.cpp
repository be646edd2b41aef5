// factoryd dags list | show DAG | check [PATH] | pause DAG | unpause DAG
//              | trigger DAG [-c JSON] [-r RUN_ID] | test DAG [-c JSON] (dag_test_cmd.cpp)
//
// In Airflow's words. list/show/pause/unpause/trigger make their DagAccess call (dag_access.h:
// the DAG files and store here, or a daemon's API and DAGs, whatever --config-dir says) and
// print the same either way; check and test always read the DAG files here.
// `-c` is Airflow's conf flag (trigger, test); the config directory is `--config-dir`.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/common.h"
#include "cli/dag_access.h"
#include "cli/dag_support.h"
#include "http/scheduler_views.h"
#include "runtime/pipeline_config.h"
#include "runtime/stage_registry.h"
#include "scheduler/dag_parser.h"

namespace factory::cli {
namespace {

namespace json = boost::json;
using scheduler::Dag;

std::string kind_name(const scheduler::Trigger& t) {
  return std::string(scheduler::trigger_kind_name(t.kind));
}

// trigger_text() of a DAG view's trigger fields.
std::string view_trigger_text(const json::object& dag) {
  scheduler::Trigger t;
  std::string kind = view_text(dag, "trigger", "manual");
  std::string schedule = view_text(dag, "schedule", "");
  if (kind == "cron") {
    t.kind = scheduler::Trigger::Kind::kCron;
    t.cron = schedule;
    t.timezone = view_text(dag, "timezone", "UTC");
  } else if (kind == "topic") {
    t.kind = scheduler::Trigger::Kind::kTopic;
    t.topic = schedule;
  }
  return trigger_text(t);
}

class DagsList : public Command {
 public:
  explicit DagsList(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto dags = access->list_dags();
    if (!dags.ok()) return dags.exit_code();
    if (common_->json()) {
      write_json_line(*dags);
      return kExitOk;
    }
    Table table({"DAG_ID", "TRIGGER", "TASKS", "PAUSED"});
    for (const json::value& v : *dags) {
      if (!v.is_object()) continue;
      const json::object& d = v.get_object();
      table.add_row({view_text(d, "dag_id"), view_trigger_text(d), view_text(d, "tasks"),
                     view_text(d, "paused", "?")});
    }
    write_stdout(table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

std::string retry_delay_text(const json::object& task) {
  const json::value* retries = task.if_contains("retries");
  if (!retries || !retries->is_int64() || retries->get_int64() == 0) return "-";
  return view_duration(task, "retry_delay_ms") +
         (view_text(task, "retry_exponential_backoff") == "true" ? " (backoff)" : "");
}

class DagsShow : public Command {
 public:
  explicit DagsShow(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string dag_id;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto shown = access->show_dag(dag_id);
    if (!shown.ok()) return shown.exit_code();
    const json::object& dag = *shown;
    if (common_->json()) {
      write_json_line(dag);
      return kExitOk;
    }
    Table head({"dag_id:", view_text(dag, "dag_id")});
    std::string description = view_text(dag, "description", "");
    if (!description.empty()) head.add_row({"description:", description});
    head.add_row({"file:", view_text(dag, "file")});
    head.add_row({"trigger:", view_trigger_text(dag)});
    head.add_row({"paused:", view_text(dag, "paused", "?")});
    head.add_row({"max_active:", view_text(dag, "max_active_runs") + " runs, " +
                                     view_text(dag, "max_active_tasks") + " tasks"});
    Table table({"TASK", "STAGE", "UPSTREAM", "TRIGGER_RULE", "RETRIES", "RETRY_DELAY", "POOL",
                 "OUTPUT_TOPIC"});
    const json::value* tasks = dag.if_contains("tasks");
    for (const json::value& v : tasks && tasks->is_array() ? tasks->get_array() : json::array()) {
      if (!v.is_object()) continue;
      const json::object& t = v.get_object();
      std::string up;
      if (const json::value* u = t.if_contains("upstream"); u && u->is_array()) {
        for (const json::value& id : u->get_array()) {
          if (id.is_string()) up += (up.empty() ? "" : ",") + std::string(id.get_string());
        }
      }
      std::string output_topic = view_text(t, "output_topic", "");
      table.add_row({view_text(t, "task_id"), view_text(t, "stage"), up.empty() ? "-" : up,
                     view_text(t, "trigger_rule"), view_text(t, "retries"), retry_delay_text(t),
                     view_text(t, "pool"), output_topic.empty() ? "-" : output_topic});
    }
    write_stdout(head.render() + "\n" + table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class DagsCheck : public Command {
 public:
  explicit DagsCheck(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string path;  // a DAG file or a directory of them; default <config>/dags

  int run() override {
    std::string target = path.empty() ? config_dir + "/dags" : path;
    std::error_code ec;
    if (!std::filesystem::exists(target, ec)) {
      return runtime_error("'" + target + "' does not exist",
                           "pass a DAG file or a directory of them, or --config-dir DIR");
    }
    // Plugins first, so the stages they register count as known (as `factoryd run` does).
    auto pipelines = runtime::load_pipelines(config_dir);
    if (!pipelines.ok()) {
      return status_error("invalid pipeline config (needed for its plugins)", pipelines.status(),
                          "");
    }
    for (const std::string& dir : pipelines->plugin_dirs) {
      auto loaded = runtime::load_plugin_dir(dir);
      if (!loaded.ok()) return status_error("cannot load plugins", loaded.status(), "");
    }
    scheduler::DagParseOptions options = config_dag_parse_options();
    std::vector<Dag> dags;
    if (std::filesystem::is_directory(target, ec)) {
      auto r = scheduler::load_dags(target, options);
      if (!r.ok()) return status_error("invalid DAG", r.status(), "fix the file and check again");
      dags = std::move(*r);
    } else {
      auto r = scheduler::load_dag_file(target, options);
      if (!r.ok()) return status_error("invalid DAG", r.status(), "fix the file and check again");
      dags.push_back(std::move(*r));
    }
    if (common_->json()) {
      std::vector<std::string> items;
      for (const Dag& d : dags) {
        items.push_back(JsonObject()
                            .str("dag_id", d.dag_id)
                            .str("file", d.source)
                            .num("tasks", static_cast<int64_t>(d.tasks.size()))
                            .str("trigger", kind_name(d.trigger))
                            .done());
      }
      write_stdout(JsonObject()
                       .boolean("ok", true)
                       .str("path", target)
                       .raw("dags", json_array(items))
                       .done() +
                   "\n");
      return kExitOk;
    }
    Table table({"DAG_ID", "FILE", "TASKS", "TRIGGER"});
    for (const Dag& d : dags) {
      table.add_row({d.dag_id, d.source, std::to_string(d.tasks.size()), trigger_text(d.trigger)});
    }
    std::string out = dags.empty() ? "" : table.render();
    out += "OK: " + std::to_string(dags.size()) + (dags.size() == 1 ? " DAG" : " DAGs") + " in " +
           target + "\n";
    write_stdout(out);
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class DagsPause : public Command {
 public:
  DagsPause(const CommonOptions* common, bool paused) : common_(common), paused_(paused) {}
  std::string config_dir = "config";
  std::string dag_id;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    if (int c = access->set_paused(dag_id, paused_); c != kExitOk) return c;
    if (common_->json()) {
      write_json_line(json::object{{"dag_id", dag_id}, {"paused", paused_}});
    } else {
      write_stdout("DAG '" + dag_id + "' " + (paused_ ? "paused" : "unpaused") + "\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
  bool paused_;
};

class DagsTrigger : public Command {
 public:
  explicit DagsTrigger(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  TriggerRequest request;

  int run() override {
    int code = kExitOk;
    auto access = open_dag_access(*common_, config_dir, &code);
    if (!access) return code;
    auto made = access->trigger(request);
    if (!made.ok()) return made.exit_code();
    const json::object& run = made->run;
    if (common_->json()) {
      write_json_line(run);
    } else {
      Table table({"RUN_ID", "DAG_ID", "STATE", "CONF"});
      const json::value* c = run.if_contains("conf");
      table.add_row({view_text(run, "run_id"), view_text(run, "dag_id"), view_text(run, "state"),
                     clip(c ? http::to_json(*c) : "{}", 200)});
      write_stdout(table.render());
    }
    if (made->dag_paused) {
      flush_stdout();
      const std::string& dag_id = request.dag_id;
      std::fprintf(stderr,
                   "note: DAG '%s' is paused; the run waits until 'factoryd dags "
                   "unpause %s'\n",
                   dag_id.c_str(), dag_id.c_str());
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

void add_dags_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* dags = root->add_subcommand(
      "dags", "List, check, show, pause, trigger and test DAGs (config/dags/*.yaml)");
  dags->require_subcommand(1);
  {
    auto cmd = std::make_unique<DagsList>(common);
    CLI::App* app = dags->add_subcommand("list", "List the DAGs with their trigger and state");
    add_config_dir_option(app, registry, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DagsShow>(common);
    CLI::App* app = dags->add_subcommand("show", "Show a DAG's settings and tasks");
    app->add_option("dag", cmd->dag_id, "DAG id")->required();
    add_config_dir_option(app, registry, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DagsCheck>(common);
    CLI::App* app = dags->add_subcommand(
        "check", "Validate DAG files without running anything (errors name file:line)");
    app->add_option("path", cmd->path, "A DAG file or a directory (default <config>/dags)");
    add_config_dir_option(app, registry, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  for (bool paused : {true, false}) {
    auto cmd = std::make_unique<DagsPause>(common, paused);
    CLI::App* app = dags->add_subcommand(
        paused ? "pause" : "unpause",
        paused ? "Pause a DAG: no new runs start and no more of its tasks are dispatched"
               : "Unpause a DAG: its queued runs and tasks go on");
    app->add_option("dag", cmd->dag_id, "DAG id")->required();
    add_config_dir_option(app, registry, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DagsTrigger>(common);
    CLI::App* app =
        dags->add_subcommand("trigger", "Start a run of a DAG (its tasks run in 'factoryd run')");
    app->add_option("dag", cmd->request.dag_id, "DAG id")->required();
    app->add_option("-c,--conf", cmd->request.conf, "The run's conf: a JSON object (Airflow's -c)");
    app->add_option("-r,--run-id", cmd->request.run_id,
                    "The run's id (default: manual__<time>_<n>)");
    add_config_dir_option(app, registry, &cmd->config_dir, /*dash_c=*/false);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  add_dags_test_command(dags, registry);
}

}  // namespace factory::cli
