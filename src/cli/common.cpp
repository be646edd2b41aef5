#include "cli/common.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/coding.h"
#include "base/escape.h"
#include "cli/factory_config_keys.h"
#include "cli/remote.h"

namespace factory::cli {

void add_common_options(CLI::App* cmd, CommonOptions* common, const std::string& output_names,
                        DataDirUse use) {
  if (use != DataDirUse::kNone) {
    cmd->add_option("--data-dir", common->data_dir,
                    "Data directory; the log is <data-dir>/log (env FACTORY_DATA_DIR)")
        ->capture_default_str();
  }
  if (!output_names.empty()) {
    cmd->add_option(output_names, common->output, "Output format")
        ->check(CLI::IsMember({"table", "json"}))
        ->capture_default_str();
  }
  if (use != DataDirUse::kLocalOrDaemon) return;
  cmd->add_option("--server", common->server,
                  "URL of a running factoryd to send the command to (env FACTORY_SERVER); "
                  "default: the daemon holding --data-dir, if any");
  cmd->add_option("--token", common->token, "API token for --server (env FACTORY_TOKEN)");
}

void CommandRegistry::add(CLI::App* app, std::unique_ptr<Command> command) {
  commands_.emplace_back(app, std::move(command));
}

Command* CommandRegistry::parsed() const {
  for (const auto& [app, command] : commands_) {
    if (app->parsed()) return command.get();
  }
  return nullptr;
}

void CommandRegistry::add_check(CLI::App* app, std::function<int()> check) {
  checks_.emplace_back(app, std::move(check));
}

int CommandRegistry::run_checks() const {
  for (const auto& [app, check] : checks_) {
    if (!app->parsed()) continue;
    if (int code = check(); code != kExitOk) return code;
  }
  return kExitOk;
}

std::string command_name(const CLI::App* app) {
  std::string name;
  for (; app != nullptr && app->get_parent() != nullptr; app = app->get_parent()) {
    name = name.empty() ? app->get_name() : app->get_name() + " " + name;
  }
  return name;
}

namespace {

// The hidden option behind every add_deprecated_option(): warns on each use, then `store`s.
template <typename T>
CLI::Option* add_deprecated(CLI::App* cmd, const std::string& names, std::string old_usage,
                            std::string new_usage, std::function<void(const T&)> store) {
  std::string command = command_name(cmd);
  return cmd
      ->add_option_function<T>(
          names,
          [store = std::move(store), old_usage = std::move(old_usage),
           new_usage = std::move(new_usage), command](const T& value) {
            warn_deprecated(old_usage, command, new_usage);
            store(value);
          },
          "")
      ->group("");  // hidden from --help: docs/cli.md lists the old spellings
}

}  // namespace

CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& names, std::string* target,
                                   std::string old_usage, std::string new_usage) {
  return add_deprecated<std::string>(cmd, names, std::move(old_usage), std::move(new_usage),
                                     [target](const std::string& v) { *target = v; });
}

CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& names,
                                   std::optional<int64_t>* target, std::string old_usage,
                                   std::string new_usage) {
  return add_deprecated<int64_t>(cmd, names, std::move(old_usage), std::move(new_usage),
                                 [target](const int64_t& v) { *target = v; });
}

CLI::Option* add_deprecated_option(CLI::App* cmd, const std::string& names,
                                   std::vector<std::string>* target, std::string old_usage,
                                   std::string new_usage) {
  return add_deprecated<std::vector<std::string>>(
      cmd, names, std::move(old_usage), std::move(new_usage),
      [target](const std::vector<std::string>& v) {
        target->insert(target->end(), v.begin(), v.end());
      });
}

namespace {

// What add_config_dir_option() learnt from the command line, for the command's check.
struct ConfigDirState {
  std::string* dir;           // the command's config dir
  std::string* factory_yaml;  // run's factory.yaml, or null: a file is refused
  std::string command;        // "dags list"
  std::string refused_file;   // a file given where only a directory is taken
  std::string refused_flag;   // the spelling it came with
  CommonOptions* common;      // config_dir_given
};

// `--config X` / `-c X` (flag): X a directory is the config dir (deprecated spelling); X a
// file is a factory.yaml where the command reads one.
void take_config_arg(ConfigDirState* st, const std::string& flag, const std::string& value) {
  std::error_code ec;
  bool is_file = std::filesystem::exists(value, ec) && !std::filesystem::is_directory(value, ec);
  if (is_file && st->factory_yaml != nullptr) {
    if (flag == "-c") warn_deprecated("-c FILE", st->command, "--config FILE");
    *st->factory_yaml = value;
    return;
  }
  if (is_file) {
    st->refused_file = value;
    st->refused_flag = flag;
    return;
  }
  warn_deprecated(flag + " DIR", st->command, "--config-dir DIR");
  *st->dir = value;
  st->common->config_dir_given = true;
}

}  // namespace

void add_config_dir_option(CLI::App* cmd, CommandRegistry* registry, std::string* dir, bool dash_c,
                           std::string* factory_yaml) {
  auto st = std::make_shared<ConfigDirState>(ConfigDirState{.dir = dir,
                                                            .factory_yaml = factory_yaml,
                                                            .command = command_name(cmd),
                                                            .common = registry->common()});
  cmd->add_option("--config-dir", *dir, "Config directory (topics.yaml, pipelines/, dags/)")
      ->capture_default_str()
      ->each(
          [common = registry->common()](const std::string&) { common->config_dir_given = true; });
  CLI::Option* config = cmd->add_option_function<std::string>(
      "--config", [st](const std::string& v) { take_config_arg(st.get(), "--config", v); },
      "The daemon's config file (factory.yaml): its data_dir and config_dir");
  if (factory_yaml == nullptr) config->group("");  // only the deprecated directory spelling
  if (dash_c) {
    cmd->add_option_function<std::string>(
           "-c", [st](const std::string& v) { take_config_arg(st.get(), "-c", v); }, "")
        ->group("");
  }
  registry->add_check(cmd, [st]() {
    if (st->refused_file.empty()) return kExitOk;
    return usage_error("'" + st->command + "' takes a config directory, and '" + st->refused_file +
                           "' (given with " + st->refused_flag + ") is a file",
                       "pass the directory that holds dags/ and pipelines/ with --config-dir DIR "
                       "(--config FILE, a factory.yaml, is for serve, run, demo and config)");
  });
}

int config_dir_missing(const std::string& dir, std::string_view reads) {
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  std::string what = "config dir '" + dir + "' ";
  what += std::filesystem::exists(dir, ec) ? "is not a directory" : "not found";
  if (std::filesystem::path(dir).is_relative()) what += " in " + cwd;
  what += " (it should hold ";
  what += reads;
  what += ")";
  return runtime_error(what, "pass --config-dir DIR, or run from the folder that holds config/");
}

size_t count_yaml_files(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    if (ext == ".yaml" || ext == ".yml") ++n;
  }
  return n;
}

namespace {

int report(int code, std::string_view what, std::string_view how) {
  std::string line = "factoryd: error: ";
  line += what;
  if (!how.empty()) {
    line += "; ";
    line += how;
  }
  line += "\n";
  std::fflush(stdout);  // keep stdout lines printed before the error ahead of
                        // it on a terminal
  std::fwrite(line.data(), 1, line.size(), stderr);
  return code;
}

}  // namespace

void warn(std::string_view what) {
  std::string line = "factoryd: warning: ";
  line += what;
  line += "\n";
  std::fflush(stdout);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void warn_deprecated(std::string_view old_usage, std::string_view command,
                     std::string_view new_usage) {
  std::string what = "'";
  what += old_usage;
  what += "' is deprecated for '";
  what += command;
  what += "'; use '";
  what += new_usage;
  what += "'";
  warn(what);
}

std::optional<obs::Level> log_level_from_env_or_report(obs::Level fallback) {
  const char* env = std::getenv("FACTORY_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return fallback;
  std::optional<obs::Level> level = config_keys::parse_level(env);
  if (!level) {
    usage_error("FACTORY_LOG_LEVEL='" + escape_controls(env) + "' is not a log level",
                "set it to debug, info, warn or error, or unset it");
  }
  return level;
}

int runtime_error(std::string_view what, std::string_view how) {
  return report(kExitRuntime, what, how);
}

int usage_error(std::string_view what, std::string_view how) {
  return report(kExitUsage, what, how);
}

int status_error(std::string_view context, const Status& s, std::string_view how) {
  std::string what(context);
  if (!what.empty()) what += ": ";
  what += s.message().empty() ? s.to_string() : s.message();
  bool has_hint = s.message().find("; ") != std::string::npos;
  return report(kExitRuntime, what, has_hint ? std::string_view() : how);
}

int topic_not_found(const CommonOptions& common, std::string_view topic) {
  std::string what = "topic '" + std::string(topic) + "' not found in " + common.log_dir();
  std::string how = "create it with 'factoryd topics create " + std::string(topic) +
                    " --partitions N' or 'factoryd topics apply -f FILE', or "
                    "check --data-dir";
  return runtime_error(what, how);
}

namespace {

// The data dir's log is held by another process: says which (holder.json) and how to proceed.
void report_busy_data_dir(const std::string& data_dir, std::string_view context, const Status& s) {
  auto holder = live_holder(data_dir);
  if (!holder) {  // not recorded (an older factoryd), or it just exited
    status_error(context, s, "");
    return;
  }
  std::string url = live_daemon_url(data_dir);
  if (!url.empty()) {
    // Commands that can go through the API did; this one cannot run beside a daemon.
    runtime_error(fmt::format("data dir '{}' is held by factoryd process {} ({}), which serves "
                              "the API at {}; this command needs the data dir to itself",
                              data_dir, holder->pid, holder->command, http::redact_url(url)),
                  "stop that process, or use another --data-dir");
    return;
  }
  runtime_error(
      fmt::format("data dir '{}' is held by factoryd process {} ({}), which serves no API",
                  data_dir, holder->pid, holder->command),
      "stop it and start `factoryd serve` instead (commands then go through its API), or pass "
      "--server URL");
}

}  // namespace

std::unique_ptr<Log> open_log_or_report(const CommonOptions& common, bool background_retention) {
  std::error_code ec;
  std::filesystem::create_directories(common.data_dir, ec);
  if (ec) {
    runtime_error("cannot create data dir '" + common.data_dir + "': " + ec.message(),
                  "pass a writable --data-dir or set FACTORY_DATA_DIR");
    return nullptr;
  }
  LogOptions options;
  options.dir = common.log_dir();
  if (!background_retention) options.retention_interval_ms = 0;
  auto log = open_log(options);
  if (!log.ok()) {
    const Status& s = log.status();
    std::string context = "cannot open the log in '" + options.dir + "'";
    if (s.is_busy()) {
      report_busy_data_dir(common.data_dir, context, s);
    } else if (s.code() == Status::Code::kCorruption) {
      status_error(context, s, "the data is damaged; restore the data dir from a backup");
    } else {
      status_error(context, s, "check that --data-dir points at a factoryd data dir");
    }
    return nullptr;
  }
  record_holder(common.data_dir);
  return std::move(*log);
}

bool write_stdout(std::string_view s) {
  if (s.empty()) return !std::ferror(stdout);
  return std::fwrite(s.data(), 1, s.size(), stdout) == s.size();
}

bool flush_stdout() { return std::fflush(stdout) == 0 && !std::ferror(stdout); }

std::string escape_controls(std::string_view s) { return base::escape_controls(s, "\\x"); }

std::string Table::render() const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(width[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

void JsonObject::key(std::string_view k) {
  if (body_.size() > 1) body_ += ",";
  base::append_json_string(&body_, k);
  body_ += ":";
}

JsonObject& JsonObject::str(std::string_view k, std::string_view value) {
  key(k);
  base::append_json_string(&body_, value);
  return *this;
}

JsonObject& JsonObject::opt_str(std::string_view k, const std::optional<std::string>& value) {
  if (!value) return null(k);
  return str(k, *value);
}

JsonObject& JsonObject::num(std::string_view k, int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::boolean(std::string_view k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::null(std::string_view k) {
  key(k);
  body_ += "null";
  return *this;
}

JsonObject& JsonObject::raw(std::string_view k, std::string_view json) {
  key(k);
  body_ += json;
  return *this;
}

std::string json_quote(std::string_view s) {
  std::string out;
  base::append_json_string(&out, s);
  return out;
}

std::string json_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += items[i];
  }
  out += "]";
  return out;
}

std::string json_scalar(std::string_view value) {
  if (parse_int64(value)) return std::string(value);
  return json_quote(value);
}

std::optional<int64_t> parse_int64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::string text(s);
  if (!(std::isdigit(static_cast<unsigned char>(text[0])) || (text[0] == '-' && text.size() > 1))) {
    return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size()) return std::nullopt;
  return static_cast<int64_t>(v);
}

namespace {

// Reads exactly `n` digits at *pos; -1 when they are not there.
int take_digits(std::string_view s, size_t* pos, size_t n) {
  if (*pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  return v;
}

bool take_char(std::string_view s, size_t* pos, char c) {
  if (*pos < s.size() && s[*pos] == c) {
    ++*pos;
    return true;
  }
  return false;
}

}  // namespace

Result<int64_t> parse_iso8601_ms(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("invalid date-time '" + std::string(s) + "' (" +
                                    std::string(why) +
                                    "); use ISO-8601 like 2026-11-28T09:00:00.000 (UTC) or "
                                    "2026-11-28T10:00:00+01:00");
  };
  size_t pos = 0;
  int year = take_digits(s, &pos, 4);
  if (year < 0 || !take_char(s, &pos, '-')) return bad("expected YYYY-");
  int month = take_digits(s, &pos, 2);
  if (month < 0 || !take_char(s, &pos, '-')) return bad("expected MM-");
  int day = take_digits(s, &pos, 2);
  if (day < 0) return bad("expected DD");
  if (!(take_char(s, &pos, 'T') || take_char(s, &pos, 't') || take_char(s, &pos, ' '))) {
    return bad("expected T between date and time");
  }
  int hour = take_digits(s, &pos, 2);
  if (hour < 0 || !take_char(s, &pos, ':')) return bad("expected HH:");
  int minute = take_digits(s, &pos, 2);
  if (minute < 0) return bad("expected MM after HH:");
  int second = 0;
  int64_t millis = 0;
  if (take_char(s, &pos, ':')) {
    second = take_digits(s, &pos, 2);
    if (second < 0) return bad("expected SS");
    if (take_char(s, &pos, '.') || take_char(s, &pos, ',')) {
      // Fraction: keep milliseconds, ignore finer digits.
      int digits = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (digits < 3) millis = millis * 10 + (s[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) return bad("expected digits after the decimal point");
      for (int i = digits; i < 3; ++i) millis *= 10;
    }
  }
  int64_t zone_offset_min = 0;
  if (take_char(s, &pos, 'Z') || take_char(s, &pos, 'z')) {
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int zh = take_digits(s, &pos, 2);
    if (zh < 0) return bad("expected a zone offset like +01:00");
    int zm = 0;
    if (pos < s.size()) {
      take_char(s, &pos, ':');
      zm = take_digits(s, &pos, 2);
      if (zm < 0) return bad("expected a zone offset like +01:00");
    }
    if (zh > 23 || zm > 59) return bad("zone offset out of range");
    zone_offset_min = sign * (zh * 60 + zm);
  }
  if (pos != s.size()) return bad("unexpected text at the end");
  if (hour > 23 || minute > 59 || second > 60) return bad("time out of range");
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                     std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return bad("no such date");
  int64_t days = sys_days(ymd).time_since_epoch().count();
  int64_t ms = ((days * 24 + hour) * 60 + minute) * 60'000 + int64_t{second} * 1000 + millis;
  return ms - zone_offset_min * 60'000;
}

std::optional<std::pair<std::string, std::string>> split_assignment(std::string_view s) {
  size_t eq = s.find('=');
  if (eq == std::string_view::npos || eq == 0) return std::nullopt;
  return std::make_pair(std::string(s.substr(0, eq)), std::string(s.substr(eq + 1)));
}

}  // namespace factory::cli
