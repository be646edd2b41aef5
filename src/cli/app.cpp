#include "cli/app.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "config/yaml_reader.h"
#include "obs/logger.h"

#ifndef FACTORYD_VERSION
#define FACTORYD_VERSION "unknown"
#endif

namespace factory::cli {
namespace {

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

std::vector<CLI::App*> children(CLI::App* app) {
  return app->get_subcommands([](CLI::App* sub) { return !sub->get_name().empty(); });
}

CLI::App* child(CLI::App* app, const std::string& name) {
  for (CLI::App* sub : children(app)) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

// "apply, create, list, describe, delete".
std::string child_names(CLI::App* app) {
  std::string out;
  for (CLI::App* sub : children(app)) out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

// "unknown command 'lst' for 'topics'; did you mean 'list'?" (the same typo rules as config
// keys: config::YamlReader::suggest), or the commands it takes. Returns kExitUsage.
int unknown_command(CLI::App* parent, const std::string& word) {
  std::string where = command_name(parent);
  std::string what = "unknown command '" + word + "'";
  if (!where.empty()) what += " for '" + where + "'";
  // suggest() compares with '-' read as '_'; spell the candidates the same way.
  std::vector<CLI::App*> subs = children(parent);
  std::vector<std::string> names;
  for (CLI::App* sub : subs) {
    std::string n = sub->get_name();
    std::replace(n.begin(), n.end(), '-', '_');
    names.push_back(std::move(n));
  }
  config::YamlKeys keys(names.begin(), names.end());
  std::string_view guess = config::YamlReader("", nullptr).suggest(word, keys);
  for (size_t k = 0; k < subs.size() && !guess.empty(); ++k) {
    if (names[k] == guess) {
      return usage_error(what + "; did you mean '" + subs[k]->get_name() + "'?", "");
    }
  }
  std::string path = where.empty() ? "factoryd" : "factoryd " + where;
  return usage_error(what,
                     "'" + path + "' takes " + child_names(parent) + "; see '" + path + " --help'");
}

bool is_help(const std::string& arg) {
  return arg == "-h" || arg == "--help" || arg == "--help-all" || arg == "--version";
}

// A global option as written before the command: `--data-dir DIR`, `--data-dir=DIR`,
// `-o json`, `-ojson`, `--output json`, `--output=json`, and `--server`/`--token` like
// `--data-dir`. Sets *long_name and *value and
// returns how many arguments it took (0: not a global option, or its value is missing).
size_t take_global(const std::vector<std::string>& args, size_t i, std::string* long_name,
                   std::string* value) {
  const std::string& a = args[i];
  for (const char* name : {"--data-dir", "--output", "--server", "--token"}) {
    std::string n = name;
    if (a == n) {
      if (i + 1 >= args.size()) return 0;
      *long_name = n;
      *value = args[i + 1];
      return 2;
    }
    if (a.rfind(n + "=", 0) == 0) {
      *long_name = n;
      *value = a.substr(n.size() + 1);
      return 1;
    }
  }
  if (a == "-o") {
    if (i + 1 >= args.size()) return 0;
    *long_name = "--output";
    *value = args[i + 1];
    return 2;
  }
  if (a.size() > 2 && a.rfind("-o", 0) == 0 && a[2] != '-') {
    *long_name = "--output";
    *value = a.substr(2);
    return 1;
  }
  return 0;
}

// Reads the command words of argv (args[0] is the program) before CLI11 does, so that:
//   - a word that is no command is named, with a did-you-mean: `topics lst`, and also
//     `trace --help` (CLI11 would print the top-level help and exit 0);
//   - a command group without its subcommand (`factoryd topics`) lists the subcommands;
//   - the global options given before the command (--data-dir, -o/--output, --server,
//     --token) are handed to the command itself as `--data-dir DIR`, `--output FMT`, ..., so
//     every command reads them the one way it reads its own (serve and demo keep their own
//     data dir; consume's -o is the offset, so the format always travels as --output), and a
//     command that has no such option (serve has no output format) refuses it instead of
//     ignoring it;
//   - an option that is no global one, met before the command, is left to CLI11 to name;
//   - a bare `factoryd --data-dir DIR` is `factoryd serve --data-dir DIR`.
// Returns kExitOk with *args rewritten, or the exit code of the error it printed.
int resolve_command_words(CLI::App* root, std::vector<std::string>* args) {
  CLI::App* cur = root;
  size_t leaf_at = 0;  // index of the last command word; 0: none
  bool help = false;
  std::vector<std::pair<std::string, std::string>> globals;
  std::vector<std::string> kept = {(*args)[0]};
  size_t i = 1;
  for (; i < args->size(); ++i) {
    const std::string& a = (*args)[i];
    bool group = cur == root || !children(cur).empty();
    if (!group || a == "--") break;
    if (a.size() > 1 && a[0] == '-') {
      std::string name, value;
      if (size_t n = take_global(*args, i, &name, &value); n > 0) {
        globals.emplace_back(name, value);
        i += n - 1;
        continue;
      }
      if (!is_help(a)) break;  // an option of no command: CLI11 names it
      help = true;
      kept.push_back(a);
      continue;
    }
    CLI::App* sub = child(cur, a);
    if (sub == nullptr) return unknown_command(cur, a);
    cur = sub;
    kept.push_back(a);
    leaf_at = kept.size() - 1;
  }
  if (help) return kExitOk;  // CLI11 prints the help of the command named so far
  bool stopped_in_group = i < args->size() && (cur == root || !children(cur).empty());
  if (stopped_in_group && cur != root && (*args)[i] != "--") {
    std::string path = "factoryd " + command_name(cur);
    return usage_error("unknown option '" + (*args)[i] + "' for '" + command_name(cur) +
                           "': it needs a command first: " + child_names(cur),
                       "run '" + path + " --help' for usage");
  }
  if (stopped_in_group) return kExitOk;  // at an unknown option or "--": CLI11 reports it
  if (cur != root && !children(cur).empty()) {
    std::string path = "factoryd " + command_name(cur);
    return usage_error("'" + path + "' needs a command: " + child_names(cur),
                       "run '" + path + " --help' for usage");
  }
  if (globals.empty()) return kExitOk;
  if (cur == root) {  // bare `factoryd --data-dir DIR`: the daemon
    cur = child(root, "serve");
    kept.push_back("serve");
    leaf_at = kept.size() - 1;
  }
  std::vector<std::string> out(kept.begin(), kept.begin() + static_cast<long>(leaf_at) + 1);
  for (const auto& [name, value] : globals) {
    if (cur->get_option_no_throw(name) == nullptr) {
      std::string path = "factoryd " + command_name(cur);
      return usage_error("'" + path + "' takes no " + (name == "--output" ? "-o/" : "") + name,
                         "leave it out (see docs/cli.md for the commands that take it)");
    }
    out.push_back(name);
    out.push_back(value);
  }
  out.insert(out.end(), kept.begin() + static_cast<long>(leaf_at) + 1, kept.end());
  out.insert(out.end(), args->begin() + static_cast<long>(i), args->end());
  *args = std::move(out);
  return kExitOk;
}

// The leaf commands (`topics list`, ...) under `app`.
void leaves(CLI::App* app, std::vector<CLI::App*>* out) {
  std::vector<CLI::App*> subs = children(app);
  if (subs.empty() && app->get_parent() != nullptr) out->push_back(app);
  for (CLI::App* sub : subs) leaves(sub, out);
}

// The footer of `factoryd --help`, its claims about -o read from the command tree.
std::string footer(CLI::App* root) {
  std::vector<CLI::App*> all;
  leaves(root, &all);
  std::string without, offset_o, no_data_dir;
  for (CLI::App* leaf : all) {
    std::string name = command_name(leaf);
    if (leaf->get_option_no_throw("--data-dir") == nullptr) {
      no_data_dir += (no_data_dir.empty() ? "" : ", ") + name;
    }
    if (leaf->get_option_no_throw("--output") == nullptr) {
      without += (without.empty() ? "" : ", ") + name;
    } else if (leaf->get_option_no_throw("-o") != leaf->get_option_no_throw("--output")) {
      offset_o += (offset_o.empty() ? "" : ", ") + name;
    }
  }
  std::string out =
      "--data-dir DIR (default $FACTORY_DATA_DIR, else ./data) is taken by every command" +
      (no_data_dir.empty() ? std::string()
                           : " but " + no_data_dir + " (they use a temporary one)") +
      ",\nand -o/--output table|json by every command but " + without +
      "; both are also accepted before the command.\n";
  if (!offset_o.empty()) {
    out +=
        "`" + offset_o + "` uses -o for the offset (as kcat does) and --output for the format.\n";
  }
  out +=
      "Exit codes: 0 ok, 1 runtime error, 2 usage error. FACTORY_LOG_LEVEL=debug|info|warn|error\n"
      "sets the log threshold (default warn for the CLI).\n"
      "With no command, factoryd runs `factoryd serve` (the daemon).\n"
      "Flags, old spellings, exit codes, output formats and how commands find a daemon:\n"
      "docs/cli.md.";
  return out;
}

}  // namespace

int run(int argc, char** argv) {
  // A closed stdout (e.g. `| head`) must show up as a failed write the command
  // handles (consume stops without committing what it could not print), not
  // kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  std::optional<obs::Level> level = log_level_from_env_or_report(obs::Level::kWarn);
  if (!level) return kExitUsage;
  obs::set_min_level(*level);

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
  app.require_subcommand(0, 1);  // none: serve
  // Documented here for --help; resolve_command_words() hands them to the command.
  app.add_option("--data-dir", common.data_dir, "Data directory (env FACTORY_DATA_DIR)");
  app.add_option("-o,--output", common.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  app.add_option("--server", common.server, "URL of a running factoryd (env FACTORY_SERVER)");
  app.add_option("--token", common.token, "API token for --server (env FACTORY_TOKEN)");

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
  app.footer(footer(&app));

  std::vector<std::string> args(argv, argv + argc);
  if (args.empty()) args.emplace_back("factoryd");
  if (int code = resolve_command_words(&app, &args); code != kExitOk) return code;

  // Catching here is CLI11's protocol for reporting a parse result (CLI11_PARSE
  // does the same); runtime failures are Status values, and anything else
  // propagates to main.
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11 pops the back
    app.parse(reversed);
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
  if (int code = registry.run_checks(); code != kExitOk) return code;
  int code = command->run();
  if (!flush_stdout() && code == kExitOk) {
    return runtime_error("cannot write to stdout", "check where the output is redirected");
  }
  return code;
}

}  // namespace factory::cli
