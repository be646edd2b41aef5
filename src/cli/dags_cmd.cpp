// factoryd dags list | show DAG | check [PATH] | pause DAG | unpause DAG
//              | trigger DAG [-c JSON] [-r RUN_ID] | test DAG [-c JSON] (dag_test_cmd.cpp)
//
// In Airflow's words. list/show/check read the DAG files (and, for the paused flag, the store
// read-only); pause/unpause/trigger change scheduler state through a Host (dag_support.h).
// With a daemon holding the data dir (remote.h), list/show/pause/unpause/trigger ask its API
// instead (its DAGs, whatever --config says) and print the same; check and test stay local.
// On trigger, `-c` is Airflow's conf flag, so the config directory is `--config` there.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include "cli/common.h"
#include "cli/dag_support.h"
#include "cli/host.h"
#include "cli/remote.h"
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

// The paused flag from the store; nullopt when the store cannot be read (shown as "?").
std::optional<bool> paused_of(const Result<std::unique_ptr<store::MetaStore>>& store,
                              std::string_view dag_id) {
  if (!store.ok()) return std::nullopt;
  return http::dag_paused(store->get(), dag_id);
}

class DagsList : public Command {
 public:
  explicit DagsList(const CommonOptions* common) : common_(common) {}
  std::string config_dir = "config";

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::array dags;
    if (client) {
      auto answer = call_daemon(client.get(), "GET", "/api/v1/dags", "", &code);
      if (!answer) return code;
      const json::array* a = answer_array(*answer, "dags", &code);
      if (!a) return code;
      dags = *a;
    } else {
      auto loaded = load_dags_or_report(config_dir);
      if (!loaded) return kExitRuntime;
      // The paused flag lives in the store; a store we cannot read shows "?" (the DAGs still
      // list).
      auto store = open_store_for_reading(*common_);
      for (const Dag& d : *loaded)
        dags.push_back(http::dag_summary_view(d, paused_of(store, d.dag_id)));
    }
    if (common_->json()) {
      write_json_line(dags);
      return kExitOk;
    }
    Table table({"DAG_ID", "TRIGGER", "TASKS", "PAUSED"});
    for (const json::value& v : dags) {
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
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::object dag;
    if (client) {
      auto answer =
          call_daemon(client.get(), "GET", "/api/v1/dags/" + url_escape(dag_id), "", &code);
      if (!answer) return code;
      const json::object* o = answer_object(*answer, &code);
      if (!o) return code;
      dag = *o;
    } else {
      auto dags = load_dags_or_report(config_dir);
      if (!dags) return kExitRuntime;
      const Dag* d = find_dag(*dags, dag_id);
      if (!d) return dag_not_found(dag_id, config_dir);
      dag = http::dag_view(*d, paused_of(open_store_for_reading(*common_), d->dag_id));
    }
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
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    if (client) {
      auto answer = call_daemon(
          client.get(), "POST",
          "/api/v1/dags/" + url_escape(dag_id) + (paused_ ? "/pause" : "/unpause"), "", &code);
      if (!answer) return code;
    } else {
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
    }
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
  std::string dag_id;
  std::string conf;
  std::string run_id;

  int run() override {
    int code = kExitOk;
    auto client = daemon_client(*common_, &code);
    if (code != kExitOk) return code;
    json::object run;
    bool paused = false;
    if (client) {
      code = trigger_remote(client.get(), &run, &paused);
    } else {
      code = trigger_local(&run, &paused);
    }
    if (code != kExitOk) return code;
    if (common_->json()) {
      write_json_line(run);
    } else {
      Table table({"RUN_ID", "DAG_ID", "STATE", "CONF"});
      const json::value* c = run.if_contains("conf");
      table.add_row({view_text(run, "run_id"), view_text(run, "dag_id"), view_text(run, "state"),
                     clip(c ? http::to_json(*c) : "{}", 200)});
      write_stdout(table.render());
    }
    if (paused) {
      flush_stdout();
      std::fprintf(stderr,
                   "note: DAG '%s' is paused; the run waits until 'factoryd dags "
                   "unpause %s'\n",
                   dag_id.c_str(), dag_id.c_str());
    }
    return kExitOk;
  }

 private:
  int conf_usage_error(const Status& s) const {
    return usage_error("-c: " + s.message(),
                       "pass a JSON object that matches the DAG's params schema "
                       "(see 'factoryd dags show " +
                           dag_id + "')");
  }

  int trigger_error(const Status& s) const {
    if (s.code() == Status::Code::kAlreadyExists) {
      return status_error("cannot trigger DAG '" + dag_id + "'", s,
                          "pick another -r RUN_ID, or leave -r out for a generated one");
    }
    return status_error("cannot trigger DAG '" + dag_id + "'", s, "retry");
  }

  int trigger_local(json::object* run, bool* paused) {
    auto host = open_host_for_change(*common_, config_dir);
    if (!host) return kExitRuntime;
    const Dag* dag = find_dag(host->scheduler()->dags(), dag_id);
    if (!dag) return dag_not_found(dag_id, config_dir);
    // Checked here for a usage error (exit 2); the scheduler checks it again.
    auto resolved = scheduler::resolve_run_conf(*dag, conf);
    if (!resolved.ok()) return conf_usage_error(resolved.status());
    auto made = host->scheduler()->trigger(dag_id, conf, run_id, "manual");
    if (!made.ok()) return trigger_error(made.status());
    auto row = host->store()->get_run(*made);
    *paused = paused_text(host->store(), dag_id) == "true";
    (void)host->close(0);
    if (!row.ok()) return status_error("cannot read run '" + *made + "'", row.status(), "retry");
    *run = http::run_view(*row);
    return kExitOk;
  }

  // The daemon checks the conf against the DAG's schema; whether it is a JSON object at all is
  // checked here, with the message the local path gives.
  int trigger_remote(http::Client* client, json::object* run, bool* paused) {
    scheduler::Dag shape;  // no params schema: resolve_run_conf checks the JSON only
    shape.dag_id = dag_id;
    auto resolved = scheduler::resolve_run_conf(shape, conf);
    if (!resolved.ok()) return conf_usage_error(resolved.status());
    json::object body;
    boost::system::error_code ec;
    json::value given = json::parse(conf, ec);
    if (!ec && given.is_object()) body["conf"] = std::move(given);
    if (!run_id.empty()) body["run_id"] = run_id;
    int code = kExitOk;
    // The daemon judges the conf against the DAG's params schema: its refusal is reported as
    // the local path reports the same check (a usage error, exit 2).
    auto refused = [this](std::string_view field, const Status& s) {
      return field == "conf" ? conf_usage_error(s) : trigger_error(s);
    };
    auto answer = call_daemon(client, "POST", "/api/v1/dags/" + url_escape(dag_id) + "/runs",
                              http::to_json(body), &code, refused);
    if (!answer) return code;
    const json::object* o = answer_object(*answer, &code);
    if (!o) return code;
    *run = *o;
    // Not part of the run's view: the API adds it so the note below needs no second call.
    if (const json::value* p = run->if_contains("dag_paused"))
      *paused = p->is_bool() && p->get_bool();
    run->erase("dag_paused");
    return kExitOk;
  }

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
