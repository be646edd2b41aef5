#include "deploy/http_post.h"

#include "http/client.h"

namespace factory::stages {
namespace {

struct SplitUrl {
  std::string origin;  // scheme://host[:port]
  std::string target;  // /path?query ("/" when none)
};

Result<SplitUrl> split(std::string_view url) {
  size_t scheme_end = url.find("://");
  std::string_view scheme = scheme_end == std::string_view::npos ? "" : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return Status::invalid_argument("'" + redact_url(url) + "' is not an http:// or https:// URL");
  }
  size_t path = url.find_first_of("/?#", scheme_end + 3);
  SplitUrl s;
  s.origin = std::string(url.substr(0, path));
  if (path == std::string_view::npos) {
    s.target = "/";
  } else {
    std::string_view rest = url.substr(path);
    rest = rest.substr(0, rest.find('#'));
    s.target = rest.empty() || rest.front() != '/' ? "/" + std::string(rest) : std::string(rest);
  }
  if (s.origin.size() <= scheme.size() + 3) {
    return Status::invalid_argument("'" + redact_url(url) + "' has no host");
  }
  return s;
}

}  // namespace

Result<HttpPostResult> post_json(std::string_view url, std::string_view body, int64_t timeout_ms) {
  auto parts = split(url);
  if (!parts.ok()) return parts.status();
  auto client = http::Client::connect({.url = parts->origin, .timeout_ms = timeout_ms});
  if (!client.ok()) return client.status();
  auto r = (*client)->request("POST", parts->target, body, {{"content-type", "application/json"}});
  if (!r.ok()) return r.status();
  HttpPostResult out;
  out.status = r->status;
  out.body = r->body.substr(0, 4096);
  return out;
}

std::string redact_url(std::string_view url) {
  size_t scheme_end = url.find("://");
  size_t host_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  size_t path = url.find_first_of("/?#", host_start);
  std::string_view authority = url.substr(
      host_start, path == std::string_view::npos ? std::string_view::npos : path - host_start);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string out = std::string(url.substr(0, host_start)) + std::string(authority);
  if (path != std::string_view::npos && url[path] == '/') {
    std::string_view rest = url.substr(path + 1);
    size_t cut = rest.find_first_of("/?#");
    std::string_view first = rest.substr(0, cut);
    out += "/" + std::string(first);
    if (cut != std::string_view::npos && rest[cut] == '/') out += "/...";
  }
  return out;
}

}  // namespace factory::stages
