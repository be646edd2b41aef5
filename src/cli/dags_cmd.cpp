// factoryd dags list | show DAG | check [PATH] | pause DAG | unpause DAG
//              | trigger DAG [-c JSON] [-r RUN_ID] | test DAG [-c JSON] (dag_test_cmd.cpp)
//
// In Airflow's words. list/show/check read the DAG files (and, for the paused flag, the store
// read-only); pause/unpause/trigger change scheduler state through a Host (dag_support.h).
// On trigger, `-c` is Airflow's conf flag, so the config directory is `--config` there.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/dag_support.h"
#include "cli/host.h"
#include "runtime/pipeline_config.h"
#include "runtime/stage_registry.h"
#include "scheduler/dag_parser.h"

namespace factory::cli {
namespace {

using scheduler::Dag;
using scheduler::Task;

std::string kind_name(const scheduler::Trigger& t) {
  return std::string(scheduler::trigger_kind_name(t.kind));
}

// The trigger's detail: the cron expression or the topic; "" for manual.
std::string schedule_of(const scheduler::Trigger& t) {
  switch (t.kind) {
    case scheduler::Trigger::Kind::kCron:
      return t.cron;
    case scheduler::Trigger::Kind::kTopic:
      return t.topic;
    case scheduler::Trigger::Kind::kManual:
      break;
  }
  return "";
}

std::string file_of(const Dag& d) { return d.source + ":" + std::to_string(d.line); }

// Appends "paused": true/false, or null when the store could not tell.
void paused_field(JsonObject& o, const std::string& paused) {
  if (paused == "?") {
    o.null("paused");
  } else {
    o.boolean("paused", paused == "true");
  }
}

class DagsList : public Command {
 public:
  explicit DagsList(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";

  int run() override {
    auto dags = load_dags_or_report(config_dir);
    if (!dags) return kExitRuntime;
    // The paused flag lives in the store; a store we cannot read shows "?" (the DAGs still list).
    auto store = open_store_for_reading(*common_);
    store::MetaStore* st = store.ok() ? store->get() : nullptr;
    std::vector<std::string> paused;
    for (const Dag& d : *dags) paused.push_back(store.ok() ? paused_text(st, d.dag_id) : "?");
    if (common_->json()) {
      std::vector<std::string> items;
      for (size_t i = 0; i < dags->size(); ++i) {
        const Dag& d = (*dags)[i];
        JsonObject o;
        o.str("dag_id", d.dag_id)
            .str("description", d.description)
            .str("trigger", kind_name(d.trigger))
            .str("schedule", schedule_of(d.trigger))
            .num("tasks", static_cast<int64_t>(d.tasks.size()));
        paused_field(o, paused[i]);
        o.str("file", d.source);
        items.push_back(o.done());
      }
      write_stdout(json_array(items) + "\n");
      return kExitOk;
    }
    Table table({"DAG_ID", "TRIGGER", "TASKS", "PAUSED"});
    for (size_t i = 0; i < dags->size(); ++i) {
      const Dag& d = (*dags)[i];
      table.add_row({d.dag_id, trigger_text(d.trigger), std::to_string(d.tasks.size()), paused[i]});
    }
    write_stdout(table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

std::string retry_delay_text(const scheduler::RetrySpec& r) {
  return r.retries == 0
             ? "-"
             : format_duration(r.retry_delay_ms) + (r.exponential_backoff ? " (backoff)" : "");
}

class DagsShow : public Command {
 public:
  explicit DagsShow(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";
  std::string dag_id;

  int run() override {
    auto dags = load_dags_or_report(config_dir);
    if (!dags) return kExitRuntime;
    const Dag* dag = find_dag(*dags, dag_id);
    if (!dag) return dag_not_found(dag_id, config_dir);
    auto store = open_store_for_reading(*common_);
    std::string paused = store.ok() ? paused_text(store->get(), dag->dag_id) : "?";
    const scheduler::DagIndex& ix = dag->index;
    if (common_->json()) {
      std::vector<std::string> tasks;
      for (size_t i = 0; i < dag->tasks.size(); ++i) {
        const Task& t = dag->tasks[i];
        std::vector<std::string> up;
        for (const std::string& u : t.upstream) up.push_back(json_quote(u));
        const scheduler::RetrySpec& r = ix.retry(static_cast<int>(i));
        tasks.push_back(JsonObject()
                            .str("task_id", t.id)
                            .str("stage", t.stage)
                            .str("description", t.description)
                            .raw("upstream", json_array(up))
                            .str("trigger_rule", scheduler::trigger_rule_name(t.trigger_rule))
                            .num("retries", r.retries)
                            .num("retry_delay_ms", r.retry_delay_ms)
                            .boolean("retry_exponential_backoff", r.exponential_backoff)
                            .str("pool", t.pool)
                            .num("priority", ix.priority(static_cast<int>(i)))
                            .str("output_topic", t.output_topic)
                            .boolean("approval", t.approval || t.stage == scheduler::kApprovalStage)
                            .raw("params", t.params)
                            .done());
      }
      JsonObject o;
      o.str("dag_id", dag->dag_id)
          .str("description", dag->description)
          .str("file", file_of(*dag))
          .str("trigger", kind_name(dag->trigger))
          .str("schedule", schedule_of(dag->trigger));
      if (dag->trigger.kind == scheduler::Trigger::Kind::kCron) {
        o.str("timezone", dag->trigger.timezone).boolean("catchup", dag->trigger.catchup);
      }
      paused_field(o, paused);
      o.num("max_active_runs", dag->max_active_runs)
          .num("max_active_tasks", dag->max_active_tasks)
          .raw("tasks", json_array(tasks));
      write_stdout(o.done() + "\n");
      return kExitOk;
    }
    Table head({"dag_id:", dag->dag_id});
    if (!dag->description.empty()) head.add_row({"description:", dag->description});
    head.add_row({"file:", file_of(*dag)});
    head.add_row({"trigger:", trigger_text(dag->trigger)});
    head.add_row({"paused:", paused});
    head.add_row({"max_active:", std::to_string(dag->max_active_runs) + " runs, " +
                                     std::to_string(dag->max_active_tasks) + " tasks"});
    Table table({"TASK", "STAGE", "UPSTREAM", "TRIGGER_RULE", "RETRIES", "RETRY_DELAY", "POOL",
                 "OUTPUT_TOPIC"});
    for (size_t i = 0; i < dag->tasks.size(); ++i) {
      const Task& t = dag->tasks[i];
      std::string up;
      for (const std::string& u : t.upstream) up += (up.empty() ? "" : ",") + u;
      const scheduler::RetrySpec& r = ix.retry(static_cast<int>(i));
      table.add_row({t.id, t.stage, up.empty() ? "-" : up,
                     std::string(scheduler::trigger_rule_name(t.trigger_rule)),
                     std::to_string(r.retries), retry_delay_text(r), t.pool,
                     t.output_topic.empty() ? "-" : t.output_topic});
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
                           "pass a DAG file or a directory of them, or --config DIR");
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
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    Status s = host->scheduler()->set_paused(dag_id, paused_, cli_actor());
    Status closed = host->close(0);
    if (s.is_not_found()) return dag_not_found(dag_id, config_dir);
    if (!s.ok()) {
      return status_error(
          std::string("cannot ") + (paused_ ? "pause" : "unpause") + " DAG '" + dag_id + "'", s,
          "retry");
    }
    (void)closed;  // no engine: nothing to drain
    if (common_->json()) {
      write_stdout(JsonObject().str("dag_id", dag_id).boolean("paused", paused_).done() + "\n");
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
  std::string dag_id;
  std::string conf;
  std::string run_id;

  int run() override {
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    const Dag* dag = find_dag(host->scheduler()->dags(), dag_id);
    if (!dag) return dag_not_found(dag_id, config_dir);
    // Checked here for a usage error (exit 2); the scheduler checks it again.
    auto resolved = scheduler::resolve_run_conf(*dag, conf);
    if (!resolved.ok()) {
      return usage_error("-c: " + resolved.status().message(),
                         "pass a JSON object that matches the DAG's params schema "
                         "(see 'factoryd dags show " +
                             dag_id + "')");
    }
    auto made = host->scheduler()->trigger(dag_id, conf, run_id, "manual");
    if (!made.ok()) {
      const Status& s = made.status();
      if (s.code() == Status::Code::kAlreadyExists) {
        return status_error("cannot trigger DAG '" + dag_id + "'", s,
                            "pick another -r RUN_ID, or leave -r out for a generated one");
      }
      return status_error("cannot trigger DAG '" + dag_id + "'", s, "retry");
    }
    auto row = host->store()->get_run(*made);
    std::string paused = paused_text(host->store(), dag_id);
    (void)host->close(0);
    if (!row.ok()) return status_error("cannot read run '" + *made + "'", row.status(), "retry");
    if (common_->json()) {
      write_stdout(run_json(*row) + "\n");
    } else {
      Table table({"RUN_ID", "DAG_ID", "STATE", "CONF"});
      table.add_row({row->run_id, row->dag_id, row->state, clip(row->conf_json, 200)});
      write_stdout(table.render());
    }
    if (paused == "true") {
      flush_stdout();
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
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DagsShow>(common);
    CLI::App* app = dags->add_subcommand("show", "Show a DAG's settings and tasks");
    app->add_option("dag", cmd->dag_id, "DAG id")->required();
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DagsCheck>(common);
    CLI::App* app = dags->add_subcommand(
        "check", "Validate DAG files without running anything (errors name file:line)");
    app->add_option("path", cmd->path, "A DAG file or a directory (default <config>/dags)");
    add_config_dir_option(app, &cmd->config_dir);
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
    add_config_dir_option(app, &cmd->config_dir);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DagsTrigger>(common);
    CLI::App* app =
        dags->add_subcommand("trigger", "Start a run of a DAG (its tasks run in 'factoryd run')");
    app->add_option("dag", cmd->dag_id, "DAG id")->required();
    app->add_option("-c,--conf", cmd->conf, "The run's conf: a JSON object (Airflow's -c)");
    app->add_option("-r,--run-id", cmd->run_id, "The run's id (default: manual__<time>_<n>)");
    add_config_dir_option(app, &cmd->config_dir, /*short_flag=*/false);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  add_dags_test_command(dags, registry);
}

}  // namespace factory::cli
