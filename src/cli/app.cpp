#include "cli/app.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "obs/logger.h"

#ifndef FACTORYD_VERSION
#define FACTORYD_VERSION "unknown"
#endif

namespace factory::cli {
namespace {

constexpr const char* kFooter =
    "Every command takes --data-dir DIR (default $FACTORY_DATA_DIR, else "
    "./data) and\n"
    "-o/--output table|json; `consume` uses -o for the offset (as kcat does) "
    "and --output\n"
    "for the format.\n"
    "Exit codes: 0 ok, 1 runtime error, 2 usage error. "
    "FACTORY_LOG_LEVEL=debug|info|warn|error\n"
    "sets the log threshold (default warn for the CLI).\n"
    "With no command, factoryd runs `factoryd serve` (the daemon).";

// "factoryd topics create": the path to the deepest subcommand CLI11 selected.
std::string command_path(const CLI::App* app) {
  std::string path = "factoryd";
  while (app) {
    auto subs = app->get_subcommands();
    if (subs.empty()) break;
    app = subs.front();
    path += " " + app->get_name();
  }
  return path;
}

}  // namespace

int run(int argc, char** argv) {
  // A closed stdout (e.g. `| head`) must show up as a failed write the command
  // handles (consume stops without committing what it could not print), not
  // kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  if (!std::getenv("FACTORY_LOG_LEVEL")) obs::set_min_level(obs::Level::kWarn);

  CommonOptions common;
  const char* env_dir = std::getenv("FACTORY_DATA_DIR");
  common.data_dir = env_dir && *env_dir ? env_dir : "./data";
  if (const char* v = std::getenv("FACTORY_SERVER")) common.server = v;
  if (const char* v = std::getenv("FACTORY_TOKEN")) common.token = v;

  CLI::App app{
      "factoryd: a single-binary pipeline engine with a durable, Kafka-like "
      "log",
      "factoryd"};
  app.set_version_flag("--version", "factoryd " FACTORYD_VERSION);
  app.footer(kFooter);
  app.require_subcommand(0, 1);  // none: serve
  // Also accepted before the command: `factoryd --data-dir DIR topics list`.
  app.add_option("--data-dir", common.data_dir, "Data directory (env FACTORY_DATA_DIR)");

  CommandRegistry registry(&common);
  Command* serve = add_serve_command(&app, &registry);
  add_demo_command(&app, &registry);
  add_topics_command(&app, &registry);
  add_produce_command(&app, &registry);
  add_consume_command(&app, &registry);
  add_groups_command(&app, &registry);
  add_run_command(&app, &registry);
  add_dlq_command(&app, &registry);
  add_dags_command(&app, &registry);
  add_runs_command(&app, &registry);
  add_tasks_command(&app, &registry);
  add_approvals_command(&app, &registry);
  add_audit_command(&app, &registry);
  add_config_command(&app, &registry);

  // Catching here is CLI11's protocol for reporting a parse result (CLI11_PARSE
  // does the same); runtime failures are Status values, and anything else
  // propagates to main.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);  // --help, --help-all, --version
    }
    std::string path = command_path(&app);
    return usage_error(e.what(), "run '" + path + " --help' for usage");
  }

  Command* command = registry.parsed();
  if (!command && app.get_subcommands().empty()) command = serve;  // bare `factoryd`
  if (!command) {
    return usage_error("no command given", "run '" + command_path(&app) + " --help' for usage");
  }
  int code = command->run();
  if (!flush_stdout() && code == kExitOk) {
    return runtime_error("cannot write to stdout", "check where the output is redirected");
  }
  return code;
}

}  // namespace factory::cli
