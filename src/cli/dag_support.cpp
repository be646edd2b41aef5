#include "cli/dag_support.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include <CLI/CLI.hpp>

#include "base/clock.h"
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
  if (!store) return "false";
  auto v = store->get_kv("scheduler.paused." + std::string(dag_id));
  if (!v.ok()) return "?";
  return *v && **v == "1" ? "true" : "false";
}

std::unique_ptr<Host> open_host_for_change(const CommonOptions& common,
                                           const std::string& config_dir) {
  return Host::open(common, {.config_dir = config_dir,
                             .background_retention = false,
                             .start_workers = false,
                             .start_scheduler = true});
}

std::string cli_actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user && *user ? user : "unknown");
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

std::vector<scheduler::TaskView> task_views(const store::RunRow& run,
                                            std::vector<store::TaskRow> rows,
                                            const scheduler::Dag* dag) {
  std::vector<scheduler::TaskView> out;
  if (!dag || dag->dag_id != run.dag_id) {
    for (store::TaskRow& r : rows) out.push_back({std::move(r), ""});
    return out;
  }
  std::map<std::string, store::TaskRow, std::less<>> by_id;
  for (store::TaskRow& r : rows) by_id[r.task_id] = std::move(r);
  for (const scheduler::Task& t : dag->tasks) {
    scheduler::TaskView v;
    v.stage = t.stage;
    auto it = by_id.find(t.id);
    if (it != by_id.end()) {
      v.row = std::move(it->second);
      by_id.erase(it);
    } else {
      v.row.run_id = run.run_id;
      v.row.task_id = t.id;
      v.row.state = "none";
    }
    out.push_back(std::move(v));
  }
  // Rows of tasks the DAG file no longer has.
  for (auto& [id, row] : by_id) out.push_back({std::move(row), ""});
  return out;
}

std::string task_table(const std::vector<scheduler::TaskView>& tasks) {
  Table table({"TASK", "STATE", "TRY", "STARTED", "ENDED", "DURATION", "ERROR"});
  for (const scheduler::TaskView& t : tasks) {
    const store::TaskRow& r = t.row;
    table.add_row({r.task_id, r.state, std::to_string(r.try_number), format_time(r.started_ms),
                   format_time(r.ended_ms), format_duration(r.started_ms, r.ended_ms),
                   r.error.empty() ? "-" : clip(r.error, 200)});
  }
  return table.render();
}

namespace {

JsonObject& time_field(JsonObject& o, std::string_view key, int64_t ms) {
  if (ms <= 0) return o.null(key);
  return o.str(key, base::format_iso8601_utc(ms));
}

}  // namespace

std::string task_json(const scheduler::TaskView& task) {
  const store::TaskRow& r = task.row;
  JsonObject o;
  o.str("task_id", r.task_id)
      .str("stage", task.stage)
      .str("state", r.state)
      .num("try_number", r.try_number);
  time_field(o, "started", r.started_ms);
  time_field(o, "ended", r.ended_ms);
  if (r.started_ms > 0 && r.ended_ms > 0) {
    o.num("duration_ms", r.ended_ms - r.started_ms);
  } else {
    o.null("duration_ms");
  }
  if (r.output_json.empty()) {
    o.null("output");
  } else {
    o.raw("output", r.output_json);  // compact JSON as the scheduler stored it
  }
  if (r.error.empty()) {
    o.null("error");
  } else {
    o.str("error", r.error);
  }
  return o.done();
}

std::string run_json(const store::RunRow& run, const std::vector<scheduler::TaskView>* tasks) {
  JsonObject o;
  o.str("run_id", run.run_id)
      .str("dag_id", run.dag_id)
      .str("state", run.state)
      .str("trigger", run.trigger)
      .raw("conf", run.conf_json.empty() ? "{}" : run.conf_json);
  time_field(o, "logical_date", run.logical_ms);
  time_field(o, "created", run.created_ms);
  time_field(o, "started", run.started_ms);
  time_field(o, "ended", run.ended_ms);
  if (run.started_ms > 0 && run.ended_ms > 0) {
    o.num("duration_ms", run.ended_ms - run.started_ms);
  } else {
    o.null("duration_ms");
  }
  time_field(o, "deadline", run.deadline_ms);
  o.boolean("deadline_missed", run.deadline_missed);
  if (tasks) {
    std::vector<std::string> items;
    for (const scheduler::TaskView& t : *tasks) items.push_back(task_json(t));
    o.raw("tasks", json_array(items));
  }
  return o.done();
}

}  // namespace factory::cli
