#include "http/request_guard.h"

#include <algorithm>
#include <cctype>

#include <arpa/inet.h>
#include <fmt/format.h>

namespace factory::http {
namespace {

struct HostPort {
  std::string name;  // lower-case; an IPv6 address without its brackets
  std::optional<uint16_t> port;
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// For messages: a header value as the caller sent it, bounded and without control characters.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 100)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? '?' : c;
  }
  return s.size() > 100 ? out + "..." : out;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

// "name", "name:port", "[v6]", "[v6]:port" (RFC 9110 Host). nullopt when malformed.
std::optional<HostPort> parse_host_port(std::string_view s) {
  HostPort out;
  std::string_view name, port;
  bool has_port = false;
  if (s.starts_with('[')) {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
      has_port = true;
    }
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return std::nullopt;
    }
  } else {
    size_t colon = s.find(':');
    name = s.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = s.substr(colon + 1);
      has_port = true;
    }
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
        })) {
      return std::nullopt;
    }
  }
  if (has_port) {
    out.port = parse_port(port);
    if (!out.port) return std::nullopt;
  }
  out.name = lower(name);
  return out;
}

bool is_loopback_name(const std::string& name) {
  if (name == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, name.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// 0.0.0.0 and :: name no host; a browser may still send them to the local machine.
bool is_unspecified(const std::string& name) {
  in_addr v4{};
  if (::inet_pton(AF_INET, name.c_str(), &v4) == 1) return v4.s_addr == 0;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, name.c_str(), &v6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&v6);
}

std::string strip_brackets(std::string_view a) {
  if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
  return lower(a);
}

bool allowed(const HostPolicy& policy, const HostPort& hp, uint16_t default_port,
             std::string_view local_address) {
  uint16_t port = hp.port.value_or(default_port);
  if (port == policy.port && !is_unspecified(hp.name) &&
      (is_loopback_name(hp.name) || hp.name == strip_brackets(policy.listen_address) ||
       hp.name == strip_brackets(local_address))) {
    return true;
  }
  for (const std::string& entry : policy.allowed_hosts) {
    auto e = parse_host_port(entry);
    if (e && e->name == hp.name && (!e->port || *e->port == port)) return true;
  }
  return false;
}

}  // namespace

std::optional<GuardRefusal> check_host(const HostPolicy& policy,
                                       std::optional<std::string_view> host,
                                       std::string_view local_address) {
  auto hp = host ? parse_host_port(*host) : std::nullopt;
  if (hp && allowed(policy, *hp, policy.tls ? 443 : 80, local_address)) return std::nullopt;
  std::string example = hp ? hp->name : "factory.example.com";
  return GuardRefusal{
      421, "misdirected_host",
      fmt::format("Host '{}' is not a name this server answers to (refused so that a web page "
                  "cannot reach it through DNS rebinding); call it as {}://127.0.0.1:{}, or, "
                  "to reach it by that name, add it to server.allowed_hosts in factory.yaml "
                  "(allowed_hosts: [\"{}\"]) and restart factoryd",
                  host ? shown(*host) : "(none)", policy.tls ? "https" : "http", policy.port,
                  shown(example))};
}

std::optional<GuardRefusal> check_origin(const HostPolicy& policy,
                                         std::optional<std::string_view> origin,
                                         std::string_view local_address) {
  if (!origin) return std::nullopt;
  std::string_view o = *origin;
  std::string_view scheme = policy.tls ? "https://" : "http://";
  if (o.size() > scheme.size() && lower(o.substr(0, scheme.size())) == scheme) {
    auto hp = parse_host_port(o.substr(scheme.size()));
    if (hp && allowed(policy, *hp, policy.tls ? 443 : 80, local_address)) return std::nullopt;
  }
  return GuardRefusal{
      403, "forbidden_origin",
      fmt::format("a request from the web page origin '{}' is refused: factoryd's API does not "
                  "take requests that web pages on other sites make through a browser; call it "
                  "with curl or the factoryd CLI (they send no Origin)",
                  shown(o))};
}

std::optional<GuardRefusal> check_content_type(std::string_view method,
                                               std::optional<std::string_view> content_type) {
  if (method == "GET" || method == "HEAD") return std::nullopt;
  std::string_view media = content_type.value_or("");
  media = media.substr(0, media.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  if (lower(media) == "application/json") return std::nullopt;
  return GuardRefusal{
      415, "unsupported_media_type",
      fmt::format("{} needs 'Content-Type: application/json' (got {}): writes in any other "
                  "type are refused, since web pages can send those across sites; with curl "
                  "add -H 'Content-Type: application/json'",
                  method, content_type ? "'" + shown(*content_type) + "'" : "none")};
}

std::optional<std::string> normalize_allowed_host(std::string_view entry) {
  auto hp = parse_host_port(entry);
  if (!hp) return std::nullopt;
  bool v6 = hp->name.find(':') != std::string::npos;
  std::string name = v6 ? "[" + hp->name + "]" : hp->name;
  return hp->port ? name + ":" + std::to_string(*hp->port) : name;
}

}  // namespace factory::http
