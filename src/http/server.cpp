#include "http/server.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "http/jwks.h"
#include "http/refusal_audit.h"
#include "http/request_guard.h"
#include "http/request_target.h"
#include "http/tls_context.h"
#include "http/unix_socket_path.h"
#include "obs/logger.h"
#include "store/run_rows.h"

namespace factory::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using local_stream = boost::asio::local::stream_protocol;
using LocalStream = beast::basic_stream<local_stream>;  // a connection on the unix socket

std::string hash_token(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(digest));
  for (unsigned char c : digest) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

bool is_loopback(std::string_view address) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(std::string(address), ec);
  return !ec && addr.is_loopback();
}

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

// Token buckets per caller: `rate` tokens a second up to `burst`.
class RateLimiter {
 public:
  explicit RateLimiter(RateLimit limit)
      : rate_(limit.requests_per_s), burst_(limit.burst > 0 ? limit.burst : limit.requests_per_s) {}

  // 0 when the request may go ahead, else the seconds to wait (Retry-After, rounded up).
  int64_t take(const std::string& who) {
    if (rate_ <= 0) return 0;
    double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    std::lock_guard<std::mutex> lock(mu_);
    Bucket& b = buckets_.try_emplace(who, Bucket{burst_, now}).first->second;
    b.tokens = std::min(burst_, b.tokens + (now - b.at) * rate_);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - b.tokens) / rate_)));
  }

 private:
  struct Bucket {
    double tokens;
    double at;
  };
  const double rate_;
  const double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // one per token, JWT subject or address
};

constexpr int64_t kAcceptBackoffMinMs = 10;
constexpr int64_t kAcceptBackoffMaxMs = 1000;

// "ip" of "ip:port" (IPv6 addresses are printed without brackets, so the last colon).
std::string address_of(std::string_view remote) {
  return std::string(remote.substr(0, remote.rfind(':')));
}

// A long-poll request: it asks to wait (wait_ms present and not 0).
bool waits(const Request& req) {
  auto w = req.query_value("wait_ms");
  return w && !w->empty() && w->find_first_not_of('0') != std::string_view::npos;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  const Router* router = nullptr;
  ServerHooks hooks;
  std::optional<ssl::context> tls;
  std::vector<std::thread> io_threads;
  std::unique_ptr<asio::thread_pool> handlers;
  std::unique_ptr<asio::thread_pool> long_polls;  // long_poll_limit threads
  std::atomic<int> long_polls_inflight{0};
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<JwtAuthenticator> jwt;  // null unless options.jwt.enabled()
  std::unique_ptr<RefusalAuditLimiter> refusal_limiter;
  HostPolicy host_policy;
  // The accept chain's state: one accept (or its backoff timer) is outstanding at a time, so
  // these are never touched concurrently.
  int64_t accept_failures = 0;
  int64_t accept_backoff_ms = 0;
  uint16_t port = 0;
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  bool stopped = false;

  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int inflight = 0;  // requests from handler start until their response is written

  // Last: destroyed first, with the sessions still queued on it, while everything they use
  // (the TLS context, counters, hooks) is alive.
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;                // address:port, or
  std::optional<local_stream::acceptor> unix_acceptor;  // options.unix_socket
  std::optional<asio::steady_timer> accept_timer;       // the backoff after an accept error

  // Authenticates `authorization` (the header's value, may be empty). Sets *who; returns
  // 0 when accepted, else the HTTP status to refuse with and *why.
  int authenticate(std::string_view authorization, Principal* who, std::string* why) const {
    if (options.tokens.empty() && !jwt) {
      *who = {"local", Role::kAdmin};
      return 0;
    }
    if (authorization.empty()) {
      *why = "no API token: send 'Authorization: Bearer <token>'";
      return 401;
    }
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() ||
        !std::equal(kBearer.begin(), kBearer.end(), authorization.begin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      *why = "the Authorization header must be 'Bearer <token>'";
      return 401;
    }
    std::string_view token = authorization.substr(kBearer.size());
    std::string hash = hash_token(token);
    const TokenEntry* found = nullptr;
    for (const TokenEntry& t : options.tokens) {  // every entry compared: no early exit
      if (constant_time_equal(hash, t.sha256_hex)) found = &t;
    }
    if (!found && jwt && token.find('.') != std::string_view::npos) {
      JwtVerdict v = jwt->authenticate(token);
      // A refused token names nobody: its claims are unverified (a 403's are verified).
      if (v.status != 401) *who = {v.subject, v.role, "jwt", v.username};
      *why = std::move(v.why);
      return v.status;
    }
    if (!found) {
      *why = "the API token is not valid; check the token or ask an admin for one";
      return 401;
    }
    *who = {found->name, found->role};
    return 0;
  }

  void handler_started() {
    std::lock_guard<std::mutex> lock(inflight_mu);
    ++inflight;
  }
  void handler_done() {
    std::lock_guard<std::mutex> lock(inflight_mu);
    if (--inflight == 0) inflight_cv.notify_all();
  }

  // Whether a row for this outcome is written: nullopt when left out (a refusal flood), else
  // how many refusals from the caller's address were left out before it.
  std::optional<int64_t> admit_audit_row(const Request& req, int status) {
    if (!hooks.audit) return std::nullopt;
    if (!rate_limited_refusal(req, status)) return 0;
    return refusal_limiter->admit(address_of(req.remote), base::SystemClock().now_ms());
  }

  void audit(const Request& req, const Route& route, int status, std::string_view message,
             int64_t left_out, std::string_view detail = {}) {
    if (!hooks.audit) return;
    store::AuditRow row;
    row.at_ms = base::SystemClock().now_ms();
    row.actor = req.principal.actor();
    row.action = route.action.empty() ? route.method + " " + route.pattern : route.action;
    std::string_view object = req.path;
    constexpr std::string_view kApi = "/api/v1/";
    if (object.substr(0, kApi.size()) == kApi) object.remove_prefix(kApi.size());
    row.object = route.audit_object ? audit_object(route.audit_object(req)) : audit_object(object);
    row.detail = std::string(detail);
    row.result = status < 400 ? "ok" : fmt::format("{} {}", status, message);
    if (left_out > 0) {
      row.result += fmt::format(" (+{} refusals from {} before this one not recorded one by one)",
                                left_out, address_of(req.remote));
    }
    row.request_id = req.request_id;
    hooks.audit(std::move(row));
  }
};

namespace {

// The "message" of an error body, for the audit row; "" when the body is not one.
std::string error_message(const Response& r) {
  if (r.status < 400) return "";
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) return "";
  const auto* e = v.as_object().if_contains("error");
  if (!e || !e->is_object()) return "";
  const auto* m = e->as_object().if_contains("message");
  return m && m->is_string() ? std::string(m->as_string()) : "";
}

// One connection. Stream is beast::tcp_stream, beast::ssl_stream<beast::tcp_stream>, or
// LocalStream (the unix socket: the caller is `peer`, whom the socket's mode let in).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls =
      !std::is_same_v<Stream, beast::tcp_stream> && !std::is_same_v<Stream, LocalStream>;
  static constexpr bool kUnix = std::is_same_v<Stream, LocalStream>;

 public:
  Session(Server::Impl* server, Stream stream, std::string remote, std::string local,
          Principal peer = {})
      : server_(server),
        stream_(std::move(stream)),
        remote_(std::move(remote)),
        local_(std::move(local)),
        peer_(std::move(peer)) {
    ++server_->connections;
  }
  ~Session() { --server_->connections; }

  // `reject`: over max_connections (plain HTTP only: a TLS connection over the limit is closed
  // by the acceptor before any handshake work).
  void start(bool reject) {
    if constexpr (!kTls) {
      if (reject) return reject_busy();
      read_header();
    } else {
      tcp_layer().expires_after(std::chrono::milliseconds(server_->options.handshake_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return;  // not TLS, or no client certificate: drop it
                                self->read_header();
                              });
    }
  }

 private:
  // The stream whose timer and socket the session sets and closes (the TCP or unix stream).
  auto& tcp_layer() { return beast::get_lowest_layer(stream_); }

  void reject_busy() {
    Response r = error_response(503, "unavailable",
                                "too many connections; retry later or raise "
                                "server.max_connections");
    write(std::move(r), /*keep_alive=*/false, nullptr);
  }

  void read_header() {
    header_parser_.emplace();
    header_parser_->header_limit(static_cast<uint32_t>(server_->options.header_limit));
    // The route's limit is applied once the route is known (on_header); until then a large
    // Content-Length must not fail the header read.
    header_parser_->body_limit(std::numeric_limits<uint64_t>::max());
    // A fresh request gets read_timeout_ms; a kept-alive connection waits idle_timeout_ms.
    int64_t timeout =
        requests_ == 0 ? server_->options.read_timeout_ms : server_->options.idle_timeout_ms;
    tcp_layer().expires_after(std::chrono::milliseconds(timeout));
    bhttp::async_read_header(
        stream_, buffer_, *header_parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void refuse(int status, std::string_view code, std::string_view message, Headers extra = {}) {
    Response r = error_response(status, code, message);
    r.headers = std::move(extra);
    write(std::move(r), /*keep_alive=*/false, nullptr);
  }

  void on_header(beast::error_code ec) {
    if (ec == bhttp::error::header_limit) {
      return refuse(431, "header_too_large",
                    fmt::format("request header is over {} bytes; send a smaller header",
                                server_->options.header_limit));
    }
    if (ec) return close();  // timeout, reset, or not HTTP: nothing to answer
    start_ = std::chrono::steady_clock::now();
    ++requests_;
    auto& header = header_parser_->get();
    req_ = std::make_shared<Request>();
    Request& req = *req_;
    req.method = std::string(header.method_string());
    req.remote = remote_;
    for (const auto& field : header) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      req.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    auto rid = req.header("x-request-id");
    req.request_id = rid && sane_request_id(*rid) ? std::string(*rid) : new_request_id();
    keep_alive_ = header.keep_alive() && !server_->stopping;
    if (auto refused = browser_refusal(req)) {
      return refuse(refused->status, refused->code, refused->message);
    }

    RequestTarget target = parse_request_target(header.target());
    if (!target.ok()) return refuse(400, target.refusal_code, target.refusal_message);
    req.path = std::move(target.path);
    req.query = std::move(target.query);

    Router::Match m = server_->router->match(req.method, req.path);
    if (!m.route) {
      if (!m.allowed.empty()) {
        std::string allow;
        for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
        return refuse(
            405, "method_not_allowed",
            fmt::format("{} is not allowed on {}; allowed: {}", req.method, req.path, allow),
            {{"Allow", allow}});
      }
      return refuse(404, "not_found",
                    fmt::format("no route {} {}; see /api/v1/openapi.json", req.method, req.path));
    }
    route_ = m.route;
    req.params = std::move(m.params);

    if (route_->role != Role::kPublic) {
      // Webhooks (public) are exempt: their HMAC signature is what a browser cannot forge.
      if (auto refused = check_content_type(req.method, req.header("content-type"))) {
        return refuse(refused->status, refused->code, refused->message);
      }
      std::string why;
      auto auth = req.header("authorization");
      int refused = 0;
      if constexpr (kUnix) {
        req.principal = peer_;  // let in by the socket file's owner-only mode
      } else {
        refused = server_->authenticate(auth.value_or(""), &req.principal, &why);
      }
      if (!refused && req.principal.role < route_->role) {
        refused = 403;
        why = fmt::format("token '{}' has role {}; {} {} needs {}", req.principal.name,
                          role_name(req.principal.role), req.method, route_->pattern,
                          role_name(route_->role));
      }
      if (refused) {
        audit_refusal(refused, why);
        return refuse(refused, refused == 401 ? "unauthenticated" : "forbidden", why,
                      refused == 401 ? Headers{{"WWW-Authenticate", "Bearer"}} : Headers{});
      }
      // Per caller: the token's or the JWT subject's name; in no-token mode, the address.
      bool no_token_mode = server_->options.tokens.empty() && !server_->jwt;
      std::string bucket =
          no_token_mode ? remote_address() : req.principal.kind + ":" + req.principal.name;
      if (int64_t wait_s = server_->limiter->take(bucket)) {
        audit_refusal(429, "rate limited");
        return refuse(
            429, "rate_limited",
            fmt::format("too many requests for '{}'; retry after {} s", req.principal.name, wait_s),
            {{"Retry-After", std::to_string(wait_s)}});
      }
    } else {
      req.principal = {"anonymous", Role::kPublic};
    }

    if (auto length = header_parser_->content_length(); length && *length > route_->body_limit) {
      return refuse(413, "body_too_large",
                    fmt::format("request body is {} bytes; {} accepts at most {}", *length,
                                route_->pattern, route_->body_limit));
    }
    body_parser_.emplace(std::move(*header_parser_));
    body_parser_->body_limit(route_->body_limit);
    tcp_layer().expires_after(std::chrono::milliseconds(server_->options.read_timeout_ms));
    auto expect = req.header("expect");
    if (expect && (*expect == "100-continue" || *expect == "100-Continue")) {
      // curl waits a second for this before sending a body over 1 KiB.
      auto cont =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      return bhttp::async_write(
          stream_, *cont, [self = this->shared_from_this(), cont](beast::error_code ec, size_t) {
            if (ec) return self->close();
            self->read_body();
          });
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(
        stream_, buffer_, *body_parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  std::string remote_address() const { return address_of(remote_); }

  // Host and Origin (request_guard.h), for every request before it is routed.
  std::optional<GuardRefusal> browser_refusal(const Request& req) const {
    if constexpr (kUnix) {
      return std::nullopt;  // no browser can reach a unix socket
    } else {
      if (auto r = check_host(server_->host_policy, req.header("host"), local_)) return r;
      return check_origin(server_->host_policy, req.header("origin"), local_);
    }
  }

  void audit_refusal(int status, std::string_view why) {
    if (!route_->audited) return;
    // Decided here, on the io thread, so that a flood does not even queue work on the pool.
    auto left_out = server_->admit_audit_row(*req_, status);
    if (!left_out) return;
    // The store write must not block the io thread.
    auto req = req_;
    const Route* route = route_;
    Server::Impl* server = server_;
    std::string message(why);
    asio::post(*server_->handlers, [server, req, route, status, message, n = *left_out] {
      server->audit(*req, *route, status, message, n);
    });
  }

  void on_body(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return refuse(413, "body_too_large",
                    fmt::format("request body is over {} bytes, the limit of {}",
                                route_->body_limit, route_->pattern));
    }
    if (ec) return close();
    req_->body = std::move(body_parser_->get().body());
    long_poll_ = route_->long_poll && waits(*req_);
    if (long_poll_ &&
        server_->long_polls_inflight.fetch_add(1) >= server_->options.long_poll_limit) {
      server_->long_polls_inflight.fetch_sub(1);
      long_poll_ = false;
      return refuse(503, "unavailable",
                    fmt::format("{} long-poll requests are waiting already "
                                "(server.long_poll_limit); retry after 1 s, or fetch without "
                                "wait_ms",
                                server_->options.long_poll_limit),
                    {{"Retry-After", "1"}});
    }
    tcp_layer().expires_never();
    server_->handler_started();
    counted_ = true;
    // Long-polls wait on their own pool: the shared one stays free for health checks and writes.
    asio::post(long_poll_ ? *server_->long_polls : *server_->handlers,
               [self = this->shared_from_this()] { self->run_handler(); });
  }

  // On the handler pool.
  void run_handler() {
    Response r;
    try {
      r = route_->handler(*req_);
    } catch (const std::exception& e) {
      obs::error("http handler threw", {{"route", route_->pattern}, {"what", e.what()}});
      r = error_response(500, "internal", "internal error; see the server log",
                         fmt::format("{{\"request_id\":\"{}\"}}", req_->request_id));
    }
    if (long_poll_) {
      long_poll_ = false;
      server_->long_polls_inflight.fetch_sub(1);
    }
    if (route_->audited) {
      if (auto left_out = server_->admit_audit_row(*req_, r.status)) {
        server_->audit(*req_, *route_, r.status, error_message(r), *left_out, r.audit_detail);
      }
    }
    asio::dispatch(
        stream_.get_executor(), [self = this->shared_from_this(), r = std::move(r)]() mutable {
          self->write(std::move(r), self->keep_alive_ && !self->server_->stopping, self->route_);
        });
  }

  void write(Response r, bool keep_alive, const Route* route) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->result(static_cast<unsigned>(r.status));
    res->version(11);
    res->set(bhttp::field::server, "factoryd");
    res->set(bhttp::field::content_type, r.content_type);
    if (req_) res->set("X-Request-Id", req_->request_id);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    int status = r.status;
    tcp_layer().expires_after(std::chrono::milliseconds(server_->options.read_timeout_ms));
    bhttp::async_write(
        stream_, *res,
        [self = this->shared_from_this(), res, keep_alive, route, status](
            beast::error_code ec, size_t) { self->on_written(ec, keep_alive, route, status); });
  }

  void on_written(beast::error_code ec, bool keep_alive, const Route* route, int status) {
    if (req_ && server_->hooks.on_request) {
      RequestRecord rec;
      rec.method = req_->method;
      rec.route = route ? route->pattern : "";
      rec.status = status;
      rec.duration_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      rec.principal = req_->principal.name;
      rec.request_id = req_->request_id;
      server_->hooks.on_request(rec);
    }
    if (counted_) {
      counted_ = false;
      server_->handler_done();
    }
    if (ec || !keep_alive) return close();
    req_.reset();
    route_ = nullptr;
    body_parser_.reset();
    read_header();
  }

  void close() {
    beast::error_code ec;
    // No TLS close_notify round trip: the peer may be gone; just close the socket.
    tcp_layer().socket().shutdown(asio::socket_base::shutdown_both, ec);
    tcp_layer().close();
  }

  Server::Impl* server_;
  Stream stream_;
  std::string remote_;
  std::string local_;  // the address the connection arrived on (Host may name it)
  Principal peer_;     // unix socket: the connected process's user
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::empty_body>> header_parser_;
  std::optional<bhttp::request_parser<bhttp::string_body>> body_parser_;
  std::shared_ptr<Request> req_;
  const Route* route_ = nullptr;
  bool keep_alive_ = true;
  int requests_ = 0;
  bool counted_ = false;    // this request is in Server::Impl::inflight until written
  bool long_poll_ = false;  // this request holds one of Server::Impl::long_polls_inflight
  std::chrono::steady_clock::time_point start_;
};

void do_accept(Server::Impl* impl);

// An accept error (EMFILE, ENFILE, ENOBUFS): the pending connection stays queued, so retrying
// at once fails again at once — a spin that logged millions of lines. Wait 10 ms doubling to
// 1 s between tries, and log the first failure of a burst and the recovery only.
void accept_failed(Server::Impl* impl, const beast::error_code& ec) {
  if (impl->accept_failures++ == 0) {
    obs::warn(
        "http accept failing; retrying with a backoff of up to 1 s (logged again when it "
        "recovers); raise the descriptor limit (LimitNOFILE) or lower "
        "server.max_connections",
        {{"error", ec.message()}});
  }
  impl->accept_backoff_ms =
      std::clamp(impl->accept_backoff_ms * 2, kAcceptBackoffMinMs, kAcceptBackoffMaxMs);
  impl->accept_timer->expires_after(std::chrono::milliseconds(impl->accept_backoff_ms));
  impl->accept_timer->async_wait([impl](beast::error_code e) {
    if (e || impl->stopping) return;
    do_accept(impl);
  });
}

// An accept worked: ends a burst of failures (accept_failed), saying so once.
void accept_succeeded(Server::Impl* impl) {
  if (impl->accept_failures == 0) return;
  obs::warn("http accept recovered", {{"failed_attempts", std::to_string(impl->accept_failures)}});
  impl->accept_failures = 0;
  impl->accept_backoff_ms = 0;
}

// The user of the process at the other end of a unix socket: {"unix:<user>", kAdmin}.
Principal unix_peer(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  std::string user = "unknown";
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    user = std::to_string(cred.uid);
    passwd pw{};
    passwd* found = nullptr;
    char buf[1024];
    if (::getpwuid_r(cred.uid, &pw, buf, sizeof buf, &found) == 0 && found) user = pw.pw_name;
  }
  return Principal{.name = user, .role = Role::kAdmin, .kind = "unix"};
}

void accept_unix(Server::Impl* impl) {
  impl->unix_acceptor->async_accept(
      asio::make_strand(impl->ioc), [impl](beast::error_code ec, local_stream::socket socket) {
        if (ec) {
          if (ec == asio::error::operation_aborted || impl->stopping) return;
          return accept_failed(impl, ec);
        }
        if (impl->stopping) return;
        accept_succeeded(impl);
        bool reject = impl->connections.load() >= impl->options.max_connections;
        Principal peer = unix_peer(socket.native_handle());
        std::make_shared<Session<LocalStream>>(impl, LocalStream(std::move(socket)), "unix", "unix",
                                               std::move(peer))
            ->start(reject);
        do_accept(impl);
      });
}

void do_accept(Server::Impl* impl) {
  if (impl->unix_acceptor) return accept_unix(impl);
  impl->acceptor->async_accept(
      asio::make_strand(impl->ioc), [impl](beast::error_code ec, tcp::socket socket) {
        if (ec) {
          if (ec == asio::error::operation_aborted || impl->stopping) return;
          return accept_failed(impl, ec);
        }
        if (impl->stopping) return;
        accept_succeeded(impl);
        beast::error_code ignored;
        bool reject = impl->connections.load() >= impl->options.max_connections;
        if (reject && impl->tls) {
          // No 503 under TLS: it would take a handshake (CPU, and up to handshake_timeout_ms of a
          // slot) to say it. Closing costs nothing and the client sees a refused connection.
          socket.close(ignored);
          return do_accept(impl);
        }
        auto ep = socket.remote_endpoint(ignored);
        std::string remote = fmt::format("{}:{}", ep.address().to_string(), ep.port());
        std::string local = socket.local_endpoint(ignored).address().to_string();
        if (impl->tls) {
          using S = beast::ssl_stream<beast::tcp_stream>;
          std::make_shared<Session<S>>(impl, S(std::move(socket), *impl->tls), remote, local)
              ->start(false);
        } else {
          std::make_shared<Session<beast::tcp_stream>>(impl, beast::tcp_stream(std::move(socket)),
                                                       remote, local)
              ->start(reject);
        }
        do_accept(impl);
      });
}

}  // namespace

namespace {

// Binds impl->acceptor to options.address:port and sets impl->port.
Status listen_tcp(Server::Impl* impl) {
  const ServerOptions& options = impl->options;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) {
    return Status::invalid_argument(
        fmt::format("listen address '{}' is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0",
                    options.address));
  }
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.emplace(impl->ioc);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::io_error(fmt::format("cannot listen on {}:{}: {}; is another factoryd running?",
                                        options.address, options.port, ec.message()));
  }
  impl->port = impl->acceptor->local_endpoint().port();
  return Status::ok_status();
}

// Binds impl->unix_acceptor to options.unix_socket, owner-only. The mode is set between bind
// and listen: until listen() every connect is refused, so nobody gets in before the chmod.
Status listen_unix(Server::Impl* impl) {
  const std::string& path = impl->options.unix_socket;
  auto usable = UnixSocketPath::open(path);  // a long path through its directory's descriptor
  if (!usable.ok()) return usable.status();
  local_stream::endpoint endpoint(usable->usable());
  boost::system::error_code ec;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::invalid_argument(
          fmt::format("'{}' exists and is not a socket; move it away", path));
    }
    // A server that answers there is alive; one that refuses left the file behind (kill -9).
    local_stream::socket probe(impl->ioc);
    probe.connect(endpoint, ec);
    if (!ec) {
      return Status::io_error(
          fmt::format("cannot listen on {}: another process serves there", path));
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::io_error(
          fmt::format("cannot remove the stale socket {}: {}", path, std::strerror(errno)));
    }
  }
  impl->unix_acceptor.emplace(impl->ioc);
  impl->unix_acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->unix_acceptor->bind(endpoint, ec);
  if (!ec && ::chmod(path.c_str(), 0600) != 0) {
    ec.assign(errno, boost::system::system_category());
  }
  if (!ec) impl->unix_acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl->unix_acceptor.reset();
    ::unlink(path.c_str());
    return Status::io_error(fmt::format("cannot listen on {}: {}", path, ec.message()));
  }
  return Status::ok_status();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options, const Router* router,
                                              ServerHooks hooks) {
  bool unix_socket = !options.unix_socket.empty();
  if (unix_socket && (!options.tls.cert_file.empty() || !options.tls.key_file.empty())) {
    return Status::invalid_argument("a unix socket is served without TLS; drop tls or unix_socket");
  }
  if (!unix_socket && options.tokens.empty() && !options.jwt.enabled() &&
      !is_loopback(options.address)) {
    return Status::invalid_argument(fmt::format(
        "refusing to listen on {} without API tokens: anyone who can reach it could write; add "
        "auth.tokens to the config (hash one with 'factoryd token hash') or listen on 127.0.0.1",
        options.address));
  }
  for (const TokenEntry& t : options.tokens) {
    bool hex = t.sha256_hex.size() == 64 &&
               std::all_of(t.sha256_hex.begin(), t.sha256_hex.end(), [](char c) {
                 return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
               });
    if (!hex || t.name.empty() || t.role == Role::kPublic) {
      return Status::invalid_argument(fmt::format(
          "token '{}' needs a name, a role (viewer, operator, admin) and sha256: 64 lower-case "
          "hex digits (from 'factoryd token hash')",
          t.name));
    }
  }
  std::vector<std::string> allowed_hosts;
  for (const std::string& h : options.allowed_hosts) {
    auto normalized = normalize_allowed_host(h);
    if (!normalized) {
      return Status::invalid_argument(fmt::format(
          "server.allowed_hosts entry '{}' is not a host name or address with an optional port "
          "(e.g. factory.example.com or factory.example.com:8443)",
          h));
    }
    allowed_hosts.push_back(std::move(*normalized));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->refusal_limiter = std::make_unique<RefusalAuditLimiter>(options.refusal_audit_window_ms);
  impl->router = router;
  impl->hooks = std::move(hooks);
  impl->limiter = std::make_unique<RateLimiter>(options.rate_limit);
  if (options.jwt.enabled()) {
    auto jwt = JwtAuthenticator::start(options.jwt);
    if (!jwt.ok()) return jwt.status();
    impl->jwt = std::move(*jwt);
  }
  if (!options.tls.cert_file.empty() || !options.tls.key_file.empty()) {
    auto ctx = make_tls_context(options.tls);
    if (!ctx.ok()) return ctx.status();
    impl->tls.emplace(std::move(*ctx));
  }
  Status listening = unix_socket ? listen_unix(impl.get()) : listen_tcp(impl.get());
  if (!listening.ok()) return listening;
  impl->host_policy = {.listen_address = options.address,
                       .port = impl->port,
                       .tls = impl->tls.has_value(),
                       .allowed_hosts = std::move(allowed_hosts)};
  impl->accept_timer.emplace(impl->ioc);
  impl->handlers = std::make_unique<asio::thread_pool>(std::max(1, options.handler_threads));
  impl->long_polls = std::make_unique<asio::thread_pool>(std::max(1, options.long_poll_limit));
  do_accept(impl.get());
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    impl->io_threads.emplace_back([raw = impl.get()] { raw->ioc.run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(0); }

uint16_t Server::port() const { return impl_->port; }

bool Server::tls() const { return impl_->tls.has_value(); }

void Server::stop(int64_t deadline_ms) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  asio::post(impl_->ioc, [impl = impl_.get()] {
    boost::system::error_code ec;
    if (impl->acceptor) impl->acceptor->close(ec);
    if (impl->unix_acceptor) impl->unix_acceptor->close(ec);
    impl->accept_timer->cancel();
  });
  {
    std::unique_lock<std::mutex> lock(impl_->inflight_mu);
    impl_->inflight_cv.wait_for(lock, std::chrono::milliseconds(deadline_ms),
                                [&] { return impl_->inflight == 0; });
  }
  impl_->ioc.stop();
  for (auto& t : impl_->io_threads) t.join();
  impl_->handlers->join();
  impl_->long_polls->join();
  if (impl_->unix_acceptor) ::unlink(impl_->options.unix_socket.c_str());
}

}  // namespace factory::http
