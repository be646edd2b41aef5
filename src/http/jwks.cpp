#include "http/jwks.h"

#include <algorithm>
#include <charconv>

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "base/file.h"
#include "http/client.h"
#include "obs/logger.h"

namespace factory::http {

namespace {

struct SplitUrl {
  std::string origin;  // scheme://host[:port], what Client::connect takes
  std::string target;  // /path?query
  bool loopback = false;
  bool https = false;
};

std::optional<SplitUrl> split_url(const std::string& text) {
  auto url = boost::urls::parse_absolute_uri(text);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty() ||
      url->has_userinfo() || url->has_fragment()) {
    return std::nullopt;
  }
  SplitUrl out;
  out.https = url->scheme() == "https";
  out.origin = std::string(url->scheme()) + "://" + std::string(url->encoded_host_and_port());
  out.target = url->encoded_path().empty() ? "/" : std::string(url->encoded_path());
  if (url->has_query()) out.target += "?" + std::string(url->encoded_query());
  std::string host(url->host());
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  out.loopback = (!ec && addr.is_loopback()) || host == "localhost";
  return out;
}

}  // namespace

int64_t jwks_cache_seconds(std::string_view cache_control) {
  std::string value(cache_control);
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  int64_t s = JwtAuthenticator::kDefaultCacheS;
  if (value.find("no-store") != std::string::npos || value.find("no-cache") != std::string::npos) {
    s = 0;
  } else if (size_t at = value.find("max-age="); at != std::string::npos) {
    const char* p = value.data() + at + 8;
    int64_t age = 0;
    auto [end, ec] = std::from_chars(p, value.data() + value.size(), age);
    if (ec == std::errc() && end != p) s = age;
  }
  return std::clamp(s, JwtAuthenticator::kMinCacheS, JwtAuthenticator::kMaxCacheS);
}

Status validate_jwt_options(const JwtOptions& o) {
  if (!o.jwks_url.empty() && !o.jwks_file.empty()) {
    return Status::invalid_argument(
        "auth.jwt sets both jwks_url and jwks_file; the keys come from one of them: keep one");
  }
  if (!o.jwks_url.empty()) {
    auto url = split_url(o.jwks_url);
    if (!url) {
      return Status::invalid_argument(fmt::format(
          "auth.jwt.jwks_url '{}' is not an http(s) URL without user:password@ or #fragment; "
          "e.g. https://sso.example.com/realms/factory/protocol/openid-connect/certs",
          printable(o.jwks_url, 200)));
    }
    if (!url->https && !url->loopback) {
      return Status::invalid_argument(fmt::format(
          "auth.jwt.jwks_url '{}' is plain http to another machine: whoever sits on the path "
          "could swap in their own keys; use https (plain http only to 127.0.0.1)",
          printable(o.jwks_url, 200)));
    }
  }
  const JwtPolicy& p = o.policy;
  if (p.issuer.empty() || p.audience.empty()) {
    return Status::invalid_argument(
        "auth.jwt needs issuer (Keycloak: https://HOST/realms/REALM) and audience (the client "
        "id tokens are issued for) to accept JWTs");
  }
  if (p.role_claim.empty() || p.role_map.empty()) {
    return Status::invalid_argument(
        "auth.jwt needs role_claim and at least one of roles.viewer, roles.operator, "
        "roles.admin: without a mapping no token could have a role");
  }
  if (p.leeway_s < 0 || p.leeway_s > 600) {
    return Status::invalid_argument("auth.jwt.leeway_s must be 0 to 600 seconds");
  }
  if (o.min_refresh_s < 1) {
    return Status::invalid_argument("auth.jwt.jwks_min_refresh_s must be at least 1 second");
  }
  return Status::ok_status();
}

Result<std::unique_ptr<JwtAuthenticator>> JwtAuthenticator::start(const JwtOptions& options,
                                                                  const base::Clock* clock) {
  if (!options.enabled()) {
    return Status::invalid_argument("auth.jwt needs jwks_url or jwks_file");
  }
  FACTORY_RETURN_IF_ERROR(validate_jwt_options(options));
  std::unique_ptr<JwtAuthenticator> a(new JwtAuthenticator(options, clock));
  {
    base::MutexLock lock(&a->mu_);
    a->last_fetch_ms_ = clock->now_ms();
  }
  Status s = a->fetch();
  if (!s.ok()) {
    if (!options.jwks_file.empty()) return s;
    obs::warn("JWT bearer tokens are refused until the JWKS loads; retrying",
              {{"source", options.jwks_url}, {"every_s", options.min_refresh_s}});
  }
  a->refresher_ = std::thread([raw = a.get()] { raw->run(); });
  return a;
}

JwtAuthenticator::JwtAuthenticator(const JwtOptions& options, const base::Clock* clock)
    : options_(options),
      clock_(clock),
      source_(options.jwks_url.empty() ? "the JWKS file " + options.jwks_file
                                       : "the JWKS at " + options.jwks_url) {}

JwtAuthenticator::~JwtAuthenticator() {
  mu_.lock();
  stop_ = true;
  cv_.signal_all();
  mu_.unlock();
  if (refresher_.joinable()) refresher_.join();
}

Result<std::string> JwtAuthenticator::read_source(int64_t* max_age_s) const {
  *max_age_s = kDefaultCacheS;  // a file: re-read as often as a URL without Cache-Control
  std::string text;
  if (!options_.jwks_file.empty()) {
    FACTORY_RETURN_IF_ERROR(base::read_file(options_.jwks_file, "JWKS file", &text));
  } else {
    auto url = split_url(options_.jwks_url);
    if (!url) return Status::invalid_argument("auth.jwt.jwks_url is not a URL");
    auto client = Client::connect({.url = url->origin,
                                   .ca_file = options_.jwks_ca_file,
                                   .timeout_ms = options_.fetch_timeout_ms});
    if (!client.ok()) return client.status();
    auto r = (*client)->request("GET", url->target, {}, {{"Accept", "application/json"}});
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return Status::unavailable(fmt::format("{} answered HTTP {}", source_, r->status));
    }
    text = std::move(r->body);
    *max_age_s = jwks_cache_seconds(r->header("cache-control"));
  }
  if (text.size() > kMaxJwksBytes) {
    return Status::invalid_argument(
        fmt::format("{} is {} bytes; over {}", source_, text.size(), kMaxJwksBytes));
  }
  return text;
}

Status JwtAuthenticator::fetch() {
  int64_t age_s = 0;
  Result<std::string> text = read_source(&age_s);
  Result<JwkSet> set = text.ok() ? JwkSet::parse(*text) : Result<JwkSet>(text.status());
  base::MutexLock lock(&mu_);
  ++fetches_done_;
  auto now = std::chrono::steady_clock::now();
  if (!set.ok()) {
    last_error_ = std::string(set.status().message());
    next_due_ = now + std::chrono::seconds(options_.min_refresh_s);
    cv_.signal_all();
    obs::warn(keys_ ? "JWKS fetch failed; the keys loaded before stay in use"
                    : "JWKS fetch failed; no keys yet",
              {{"source", source_}, {"error", last_error_}});
    return set.status();
  }
  for (const std::string& skipped : set->skipped()) {
    obs::info("JWKS key skipped", {{"source", source_}, {"key", skipped}});
  }
  obs::info("JWKS loaded", {{"source", source_}, {"keys", static_cast<uint64_t>(set->size())}});
  keys_ = std::make_shared<const JwkSet>(std::move(*set));
  last_error_.clear();
  next_due_ = now + std::chrono::seconds(age_s);
  cv_.signal_all();
  return Status::ok_status();
}

void JwtAuthenticator::run() {
  mu_.lock();
  while (!stop_) {
    if (wanted_ || std::chrono::steady_clock::now() >= next_due_) {
      wanted_ = false;
      last_fetch_ms_ = clock_->now_ms();
      mu_.unlock();
      (void)fetch();  // logs its own failure and schedules the retry
      mu_.lock();
      continue;
    }
    cv_.wait_until(next_due_);
  }
  mu_.unlock();
}

JwtVerdict JwtAuthenticator::authenticate(std::string_view token) {
  JwtVerdict v;
  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<const JwkSet> keys;
    std::string error;
    {
      base::MutexLock lock(&mu_);
      keys = keys_;
      error = last_error_;
    }
    if (!keys) {
      v.why = fmt::format("no JWKS is loaded yet ({}: {}); retrying every {} s", source_, error,
                          options_.min_refresh_s);
      return v;
    }
    v = verify_jwt(token, *keys, options_.policy, clock_->now_ms());
    if (!v.unknown_kid) return v;
    base::MutexLock lock(&mu_);
    if (keys_ != keys && attempt == 0) continue;  // a fetch landed meanwhile: it decides
    int64_t now = clock_->now_ms();
    if (wanted_) {
      v.why += fmt::format("; {} is being refetched: retry in a few seconds", source_);
    } else if (now - last_fetch_ms_ >= options_.min_refresh_s * 1000) {
      wanted_ = true;
      last_fetch_ms_ = now;
      cv_.signal_all();
      v.why += fmt::format(
          "; refetching {} (the provider may have rotated its keys): retry in a few seconds",
          source_);
    } else {
      v.why += fmt::format("; {} was fetched less than {} s ago and is not refetched sooner",
                           source_, options_.min_refresh_s);
    }
    return v;
  }
}

uint64_t JwtAuthenticator::fetches_for_test() const {
  base::MutexLock lock(&mu_);
  return fetches_done_;
}

bool JwtAuthenticator::wait_fetches_for_test(uint64_t n, int64_t timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  base::MutexLock lock(&mu_);
  while (fetches_done_ < n) {
    if (!cv_.wait_until(deadline)) return fetches_done_ >= n;
  }
  return true;
}

}  // namespace factory::http
