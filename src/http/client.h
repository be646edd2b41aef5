// Client: a small synchronous HTTP/1.1 client for factoryd's own API — the CLI uses it to talk
// to a running daemon, the tests and `factory-bench http` to drive one.
//
// One keep-alive connection, reopened when the server closed it. HTTPS when the URL says so
// (the server's certificate is verified against ca_file, or the system store when empty); a
// unix-domain socket for unix:///path.
//
// Thread-safety: not thread-safe; one Client per thread.
//
// Example:
//   auto c = factory::http::Client::connect({.url = "http://127.0.0.1:7070", .token = tok});
//   if (!c.ok()) return c.status();
//   auto r = (*c)->request("GET", "/api/v1/topics");
//   if (r.ok() && r->status == 200) ... r->body ...
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"

namespace factory::http {

struct ClientOptions {
  // "http://host:port" or "https://host:port" (no path), or "unix:///abs/path" for a server
  // on a unix socket (http::ServerOptions::unix_socket; the path as it is, not percent-encoded).
  std::string url;
  std::string token;      // bearer token; "" = none
  std::string ca_file;    // https: CA bundle to verify the server with ("" = system store)
  std::string cert_file;  // https: client certificate for mTLS ("" = none)
  std::string key_file;
  bool verify_peer = true;
  int64_t timeout_ms = 30'000;  // per request
  // A response body over this many bytes fails the request (OutOfRange) instead of growing without
  // bound: a server, or whatever answers at that URL, must not make the CLI allocate what it sends.
  uint64_t max_body_bytes = 8 << 20;
};

struct ClientResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string header(std::string_view name) const;           // "" when absent
};

class Client {
 public:
  // Parses the URL; connects lazily. InvalidArgument for a malformed URL.
  static Result<std::unique_ptr<Client>> connect(const ClientOptions& options);
  ~Client();

  // Sends one request and reads the whole response. Unavailable when the server cannot be
  // reached (connection refused, reset), TimedOut after timeout_ms, OutOfRange when the body
  // is over max_body_bytes. Any HTTP status is OK. A write (any method but GET and HEAD) is
  // sent with Content-Type: application/json unless `headers` names another: the server
  // refuses writes without it (browser-made requests, docs/api.md).
  // Error messages carry the URL without its user:password@ (redact_url()).
  Result<ClientResponse> request(
      std::string_view method, std::string_view target, std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  const ClientOptions& options() const;

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The URL without the user-information part ("https://u:p@h:1/x" -> "https://h:1/x"): what
// error messages and logs may show.
std::string redact_url(std::string_view url);

}  // namespace factory::http
