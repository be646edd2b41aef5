// FactoryConfig (factory_config.h): the key table, the three layers (file, environment,
// flags) applied over the defaults, and the checks that need several keys.
//
// Every leaf key is one row of keys(): its kind says how a value is read and checked, the same
// way from YAML and from text (environment and flag values are read as one-scalar YAML entries,
// so the messages match). Each layer stores the value as checked text with its origin; build()
// then turns the text into the typed config, where the cross-key checks (TLS, tokens on a
// non-loopback address, secrets) point at the origin of the key at fault.
#include "cli/factory_config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include <arpa/inet.h>

#include "base/file.h"
#include "cli/factory_config_keys.h"
#include "config/yaml_reader.h"
#include "factory/topic.h"
#include "http/request_guard.h"

extern char** environ;  // NOLINT: POSIX

namespace factory::cli {
namespace {

using config::in_quotes;
using config::YamlAliases;
using config::YamlEntry;
using config::YamlKeys;
using config::YamlReader;

namespace fs = std::filesystem;
using namespace config_keys;  // NOLINT: the key table and its checks, one unit with this file

constexpr std::string_view kRedacted = "<redacted>";
constexpr std::string_view kTokensKey = "auth.tokens";

// Where a value came from: `origin` for people ("config/factory.yaml:12"), `where` to prefix
// an error about it ("config/factory.yaml:12:11", "environment variable FACTORY_X").
struct Value {
  std::string text;
  std::string origin = "default";
  std::string where;
};

struct TokenValue {
  http::TokenEntry entry;
  std::string origin;
};

class Loader {
 public:
  Loader(std::string path, const Environment& env) : path_(std::move(path)), env_(env) {
    for (const KeySpec& k : keys()) values_[k.key] = Value{k.def, "default", ""};
    if (!path_.empty()) {
      fs::path dir = fs::path(path_).parent_path();
      file_dir_ = dir.empty() ? "." : dir.string();
    }
  }

  Status load_file() {
    if (path_.empty()) return Status::ok_status();
    std::string text;
    FACTORY_RETURN_IF_ERROR(base::read_file(path_, "config file", &text));
    YamlReader reader(path_, &kAliases);
    YAML::Node doc;
    FACTORY_RETURN_IF_ERROR(reader.load(text, &doc));
    try {
      if (doc.IsNull()) return Status::ok_status();
      if (!doc.IsMap()) {
        return reader.error(doc.Mark(),
                            "the config file is a mapping of sections (server:, auth:, "
                            "webhooks:, ...); see config/factory.yaml");
      }
      return walk(reader, doc, "", "the config file");
    } catch (const YAML::Exception& e) {
      return reader.error(e.mark, "cannot read this YAML: " + e.msg);
    } catch (const std::exception& e) {
      return Status::internal(path_ + ": cannot read this config file: " + e.what());
    }
  }

  Status load_env() {
    // FACTORY_LOG_LEVEL first, so FACTORY_LOGGING__LEVEL wins when both are set.
    if (auto it = env_.find("FACTORY_LOG_LEVEL"); it != env_.end() && !it->second.empty()) {
      FACTORY_RETURN_IF_ERROR(set_text(*find_key("logging.level"), it->second,
                                       "env FACTORY_LOG_LEVEL",
                                       "environment variable FACTORY_LOG_LEVEL"));
    }
    for (const auto& [name, value] : env_) {
      if (value.empty() || !name.starts_with("FACTORY_")) continue;
      std::string rest = name.substr(8);
      std::string key;
      if (rest.find("__") != std::string::npos && !rest.starts_with("SECRET_")) {
        key = lower(rest);
        for (size_t at = key.find("__"); at != std::string::npos; at = key.find("__", at + 1)) {
          key.replace(at, 2, ".");
        }
      } else if (rest == "DATA_DIR" || rest == "CONFIG_DIR") {
        key = lower(rest);
      } else {
        continue;  // FACTORY_SERVER, FACTORY_TOKEN, FACTORY_SECRET_*: not config keys
      }
      std::string where = "environment variable " + name;
      const KeySpec* spec = find_key(key);
      if (spec == nullptr) return unknown_key(where, key, /*env=*/true);
      FACTORY_RETURN_IF_ERROR(set_text(*spec, value, "env " + name, where));
    }
    return Status::ok_status();
  }

  Status load_flags(const FlagOverrides& flags) {
    for (const auto& [key, value] : flags) {
      std::string where = "command line";  // never the value: it may be a secret
      const KeySpec* spec = find_key(key);
      if (spec == nullptr) return unknown_key("command line", key, /*env=*/false);
      FACTORY_RETURN_IF_ERROR(set_text(*spec, value, "flag", where));
    }
    return Status::ok_status();
  }

  Result<FactoryConfig> build() {
    FactoryConfig c;
    c.file = path_;
    c.data_dir = values_["data_dir"].text;
    c.config_dir = values_["config_dir"].text;
    if (c.config_dir.empty()) c.config_dir = path_.empty() ? "config" : file_dir_;
    c.listen = values_["server.listen"].text;
    std::string error;
    if (!parse_listen(c.listen, &c.server.address, &c.server.port, &error)) {
      return fail("server.listen", error);  // only reachable for a bad default
    }
    c.public_url = values_["server.public_url"].text;
    c.server.io_threads = static_cast<int>(integer("server.io_threads"));
    c.server.handler_threads = static_cast<int>(integer("server.handler_threads"));
    c.server.max_connections = static_cast<int>(integer("server.max_connections"));
    c.server.header_limit = static_cast<size_t>(integer("server.header_limit_bytes"));
    c.server.read_timeout_ms = integer("server.read_timeout_ms");
    c.server.idle_timeout_ms = integer("server.idle_timeout_ms");
    c.server.handshake_timeout_ms = integer("server.handshake_timeout_ms");
    c.server.long_poll_limit = static_cast<int>(integer("server.long_poll_limit"));
    c.server.refusal_audit_window_ms = integer("server.refusal_audit_window_ms");
    for (std::string_view rest = values_["server.allowed_hosts"].text; !rest.empty();) {
      size_t comma = rest.find(',');
      if (comma != 0) c.server.allowed_hosts.emplace_back(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
    c.shutdown_timeout_ms = integer("server.shutdown_timeout_ms");
    c.server.rate_limit.requests_per_s = number("auth.rate_limit.requests_per_s");
    c.server.rate_limit.burst = number("auth.rate_limit.burst");
    c.log_level = parse_level(values_["logging.level"].text).value_or(obs::Level::kInfo);
    FACTORY_RETURN_IF_ERROR(build_tls(&c.server.tls));
    for (const TokenValue& t : tokens_) c.server.tokens.push_back(t.entry);
    FACTORY_RETURN_IF_ERROR(build_jwt(&c.server.jwt));
    if (c.server.tokens.empty() && !c.server.jwt.enabled() && !is_loopback(c.server.address)) {
      std::string file = path_.empty() ? "config/factory.yaml" : path_;
      return fail("server.listen",
                  "server.listen " + c.listen +
                      " is reachable from other machines, and auth.tokens is empty, so anyone "
                      "could call the API; add a token: TOKEN=$(openssl rand -hex 32); printf %s "
                      "\"$TOKEN\" | factoryd token hash --name NAME --role admin; and paste what "
                      "that prints under auth: tokens: in " +
                      file +
                      " (clients send it as `Authorization: Bearer TOKEN`), or listen "
                      "on 127.0.0.1");
    }
    FACTORY_RETURN_IF_ERROR(build_webhook("github", &c.github, &c.warnings));
    FACTORY_RETURN_IF_ERROR(build_webhook("jira", &c.jira, &c.warnings));
    std::error_code ec;
    if (!fs::is_directory(c.config_dir, ec)) {
      c.warnings.push_back("config_dir " + in_quotes(c.config_dir) +
                           " is not a directory: no topics.yaml, pipelines or DAGs will be "
                           "loaded; set config_dir to the folder that holds them");
    }
    settings(c, &c.settings);
    return c;
  }

 private:
  // ---- File ----

  // Reads mapping `map` whose keys continue `prefix` ("server.").
  Status walk(const YamlReader& reader, const YAML::Node& map, const std::string& prefix,
              const std::string& what) {
    std::vector<std::string> names;
    for (const KeySpec& k : keys()) {
      if (!k.key.starts_with(prefix)) continue;
      std::string rest = k.key.substr(prefix.size());
      std::string next = rest.substr(0, rest.find('.'));
      if (std::find(names.begin(), names.end(), next) == names.end()) names.push_back(next);
    }
    if (prefix == "auth.") names.insert(names.begin(), "tokens");
    YamlKeys allowed(names.begin(), names.end());
    std::vector<YamlEntry> entries;
    FACTORY_RETURN_IF_ERROR(reader.entries(map, what, &allowed, &entries));
    const YamlEntry* secret_seen = nullptr;
    for (const YamlEntry& e : entries) {
      std::string full = prefix + e.key;
      if (full == kTokensKey) {
        FACTORY_RETURN_IF_ERROR(read_tokens(reader, e));
        continue;
      }
      if (const KeySpec* spec = find_key(full)) {
        if (spec->secret_source) {
          if (secret_seen != nullptr) {
            return reader.error(e.key_node.Mark(),
                                prefix.substr(0, prefix.size() - 1) + " sets both " +
                                    secret_seen->key + " and " + e.key +
                                    "; a secret comes from one of secret, secret_env or "
                                    "secret_file: keep one");
          }
          secret_seen = &e;
        }
        YAML::Mark m = YamlReader::where(e);
        std::string line = std::to_string(m.line + 1);
        FACTORY_RETURN_IF_ERROR(assign(*spec, reader, e, path_ + ":" + line,
                                       path_ + ":" + line + ":" + std::to_string(m.column + 1),
                                       /*from_file=*/true));
        continue;
      }
      if (e.value.IsNull()) continue;  // an empty section
      if (!e.value.IsMap()) {
        return reader.error(YamlReader::where(e),
                            full +
                                " is a section, not a value: write its keys on the lines "
                                "below it, indented");
      }
      FACTORY_RETURN_IF_ERROR(walk(reader, e.value, full + ".", full));
    }
    return Status::ok_status();
  }

  Status read_tokens(const YamlReader& reader, const YamlEntry& e) {
    if (e.value.IsNull()) return Status::ok_status();
    if (!e.value.IsSequence()) {
      return reader.error(YamlReader::where(e),
                          "auth.tokens must be a list, one `- name: ...` entry per token (run "
                          "`factoryd token hash --name NAME --role ROLE` to make one)");
    }
    static const YamlKeys kTokenKeys = {"name", "role", "sha256"};
    size_t i = 0;
    for (const YAML::Node& item : e.value) {
      std::string what = "auth.tokens[" + std::to_string(i++) + "]";
      std::vector<YamlEntry> fields;
      FACTORY_RETURN_IF_ERROR(reader.entries(item, what, &kTokenKeys, &fields));
      TokenValue t;
      t.origin = path_ + ":" + std::to_string(item.Mark().line + 1);
      for (const char* need : {"name", "role", "sha256"}) {
        if (YamlReader::find(fields, need) == nullptr) {
          return reader.error(item.Mark(),
                              what + " has no " + need +
                                  "; each token needs name, role (viewer, operator or admin) and "
                                  "sha256 (what `factoryd token hash` prints)");
        }
      }
      for (const YamlEntry& f : fields) {
        std::string field = what + "." + f.key;
        std::string v;
        FACTORY_RETURN_IF_ERROR(reader.text(f, field, &v));
        if (f.key == "name") {
          if (!valid_token_name(v)) {
            return reader.error(YamlReader::where(f),
                                field + ": " + in_quotes(v) +
                                    " is not a usable token name; use up to 64 letters, digits, "
                                    "'.', '_' or '-' (it appears in the audit log)");
          }
          for (const TokenValue& other : tokens_) {
            if (other.entry.name == v) {
              return reader.error(YamlReader::where(f), field + ": a token named " + in_quotes(v) +
                                                            " is already listed (" + other.origin +
                                                            "); give each token its own name");
            }
          }
          t.entry.name = v;
        } else if (f.key == "role") {
          auto role = http::parse_role(v);
          if (!role) {
            return reader.error(YamlReader::where(f),
                                field + ": " + in_quotes(v) +
                                    " is not a role; use viewer (read), operator (produce, "
                                    "trigger, approve, replay) or admin (everything)");
          }
          t.entry.role = *role;
        } else {
          if (!is_hex64(v)) {
            return reader.error(
                YamlReader::where(f),
                field +
                    " must be the token's SHA-256 as 64 hex digits, never the token itself; run "
                    "`printf %s \"$TOKEN\" | factoryd token hash` and paste what it prints");
          }
          t.entry.sha256_hex = lower(v);
          for (const TokenValue& other : tokens_) {
            if (other.entry.sha256_hex == t.entry.sha256_hex) {
              return reader.error(YamlReader::where(f),
                                  field + ": the same token is already listed as " +
                                      in_quotes(other.entry.name) + " (" + other.origin +
                                      "); each token must be distinct");
            }
          }
        }
      }
      tokens_.push_back(std::move(t));
    }
    tokens_origin_ = path_ + ":" + std::to_string(YamlReader::where(e).line + 1);
    return Status::ok_status();
  }

  // ---- One value, from any layer ----

  // Text from the environment or a flag, read as a one-scalar YAML entry.
  Status set_text(const KeySpec& spec, const std::string& text, std::string origin,
                  const std::string& where) {
    YamlReader reader(where, &kAliases);
    YamlEntry e{spec.key, YAML::Node(spec.key), YAML::Node(text)};
    return assign(spec, reader, e, std::move(origin), where, /*from_file=*/false);
  }

  Status assign(const KeySpec& spec, const YamlReader& reader, const YamlEntry& e,
                std::string origin, std::string where, bool from_file) {
    const std::string& field = spec.key;
    YAML::Mark mark = YamlReader::where(e);
    std::string text;
    switch (spec.kind) {
      case Kind::kInt: {
        int64_t v = 0;
        FACTORY_RETURN_IF_ERROR(reader.integer(e, field, spec.min, spec.max, &v));
        text = std::to_string(v);
        break;
      }
      case Kind::kBool: {
        bool v = false;
        FACTORY_RETURN_IF_ERROR(reader.boolean(e, field, &v));
        text = v ? "true" : "false";
        break;
      }
      case Kind::kRate: {
        double v = 0;
        FACTORY_RETURN_IF_ERROR(reader.number(e, field, &v));
        if (v < 0) return reader.error(mark, field + " must be 0 (unlimited) or more");
        text = format_double(v);
        break;
      }
      case Kind::kHosts:
        if (e.value.IsSequence()) {
          for (size_t i = 0; i < e.value.size(); ++i) {
            std::string item;
            YamlEntry one{e.key, e.key_node, e.value[i]};
            FACTORY_RETURN_IF_ERROR(reader.text(one, field + "[" + std::to_string(i) + "]", &item));
            text += (text.empty() ? "" : ",") + item;
          }
        } else {
          FACTORY_RETURN_IF_ERROR(reader.text(e, field, &text));
        }
        break;
      default:
        FACTORY_RETURN_IF_ERROR(reader.text(e, field, &text));
        break;
    }
    switch (spec.kind) {
      case Kind::kPath:
        if (from_file && !text.empty() && fs::path(text).is_relative()) {
          text = (fs::path(file_dir_) / text).lexically_normal().string();
        }
        break;
      case Kind::kLevel:
        if (!parse_level(text)) {
          return reader.error(mark, field + ": " + in_quotes(text) +
                                        " is not a log level; use debug, info, warn or error");
        }
        break;
      case Kind::kListen: {
        std::string address, error;
        uint16_t port = 0;
        if (!parse_listen(text, &address, &port, &error)) {
          return reader.error(mark, field + ": " + in_quotes(text) + ": " + error);
        }
        break;
      }
      case Kind::kTopic: {
        TopicSpec t;
        t.name = text;
        if (Status s = validate_topic_spec(t); !s.ok()) {
          return reader.error(mark, field + ": " + s.message());
        }
        break;
      }
      case Kind::kEnvName:
        if (!valid_env_name(text)) {
          return reader.error(mark, field + ": " + in_quotes(text) +
                                        " is not an environment variable name; write the "
                                        "variable's name (e.g. GITHUB_WEBHOOK_SECRET), not its "
                                        "value");
        }
        break;
      case Kind::kHosts: {
        std::string normalized;
        for (std::string_view rest = text; !rest.empty();) {
          size_t comma = rest.find(',');
          std::string_view one = rest.substr(0, comma);
          rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
          auto host = http::normalize_allowed_host(one);
          if (!host) {
            return reader.error(mark, field + ": " + in_quotes(one) +
                                          " is not a host name or address with an optional "
                                          "port; write e.g. factory.example.com or "
                                          "factory.example.com:8443");
          }
          normalized += (normalized.empty() ? "" : ",") + *host;
        }
        text = normalized;
        break;
      }
      case Kind::kUrl:
        if (!text.empty() && !text.starts_with("http://") && !text.starts_with("https://")) {
          return reader.error(mark, field + ": " + in_quotes(text) +
                                        " is not a URL; write e.g. https://factory.example.com");
        }
        while (text.ends_with("/")) text.pop_back();
        break;
      default:
        break;
    }
    if (spec.secret_source) {
      // secret, secret_env and secret_file are one choice: setting one clears the others.
      std::string prefix = spec.key.substr(0, spec.key.rfind('.') + 1);
      for (const char* sibling : {"secret", "secret_env", "secret_file"}) {
        values_[prefix + sibling] = Value{"", "default", ""};
      }
    }
    values_[spec.key] = Value{std::move(text), std::move(origin), std::move(where)};
    return Status::ok_status();
  }

  Status unknown_key(const std::string& where, const std::string& key, bool env) {
    auto name = [&](std::string_view k) { return env ? config_env_name(k) : std::string(k); };
    if (key == kTokensKey) {
      return Status::invalid_argument(where +
                                      ": auth.tokens can only be listed in the config "
                                      "file (auth: tokens:)");
    }
    YamlKeys all;
    for (const KeySpec& k : keys()) all.push_back(k.key);
    YamlReader reader(where, &kAliases);
    std::string msg = env ? where + " names no config key"
                          : where + ": " + in_quotes(key) + " names no config key";
    std::string_view guess = reader.suggest(key, all);
    if (!guess.empty()) {
      msg += "; did you mean " + name(guess) + "?";
    } else {
      msg += "; the keys are listed under Configuration in docs/user-guide.md";
    }
    return Status::invalid_argument(msg);
  }

  // ---- Build ----

  Status fail(const std::string& key, std::string_view msg) const {
    const Value& v = values_.at(key);
    if (v.where.empty()) return Status::invalid_argument(msg);
    return Status::invalid_argument(v.where + ": " + std::string(msg));
  }

  int64_t integer(const std::string& key) const {
    int64_t v = 0;
    const std::string& t = values_.at(key).text;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
  }

  double number(const std::string& key) const {
    double v = 0;
    const std::string& t = values_.at(key).text;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
  }

  Status readable_file(const std::string& key, std::string_view what) const {
    const std::string& path = values_.at(key).text;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      return fail(key, key + ": " + std::string(what) + " " + in_quotes(path) +
                           " does not exist or is not a file; check the path (relative paths "
                           "in the config file are relative to its folder)");
    }
    std::ifstream in(path);
    if (!in) {
      return fail(key, key + ": cannot read " + std::string(what) + " " + in_quotes(path) +
                           "; check its permissions");
    }
    return Status::ok_status();
  }

  // auth.jwt.*: OAuth2 access tokens. Off unless jwks_url or jwks_file is set; the other keys
  // alone are a mistake worth a message (an issuer with no keys would accept nothing).
  Status build_jwt(http::JwtOptions* jwt) const {
    auto text = [&](const char* key) { return values_.at(std::string("auth.jwt.") + key).text; };
    jwt->jwks_url = text("jwks_url");
    jwt->jwks_file = text("jwks_file");
    jwt->jwks_ca_file = text("jwks_ca_file");
    jwt->policy.issuer = text("issuer");
    jwt->policy.audience = text("audience");
    jwt->policy.role_claim = text("role_claim");
    jwt->policy.leeway_s = integer("auth.jwt.leeway_s");
    jwt->min_refresh_s = integer("auth.jwt.jwks_min_refresh_s");
    for (auto [name, role] :
         {std::pair{"viewer", http::Role::kViewer}, std::pair{"operator", http::Role::kOperator},
          std::pair{"admin", http::Role::kAdmin}}) {
      // A comma- or space-separated list of claim values (Keycloak role names).
      std::string list = text((std::string("roles.") + name).c_str());
      size_t i = 0;
      while (i < list.size()) {
        size_t end = list.find_first_of(", ", i);
        if (end == std::string::npos) end = list.size();
        if (end > i) jwt->policy.role_map.emplace_back(list.substr(i, end - i), role);
        i = end + 1;
      }
    }
    if (!jwt->enabled()) {
      if (!jwt->policy.issuer.empty() || !jwt->policy.audience.empty() ||
          !jwt->policy.role_map.empty()) {
        std::string set = !jwt->policy.issuer.empty() ? "auth.jwt.issuer" : "auth.jwt.audience";
        return fail(set,
                    "auth.jwt is configured but has no keys: set auth.jwt.jwks_url (Keycloak: "
                    "https://HOST/realms/REALM/protocol/openid-connect/certs) or "
                    "auth.jwt.jwks_file");
      }
      return Status::ok_status();
    }
    if (!jwt->jwks_file.empty()) {
      FACTORY_RETURN_IF_ERROR(readable_file("auth.jwt.jwks_file", "JWKS file"));
    }
    if (!jwt->jwks_ca_file.empty()) {
      FACTORY_RETURN_IF_ERROR(readable_file("auth.jwt.jwks_ca_file", "CA file"));
    }
    Status s = http::validate_jwt_options(*jwt);
    if (!s.ok()) {
      return fail(jwt->jwks_url.empty() ? "auth.jwt.jwks_file" : "auth.jwt.jwks_url", s.message());
    }
    return Status::ok_status();
  }

  Status build_tls(http::TlsOptions* tls) const {
    tls->cert_file = values_.at("server.tls.cert_file").text;
    tls->key_file = values_.at("server.tls.key_file").text;
    tls->client_ca_file = values_.at("server.tls.client_ca_file").text;
    tls->require_client_cert = values_.at("server.tls.require_client_cert").text == "true";
    if (tls->cert_file.empty() != tls->key_file.empty()) {
      std::string set = tls->cert_file.empty() ? "server.tls.key_file" : "server.tls.cert_file";
      return fail(set,
                  "TLS needs both server.tls.cert_file and server.tls.key_file (PEM); set "
                  "the other one too, or neither for plain HTTP");
    }
    if (tls->cert_file.empty()) {
      if (!tls->client_ca_file.empty() || tls->require_client_cert) {
        std::string set = tls->client_ca_file.empty() ? "server.tls.require_client_cert"
                                                      : "server.tls.client_ca_file";
        return fail(set,
                    "client certificates need TLS: set server.tls.cert_file and "
                    "server.tls.key_file too");
      }
      return Status::ok_status();
    }
    FACTORY_RETURN_IF_ERROR(readable_file("server.tls.cert_file", "certificate file"));
    FACTORY_RETURN_IF_ERROR(readable_file("server.tls.key_file", "key file"));
    if (tls->require_client_cert && tls->client_ca_file.empty()) {
      return fail("server.tls.require_client_cert",
                  "server.tls.require_client_cert needs server.tls.client_ca_file: the CA that "
                  "client certificates must be signed by");
    }
    if (!tls->client_ca_file.empty()) {
      FACTORY_RETURN_IF_ERROR(readable_file("server.tls.client_ca_file", "CA file"));
    }
    return Status::ok_status();
  }

  Status build_webhook(const std::string& source, http::WebhookConfig* w,
                       std::vector<std::string>* warnings) {
    std::string p = "webhooks." + source + ".";
    w->enabled = values_[p + "enabled"].text == "true";
    w->topic = values_[p + "topic"].text;
    // A delivery is outside input: it must never become an order to the daemon.
    if (is_internal_topic(w->topic)) {
      return fail(p + "topic", p + "topic: " + internal_topic_refusal(w->topic, "delivering to") +
                                   " (e.g. jira-events)");
    }
    w->body_limit = static_cast<size_t>(integer(p + "body_limit_bytes"));
    Value& secret = values_[p + "secret"];
    const Value& env_name = values_[p + "secret_env"];
    const Value& file = values_[p + "secret_file"];
    // A disabled webhook's secret is not looked up: the shipped config names variables that
    // only need to exist once the webhook is turned on.
    if (w->enabled && !env_name.text.empty()) {
      auto it = env_.find(env_name.text);
      if (it == env_.end() || it->second.empty()) {
        return fail(p + "secret_env", p + "secret_env names " + env_name.text +
                                          ", which is not set (or empty) in the environment; "
                                          "export " +
                                          env_name.text +
                                          " before starting factoryd, or use secret_file");
      }
      secret = Value{it->second, "env " + env_name.text + " (" + p + "secret_env)", ""};
    } else if (w->enabled && !file.text.empty()) {
      std::string text;
      if (Status s = base::read_file(file.text, "webhook secret file", &text); !s.ok()) {
        return fail(p + "secret_file", p + "secret_file: " + s.message());
      }
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      if (text.empty()) {
        return fail(p + "secret_file", p + "secret_file " + in_quotes(file.text) +
                                           " is empty; write the webhook's secret into it");
      }
      secret = Value{text, "file " + file.text + " (" + p + "secret_file)", ""};
    }
    w->secret = secret.text;
    if (w->enabled && w->secret.empty()) {
      warnings->push_back("webhooks." + source +
                          " is enabled but has no secret, so every delivery will be refused "
                          "with 401; set webhooks." +
                          source + ".secret_env (or " + config_env_name(p + "secret") +
                          ") to the secret configured on the sending side");
    }
    return Status::ok_status();
  }

  static ConfigSetting::Type setting_type(Kind kind) {
    switch (kind) {
      case Kind::kInt:
      case Kind::kRate:
        return ConfigSetting::Type::kNumber;
      case Kind::kBool:
        return ConfigSetting::Type::kBool;
      case Kind::kHosts:
        return ConfigSetting::Type::kList;
      default:
        return ConfigSetting::Type::kText;
    }
  }

  void settings(const FactoryConfig& c, std::vector<ConfigSetting>* out) const {
    bool tokens_done = false;
    for (const KeySpec& k : keys()) {
      if (k.key.starts_with("auth.") && !tokens_done) {
        tokens_done = true;
        if (tokens_.empty()) {
          out->push_back({std::string(kTokensKey), "[]",
                          tokens_origin_.empty() ? "default" : tokens_origin_,
                          ConfigSetting::Type::kList});
        }
        for (size_t i = 0; i < tokens_.size(); ++i) {
          std::string p = std::string(kTokensKey) + "[" + std::to_string(i) + "].";
          const TokenValue& t = tokens_[i];
          out->push_back({p + "name", t.entry.name, t.origin});
          out->push_back({p + "role", std::string(http::role_name(t.entry.role)), t.origin});
          out->push_back({p + "sha256", std::string(kRedacted), t.origin});
        }
      }
      const Value& v = values_.at(k.key);
      ConfigSetting s{k.key, v.text, v.origin, setting_type(k.kind)};
      if (k.key == "config_dir" && v.text.empty()) {
        s.value = c.config_dir;
        s.origin = path_.empty() ? "default" : "default (the config file's folder)";
      }
      if (k.kind == Kind::kSecret && !v.text.empty()) s.value = kRedacted;
      out->push_back(std::move(s));
    }
  }

  const std::string path_;
  std::string file_dir_;
  const Environment& env_;
  std::map<std::string, Value> values_;
  std::vector<TokenValue> tokens_;
  std::string tokens_origin_;
};

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::string config_env_name(std::string_view key) {
  std::string name = "FACTORY_";
  for (char c : key) {
    if (c == '.') {
      name += "__";
    } else {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return name;
}

std::string default_config_path(const Environment& env) {
  if (auto it = env.find("FACTORY_CONFIG"); it != env.end() && !it->second.empty()) {
    return it->second;
  }
  std::error_code ec;
  if (fs::is_regular_file("config/factory.yaml", ec)) return "config/factory.yaml";
  return "";
}

Result<FactoryConfig> load_factory_config(const std::string& path, const FlagOverrides& flags,
                                          const Environment& env) {
  Loader loader(path, env);
  FACTORY_RETURN_IF_ERROR(loader.load_file());
  FACTORY_RETURN_IF_ERROR(loader.load_env());
  FACTORY_RETURN_IF_ERROR(loader.load_flags(flags));
  return loader.build();
}

}  // namespace factory::cli
