// factoryd config validate [-c FILE] [--set KEY=VALUE]...
// factoryd config show     [-c FILE] [--set KEY=VALUE]... [--show-origin]
// factoryd token hash      [--name NAME] [--role viewer|operator|admin]   (token on stdin)
//
// `config` loads the daemon's config the way serve does (factory_config.h: flags > environment
// > file > defaults; --set and --data-dir stand for serve's flags) without opening anything.
// `validate` prints "ok" (exit 0) or the error with its file:line (exit 1); warnings go to
// stderr either way. `show` prints every key with its value, and with --show-origin where the
// value came from; secrets print as <redacted>.
//
// `token hash` reads a token on stdin and prints the auth.tokens entry to paste into the
// config: the token's SHA-256, never the token.
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/factory_config.h"
#include "http/server.h"

namespace factory::cli {
namespace {

void warn(std::string_view what) {
  std::string line = "factoryd: warning: ";
  line += what;
  line += "\n";
  std::fputs(line.c_str(), stderr);
}

class ConfigCommand : public Command {
 public:
  ConfigCommand(const CommonOptions* common, bool show) : common_(common), show_(show) {}
  std::string file;
  std::vector<std::string> sets;
  bool show_origin = false;
  std::vector<const CLI::App*> data_dir_apps;  // where --data-dir may have been given

  int run() override {
    Environment env = process_environment();
    std::string path = file.empty() ? default_config_path(env) : file;
    FlagOverrides flags;
    for (const CLI::App* app : data_dir_apps) {
      const CLI::Option* opt = app->get_option_no_throw("--data-dir");
      if (opt != nullptr && opt->count() > 0) {
        flags.push_back({"data_dir", common_->data_dir});
        break;
      }
    }
    for (const std::string& s : sets) {
      auto kv = split_assignment(s);
      if (!kv) {
        return usage_error("--set " + s + " is not KEY=VALUE",
                           "write e.g. --set server.listen=127.0.0.1:8080");
      }
      flags.push_back(*kv);
    }
    auto config = load_factory_config(path, flags, env);
    if (!config.ok()) return runtime_error(config.status().message(), "");
    for (const std::string& w : config->warnings) warn(w);
    return show_ ? print_settings(*config) : print_ok(*config);
  }

 private:
  int print_ok(const FactoryConfig& c) const {
    if (common_->json()) {
      std::vector<std::string> warnings;
      for (const std::string& w : c.warnings) warnings.push_back(json_quote(w));
      write_stdout(JsonObject()
                       .boolean("ok", true)
                       .str("file", c.file)
                       .raw("warnings", json_array(warnings))
                       .done() +
                   "\n");
    } else {
      write_stdout("ok\n");
    }
    return kExitOk;
  }

  // The value as its JSON type: numbers and bools bare, lists as arrays of strings, the rest
  // (and a value that does not read as its type, which a checked config never has) a string.
  static std::string json_value(const ConfigSetting& s) {
    using Type = ConfigSetting::Type;
    switch (s.type) {
      case Type::kNumber: {
        double d = 0;
        auto [end, ec] = std::from_chars(s.value.data(), s.value.data() + s.value.size(), d);
        bool plain = !s.value.empty() && s.value[0] != '-' && s.value[0] != '+';
        if (plain && ec == std::errc() && end == s.value.data() + s.value.size() &&
            std::isfinite(d)) {
          return s.value;
        }
        break;
      }
      case Type::kBool:
        if (s.value == "true" || s.value == "false") return s.value;
        break;
      case Type::kList: {
        std::vector<std::string> items;
        if (s.value != "[]") {
          for (std::string_view rest = s.value; !rest.empty();) {
            size_t comma = rest.find(',');
            items.push_back(json_quote(rest.substr(0, comma)));
            rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
          }
        }
        return json_array(items);
      }
      case Type::kText:
        break;
    }
    return json_quote(s.value);
  }

  int print_settings(const FactoryConfig& c) const {
    if (common_->json()) {
      std::vector<std::string> items;
      for (const ConfigSetting& s : c.settings) {
        JsonObject o;
        o.str("key", s.key).raw("value", json_value(s));
        if (show_origin) o.str("origin", s.origin);
        items.push_back(o.done());
      }
      write_stdout(json_array(items) + "\n");
      return kExitOk;
    }
    std::vector<std::string> header = {"KEY", "VALUE"};
    if (show_origin) header.push_back("ORIGIN");
    Table table(header);
    for (const ConfigSetting& s : c.settings) {
      std::vector<std::string> row = {s.key, s.value.empty() ? "\"\"" : s.value};
      if (show_origin) row.push_back(s.origin);
      table.add_row(std::move(row));
    }
    write_stdout(table.render());
    return kExitOk;
  }

  const CommonOptions* common_;
  const bool show_;
};

class TokenHash : public Command {
 public:
  explicit TokenHash(const CommonOptions* common) : common_(common) {}
  std::string name = "token";
  std::string role = "viewer";

  int run() override {
    bool name_ok = !name.empty() && name.size() <= 64;
    for (char c : name) {
      name_ok = name_ok &&
                (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
    }
    if (!name_ok) {
      return usage_error("--name " + name + " is not a usable token name",
                         "use up to 64 letters, digits, '.', '_' or '-'");
    }
    if (isatty(0)) std::fputs("type the token, then Enter and Ctrl-D:\n", stderr);
    std::string token((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (token.ends_with("\n")) token.pop_back();
    if (token.ends_with("\r")) token.pop_back();
    if (token.empty()) {
      return usage_error("no token on stdin",
                         "pipe the token in: printf %s \"$TOKEN\" | factoryd token hash");
    }
    for (char c : token) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f) {
        return usage_error(
            "the token contains a space, a line break or a control character, "
            "which cannot be sent in an Authorization header",
            "use printable characters only, e.g. from `openssl rand -hex 32`");
      }
    }
    if (token.size() < 16) {
      warn("this token is only " + std::to_string(token.size()) +
           " characters long and easy to guess; use at least 32 random characters, e.g. from "
           "`openssl rand -hex 32`");
    }
    std::string hex = http::hash_token(token);
    if (common_->json()) {
      write_stdout(JsonObject().str("name", name).str("role", role).str("sha256", hex).done() +
                   "\n");
      return kExitOk;
    }
    write_stdout("- name: " + name + "\n  role: " + role + "\n  sha256: " + hex + "\n");
    if (isatty(1)) {
      std::fputs(
          "paste this under `auth:` `tokens:` in factory.yaml; clients send the token "
          "itself as `Authorization: Bearer TOKEN`\n",
          stderr);
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

void add_config_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* config = root->add_subcommand("config", "Check and show the daemon's config file");
  config->require_subcommand(1);
  for (bool show : {false, true}) {
    auto cmd = std::make_unique<ConfigCommand>(common, show);
    CLI::App* app =
        show ? config->add_subcommand("show",
                                      "Print every config key and its value (flags > env > file "
                                      "> defaults); secrets print as <redacted>")
             : config->add_subcommand("validate",
                                      "Check the config: prints ok, or the error with "
                                      "its file:line");
    app->add_option("-c,--config", cmd->file,
                    "The config file (default $FACTORY_CONFIG, else config/factory.yaml when it "
                    "exists)");
    app->add_option("--set", cmd->sets,
                    "KEY=VALUE as a serve flag would set it, e.g. server.listen=0.0.0.0:7070");
    if (show)
      app->add_flag("--show-origin", cmd->show_origin, "Also print where each value came from");
    add_common_options(app, common);
    cmd->data_dir_apps = {app, root};
    registry->add(app, std::move(cmd));
  }

  CLI::App* token = root->add_subcommand("token", "API tokens");
  token->require_subcommand(1);
  auto cmd = std::make_unique<TokenHash>(common);
  CLI::App* app = token->add_subcommand(
      "hash",
      "Read a token on stdin and print the auth.tokens entry (its SHA-256) for factory.yaml");
  app->add_option("--name", cmd->name, "The token's name (in the audit log)")
      ->capture_default_str();
  app->add_option("--role", cmd->role, "viewer, operator or admin")
      ->check(CLI::IsMember({"viewer", "operator", "admin"}))
      ->capture_default_str();
  add_common_options(app, common);
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
