// The daemon config's key table (factory_config.cpp): every leaf key with its kind, default and
// range, the aliases behind its did-you-mean, and the value checks the kinds share. Internal to
// the cli target; factory_config.cpp is the one user. Immutable data and pure functions:
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_reader.h"
#include "obs/logger.h"

namespace factory::cli::config_keys {

inline constexpr int64_t kDay = 24 * 3600 * 1000;

enum class Kind {
  kText,     // any text
  kPath,     // a path; relative to the file's directory when it comes from the file
  kInt,      // a whole number in [min, max]
  kBool,     // true | false
  kRate,     // a finite number >= 0
  kLevel,    // debug | info | warn | error
  kListen,   // IP:PORT
  kTopic,    // a topic name
  kSecret,   // a webhook secret (inline)
  kEnvName,  // the name of an environment variable holding a secret
  kUrl,      // http(s)://... or ""
  kHosts,    // a list of host names ("name" or "name:port"); "a,b" from the environment
};

struct KeySpec {
  std::string key;
  Kind kind;
  std::string def;  // the default, as text
  int64_t min = 0;
  int64_t max = 0;
  bool secret_source = false;  // one of a webhook's secret, secret_env, secret_file
};

// Every key, in the reference order (docs/user-guide.md "Configuration" follows it).
const std::vector<KeySpec>& keys();
// The row of `key`, or null.
const KeySpec* find_key(std::string_view key);
// Spellings people reach for (other servers' names, our struct fields) -> the key.
extern const config::YamlAliases kAliases;

bool valid_env_name(std::string_view s);
bool valid_token_name(std::string_view s);
bool is_hex64(std::string_view s);
std::string lower(std::string s);
// "IP:PORT" / "[IPv6]:PORT" / "localhost:PORT". False with *error saying what is wrong and how
// to fix it.
bool parse_listen(std::string_view text, std::string* address, uint16_t* port, std::string* error);
bool is_loopback(const std::string& address);
std::optional<obs::Level> parse_level(std::string_view s);
std::string format_double(double d);

}  // namespace factory::cli::config_keys
