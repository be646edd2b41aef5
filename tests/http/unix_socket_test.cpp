// http::Server on a unix-domain socket (ServerOptions::unix_socket) and http::Client over
// unix:///path: the owner-only mode, callers taken as unix:<user> with the admin role and no
// token even where tokens are configured, no Host guard, a stale socket replaced, a live one
// refused, the file removed at stop, and the path checks.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <sys/stat.h>

#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "http/unix_socket_path.h"
#include "test_util.h"

namespace factory::http {
namespace {

// A router whose one route answers the caller's actor and role.
Router whoami_router() {
  Router router;
  router.add({.method = "GET",
              .pattern = "/whoami",
              .role = Role::kAdmin,
              .handler = [](const Request& req) {
                return json_response("\"" + req.principal.actor() + "\"");
              }});
  return router;
}

// The socket path under a fresh temp dir (short enough for sun_path on any $TMPDIR we use).
std::string socket_in(const test::TempDir& dir) { return dir.str() + "/api.sock"; }

}  // namespace

TEST_CASE("server on a unix socket: owner-only, no token, the peer's user", "[http][unix]") {
  test::TempDir dir;
  Router router = whoami_router();
  ServerOptions o;
  o.unix_socket = socket_in(dir);
  // Tokens configured for TCP callers do not apply on the socket: its mode is the access control.
  o.tokens = {{"ci", Role::kViewer, hash_token("secret")}};
  auto server = Server::start(o, &router, {});
  REQUIRE_OK(server);
  CHECK((*server)->port() == 0);

  struct stat st {};
  REQUIRE(::stat(o.unix_socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);

  auto c = Client::connect({.url = "unix://" + o.unix_socket, .timeout_ms = 10'000});
  REQUIRE_OK(c);
  // The client sends Host: localhost, which the TCP listener's Host guard would not know.
  for (int i = 0; i < 2; ++i) {  // the second request reuses the kept-alive connection
    auto r = (*c)->request("GET", "/whoami");
    REQUIRE_OK(r);
    CHECK(r->status == 200);
    CHECK(r->body.starts_with("\"unix:"));
  }
  (*server)->stop(1000);
  CHECK_FALSE(std::filesystem::exists(o.unix_socket));
  server->reset();  // closes the kept-alive connection
  auto gone = (*c)->request("GET", "/whoami");
  CHECK(gone.status().code() == Status::Code::kUnavailable);
}

TEST_CASE("server on a unix socket replaces a stale file and refuses a live one", "[http][unix]") {
  test::TempDir dir;
  Router router = whoami_router();
  ServerOptions o;
  o.unix_socket = socket_in(dir);
  {
    // A server that goes away without stop() (as with kill -9) leaves the file: simulated by
    // binding a socket and closing it without unlinking.
    auto first = Server::start(o, &router, {});
    REQUIRE_OK(first);
    auto second = Server::start(o, &router, {});
    REQUIRE(!second.ok());
    CHECK(second.status().message().find("another process serves there") != std::string::npos);
    CHECK(std::filesystem::exists(o.unix_socket));  // the live one's file is left alone
    std::filesystem::rename(o.unix_socket, o.unix_socket + ".kept");
    (*first)->stop(0);
    std::filesystem::rename(o.unix_socket + ".kept", o.unix_socket);
  }
  REQUIRE(std::filesystem::exists(o.unix_socket));  // stale: nothing listens on it
  auto again = Server::start(o, &router, {});
  REQUIRE_OK(again);
  auto c = Client::connect({.url = "unix://" + o.unix_socket, .timeout_ms = 10'000});
  REQUIRE_OK(c);
  auto r = (*c)->request("GET", "/whoami");
  REQUIRE_OK(r);
  CHECK(r->status == 200);
}

TEST_CASE("a unix socket path over 107 bytes is served through its directory", "[http][unix]") {
  test::TempDir dir;
  std::string deep = dir.str() + "/" + std::string(100, 'd');
  std::filesystem::create_directories(deep);
  Router router = whoami_router();
  ServerOptions o;
  o.unix_socket = deep + "/api.sock";
  REQUIRE(o.unix_socket.size() > 107);
  auto server = Server::start(o, &router, {});
  REQUIRE_OK(server);
  struct stat st {};
  REQUIRE(::stat(o.unix_socket.c_str(), &st) == 0);  // at the real path, not an alias
  CHECK((st.st_mode & 0777) == 0600);
  auto c = Client::connect({.url = "unix://" + o.unix_socket, .timeout_ms = 10'000});
  REQUIRE_OK(c);
  auto r = (*c)->request("GET", "/whoami");
  REQUIRE_OK(r);
  CHECK(r->status == 200);
  (*server)->stop(0);
  CHECK_FALSE(std::filesystem::exists(o.unix_socket));
}

TEST_CASE("unix socket paths: relative, a long file name, not a socket", "[http][unix]") {
  test::TempDir dir;
  Router router = whoami_router();
  ServerOptions o;
  SECTION("relative") {
    o.unix_socket = "api.sock";
    CHECK(Server::start(o, &router, {}).status().code() == Status::Code::kInvalidArgument);
  }
  SECTION("a file name over 107 bytes") {
    o.unix_socket = dir.str() + "/" + std::string(120, 's');
    auto s = Server::start(o, &router, {});
    CHECK(s.status().code() == Status::Code::kInvalidArgument);
    CHECK(s.status().message().find("limit of 107") != std::string::npos);
  }
  SECTION("a regular file") {
    o.unix_socket = socket_in(dir);
    std::ofstream(o.unix_socket) << "not a socket";
    auto s = Server::start(o, &router, {});
    CHECK(s.status().code() == Status::Code::kInvalidArgument);
    CHECK(std::filesystem::exists(o.unix_socket));  // never removed
  }
  SECTION("a client URL without a path") {
    CHECK(Client::connect({.url = "unix://"}).status().code() == Status::Code::kInvalidArgument);
  }
}

}  // namespace factory::http
