// The daemon config's key table and value checks (factory_config_keys.h).
#include "cli/factory_config_keys.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>

#include <arpa/inet.h>

#include "cli/factory_config.h"
#include "http/request_guard.h"

namespace factory::cli::config_keys {

using config::in_quotes;
using config::YamlAliases;

// The reference order (docs/user-guide.md "Configuration" follows it).
const std::vector<KeySpec>& keys() {
  static const std::vector<KeySpec> table = [] {
    const http::ServerOptions so;
    const http::WebhookConfig wc;
    const http::JwtOptions jo;
    std::vector<KeySpec> k = {
        {"data_dir", Kind::kPath, "./data"},
        {"config_dir", Kind::kPath, ""},
        {"server.listen", Kind::kListen, so.address + ":" + std::to_string(so.port)},
        {"server.public_url", Kind::kUrl, ""},
        {"server.allowed_hosts", Kind::kHosts, ""},
        {"server.io_threads", Kind::kInt, std::to_string(so.io_threads), 1, 64},
        {"server.handler_threads", Kind::kInt, std::to_string(so.handler_threads), 1, 1024},
        {"server.long_poll_limit", Kind::kInt, std::to_string(so.long_poll_limit), 1, 1024},
        {"server.max_connections", Kind::kInt, std::to_string(so.max_connections), 1, 1'000'000},
        {"server.header_limit_bytes", Kind::kInt, std::to_string(so.header_limit), 1024, 1 << 20},
        {"server.read_timeout_ms", Kind::kInt, std::to_string(so.read_timeout_ms), 1, kDay},
        {"server.idle_timeout_ms", Kind::kInt, std::to_string(so.idle_timeout_ms), 1, kDay},
        {"server.handshake_timeout_ms", Kind::kInt, std::to_string(so.handshake_timeout_ms), 1,
         kDay},
        {"server.refusal_audit_window_ms", Kind::kInt, std::to_string(so.refusal_audit_window_ms),
         0, kDay},
        {"server.shutdown_timeout_ms", Kind::kInt, "25000", 0, 3600 * 1000},
        {"server.tls.cert_file", Kind::kPath, ""},
        {"server.tls.key_file", Kind::kPath, ""},
        {"server.tls.client_ca_file", Kind::kPath, ""},
        {"server.tls.require_client_cert", Kind::kBool, "false"},
        {"auth.rate_limit.requests_per_s", Kind::kRate, "0"},
        {"auth.rate_limit.burst", Kind::kRate, "0"},
        {"auth.jwt.jwks_url", Kind::kUrl, ""},
        {"auth.jwt.jwks_file", Kind::kPath, ""},
        {"auth.jwt.jwks_ca_file", Kind::kPath, ""},
        {"auth.jwt.issuer", Kind::kText, ""},
        {"auth.jwt.audience", Kind::kText, ""},
        {"auth.jwt.role_claim", Kind::kText, jo.policy.role_claim},
        {"auth.jwt.roles.viewer", Kind::kText, ""},
        {"auth.jwt.roles.operator", Kind::kText, ""},
        {"auth.jwt.roles.admin", Kind::kText, ""},
        {"auth.jwt.leeway_s", Kind::kInt, std::to_string(jo.policy.leeway_s), 0, 600},
        {"auth.jwt.jwks_min_refresh_s", Kind::kInt, std::to_string(jo.min_refresh_s), 1, 86400},
    };
    for (std::string source : {"github", "jira"}) {
      std::string p = "webhooks." + source + ".";
      k.push_back({p + "enabled", Kind::kBool, wc.enabled ? "true" : "false"});
      k.push_back({p + "topic", Kind::kTopic, wc.topic});
      k.push_back({p + "secret", Kind::kSecret, "", 0, 0, true});
      k.push_back({p + "secret_env", Kind::kEnvName, "", 0, 0, true});
      k.push_back({p + "secret_file", Kind::kPath, "", 0, 0, true});
      k.push_back(
          {p + "body_limit_bytes", Kind::kInt, std::to_string(wc.body_limit), 1024, 64 << 20});
    }
    k.push_back({"logging.level", Kind::kLevel, "info"});
    return k;
  }();
  return table;
}

const KeySpec* find_key(std::string_view key) {
  for (const KeySpec& k : keys()) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

// Spellings people reach for (other servers' names, our struct fields).
// clang-format off
const YamlAliases kAliases = {
    {"address", "listen"},           {"bind", "listen"},
    {"port", "listen"},              {"listen_address", "listen"},
    {"threads", "handler_threads"},  {"workers", "handler_threads"},
    {"header_limit", "header_limit_bytes"}, {"cert", "cert_file"},
    {"certificate", "cert_file"},    {"key", "key_file"},
    {"ca_file", "client_ca_file"},   {"ca", "client_ca_file"},
    {"token", "tokens"},             {"hash", "sha256"},
    {"token_sha256", "sha256"},      {"log", "logging"},
    {"log_level", "logging"},        {"webhook", "webhooks"},
    {"shutdown_timeout", "shutdown_timeout_ms"}, {"body_limit", "body_limit_bytes"},
    {"secret_environment", "secret_env"},        {"secret_path", "secret_file"},
    {"rate", "requests_per_s"},      {"rps", "requests_per_s"},
    {"datadir", "data_dir"},         {"enable", "enabled"},
};
// clang-format on

bool valid_env_name(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool valid_token_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "IP:PORT" / "[IPv6]:PORT" / "localhost:PORT". *error says what is wrong and how to fix it.
bool parse_listen(std::string_view text, std::string* address, uint16_t* port, std::string* error) {
  const std::string example =
      "e.g. 127.0.0.1:7070 (this machine only) or 0.0.0.0:7070 (every "
      "interface; needs auth.tokens)";
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with("[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *error = "write an IPv6 address as [ADDRESS]:PORT, e.g. [::1]:7070";
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      *error = "it has no port; write IP:PORT, " + example;
      return false;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      *error = "an IPv6 address needs brackets: [ADDRESS]:PORT, e.g. [::1]:7070";
      return false;
    }
  }
  if (host.empty()) {
    *error = "it has no address; write IP:PORT, " + example;
    return false;
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (port_text.empty() || ec != std::errc() || p != port_text.data() + port_text.size() ||
      value > 65535) {
    *error = "the port must be a number from 0 to 65535 (0 picks a free port), " + example;
    return false;
  }
  std::string h(host);
  if (h == "localhost") h = "127.0.0.1";
  unsigned char buf[16];
  if (inet_pton(AF_INET, h.c_str(), buf) != 1 && inet_pton(AF_INET6, h.c_str(), buf) != 1) {
    *error = in_quotes(host) +
             " is not an IP address (host names are not resolved for listening); " + example;
    return false;
  }
  *address = h;
  *port = static_cast<uint16_t>(value);
  return true;
}

bool is_loopback(const std::string& address) {
  unsigned char v4[4];
  if (inet_pton(AF_INET, address.c_str(), v4) == 1) return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, address.c_str(), v6) != 1) return false;
  static const unsigned char kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(v6, v6 + 16, kOne)) return true;
  return std::equal(v6, v6 + 12, kMapped) && v6[12] == 127;  // ::ffff:127.x.y.z
}

std::optional<obs::Level> parse_level(std::string_view s) {
  if (s == "debug") return obs::Level::kDebug;
  if (s == "info") return obs::Level::kInfo;
  if (s == "warn") return obs::Level::kWarn;
  if (s == "error") return obs::Level::kError;
  return std::nullopt;
}

std::string format_double(double d) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, p) : std::to_string(d);
}

}  // namespace factory::cli::config_keys
