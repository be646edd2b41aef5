// Server: factoryd's HTTP(S) server on Boost.Beast.
//
// Operation. io threads accept connections and read requests; each request is matched to a
// route (router.h) after its header is read, so a body over the route's limit is refused with
// 413 unread, a header over header_limit with 431. The caller is authenticated (a bearer
// token in Authorization — a configured static token, or a JWT from the identity provider
// when jwt is enabled (jwks.h); a token in the query string is refused with 400), checked against
// the route's role (401 without a valid token, 403 with too small a role) and rate-limited
// per token (429 with Retry-After). The handler then runs on the handler pool, never on an io
// thread, and its response is written back on the connection's strand. Writes to audited
// routes append an audit row (who, what, object, result, when, request id) whatever the
// outcome. A connection that sends nothing for read_timeout_ms (or trickles a request slower
// than that) is closed; connections over max_connections get 503 and are closed — under TLS
// closed at once, before any handshake work, and a handshake gets handshake_timeout_ms.
// Accept errors (out of descriptors) back off from 10 ms doubling to 1 s, logged once per burst.
//
// Browser-made requests (request_guard.h): a Host that is not the listen address or one of
// allowed_hosts gets 421, a foreign Origin 403, a write without application/json 415.
// Refused requests write at most one audit row per remote address per refusal_audit_window_ms
// (refusal_audit.h), with control characters in the object percent-encoded.
// Long-poll requests (a Route with long_poll and a nonzero wait_ms) run on their own pool of
// long_poll_limit threads; one more gets 503 with Retry-After at once, so health checks and
// writes never wait behind them.
//
// TLS (tls.cert_file set): HTTPS only; with tls.client_ca_file and require_client_cert,
// clients must present a certificate signed by that CA (mTLS).
//
// A unix-domain socket (unix_socket set) instead of address:port: the socket file is made
// owner-only (0600) before the server listens, so only processes of the same user (and root)
// can connect, and no web page can; every caller on it is {"unix:<user>", kAdmin} (the peer's
// user from SO_PEERCRED) without a token, and the Host and Origin guards do not apply. A
// socket file left by a dead server (connect refused) is replaced; one that answers is IOError
// ("in use"). stop() removes the file.
//
// Concurrency: start() and stop() from one thread; everything else is internal.
// Limitations: HTTP/1.1 only (keep-alive, no pipelining beyond one request at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "factory/status.h"
#include "http/jwt.h"
#include "http/router.h"

namespace factory::store {
struct AuditRow;
}  // namespace factory::store

namespace factory::http {

// One configured API token. Only its SHA-256 is kept (hex, lower-case).
struct TokenEntry {
  std::string name;
  Role role = Role::kViewer;
  std::string sha256_hex;
};

struct TlsOptions {
  std::string cert_file;       // PEM; "" = plain HTTP
  std::string key_file;        // PEM
  std::string client_ca_file;  // PEM CA that client certificates must chain to
  bool require_client_cert = false;
};

struct RateLimit {
  double requests_per_s = 0;  // per token (per remote address without tokens); 0 = unlimited
  double burst = 0;           // bucket size; 0 = requests_per_s
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 7070;  // 0 = any free port (see Server::port())
  // An absolute path: listen on this unix-domain socket instead of address:port (no TLS).
  // Any length (unix_socket_path.h).
  std::string unix_socket;
  TlsOptions tls;
  std::vector<TokenEntry> tokens;  // empty and no jwt: no auth (refused unless loopback)
  JwtOptions jwt;                  // OAuth2 access tokens beside the static tokens (jwks.h)
  RateLimit rate_limit;
  int max_connections = 256;
  size_t header_limit = 16 * 1024;       // bytes; larger headers get 431
  int64_t read_timeout_ms = 10'000;      // one request's header + body must arrive within this
  int64_t idle_timeout_ms = 60'000;      // keep-alive connection with no request
  int64_t handshake_timeout_ms = 3'000;  // TLS: the handshake must finish within this
  int io_threads = 1;
  int handler_threads = 8;   // concurrent handlers (long-polls excepted)
  int long_poll_limit = 16;  // concurrent long-poll requests (threads of their own pool)
  // Host names (lower-case "name" or "name:port") besides the listen address and loopback.
  std::vector<std::string> allowed_hosts;
  int64_t refusal_audit_window_ms = 60'000;  // one refusal row per address per window; 0 = all
};

// Called once per finished request (metrics, access log). route is the pattern ("" when
// unmatched), never the raw path.
struct RequestRecord {
  std::string method;
  std::string route;
  int status = 0;
  double duration_s = 0;
  std::string principal;
  std::string request_id;
};

struct ServerHooks {
  std::function<void(const RequestRecord&)> on_request;  // may be null
  std::function<void(store::AuditRow)> audit;            // may be null: no audit
};

class Server {
 public:
  // Validates the options (InvalidArgument: no tokens on a non-loopback address, a token
  // with a bad hash, TLS files missing or unreadable — naming the file, bad auth.jwt options
  // or an unreadable jwks_file, a unix_socket path that is relative or not a socket),
  // loads the JWKS, binds and starts the io and handler threads. IOError when the
  // address or socket cannot be bound (in use).
  // *router must outlive the Server.
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, const Router* router,
                                               ServerHooks hooks);
  ~Server();  // stop()

  uint16_t port() const;  // the bound port (useful with port 0); 0 on a unix socket
  bool tls() const;

  // Stops accepting, lets in-flight handlers finish for up to deadline_ms, closes every
  // connection and joins the threads. Idempotent.
  void stop(int64_t deadline_ms);

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// SHA-256 of a token, lower-case hex: what the config stores.
std::string hash_token(std::string_view token);
// HMAC-SHA256(key, data) as lower-case hex.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Compares in time independent of where the strings differ (lengths may leak).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace factory::http
