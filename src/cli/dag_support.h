// Pieces shared by the DAG commands (`dags`, `runs`, `tasks`, `approvals`, `audit`) and the
// local side of their access (dag_access.h): loading DAG files as `factoryd run` does, opening
// the store for reading beside whoever holds the data dir, opening a Host to change scheduler
// state, the error lines that name a DAG or run, and printing the views of
// http/scheduler_views.h.
//
// Not thread-safe: the CLI is single-threaded.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "cli/common.h"
#include "cli/host.h"
#include "scheduler/dag.h"
#include "scheduler/scheduler.h"
#include "store/meta_store.h"

namespace CLI {
class App;
}  // namespace CLI

namespace factory::cli {

// Subcommand trees (registered from app.cpp through common.h's add_*_command).
void add_dags_test_command(CLI::App* dags, CommandRegistry* registry);     // dag_test_cmd.cpp
void add_tasks_test_command(CLI::App* tasks, CommandRegistry* registry);   // dag_test_cmd.cpp
void add_tasks_list_commands(CLI::App* tasks, CommandRegistry* registry);  // runs_cmd.cpp

// Adds `-c,--config DIR` (or just `--config` when -c means something else) bound to *dir.
void add_config_dir_option(CLI::App* cmd, std::string* dir, bool short_flag = true);

// Loads the plugins the pipeline files name (so their stages count as known), then
// <config_dir>/dags/*.yaml with every check `factoryd run` makes. Prints the error (with
// file:line) and returns nullopt on failure. Loads plugins: call at most once per process, and
// never together with Host::open.
std::optional<std::vector<scheduler::Dag>> load_dags_or_report(const std::string& config_dir);
// The DAG files parsed without checking stages, cron or time zones (enough to order and name
// the tasks of a stored run); empty when they do not parse.
std::vector<scheduler::Dag> load_dags_unchecked(const std::string& config_dir);

const scheduler::Dag* find_dag(const std::vector<scheduler::Dag>& dags, std::string_view dag_id);
// "DAG 'x' not found in DIR/dags; list the DAGs with ..." Returns kExitRuntime.
int dag_not_found(std::string_view dag_id, const std::string& config_dir);
// "run 'x' not found in DATA_DIR; list runs with ..." Returns kExitRuntime.
int run_not_found(const CommonOptions& common, std::string_view run_id);
// `dags trigger`'s conf refused (not a JSON object, or not matching the DAG's params schema):
// "-c: <message>; pass a JSON object ...". Returns kExitUsage.
int trigger_conf_error(std::string_view dag_id, const Status& s);
// Any other refusal of `dags trigger`: "cannot trigger DAG 'x': <message>; <hint>" (a run id
// already taken: pick another). Returns kExitRuntime.
int trigger_error(std::string_view dag_id, const Status& s);

// The data dir's store, opened beside whoever holds the data dir. nullptr (OK) when the data
// dir has no store yet: nothing has ever run there. Busy when a writer keeps it locked, IOError,
// Corruption or FailedPrecondition (newer schema) from the store.
Result<std::unique_ptr<store::MetaStore>> open_store_for_reading(const CommonOptions& common);
// The same, printing the error; nullopt on failure (an engaged nullptr: no store yet).
std::optional<std::unique_ptr<store::MetaStore>> open_store_or_report(const CommonOptions& common);

// Whether the DAG is paused per the store (kv "scheduler.paused.<dag>"): "true"/"false", or
// "?" when the store cannot be read. *store may be null (no store yet: never paused).
std::string paused_text(store::MetaStore* store, std::string_view dag_id);

// A Host that can change scheduler state: the scheduler loop runs, the stages do not. Prints
// the error and returns nullptr on failure (Busy: another factoryd holds the data dir).
std::unique_ptr<Host> open_host_for_change(const CommonOptions& common,
                                           const std::string& config_dir);

// Who the CLI acts as in the audit trail (scheduler/audit.h): "cli:<login name>" of the
// process's user id, else "cli:$USER", else "cli:uid<N>".
std::string cli_actor();

// --- Formatting ---
std::string format_time(int64_t ms);                            // ISO-8601 UTC, "-" for 0
std::string format_duration(int64_t ms);                        // "850ms", "2.5s", "3m4s", "1h2m"
std::string format_duration(int64_t start_ms, int64_t end_ms);  // "-" unless both set
// "manual", "cron: 0 * * * * (UTC)", "topic: jira-events".
std::string trigger_text(const scheduler::Trigger& trigger);
// Text cut to `max` characters with "..." at the end.
std::string clip(std::string_view text, size_t max);

// --- Rendering the views (http/scheduler_views.h) ---
// Every DAG command builds its output from the same JSON views whether its DagAccess read the
// store or asked a daemon: -o json prints the view, the table is rendered from it.

// The member as table text: a string as is, an integer in decimal, true/false, `if_null` when
// null or missing.
std::string view_text(const boost::json::object& view, std::string_view key,
                      std::string_view if_null = "-");
// format_duration() of an integer member in ms; "-" when null or missing.
std::string view_duration(const boost::json::object& view, std::string_view key = "duration_ms");
// TASK STATE TRY STARTED ENDED DURATION ERROR, one row per task view.
std::string task_table(const boost::json::array& tasks);
// A view's JSON text and a newline, for -o json.
bool write_json_line(const boost::json::value& view);
// http::run_view() as JSON text, with "tasks" when `tasks` is given.
std::string run_json(const store::RunRow& run,
                     const std::vector<scheduler::TaskView>* tasks = nullptr);

}  // namespace factory::cli
