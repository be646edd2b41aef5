// Router: the HTTP API's routing table and the request/response values handlers see.
//
// A Route is a method, a path pattern ("/api/v1/topics/{topic}/records"), the least Role that
// may call it, a body limit, and a handler. The server (server.h) matches a request to a route
// before reading its body (so an oversized body is refused with 413 unread), authenticates the
// caller against the route's role, then runs the handler on the handler pool (never on an io
// thread): a handler may block (a long-poll fetch, a scheduler command).
//
// Errors are JSON everywhere: {"error": {"code", "message", "details"}} (error_response()).
// `code` is a stable machine word ("not_found", "invalid_argument", ...), `message` says what
// and how to fix it, `details` is an object with specifics (the field, the allowed values).
//
// Thread-safety: a Router is built once before the server starts, then only read (safe).
// Handlers run concurrently on the pool and must be thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"

namespace factory::http {

// Who may call what. Ordered: a token of a role may call every route of a lower role.
enum class Role : uint8_t {
  kPublic = 0,    // no token needed (livez, readyz; webhooks, which check signatures instead)
  kViewer = 1,    // read
  kOperator = 2,  // produce, trigger, approve, replay, cancel, pause
  kAdmin = 3,     // topic create/delete, offset resets, config
};
std::string_view role_name(Role role);                  // "viewer", ...
std::optional<Role> parse_role(std::string_view name);  // nullopt for an unknown name

// The authenticated caller. With no tokens configured (loopback only) every caller is
// {"local", kAdmin}.
struct Principal {
  std::string name = "anonymous";  // the token's name from the config, or a JWT's sub; never
                                   // the token itself
  Role role = Role::kPublic;
  std::string kind = "token";  // "token" (a configured static token) or "jwt" (OAuth2)
  std::string username;        // jwt: preferred_username when the token has one
  // For audit rows: "token:<name>", "jwt:<sub>" or "jwt:<sub> (<username>)", or "anonymous"
  // on a public route (a webhook sender, whose delivery the route authenticates by its
  // signature).
  std::string actor() const {
    if (role == Role::kPublic && kind != "jwt") return name;  // jwt: a valid token, no role
    return kind + ":" + name + (username.empty() ? "" : " (" + username + ")");
  }
};

using Headers = std::vector<std::pair<std::string, std::string>>;  // names lower-case

struct Request {
  std::string method;                                      // "GET", "POST", ...
  std::string path;                                        // percent-decoded path without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::vector<std::pair<std::string, std::string>> params;  // path parameters by name
  Headers headers;
  std::string body;  // raw bytes, exactly as received (webhook signatures cover these)
  Principal principal;
  std::string request_id;  // X-Request-Id (the client's when sane, else generated)
  std::string remote;      // "ip:port"

  // The first header/query/path value with that name (header names compare lower-case).
  std::optional<std::string_view> header(std::string_view name) const;
  std::optional<std::string_view> query_value(std::string_view name) const;
  std::string_view param(std::string_view name) const;  // "" when absent
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers (Retry-After, Location, ...)
  // The detail of the request's audit row (a decision's comment, the run a trigger made);
  // never sent. Empty for routes that say nothing more than their action and object.
  std::string audit_detail;
};

// A 2xx JSON response with an already-encoded body.
Response json_response(std::string body, int status = 200);
// {"error":{"code":code,"message":message,"details":details_json}}; details_json must be an
// encoded JSON object ("{}" when none).
Response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view details_json = "{}");
// Maps a Status to its HTTP error: NotFound 404, InvalidArgument/OutOfRange 400,
// AlreadyExists/FailedPrecondition 409, Busy/Unavailable/ShuttingDown 503, TimedOut 504,
// the rest 500. The code word is the snake_case Status code name.
Response status_response(const Status& s, std::string_view details_json = "{}");
// The inverse, for clients (log_access.h, the CLI's remote.h): the Status an API error body
// stands for — the code from {"error":{"code"}} (else from the HTTP status) and its message;
// 401/403 become FailedPrecondition with a hint about tokens, 429 Busy.
Status status_from_error(int http_status, std::string_view body);

using Handler = std::function<Response(const Request&)>;

inline constexpr size_t kDefaultBodyLimit = 1 << 20;  // 1 MiB

struct Route {
  std::string method;
  std::string pattern;  // "/api/v1/runs/{run_id}"; a {name} segment matches one path segment
  Role role = Role::kViewer;
  Handler handler;
  size_t body_limit = kDefaultBodyLimit;  // bytes; larger bodies get 413 unread
  bool audited = false;  // a write: the server appends an audit row with its outcome
  std::string action;    // audit action ("topic.create"); "" = derived from method + pattern
  // The audited object from the request's path parameters ("run/<id>", scheduler/audit.h), so
  // a change through the API is recorded as the same change through the CLI. Null: the path
  // after /api/v1/.
  std::function<std::string(const Request&)> audit_object;
  // The handler may wait for up to the request's `wait_ms` query value (a long-poll): with a
  // nonzero wait_ms it runs on the server's long-poll pool, not the shared handler pool.
  bool long_poll = false;
};

class Router {
 public:
  // Adds a route. Routes are matched in the order added; a literal segment should be added
  // before a {param} route that would also match it.
  void add(Route route);

  struct Match {
    const Route* route = nullptr;  // null: no route (see allowed)
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<std::string> allowed;  // when the path exists with other methods: 405 + Allow
  };
  Match match(std::string_view method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace factory::http
