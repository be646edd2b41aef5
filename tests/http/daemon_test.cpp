// End-to-end tests of `factoryd serve`: the real daemon on a free port, driven with a real
// HTTP client (http::Client) and raw sockets where a test misbehaves on purpose.
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/socket.h>
#include <sys/un.h>

#include "http/audit_writer.h"
#include "http/daemon_harness.h"
#include "http/server.h"
#include "obs/exposition_check.h"
#include "store/meta_store.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

constexpr const char* kViewer = "viewer-secret-token-1";
constexpr const char* kOperator = "operator-secret-token-2";
constexpr const char* kAdmin = "admin-secret-token-3";

std::string tokens_yaml() {
  return "auth:\n  tokens:\n"
         "    - {name: watcher, role: viewer, sha256: " +
         http::hash_token(kViewer) +
         "}\n"
         "    - {name: ops, role: operator, sha256: " +
         http::hash_token(kOperator) +
         "}\n"
         "    - {name: root, role: admin, sha256: " +
         http::hash_token(kAdmin) + "}\n";
}

#define REQUIRE_DAEMON(d, err) \
  INFO(err);                   \
  REQUIRE(d != nullptr)

json::value body_of(const http::ClientResponse& r) { return parse_json_or_null(r.body); }

std::string error_code_of(const http::ClientResponse& r) {
  auto v = body_of(r);
  if (!v.is_object()) return "";
  const auto* e = v.as_object().if_contains("error");
  if (!e || !e->is_object()) return "";
  const auto* c = e->as_object().if_contains("code");
  return c && c->is_string() ? std::string(c->as_string()) : "";
}

// GET /api/v1/runs/RUN until a task reaches `state` (or the run ends). The run's JSON.
json::value wait_task_state(http::Client* c, const std::string& run, const std::string& task,
                            const std::string& state) {
  json::value last;
  eventually(
      [&] {
        auto r = c->request("GET", "/api/v1/runs/" + run);
        if (!r.ok() || r->status != 200) return false;
        last = body_of(*r);
        const auto* tasks = last.as_object().if_contains("tasks");
        if (!tasks || !tasks->is_array()) return false;
        for (const auto& t : tasks->as_array()) {
          if (t.at("task_id").as_string() == task && t.at("state").as_string() == state) {
            return true;
          }
        }
        return false;
      },
      20'000);
  return last;
}

std::string task_state(const json::value& run, const std::string& task) {
  for (const auto& t : run.at("tasks").as_array()) {
    if (t.at("task_id").as_string() == task) return std::string(t.at("state").as_string());
  }
  return "";
}

}  // namespace

TEST_CASE("serve: health, API, daemon.json, and SIGTERM exits 0", "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err);
  REQUIRE_DAEMON(d, err);
  auto c = d->client();
  REQUIRE(c);
  for (const char* path : {"/livez", "/healthz", "/readyz"}) {
    auto r = c->request("GET", path);
    REQUIRE_OK(r.status());
    CHECK(r->status == 200);
    CHECK_FALSE(r->header("x-request-id").empty());
  }
  // A client's request id is echoed back.
  auto r = c->request("GET", "/api/v1/topics", {}, {{"X-Request-Id", "trace-abc.1"}});
  REQUIRE_OK(r.status());
  CHECK(r->status == 200);
  CHECK(r->header("x-request-id") == "trace-abc.1");
  CHECK(body_of(*r).at("topics").as_array().size() > 0);

  auto missing = c->request("GET", "/api/v1/nope");
  REQUIRE_OK(missing.status());
  CHECK(missing->status == 404);
  CHECK(error_code_of(*missing) == "not_found");
  auto wrong_method = c->request("PUT", "/api/v1/topics");
  REQUIRE_OK(wrong_method.status());
  CHECK(wrong_method->status == 405);
  CHECK(wrong_method->header("allow").find("GET") != std::string::npos);

  REQUIRE(std::filesystem::exists(d->data_dir() + "/daemon.json"));
  auto exit = d->stop(SIGTERM);
  CHECK(exit.exit_code == 0);
  CHECK(exit.err.find("stopped cleanly") == std::string::npos);  // info is below warn
  CHECK_FALSE(std::filesystem::exists(d->data_dir() + "/daemon.json"));
}

TEST_CASE("serve: refuses a non-loopback address without tokens", "[http][e2e]") {
  TempDir dir;
  std::ofstream(dir.str() + "/factory.yaml") << "data_dir: " << dir.str() << "/data\n";
  auto r = run_process(
      {FACTORYD_BIN, "serve", "--config", dir.str() + "/factory.yaml", "--listen", "0.0.0.0:0"}, {},
      {"FACTORY_DATA_DIR", "FACTORY_CONFIG"});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("token") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.str() + "/data/daemon.json"));
}

TEST_CASE("serve: bearer tokens, roles, and the audit of every write", "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), tokens_yaml(), &err);
  REQUIRE_DAEMON(d, err);
  auto anon = d->client();
  auto viewer = d->client(kViewer);
  auto op = d->client(kOperator);
  auto admin = d->client(kAdmin);
  auto wrong = d->client("not-a-token");

  // Health checks need no token; the API does.
  CHECK(anon->request("GET", "/readyz")->status == 200);
  auto r = anon->request("GET", "/api/v1/topics");
  CHECK(r->status == 401);
  CHECK(r->header("www-authenticate") == "Bearer");
  CHECK(wrong->request("GET", "/api/v1/topics")->status == 401);
  CHECK(viewer->request("GET", "/api/v1/topics")->status == 200);

  // A token in the query string is refused even when it is valid.
  r = anon->request("GET", std::string("/api/v1/topics?access_token=") + kAdmin);
  CHECK(r->status == 400);
  CHECK(error_code_of(*r) == "token_in_query");

  const std::string produce = R"({"records":[{"key":"k","value":{"n":1}}]})";
  CHECK(viewer->request("POST", "/api/v1/topics/jira-events/records", produce)->status == 403);
  r = op->request("POST", "/api/v1/topics/jira-events/records", produce,
                  {{"X-Request-Id", "req-produce-1"}});
  CHECK(r->status == 200);
  // Topic deletion is admin's.
  CHECK(op->request("POST", "/api/v1/topics", R"({"name":"scratch","partitions":1})")->status ==
        403);
  CHECK(admin->request("POST", "/api/v1/topics", R"({"name":"scratch","partitions":1})")->status ==
        201);
  CHECK(op->request("DELETE", "/api/v1/topics/scratch")->status == 403);
  CHECK(admin->request("DELETE", "/api/v1/topics/scratch")->status == 200);

  // Every write is in the audit: who, what, object, result, request id; never a token.
  auto audit = viewer->request("GET", "/api/v1/audit?limit=50");
  REQUIRE(audit->status == 200);
  CHECK(audit->body.find(kOperator) == std::string::npos);
  CHECK(audit->body.find(kAdmin) == std::string::npos);
  CHECK(audit->body.find(kViewer) == std::string::npos);
  bool produce_row = false, denied_row = false, delete_row = false;
  json::value audit_rows = body_of(*audit);
  INFO(audit->body);
  for (const auto& row : audit_rows.at("audit").as_array()) {
    const auto& o = row.as_object();
    std::string actor(o.at("actor").as_string());
    std::string object(o.at("object").as_string());
    std::string result(o.at("result").as_string());
    if (o.at("request_id").as_string() == "req-produce-1") {
      produce_row =
          actor == "token:ops" && object == "topics/jira-events/records" && result == "ok";
    }
    if (actor == "token:watcher" && result.rfind("403", 0) == 0) denied_row = true;
    if (actor == "token:root" && object == "topics/scratch" && result == "ok") delete_row = true;
  }
  CHECK(produce_row);
  CHECK(denied_row);
  CHECK(delete_row);
  auto exit = d->stop();
  CHECK(exit.exit_code == 0);
  // Nor in the daemon's log.
  CHECK(exit.err.find(kOperator) == std::string::npos);
  CHECK(exit.err.find(kAdmin) == std::string::npos);
}

TEST_CASE("serve: request limits and malformed input", "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(),
                         "server:\n  read_timeout_ms: 400\n  max_connections: 6\n"
                         "  header_limit_bytes: 4096\n",
                         &err);
  REQUIRE_DAEMON(d, err);
  int port = url_port(d->url());
  bool closed = false;

  SECTION("a body over the route's limit gets 413 before it is sent") {
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    REQUIRE(
        raw_send(fd, "POST /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                         "\r\n"
                         "Content-Type: application/json\r\nContent-Length: 500000000\r\n\r\n"));
    std::string got = raw_read_all(fd, 5000, &closed);
    ::close(fd);
    CHECK(got.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(got.find("body_too_large") != std::string::npos);
    CHECK(closed);
  }
  SECTION("a header over header_limit gets 431") {
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    REQUIRE(raw_send(fd, "GET /api/v1/topics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                             std::string(8000, 'a') + "\r\n\r\n"));
    std::string got = raw_read_all(fd, 5000, &closed);
    ::close(fd);
    CHECK(got.rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("a slow client is cut off after read_timeout_ms") {
    int fd = raw_connect(port);
    REQUIRE(fd >= 0);
    REQUIRE(raw_send(fd, "GET /api/v1/topics HTTP/1.1\r\nHo"));  // and then nothing
    auto start = std::chrono::steady_clock::now();
    std::string got = raw_read_all(fd, 5000, &closed);
    auto took = std::chrono::steady_clock::now() - start;
    ::close(fd);
    CHECK(closed);
    CHECK(got.empty());
    CHECK(took < std::chrono::milliseconds(3000));
  }
  SECTION("connections over max_connections get 503") {
    std::vector<int> held;
    for (int i = 0; i < 6; ++i) {
      int fd = raw_connect(port);
      REQUIRE(fd >= 0);
      held.push_back(fd);
    }
    // The server has accepted all six once a request on a seventh is answered with 503.
    std::string got;
    eventually(
        [&] {
          int fd = raw_connect(port);
          got = raw_read_all(fd, 1000, &closed);
          ::close(fd);
          return got.rfind("HTTP/1.1 503", 0) == 0;
        },
        10'000);
    CHECK(got.rfind("HTTP/1.1 503", 0) == 0);
    for (int fd : held) ::close(fd);
    // Once they are gone, a new connection is served again.
    auto c = d->client();
    CHECK(eventually([&] {
      auto r = c->request("GET", "/livez");
      return r.ok() && r->status == 200;
    }));
  }
  SECTION("malformed bodies get a 400 naming the problem") {
    auto c = d->client();
    struct Case {
      std::string body;
      std::string says;
    };
    std::vector<Case> cases = {
        {R"({"name":"t","partitions":1)", "not valid JSON"},
        {std::string(R"({"name":"t)") + "\xff\xfe" + R"("})", "UTF-8"},
        {std::string(100, '[') + std::string(100, ']'), "nested deeper"},
        {R"({"name":"t","partitions":"two"})", "partitions must be an integer"},
        {R"({"name":"t","partitions":1,"replicas":3})", "unknown field 'replicas'"},
        {R"([1,2])", "must be a JSON object"},
        {"", "empty"},
    };
    for (const auto& k : cases) {
      INFO(k.body);
      auto r = c->request("POST", "/api/v1/topics", k.body);
      REQUIRE_OK(r.status());
      CHECK(r->status == 400);
      CHECK(r->body.find(k.says) != std::string::npos);
    }
    // Nothing was created by any of them.
    CHECK(c->request("GET", "/api/v1/topics/t")->status == 404);
  }
  CHECK(d->stop().exit_code == 0);
}

TEST_CASE("serve: per-token rate limit answers 429 with Retry-After", "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(
      dir.str(), tokens_yaml() + "  rate_limit:\n    requests_per_s: 0.5\n    burst: 3\n", &err);
  REQUIRE_DAEMON(d, err);
  auto viewer = d->client(kViewer);
  auto admin = d->client(kAdmin);
  for (int i = 0; i < 3; ++i) CHECK(viewer->request("GET", "/api/v1/topics")->status == 200);
  auto r = viewer->request("GET", "/api/v1/topics");
  CHECK(r->status == 429);
  CHECK(std::stoi(r->header("retry-after")) >= 1);
  // Buckets are per token: another token is not limited by this one's use.
  CHECK(admin->request("GET", "/api/v1/topics")->status == 200);
  CHECK(d->stop().exit_code == 0);
}

TEST_CASE("serve: a run in flight at SIGTERM resumes after restart, nothing acked is lost",
          "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err);
  REQUIRE_DAEMON(d, err);
  auto c = d->client();
  auto trig = c->request("POST", "/api/v1/dags/software_factory_pipeline/runs",
                         R"({"conf":{"issue":"PROJ-7","title":"CSV export"},"run_id":"r7"})");
  REQUIRE(trig->status == 201);
  json::value run = wait_task_state(c.get(), "r7", "approve_deploy", "awaiting_approval");
  REQUIRE(task_state(run, "approve_deploy") == "awaiting_approval");
  std::string records = R"({"records":[)";
  for (int i = 0; i < 50; ++i) {
    records += (i ? "," : "") + std::string(R"({"key":"k)") + std::to_string(i) +
               R"(","value":"v)" + std::to_string(i) + "\"}";
  }
  records += "]}";
  auto produced = c->request("POST", "/api/v1/topics/jira-events/records", records);
  REQUIRE(produced->status == 200);
  auto exit = d->stop(SIGTERM);
  REQUIRE(exit.exit_code == 0);

  auto d2 = Daemon::restart(*d, &err);
  REQUIRE_DAEMON(d2, err);
  auto c2 = d2->client();
  // Every acknowledged record is there, at the offset it was acknowledged at.
  json::value acked = body_of(*produced);
  for (const auto& o : acked.at("offsets").as_array()) {
    auto got = c2->request("GET", "/api/v1/topics/jira-events/records?partition=" +
                                      std::to_string(o.at("partition").as_int64()) + "&offset=" +
                                      std::to_string(o.at("offset").as_int64()) + "&max_records=1");
    REQUIRE(got->status == 200);
    REQUIRE(body_of(*got).at("records").as_array().size() == 1);
  }
  // The parked run is still parked, and finishes once approved.
  auto shown = c2->request("GET", "/api/v1/runs/r7");
  REQUIRE(shown->status == 200);
  CHECK(task_state(body_of(*shown), "approve_deploy") == "awaiting_approval");
  auto approved = c2->request("POST", "/api/v1/runs/r7/tasks/approve_deploy/approve",
                              R"({"comment":"ship it"})");
  CHECK(approved->status == 200);
  CHECK(eventually(
      [&] {
        auto r = c2->request("GET", "/api/v1/runs/r7");
        return r.ok() && body_of(*r).at("state").as_string() == "success";
      },
      20'000));
  CHECK(d2->stop().exit_code == 0);
}

TEST_CASE("serve: CLI commands go through the daemon with the same output", "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err);
  REQUIRE_DAEMON(d, err);
  auto c = d->client();
  REQUIRE(c->request("POST", "/api/v1/dags/software_factory_pipeline/runs",
                     R"({"conf":{"issue":"PROJ-9"},"run_id":"r9"})")
              ->status == 201);
  wait_task_state(c.get(), "r9", "approve_deploy", "awaiting_approval");
  std::string data = "--data-dir=" + d->data_dir();
  std::string config = std::string("--config=") + FACTORY_SOURCE_DIR + "/config";

  // Writes through the CLI reach the daemon.
  auto produced = run_factoryd({"produce", "feature-specs", "-k", "PROJ-10", data}, "{\"x\":1}\n");
  CHECK(produced.exit_code == 0);
  auto approved = run_factoryd({"approvals", "approve", "r9", "approve_deploy", data});
  INFO(approved.err);
  CHECK(approved.exit_code == 0);
  CHECK(eventually(
      [&] {
        auto r = c->request("GET", "/api/v1/runs/r9");
        return r.ok() && body_of(*r).at("state").as_string() == "success";
      },
      20'000));
  // An error is reported the same way: exit 1 and the message.
  auto missing = run_factoryd({"topics", "describe", "no-such-topic", data});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("no-such-topic") != std::string::npos);

  // Read commands through the daemon, then on the data dir itself once it is gone: the same
  // bytes on stdout.
  const std::vector<std::vector<std::string>> commands = {
      {"topics", "list", data},
      {"topics", "describe", "feature-specs", data},
      {"topics", "list", "-o", "json", data},
      {"consume", "feature-specs", "-e", "-f", "%k %s\n", data},
      {"dags", "list", data, config},
      {"runs", "list", data, "-o", "json"},
      {"runs", "show", "r9", data, config},  // tasks in DAG order (local: from --config)
      {"approvals", "list", "--all", data},
  };
  std::vector<std::string> through_daemon;
  for (const auto& cmd : commands) {
    auto r = run_factoryd(cmd);
    INFO(cmd[0] << " " << cmd[1] << ": " << r.err);
    CHECK(r.exit_code == 0);
    through_daemon.push_back(r.out);
  }
  REQUIRE(d->stop().exit_code == 0);
  for (size_t i = 0; i < commands.size(); ++i) {
    auto r = run_factoryd(commands[i]);
    INFO(commands[i][0] << " " << commands[i][1] << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == through_daemon[i]);
  }
}

TEST_CASE("serve: /metrics is valid Prometheus exposition with the factory metrics",
          "[http][e2e]") {
  TempDir dir;
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err);
  REQUIRE_DAEMON(d, err);
  auto c = d->client();
  REQUIRE(c->request("POST", "/api/v1/topics/jira-events/records",
                     R"({"records":[{"key":"a","value":"b"}]})")
              ->status == 200);
  // A group's lag is there once the engine's workers have joined their groups, which ready
  // does not wait for: scrape until it is (a family with no samples is not written).
  std::optional<http::ClientResponse> r;
  CHECK(eventually([&] {
    auto got = c->request("GET", "/metrics");
    if (got.ok()) r = *got;
    return r && r->status == 200 &&
           r->body.find("\nfactory_consumer_group_lag{") != std::string::npos;
  }));
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK(r->header("content-type").find("text/plain; version=0.0.4") == 0);
  Exposition e = parse_exposition(r->body);
  INFO(r->body.substr(0, 2000));
  INFO(e.error_text());
  CHECK(e.ok());
  for (const auto& problem : check_factory_conventions(e)) {
    INFO(problem);
    CHECK(false);
  }
  std::set<std::string> families;
  for (const auto& [name, type] : e.types) families.insert(name);
  for (const char* want :
       {"factory_build_info", "factory_log_end_offset", "factory_consumer_group_lag",
        "factory_http_requests_total", "factory_approvals_pending",
        "factory_scheduler_heartbeat_timestamp_seconds", "factory_log_append_duration_seconds"}) {
    INFO(want);
    CHECK(families.count(want) == 1);
  }
  CHECK(d->stop().exit_code == 0);
}

TEST_CASE("serve: tells systemd READY=1 and STOPPING=1 over NOTIFY_SOCKET", "[http][e2e]") {
  TempDir dir;
  std::string sock = dir.str() + "/notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string err;
  auto d = Daemon::start(dir.str(), "", &err, {"NOTIFY_SOCKET=" + sock});
  REQUIRE_DAEMON(d, err);
  auto recv_one = [&] {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10'000) <= 0) return std::string();
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };
  CHECK(recv_one().rfind("READY=1", 0) == 0);
  auto exit = d->stop();
  CHECK(recv_one() == "STOPPING=1");
  CHECK(exit.exit_code == 0);
  ::close(fd);
}

}  // namespace factory::test

namespace factory::test {
namespace {

// A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl
// command (scripts/setup.sh installs it). false when a step fails.
bool make_certs(const std::string& dir, std::string* log) {
  const std::vector<std::vector<std::string>> steps = {
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=factoryd test CA", "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt"},
      {"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
       "-keyout", dir + "/server.key", "-out", dir + "/server.csr"},
      {"/usr/bin/openssl", "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt",
       "-CAkey", dir + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", dir + "/san.ext",
       "-out", dir + "/server.crt"},
      {"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=ci-client",
       "-keyout", dir + "/client.key", "-out", dir + "/client.csr"},
      {"/usr/bin/openssl", "x509", "-req", "-in", dir + "/client.csr", "-CA", dir + "/ca.crt",
       "-CAkey", dir + "/ca.key", "-CAcreateserial", "-days", "2", "-out", dir + "/client.crt"},
  };
  std::ofstream(dir + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
  for (const auto& step : steps) {
    auto r = run_process(step);
    if (r.exit_code != 0) {
      *log = step[1] + ": " + r.err;
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("serve: HTTPS and mTLS (a client certificate is required)", "[http][e2e]") {
  TempDir dir;
  std::string log;
  INFO(log);
  REQUIRE(make_certs(dir.str(), &log));
  std::string tls = "server:\n  tls:\n    cert_file: " + dir.str() + "/server.crt\n" +
                    "    key_file: " + dir.str() + "/server.key\n";
  http::ClientOptions verified;
  verified.ca_file = dir.str() + "/ca.crt";

  SECTION("HTTPS") {
    std::string err;
    auto d = Daemon::start(dir.str(), tls, &err);
    REQUIRE_DAEMON(d, err);
    CHECK(d->url().rfind("https://127.0.0.1:", 0) == 0);
    auto c = d->client("", verified);
    auto r = c->request("GET", "/api/v1/topics");
    REQUIRE_OK(r.status());
    CHECK(r->status == 200);
    // Plain HTTP on the TLS port gets nothing useful.
    http::ClientOptions plain;
    plain.url = "http://127.0.0.1:" + std::to_string(url_port(d->url()));
    auto p = d->client("", plain);
    CHECK_FALSE(p->request("GET", "/livez").ok());
    // A client that does not trust the CA refuses the server.
    http::ClientOptions untrusted;
    untrusted.ca_file = dir.str() + "/client.crt";
    CHECK_FALSE(d->client("", untrusted)->request("GET", "/livez").ok());
    CHECK(d->stop().exit_code == 0);
  }
  SECTION("mTLS") {
    std::string err;
    auto d = Daemon::start(
        dir.str(),
        tls + "    client_ca_file: " + dir.str() + "/ca.crt\n    require_client_cert: true\n",
        &err);
    REQUIRE_DAEMON(d, err);
    auto anonymous = d->client("", verified);
    CHECK_FALSE(anonymous->request("GET", "/livez").ok());
    http::ClientOptions with_cert = verified;
    with_cert.cert_file = dir.str() + "/client.crt";
    with_cert.key_file = dir.str() + "/client.key";
    auto c = d->client("", with_cert);
    auto r = c->request("GET", "/livez");
    REQUIRE_OK(r.status());
    CHECK(r->status == 200);
    CHECK(d->stop().exit_code == 0);
  }
}

}  // namespace factory::test

namespace factory::test {

TEST_CASE("http::Client gives up with TimedOut on a server that never answers", "[http]") {
  // A listening socket nobody reads: the kernel completes the handshake, nothing answers.
  int port = 0;
  int fd = test::listen_loopback_for_test(4, &port);
  http::ClientOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.timeout_ms = 300;
  auto c = http::Client::connect(o);
  REQUIRE_OK(c.status());
  auto start = std::chrono::steady_clock::now();
  auto r = (*c)->request("GET", "/livez");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.status().is_timed_out());
  CHECK(took < std::chrono::seconds(5));
  ::close(fd);
}

}  // namespace factory::test

namespace factory::test {

TEST_CASE("AuditWriter: concurrent rows all land, group-committed", "[http]") {
  TempDir dir;
  auto store = store::open_sqlite_store({.dir = dir.str() + "/store"});
  REQUIRE_OK(store.status());
  http::AuditWriter writer(store->get());
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        store::AuditRow row;
        row.at_ms = 1;
        row.actor = "token:t" + std::to_string(t);
        row.action = "test.write";
        row.object = std::to_string(i);
        row.result = "ok";
        row.request_id = std::to_string(t) + "-" + std::to_string(i);
        if (!writer.append(std::move(row)).ok()) ++failed;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failed == 0);
  auto rows = (*store)->list_audit(0);
  REQUIRE_OK(rows.status());
  CHECK(rows->size() == kThreads * kEach);
  std::set<std::string> ids;
  for (const auto& r : *rows) ids.insert(r.request_id);
  CHECK(ids.size() == kThreads * kEach);  // each exactly once
}

}  // namespace factory::test
