#include "cli/dag_support.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "base/clock.h"
#include "http/scheduler_views.h"
#include "runtime/pipeline_config.h"
#include "runtime/stage_registry.h"
#include "scheduler/dag_parser.h"

namespace factory::cli {

void add_config_dir_option(CLI::App* cmd, std::string* dir, bool short_flag) {
  cmd->add_option(short_flag ? "-c,--config" : "--config", *dir,
                  "Config directory (dags/*.yaml, pipelines/*.yaml)")
      ->capture_default_str();
}

std::optional<std::vector<scheduler::Dag>> load_dags_or_report(const std::string& config_dir) {
  auto pipelines = runtime::load_pipelines(config_dir);
  if (!pipelines.ok()) {
    status_error("invalid pipeline config", pipelines.status(), "");
    return std::nullopt;
  }
  for (const std::string& dir : pipelines->plugin_dirs) {
    auto loaded = runtime::load_plugin_dir(dir);
    if (!loaded.ok()) {
      status_error("cannot load plugins", loaded.status(), "");
      return std::nullopt;
    }
  }
  auto dags = load_config_dags(config_dir);
  if (!dags.ok()) {
    status_error("invalid DAG", dags.status(), "check it with `factoryd dags check`");
    return std::nullopt;
  }
  return std::move(*dags);
}

std::vector<scheduler::Dag> load_dags_unchecked(const std::string& config_dir) {
  std::string dir = config_dir + "/dags";
  if (!std::filesystem::is_directory(dir)) return {};
  auto dags = scheduler::load_dags(dir, {});
  if (!dags.ok()) return {};
  return std::move(*dags);
}

const scheduler::Dag* find_dag(const std::vector<scheduler::Dag>& dags, std::string_view dag_id) {
  for (const scheduler::Dag& d : dags) {
    if (d.dag_id == dag_id) return &d;
  }
  return nullptr;
}

int dag_not_found(std::string_view dag_id, const std::string& config_dir) {
  return runtime_error(
      "DAG '" + std::string(dag_id) + "' not found in " + config_dir + "/dags",
      "list the DAGs with 'factoryd dags list --config " + config_dir + "', or check --config");
}

int run_not_found(const CommonOptions& common, std::string_view run_id) {
  return runtime_error("run '" + std::string(run_id) + "' not found in " + common.data_dir,
                       "list runs with 'factoryd runs list', or check --data-dir");
}

int trigger_conf_error(std::string_view dag_id, const Status& s) {
  return usage_error("-c: " + s.message(),
                     "pass a JSON object that matches the DAG's params schema "
                     "(see 'factoryd dags show " +
                         std::string(dag_id) + "')");
}

int trigger_error(std::string_view dag_id, const Status& s) {
  std::string context = "cannot trigger DAG '" + std::string(dag_id) + "'";
  if (s.is_already_exists()) {
    return status_error(context, s, "pick another -r RUN_ID, or leave -r out for a generated one");
  }
  return status_error(context, s, "retry");
}

Result<std::unique_ptr<store::MetaStore>> open_store_for_reading(const CommonOptions& common) {
  std::string dir = common.data_dir + "/store";
  if (!std::filesystem::exists(dir + "/factory.db")) {
    return std::unique_ptr<store::MetaStore>();
  }
  return store::open_sqlite_store({.dir = dir, .busy_timeout_ms = 2'000});
}

std::optional<std::unique_ptr<store::MetaStore>> open_store_or_report(const CommonOptions& common) {
  auto store = open_store_for_reading(common);
  if (!store.ok()) {
    std::string context = "cannot read the metadata store in '" + common.data_dir + "/store'";
    if (store.status().is_busy()) {
      status_error(context, store.status(), "a factoryd process keeps it locked; retry");
    } else {
      status_error(context, store.status(), "check --data-dir");
    }
    return std::nullopt;
  }
  return std::move(*store);
}

std::string paused_text(store::MetaStore* store, std::string_view dag_id) {
  std::optional<bool> paused = http::dag_paused(store, dag_id);
  if (!paused) return "?";
  return *paused ? "true" : "false";
}

std::unique_ptr<Host> open_host_for_change(const CommonOptions& common,
                                           const std::string& config_dir) {
  return Host::open(common, {.config_dir = config_dir,
                             .background_retention = false,
                             .start_workers = false,
                             .start_scheduler = true});
}

std::string cli_actor() {
  // The account the process runs as, not $USER (unset under cron, systemd and most CI runners,
  // and anyone's to set): the same person gets the same actor in every shell.
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(::getuid(), &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name &&
      *found->pw_name) {
    return std::string("cli:") + found->pw_name;
  }
  const char* user = std::getenv("USER");
  if (user && *user) return std::string("cli:") + user;
  return "cli:uid" + std::to_string(::getuid());
}

std::string format_time(int64_t ms) { return ms > 0 ? base::format_iso8601_utc(ms) : "-"; }

std::string format_duration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1'000) return std::to_string(ms) + "ms";
  if (ms < 60'000) {
    std::string s = std::to_string(ms / 1'000) + "." + std::to_string(ms % 1'000 / 100) + "s";
    return s;
  }
  int64_t secs = ms / 1'000;
  if (secs < 3'600) return std::to_string(secs / 60) + "m" + std::to_string(secs % 60) + "s";
  return std::to_string(secs / 3'600) + "h" + std::to_string(secs % 3'600 / 60) + "m";
}

std::string format_duration(int64_t start_ms, int64_t end_ms) {
  if (start_ms <= 0 || end_ms <= 0) return "-";
  return format_duration(end_ms - start_ms);
}

std::string trigger_text(const scheduler::Trigger& trigger) {
  switch (trigger.kind) {
    case scheduler::Trigger::Kind::kManual:
      return "manual";
    case scheduler::Trigger::Kind::kCron:
      return "cron: " + trigger.cron + " (" + trigger.timezone + ")";
    case scheduler::Trigger::Kind::kTopic:
      return "topic: " + trigger.topic;
  }
  return "manual";
}

std::string clip(std::string_view text, size_t max) {
  std::string out;
  for (char c : text) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  if (out.size() <= max) return out;
  out.resize(max > 3 ? max - 3 : 0);
  return out + "...";
}

std::string view_text(const boost::json::object& view, std::string_view key,
                      std::string_view if_null) {
  const boost::json::value* v = view.if_contains(key);
  if (!v || v->is_null()) return std::string(if_null);
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  return boost::json::serialize(*v);
}

std::string view_duration(const boost::json::object& view, std::string_view key) {
  const boost::json::value* v = view.if_contains(key);
  if (!v || !v->is_int64()) return "-";
  return format_duration(v->get_int64());
}

std::string task_table(const boost::json::array& tasks) {
  Table table({"TASK", "STATE", "TRY", "STARTED", "ENDED", "DURATION", "ERROR"});
  for (const boost::json::value& v : tasks) {
    if (!v.is_object()) continue;
    const boost::json::object& t = v.get_object();
    std::string error = view_text(t, "error", "");
    table.add_row({view_text(t, "task_id"), view_text(t, "state"), view_text(t, "try_number", "0"),
                   view_text(t, "started"), view_text(t, "ended"), view_duration(t),
                   error.empty() ? "-" : clip(error, 200)});
  }
  return table.render();
}

bool write_json_line(const boost::json::value& view) {
  return write_stdout(http::to_json(view) + "\n");
}

std::string run_json(const store::RunRow& run, const std::vector<scheduler::TaskView>* tasks) {
  return http::to_json(http::run_view(run, tasks));
}

}  // namespace factory::cli
