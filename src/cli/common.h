// Shared pieces of the factoryd commands: the options every command takes, how
// a command is registered and run, error reporting with exit codes, and the
// table/JSON output helpers.
//
// The flag table (one meaning per flag, and the old spellings that still work with a
// deprecation warning) is docs/cli.md. Every command takes --data-dir (default
// $FACTORY_DATA_DIR, else ./data) and every command that prints results an output format,
// table or json: `-o/--output` everywhere except `consume`, where `-o` is kcat's offset and
// the format is `--output` only. Both are also accepted before the command. The log lives in
// <data-dir>/log.
//
// Exit codes: 0 ok, 1 runtime error (the log said no), 2 usage error (the
// command line is wrong, found by CLI11 or by checking an argument before the
// log is opened). Errors are one line on stderr: "factoryd: error: <what>; <how
// to fix>".
//
// Thread-safety: the CLI is single-threaded; nothing here is meant for
// concurrent use.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/log.h"
#include "factory/status.h"
#include "obs/logger.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace factory::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// Options shared by all commands. One instance, owned by run(); every leaf
// command binds its
// --data-dir/--output to it (CLI11 parses exactly one leaf).
struct CommonOptions {
  std::string data_dir;           // initialised from $FACTORY_DATA_DIR, else "./data"
  std::string output = "table";   // "table" or "json"
  std::string server;             // --server / $FACTORY_SERVER: a daemon's URL (remote.h)
  std::string token;              // --token / $FACTORY_TOKEN: bearer token for the daemon
  bool config_dir_given = false;  // --config-dir (or an old spelling) was on the command line
  bool json() const { return output == "json"; }
  std::string log_dir() const { return data_dir + "/log"; }
};

// What a command does with a data dir, and so which of --data-dir, --server and --token it
// takes: reads or changes one, itself or through the daemon holding it (kLocalOrDaemon: all
// three); holds one itself (kHolds, run: --data-dir only); or uses none (kNone, dags test and
// tasks test: they run on a temporary one).
enum class DataDirUse { kLocalOrDaemon, kHolds, kNone };

// Adds the data-dir options `use` calls for and the output format option to `cmd`.
// `output_names` is "-o,--output" for all commands but consume ("--output"), and "" for a
// command that prints no results (run). A command must not take an option it would ignore: the
// help footer and the global options before the command (app.cpp) go by what each command takes.
void add_common_options(CLI::App* cmd, CommonOptions* common,
                        const std::string& output_names = "-o,--output",
                        DataDirUse use = DataDirUse::kLocalOrDaemon);

// One leaf command (e.g. `topics create`): its options are members bound into
// CLI11; run() executes it once parsing succeeded and returns the exit code.
class Command {
 public:
  virtual ~Command() = default;
  virtual int run() = 0;
};

// Which CLI11 subcommand runs which Command. Owns the Commands.
class CommandRegistry {
 public:
  explicit CommandRegistry(CommonOptions* common) : common_(common) {}
  CommandRegistry(const CommandRegistry&) = delete;
  CommandRegistry& operator=(const CommandRegistry&) = delete;

  CommonOptions* common() const { return common_; }
  // Registers `command` to run when `app` is the subcommand CLI11 parsed.
  void add(CLI::App* app, std::unique_ptr<Command> command);
  // The Command whose subcommand was parsed, or nullptr when none was.
  Command* parsed() const;
  // Registers an argument check for `app`, run after parsing and before the command: returns
  // kExitOk, or the exit code after printing the error (e.g. a config dir that does not
  // exist). Checks may also resolve options (a factory.yaml given for a config dir).
  void add_check(CLI::App* app, std::function<int()> check);
  // Runs the checks of the parsed subcommand in the order added; the first failure's code.
  int run_checks() const;

 private:
  CommonOptions* common_;  // borrowed; outlives the registry
  std::vector<std::pair<CLI::App*, std::unique_ptr<Command>>> commands_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> checks_;
};

// "dags list" for the `dags list` subcommand (the path below the root, without "factoryd").
std::string command_name(const CLI::App* app);

// Adds a hidden old spelling of an option (e.g. consume's `-c` for `-n`): each use prints
// warn_deprecated(`old_usage`, command, `new_usage`) and stores the value in *target.
// `old_usage`/`new_usage` are as the warning shows them: "-c N", "-n N". Returns the option
// for the caller's checks.
CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& names, std::string* target,
                                   std::string old_usage, std::string new_usage);
CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& names,
                                   std::optional<int64_t>* target, std::string old_usage,
                                   std::string new_usage);
CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& names,
                                   std::vector<std::string>* target, std::string old_usage,
                                   std::string new_usage);

// The config directory (topics.yaml, pipelines/, dags/) of run, serve, demo and the DAG
// commands: `--config-dir DIR` (default "config"). The old spellings keep working with a
// deprecation warning: `--config DIR`, and `-c DIR` where `dash_c` (commands whose -c is not
// the run's conf). A *file* given to them is the daemon's factory.yaml: with `factory_yaml`
// non-null (run) it is stored there (`--config FILE` is then the documented spelling and
// `-c FILE` the deprecated one); otherwise the command's check refuses it (exit 2) naming
// --config-dir. Whether the directory exists is checked where it is read (local DAG access,
// run), not here: through a daemon the config dir is the daemon's.
void add_config_dir_option(CLI::App* cmd, CommandRegistry* registry, std::string* dir,
                           bool dash_c = true, std::string* factory_yaml = nullptr);
// Prints the error for a config dir that is not a directory and returns kExitRuntime (as for
// any file the command needs and cannot find):
// "config dir 'config' not found in /cwd (it should hold ...); pass --config-dir DIR ...". `reads`
// says what the command wanted from it ("dags/*.yaml").
int config_dir_missing(const std::string& dir, std::string_view reads);
// The *.yaml/*.yml files in DIR (none when DIR is missing), for "nothing found" warnings.
size_t count_yaml_files(const std::string& dir);

// Each *_cmd.cpp adds its subcommand tree under `root`.
void add_topics_command(CLI::App* root, CommandRegistry* registry);
void add_produce_command(CLI::App* root, CommandRegistry* registry);
void add_consume_command(CLI::App* root, CommandRegistry* registry);
void add_groups_command(CLI::App* root, CommandRegistry* registry);
void add_run_command(CLI::App* root, CommandRegistry* registry);
void add_dlq_command(CLI::App* root, CommandRegistry* registry);
void add_dags_command(CLI::App* root, CommandRegistry* registry);       // dags_cmd.cpp
void add_runs_command(CLI::App* root, CommandRegistry* registry);       // runs_cmd.cpp
void add_tasks_command(CLI::App* root, CommandRegistry* registry);      // runs_cmd.cpp
void add_approvals_command(CLI::App* root, CommandRegistry* registry);  // runs_cmd.cpp
// serve_cmd.cpp; returns the command so a bare `factoryd` can run it.
Command* add_serve_command(CLI::App* root, CommandRegistry* registry);
void add_demo_command(CLI::App* root, CommandRegistry* registry);    // demo_cmd.cpp
void add_audit_command(CLI::App* root, CommandRegistry* registry);   // audit_cmd.cpp
void add_config_command(CLI::App* root, CommandRegistry* registry);  // config, token hash

// --- Errors and warnings ---
// "factoryd: warning: <what>" on stderr (after flushing stdout, as errors do).
void warn(std::string_view what);
// "factoryd: warning: '-c DIR' is deprecated for 'run'; use '--config-dir DIR'".
void warn_deprecated(std::string_view old_usage, std::string_view command,
                     std::string_view new_usage);
// The log threshold from FACTORY_LOG_LEVEL (debug|info|warn|error, parsed by
// config_keys::parse_level as serve's logging.level is), or `fallback` when it is unset or
// empty. A value that is not a level prints the usage error and returns nullopt.
std::optional<obs::Level> log_level_from_env_or_report(obs::Level fallback);
// Print "factoryd: error: <what>; <how>" (just <what> when `how` is empty) and
// return the code.
int runtime_error(std::string_view what, std::string_view how);
int usage_error(std::string_view what, std::string_view how);
// A Status from the log: `context: message; how`. The hint is dropped when the
// message already carries one (contains "; "). Returns kExitRuntime.
int status_error(std::string_view context, const Status& s, std::string_view how);
// The standard report for a topic the log does not have: names the topic and
// the data dir.
int topic_not_found(const CommonOptions& common, std::string_view topic);

// Opens <data-dir>/log (creating the data dir when missing). Retention is off
// unless `background_retention` (long-running commands such as `run`): a
// one-shot CLI command never deletes records on its own. On failure prints the
// error and returns nullptr.
std::unique_ptr<Log> open_log_or_report(const CommonOptions& common,
                                        bool background_retention = false);

// --- Output ---
// Writes to stdout. Returns false (once stdout is broken, e.g. EPIPE) so
// callers can stop.
bool write_stdout(std::string_view s);
bool flush_stdout();

// Left-aligned columns separated by two spaces; the last column is not padded.
// Control characters (below 0x20, and DEL) as \xNN: what a table prints to a terminal. Cells
// hold outside data (paths in audit rows, ticket titles); a raw ESC or newline there would
// forge lines or drive the terminal.
std::string escape_controls(std::string_view s);

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  // Cells are printed through escape_controls().
  void add_row(std::vector<std::string> row) {
    for (std::string& cell : row) cell = escape_controls(cell);
    rows_.push_back(std::move(row));
  }
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// Builds one JSON object; string escaping is base::append_json_string (invalid
// UTF-8 → U+FFFD).
class JsonObject {
 public:
  JsonObject& str(std::string_view key, std::string_view value);
  JsonObject& opt_str(std::string_view key,
                      const std::optional<std::string>& value);  // null
  JsonObject& num(std::string_view key, int64_t value);
  JsonObject& boolean(std::string_view key, bool value);
  JsonObject& null(std::string_view key);
  JsonObject& raw(std::string_view key,
                  std::string_view json);  // an already-encoded value
  std::string done() const { return body_ + "}"; }

 private:
  void key(std::string_view k);
  std::string body_ = "{";
};

std::string json_quote(std::string_view s);
// "[a,b]" from already-encoded items.
std::string json_array(const std::vector<std::string>& items);
// A number when `value` is a plain base-10 int64, else a JSON string (topic
// config values).
std::string json_scalar(std::string_view value);

// --- Parsing ---
// Base-10 int64, the whole string. nullopt when it is not one.
std::optional<int64_t> parse_int64(std::string_view s);
// ISO-8601 date-time as Kafka's --to-datetime takes it:
// YYYY-MM-DDTHH:MM[:SS[.fff]] then optionally Z or ±HH[:MM]; no zone means UTC.
// Returns ms since the epoch, or InvalidArgument.
Result<int64_t> parse_iso8601_ms(std::string_view s);
// Splits "name=value" at the first '='. nullopt when there is no '=' or the
// name is empty.
std::optional<std::pair<std::string, std::string>> split_assignment(std::string_view s);

}  // namespace factory::cli
