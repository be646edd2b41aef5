// The server's edges on the real daemon (issue 12): browser-made requests (Host, Origin,
// Content-Type), connections over the cap before TLS work, accept errors when out of
// descriptors, refusal floods in the audit trail, and long-polls beside health checks.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/socket.h>

#include "cli/run_process.h"
#include "http/daemon_harness.h"
#include "http/server.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

constexpr const char* kAdmin = "admin-secret-token-3";

std::string admin_token_yaml() {
  return "auth:\n  tokens:\n    - {name: root, role: admin, sha256: " + http::hash_token(kAdmin) +
         "}\n";
}

#define REQUIRE_DAEMON(d, err) \
  INFO(err);                   \
  REQUIRE(d != nullptr)

// One request over a fresh raw connection, exactly as written; the answer's status line and
// body ("" when the server closed without answering).
struct RawAnswer {
  int status = 0;
  std::string text;
};
RawAnswer raw_request(int port, const std::string& request) {
  int fd = raw_connect(port);
  if (fd < 0) return {};
  bool closed = false;
  RawAnswer a;
  if (raw_send(fd, request)) a.text = raw_read_all(fd, 5000, &closed);
  ::close(fd);
  if (a.text.rfind("HTTP/1.1 ", 0) == 0) a.status = std::stoi(a.text.substr(9, 3));
  return a;
}

// A request with the given extra header lines (each ending in \r\n) and body.
std::string raw(const std::string& method, const std::string& target, const std::string& host,
                const std::string& headers, const std::string& body = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

TEST_CASE("serve: browser-made requests are refused (Host, Origin, Content-Type)",
          "[http][e2e][hardening]") {
  TempDir dir;
  std::string err;
  bool tokens = GENERATE(false, true);
  INFO("tokens: " << tokens);
  std::string yaml = "server:\n  allowed_hosts: [factory.test, \"ci.test:8443\"]\n";
  if (tokens) yaml += admin_token_yaml();
  auto d = Daemon::start(dir.str(), yaml, &err);
  REQUIRE_DAEMON(d, err);
  int port = url_port(d->url());
  std::string self = "127.0.0.1:" + std::to_string(port);
  std::string auth = tokens ? std::string("Authorization: Bearer ") + kAdmin + "\r\n" : "";
  const std::string topic = R"({"name":"from-a-page","partitions":1})";
  const std::string json_type = "Content-Type: application/json\r\n";

  // A form post or simple fetch from a web page: text/plain, form-encoded, or none at all.
  for (std::string type : {"Content-Type: text/plain\r\n",
                           "Content-Type: application/x-www-form-urlencoded\r\n", ""}) {
    INFO(type);
    auto a = raw_request(port, raw("POST", "/api/v1/topics", self, auth + type, topic));
    CHECK(a.status == 415);
    CHECK(a.text.find("-H 'Content-Type: application/json'") != std::string::npos);
  }
  // A bodiless write too (curl -X POST .../pause, a fetch() with no body).
  CHECK(raw_request(port, raw("POST", "/api/v1/dags/nightly/pause", self, auth)).status == 415);

  // A cross-origin request, even one that got the type right.
  auto cross = raw_request(port, raw("POST", "/api/v1/topics", self,
                                     auth + json_type + "Origin: https://evil.example\r\n", topic));
  CHECK(cross.status == 403);
  CHECK(cross.text.find("forbidden_origin") != std::string::npos);
  CHECK(raw_request(port, raw("GET", "/api/v1/topics", self, auth + "Origin: null\r\n")).status ==
        403);

  // DNS rebinding: the page's own name resolving to 127.0.0.1.
  auto rebound = raw_request(
      port, raw("GET", "/api/v1/topics", "rebind.evil.example:" + std::to_string(port), auth));
  CHECK(rebound.status == 421);
  CHECK(rebound.text.find("server.allowed_hosts") != std::string::npos);
  CHECK(raw_request(port, raw("GET", "/readyz", "rebind.evil.example", "")).status == 421);
  CHECK(raw_request(port, raw("GET", "/readyz", "ci.test:9999", "")).status == 421);

  // Nothing was created by any of those.
  auto c = d->client(tokens ? kAdmin : "");
  auto listed = c->request("GET", "/api/v1/topics/from-a-page");
  REQUIRE_OK(listed.status());
  CHECK(listed->status == 404);

  // What curl and the CLI send is accepted: the listen address, loopback spellings, configured
  // names, the server's own origin, and application/json.
  for (std::string host : {self, "localhost:" + std::to_string(port), std::string("factory.test"),
                           "FACTORY.test:" + std::to_string(port), std::string("ci.test:8443")}) {
    INFO(host);
    CHECK(raw_request(port, raw("GET", "/api/v1/topics", host, auth)).status == 200);
  }
  CHECK(raw_request(port,
                    raw("GET", "/api/v1/topics", self, auth + "Origin: http://" + self + "\r\n"))
            .status == 200);
  CHECK(raw_request(port, raw("POST", "/api/v1/topics", self,
                              auth + "Content-Type: application/json; charset=utf-8\r\n", topic))
            .status == 201);
  // Webhooks (public, signed) take what their sender sends: no 415, the signature decides.
  auto hook =
      raw_request(port, raw("POST", "/hooks/github", self, "Content-Type: text/plain\r\n", "{}"));
  CHECK(hook.status != 415);
  CHECK(d->stop().exit_code == 0);
}

// A self-signed certificate for 127.0.0.1 (its own CA).
bool make_cert(const std::string& dir, std::string* log) {
  auto r =
      run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                   "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                   "-keyout", dir + "/server.key", "-out", dir + "/server.crt"});
  *log = r.err;
  return r.exit_code == 0;
}

// Waits until `want` of `fds` have been closed by the peer (EOF or reset), or deadline_ms.
int count_closed_by_peer(const std::vector<int>& fds, size_t want, int deadline_ms) {
  std::vector<bool> closed(fds.size(), false);
  size_t n = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  while (n < want && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> p;
    std::vector<size_t> index;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (closed[i]) continue;
      p.push_back({fds[i], POLLIN, 0});
      index.push_back(i);
    }
    if (::poll(p.data(), p.size(), 50) <= 0) continue;
    for (size_t k = 0; k < p.size(); ++k) {
      if (p[k].revents == 0) continue;
      char buf[256];
      ssize_t got = ::recv(p[k].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got <= 0) {
        closed[index[k]] = true;
        ++n;
      }
    }
  }
  return static_cast<int>(n);
}

TEST_CASE("serve: TLS connections over max_connections are closed before any handshake",
          "[http][e2e][hardening]") {
  TempDir dir;
  std::string log;
  INFO(log);
  REQUIRE(make_cert(dir.str(), &log));
  std::string err;
  auto d =
      Daemon::start(dir.str(),
                    "server:\n  max_connections: 8\n  handshake_timeout_ms: 1000\n"
                    "  read_timeout_ms: 20000\n  tls:\n    cert_file: " +
                        dir.str() + "/server.crt\n    key_file: " + dir.str() + "/server.key\n",
                    &err);
  REQUIRE_DAEMON(d, err);
  int port = url_port(d->url());
  // 600 sockets that never start a handshake.
  std::vector<int> idle;
  for (int i = 0; i < 600; ++i) {
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    idle.push_back(fd);
  }
  auto start = std::chrono::steady_clock::now();
  // The 592 over the cap are closed at once (they used to wait out a 10 s handshake each), and
  // the 8 within it after handshake_timeout_ms.
  CHECK(count_closed_by_peer(idle, 592, 3000) >= 592);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(3000));
  // The server answers while the test still holds all 600 sockets open.
  http::ClientOptions verified;
  verified.ca_file = dir.str() + "/server.crt";
  auto c = d->client("", verified);
  bool ready = eventually(
      [&] {
        auto r = c->request("GET", "/readyz");
        return r.ok() && r->status == 200;
      },
      5000);
  CHECK(ready);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(6000));
  for (int fd : idle) ::close(fd);
  CHECK(d->stop().exit_code == 0);
}

int open_fds(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

TEST_CASE("serve: out of descriptors, accept backs off, logs once per burst, and recovers",
          "[http][e2e][hardening]") {
  TempDir dir;
  std::string err;
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's dynamic type checks probe memory through a pipe(2) (sanitizer_common's
  // IsAccessibleMemoryRange): in a sanitized daemon out of descriptors they report a false
  // "invalid vptr" and the daemon does not come back within the deadline. The release and TSan
  // builds run this case.
  WARN("skipped under ASan/UBSan: the sanitizer runtime itself needs descriptors");
  return;
#endif
  auto d = Daemon::start(dir.str(),
                         "server:\n  max_connections: 1000\n  read_timeout_ms: 30000\n"
                         "  idle_timeout_ms: 30000\n",
                         &err);
  REQUIRE_DAEMON(d, err);
  int port = url_port(d->url());
  pid_t pid = d->process().pid();
  // RLIMIT_NOFILE a few descriptors above what the daemon holds now (prlimit(1) on the running
  // process: the same limit as one set before exec, at a value that needs no guessing).
  int limit = open_fds(pid) + 4;
  auto set = run_process({"/usr/bin/prlimit", "--pid", std::to_string(pid),
                          "--nofile=" + std::to_string(limit) + ":" + std::to_string(limit)});
  REQUIRE(set.exit_code == 0);

  std::vector<int> held;
  for (int i = 0; i < 40; ++i) {
    int fd = raw_connect(port);  // the kernel completes these; accept runs out of descriptors
    REQUIRE(fd >= 0);
    held.push_back(fd);
  }
  // Count the daemon's log lines for 1.5 s of being out of descriptors (a bounded read of its
  // stderr: the measurement window of a rate, not a wait for an event).
  int accept_lines = 0, lines = 0;
  bool failing_logged = false;
  auto window_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    window_end - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    auto line = d->process().read_stderr_line(static_cast<int>(left));
    if (!line) continue;
    ++lines;
    if (line->find("accept") != std::string::npos) ++accept_lines;
    failing_logged = failing_logged || line->find("http accept failing") != std::string::npos;
  }
  CHECK(failing_logged);
  CHECK(accept_lines <= 2);  // the spin wrote ~270k lines a second
  CHECK(lines < 20);

  // Descriptors free up: /readyz answers again (within the 1 s backoff cap).
  for (int fd : held) ::close(fd);
  auto c = d->client();
  auto start = std::chrono::steady_clock::now();
  bool ready = eventually(
      [&] {
        auto r = c->request("GET", "/readyz");
        return r.ok() && r->status == 200;
      },
      10'000);
  CHECK(ready);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(5000));
  auto exit = d->stop();
  CHECK(exit.exit_code == 0);
  INFO(exit.err.substr(0, 2000));
  CHECK(exit.err.find("http accept recovered") != std::string::npos);
  CHECK(std::count(exit.err.begin(), exit.err.end(), '\n') < 50);
}

TEST_CASE("serve: refused requests write a bounded number of escaped audit rows",
          "[http][e2e][hardening]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), admin_token_yaml(), &err);
  REQUIRE_DAEMON(d, err);
  int port = url_port(d->url());
  std::string self = "127.0.0.1:" + std::to_string(port);
  const std::string wrong =
      "Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n";
  // A path that decodes to a newline and an escape sequence (clear screen): the first refusal.
  auto forged = raw_request(
      port, raw("POST", "/api/v1/topics/x%0A2026-01-01%20root%20topic.delete%1B%5B2J/records", self,
                wrong, "{}"));
  REQUIRE(forged.status == 401);
  // A flood of refusals from the same address.
  for (int i = 0; i < 200; ++i) {
    REQUIRE(raw_request(port, raw("POST", "/api/v1/topics", self, wrong, "{}")).status == 401);
  }
  auto c = d->client(kAdmin);
  // A refusal's row is written off the io thread: wait for it. Whether the flood's rows are
  // written is decided before that, on the io thread, so once the first is there the count is
  // final.
  int refusals = 0;
  std::string object;
  auto count_refusals = [&] {
    auto r = c->request("GET", "/api/v1/audit?limit=1000");
    if (!r.ok() || r->status != 200) return false;
    refusals = 0;
    json::value answer = parse_json_or_null(r->body);
    for (const auto& row : answer.at("audit").as_array()) {
      if (row.at("actor").as_string() != "anonymous") continue;
      ++refusals;
      object = std::string(row.at("object").as_string());
    }
    return refusals > 0;
  };
  REQUIRE(eventually(count_refusals, 10'000));
  CHECK(refusals == 1);  // one row per address per window (60 s), not 201
  CHECK(object == "topics/x%0A2026-01-01 root topic.delete%1B[2J/records");

  // factoryd audit list: no raw control character reaches the terminal; --json stays exact.
  auto list = run_process({FACTORYD_BIN, "audit", "list", "--server", d->url(), "--token", kAdmin});
  REQUIRE(list.exit_code == 0);
  CHECK(list.out.find('\x1b') == std::string::npos);
  CHECK(list.out.find("%0A2026-01-01") != std::string::npos);
  auto as_json = run_process(
      {FACTORYD_BIN, "audit", "list", "-o", "json", "--server", d->url(), "--token", kAdmin});
  REQUIRE(as_json.exit_code == 0);
  CHECK(as_json.out.find("x%0A2026-01-01 root topic.delete%1B[2J/records") != std::string::npos);
  CHECK(d->stop().exit_code == 0);
}

TEST_CASE("serve: long-poll fetches do not hold up health checks and writes",
          "[http][e2e][hardening]") {
  TempDir dir;
  std::string err;
  // 8 handler threads (the default) and 12 long-polls: they used to take every handler.
  auto d = Daemon::start(dir.str(), "server:\n  long_poll_limit: 12\n", &err);
  REQUIRE_DAEMON(d, err);
  int port = url_port(d->url());
  std::string self = "127.0.0.1:" + std::to_string(port);
  auto c = d->client();
  // A long-poll answers at once while the daemon is not ready (it may be draining).
  REQUIRE(eventually([&] {
    auto r = c->request("GET", "/readyz");
    return r.ok() && r->status == 200;
  }));
  for (const char* t : {"quiet", "busy"}) {
    auto r = c->request("POST", "/api/v1/topics",
                        std::string(R"({"name":")") + t + R"(","partitions":1})");
    REQUIRE_OK(r.status());
    REQUIRE(r->status == 201);
  }
  // 12 long-polls of 20 s on a topic nobody writes to.
  const std::string poll_request =
      raw("GET", "/api/v1/topics/quiet/records?partition=0&offset=0&wait_ms=20000", self, "");
  std::vector<int> polls;
  for (int i = 0; i < 12; ++i) {
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    REQUIRE(raw_send(fd, poll_request));
    polls.push_back(fd);
  }
  // Once all 12 wait, one more is refused at once rather than queued. The probe is a 1 ms
  // long-poll: while a slot is free it is admitted and answers 200 within the millisecond; a
  // long-poll above that arrived during it was refused, and is sent again.
  http::ClientResponse extra;
  bool full = eventually(
      [&] {
        for (int& fd : polls) {
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, 0) == 1) {  // answered already: refused (it waits 20 s otherwise)
            ::close(fd);
            fd = raw_connect(port);
            if (fd < 0 || !raw_send(fd, poll_request)) return false;
          }
        }
        auto r = c->request("GET", "/api/v1/topics/quiet/records?partition=0&offset=0&wait_ms=1");
        if (r.ok()) extra = *r;
        return r.ok() && r->status == 503;
      },
      10'000);
  REQUIRE(full);
  CHECK(extra.header("retry-after") == "1");
  CHECK(extra.body.find("server.long_poll_limit") != std::string::npos);

  auto start = std::chrono::steady_clock::now();
  auto ready = c->request("GET", "/readyz");
  REQUIRE_OK(ready.status());
  CHECK(ready->status == 200);
  auto produced =
      c->request("POST", "/api/v1/topics/busy/records", R"({"records":[{"value":{"n":1}}]})");
  REQUIRE_OK(produced.status());
  CHECK(produced->status == 200);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(3000));
  for (int fd : polls) ::close(fd);
  CHECK(d->stop().exit_code == 0);
}

}  // namespace
}  // namespace factory::test
