// FactoryConfig: the daemon's one config file (config/factory.yaml) merged with the
// environment and the command line, for `factoryd serve` and `factoryd config validate|show`.
//
// Precedence, highest first: flags > environment > file > defaults. Every key has an
// environment name: FACTORY_ + the dotted key upper-cased with "." written "__"
// (server.listen -> FACTORY_SERVER__LISTEN, webhooks.github.secret ->
// FACTORY_WEBHOOKS__GITHUB__SECRET, data_dir -> FACTORY_DATA_DIR). FACTORY_LOG_LEVEL is also
// read, for logging.level. An empty variable counts as unset; a FACTORY_*__* variable that
// names no key is an error (a typo must not be ignored silently). auth.tokens, a list, comes
// from the file only. docs/user-guide.md ("Configuration") lists every key.
//
// Relative paths in the file (data_dir, config_dir, TLS files, secret_file) are relative to
// the file's directory, so the daemon reads the same files from any working directory; from
// the environment or a flag they are relative to the working directory.
//
// A webhook secret comes from exactly one of `secret` (inline), `secret_env: VAR` (read from
// that environment variable when the config is loaded) or `secret_file: PATH` (the file's
// contents, trailing newline dropped). A higher layer replaces the file's choice.
//
// The origin of every value is kept (FactoryConfig::settings) for `config show
// --show-origin`; secrets (webhook secrets, token hashes) are never kept there in clear.
//
// Thread-safety: free functions; a FactoryConfig is a plain value.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"
#include "http/api.h"
#include "http/server.h"
#include "obs/logger.h"

namespace factory::cli {

// One key as `config show` prints it.
struct ConfigSetting {
  // What the value is, for `config show -o json`: a number (an integer or rate key), a bool,
  // a list (text of comma-separated items; "[]" for the empty tokens list), else text.
  enum class Type { kText, kNumber, kBool, kList };
  std::string key;     // "server.listen", "auth.tokens[0].role"
  std::string value;   // as text; "<redacted>" for a secret that is set
  std::string origin;  // "default", "config/factory.yaml:12", "env FACTORY_SERVER__LISTEN", "flag"
  Type type = Type::kText;
};

struct FactoryConfig {
  std::string file;        // the file read; "" when running on defaults
  std::string data_dir;    // default "./data"
  std::string config_dir;  // topics.yaml, pipelines/, dags/; default: the file's directory
  std::string listen;      // server.listen as written ("127.0.0.1:7070")
  std::string public_url;  // server.public_url; "" = derived by serve from the bound address
  http::ServerOptions server;
  int64_t shutdown_timeout_ms = 25'000;  // SIGTERM drain deadline
  http::WebhookConfig github;
  http::WebhookConfig jira;
  obs::Level log_level = obs::Level::kInfo;
  std::vector<ConfigSetting> settings;  // every key, in reference order
  // Legal but probably unintended (an enabled webhook without a secret, a missing config
  // dir): serve logs them, `config validate` prints them.
  std::vector<std::string> warnings;
};

// The process environment, or a test's.
using Environment = std::map<std::string, std::string>;
Environment process_environment();

// (dotted key, value) from the command line: {"server.listen", "0.0.0.0:7070"}.
using FlagOverrides = std::vector<std::pair<std::string, std::string>>;

// Loads `path` ("" = no file: defaults, environment and flags only) and applies `env` and
// `flags`. Returns the merged, validated config. NotFound when `path` does not exist;
// InvalidArgument naming the place at fault ("FILE:LINE:COLUMN: ...", "environment variable
// FACTORY_X: ...", "flag server.x: ...") and how to fix it for: YAML errors, unknown keys
// (with a did-you-mean), values of the wrong type or range, a listen address that is not
// IP:PORT, a role other than viewer|operator|admin, a token sha256 that is not 64 hex digits,
// TLS files that are missing, and a non-loopback listen address with no auth.tokens.
Result<FactoryConfig> load_factory_config(const std::string& path, const FlagOverrides& flags,
                                          const Environment& env);

// The config file to read when none is given: $FACTORY_CONFIG (from env) when set, else
// config/factory.yaml when it exists, else "" (defaults).
std::string default_config_path(const Environment& env);

// FACTORY_SERVER__LISTEN for "server.listen".
std::string config_env_name(std::string_view key);

}  // namespace factory::cli
