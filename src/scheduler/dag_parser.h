// DAG files: config/dags/*.yaml, one DAG per file, in Airflow's words (docs/dags.md is the
// reference; config/dags/software_factory_pipeline.yaml the article's example).
//
// Loading validates everything a run would otherwise trip over, each error as
// "FILE:LINE:COLUMN: what is wrong; how to fix it" (config::YamlReader's style): unknown
// and repeated keys (did-you-mean), bad durations, task ids, unknown upstreams, cycles (named
// "a -> b -> a"), unknown stages, pools and trigger rules, bad templates (templates.h), bad cron
// expressions, topics, params defaults that break the params schema, error_budget values, and
// task groups (dag_groups.h: `repeat:` blocks expanded into tasks <task>_<round> at load).
//
// Usage:
//   scheduler::DagParseOptions opts;
//   opts.stage_exists = [&](const std::string& s) { return registry.contains(s); };
//   opts.check_cron = [](const std::string& e) { return scheduler::CronSchedule::parse(e).status();
//   }; opts.check_timezone = [](const std::string& tz) {
//     return scheduler::CronSchedule::parse("@daily", tz).status();
//   };
//   Result<std::vector<scheduler::Dag>> dags = scheduler::load_dags("config/dags", opts);
//
// Functions are thread-safe; the callbacks are called on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"
#include "scheduler/dag.h"

namespace factory::scheduler {

struct DagParseOptions {
  // True when a stage of this name is registered. Null: every name is accepted (e.g. before
  // plugins are loaded). Not asked about "approval", which the scheduler handles itself.
  std::function<bool(const std::string& stage)> stage_exists;
  // OK for a valid cron expression or preset ("0 * * * *", "@hourly"); InvalidArgument saying
  // why otherwise (the message is placed after the file position). Null: any non-empty text.
  std::function<Status(const std::string& expression)> check_cron;
  // OK for a time zone name a cron schedule can use ("UTC", "Europe/Berlin"); InvalidArgument
  // otherwise. Null: any non-empty name.
  std::function<Status(const std::string& timezone)> check_timezone;
};

// Parses one DAG file's text; `source` names it in messages and in Dag::source. The returned
// Dag is indexed (build_index). InvalidArgument "SOURCE:LINE:COLUMN: ..." for anything wrong,
// including an empty file.
Result<Dag> parse_dag_yaml(std::string_view text, std::string_view source,
                           const DagParseOptions& options);

// Reads and parses one file. IOError when it cannot be read.
Result<Dag> load_dag_file(const std::string& path, const DagParseOptions& options);

// Every *.yaml / *.yml file directly in `dir` (e.g. "config/dags"), in file-name order; a
// missing directory holds no DAGs. On top of each file's checks: InvalidArgument naming both
// files for a dag_id used twice or a pool declared with different slots, and naming the file
// for a deadline trigger_dag or an error_budget postmortem_dag that no file defines. IOError when
// the directory or a file cannot be read.
Result<std::vector<Dag>> load_dags(const std::string& dir, const DagParseOptions& options);

// Milliseconds for a duration as DAG files write it: an integer (milliseconds), one or more
// <number><unit> parts with units ms, s, m, h, d ("300ms", "5m", "1h30m", "1.5h"), or
// [D:]HH:MM:SS[.fff] ("00:05:00"). InvalidArgument for anything else, a negative value, or more
// than 366 days.
Result<int64_t> parse_duration_ms(std::string_view text);

// The conf a run of `dag` starts with: the params defaults, with each top-level key of
// `conf_json` (a JSON object; "" or "null" for none) replacing the default of that name, checked
// against the params schema. Returns compact JSON. InvalidArgument when conf_json is not a JSON
// object or the result violates the schema (the violations listed). Compiles the schema on
// each call: a caller starting many runs may keep a config::Contract per DAG instead.
Result<std::string> resolve_run_conf(const Dag& dag, std::string_view conf_json);

}  // namespace factory::scheduler
