// Request guards: the checks that keep a web browser from acting as a local API caller.
//
// A page the user visits can make the browser send requests to 127.0.0.1: form posts and
// "simple" fetches cross origins without a CORS preflight (so they carry no Authorization
// header and at most a text/plain, form or multipart Content-Type), and DNS rebinding points a
// page's own host name at 127.0.0.1 so that it may also read the answers. These pure functions
// refuse what only a browser-made attack sends:
//
//   check                  refuses                                       status
//   check_host()           a Host that is not the listen address (any      421 misdirected_host
//                          loopback spelling with the port, or the local
//                          address the connection arrived on) nor a name
//                          in server.allowed_hosts — DNS rebinding
//   check_origin()         an Origin header that is not this server's own  403 forbidden_origin
//                          (scheme, an allowed host, port), "null" too
//   check_content_type()   a write (not GET/HEAD) without Content-Type:    415
//   unsupported_media_type
//                          application/json — forms and simple fetches
//
// The server applies check_host() and check_origin() to every request in every auth mode, and
// check_content_type() to every write on a token-checked route in every mode (webhooks, public
// and authenticated by their HMAC signature, take what their sender sends). curl, the CLI and
// http::Client send a matching Host, no Origin, and application/json.
//
// Thread-safety: pure functions over immutable inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace factory::http {

// Who this server is, as Host and Origin name it.
struct HostPolicy {
  std::string listen_address;  // server.listen's address ("127.0.0.1", "0.0.0.0", "::1")
  uint16_t port = 0;           // the bound port
  bool tls = false;            // origins must be https://
  // server.allowed_hosts: lower-case "name" (any port) or "name:port" / "[v6]:port".
  std::vector<std::string> allowed_hosts;
};

struct GuardRefusal {
  int status = 0;
  std::string code;     // the error body's code
  std::string message;  // says what was refused and how to allow it
};

// `host` is the Host header (nullopt when absent); `local_address` the IP the connection
// arrived on (what a wildcard listen address stands for).
std::optional<GuardRefusal> check_host(const HostPolicy& policy,
                                       std::optional<std::string_view> host,
                                       std::string_view local_address);

// `origin` is the Origin header (nullopt when absent: not a browser's cross-origin request).
std::optional<GuardRefusal> check_origin(const HostPolicy& policy,
                                         std::optional<std::string_view> origin,
                                         std::string_view local_address);

// `content_type` is the Content-Type header. GET and HEAD pass; any other method needs
// application/json (parameters such as charset allowed).
std::optional<GuardRefusal> check_content_type(std::string_view method,
                                               std::optional<std::string_view> content_type);

// Lower-cases and checks one server.allowed_hosts entry ("factory.example.com",
// "factory.example.com:8443", "[::1]:7070"). nullopt when it is not a host name or address
// with an optional port.
std::optional<std::string> normalize_allowed_host(std::string_view entry);

}  // namespace factory::http
