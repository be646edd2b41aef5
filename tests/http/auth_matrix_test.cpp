// The auth matrix on the real daemon: every endpoint × {no token, a wrong token, viewer,
// operator, admin}, each cell's expected answer. The expected least role per endpoint is written
// out here (the oracle), checked against the daemon's own OpenAPI document so a new route cannot
// go untested, and then every cell is requested.
#include <map>
#include <set>

#include <catch2/catch.hpp>

#include "http/daemon_harness.h"
#include "http/server.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

// The least role of each endpoint, as issue 5 specifies: viewer reads; operator produces,
// triggers, approves, replays; admin deletes topics, resets offsets, changes config.
const std::map<std::string, std::string> kLeastRole = {
    {"GET /livez", "public"},
    {"GET /healthz", "public"},
    {"GET /readyz", "public"},
    {"GET /api/v1/openapi.json", "public"},
    {"POST /hooks/github", "public"},
    {"POST /hooks/jira", "public"},
    {"GET /metrics", "viewer"},
    {"GET /api/v1/topics", "viewer"},
    {"POST /api/v1/topics", "admin"},
    {"GET /api/v1/topics/{topic}", "viewer"},
    {"PUT /api/v1/topics/{topic}", "admin"},
    {"DELETE /api/v1/topics/{topic}", "admin"},
    {"GET /api/v1/topics/{topic}/offsets", "viewer"},
    {"POST /api/v1/topics/{topic}/records", "operator"},
    {"GET /api/v1/topics/{topic}/records", "viewer"},
    {"GET /api/v1/groups", "viewer"},
    {"GET /api/v1/groups/{group}", "viewer"},
    {"POST /api/v1/groups/{group}/offsets", "operator"},
    {"POST /api/v1/groups/{group}/reset-offsets", "admin"},
    {"GET /api/v1/dead-letters", "viewer"},
    {"POST /api/v1/dead-letters/replay", "operator"},
    {"GET /api/v1/dags", "viewer"},
    {"GET /api/v1/dags/{dag_id}", "viewer"},
    {"POST /api/v1/dags/{dag_id}/pause", "operator"},
    {"POST /api/v1/dags/{dag_id}/unpause", "operator"},
    {"POST /api/v1/dags/{dag_id}/runs", "operator"},
    {"GET /api/v1/runs", "viewer"},
    {"GET /api/v1/runs/{run_id}", "viewer"},
    {"POST /api/v1/runs/{run_id}/cancel", "operator"},
    {"GET /api/v1/runs/{run_id}/tasks", "viewer"},
    {"GET /api/v1/runs/{run_id}/tasks/{task_id}", "viewer"},
    {"POST /api/v1/runs/{run_id}/tasks/{task_id}/clear", "operator"},
    {"POST /api/v1/runs/{run_id}/tasks/{task_id}/approve", "operator"},
    {"POST /api/v1/runs/{run_id}/tasks/{task_id}/reject", "operator"},
    {"GET /api/v1/approvals", "viewer"},
    {"GET /api/v1/auto-approval", "viewer"},
    {"POST /api/v1/auto-approval/pause", "operator"},
    {"POST /api/v1/auto-approval/resume", "operator"},
    {"GET /api/v1/audit", "viewer"},
};

int rank(const std::string& role) {
  if (role == "public") return 0;
  if (role == "viewer") return 1;
  if (role == "operator") return 2;
  if (role == "admin") return 3;
  return -1;
}

// "/api/v1/runs/{run_id}" with every {param} replaced by an id that names nothing: the handler
// answers 404/400/409 for it, which is fine — the matrix is about who gets past auth.
std::string concrete(std::string path) {
  for (size_t open; (open = path.find('{')) != std::string::npos;) {
    path.replace(open, path.find('}', open) - open + 1, "matrix-x");
  }
  return path;
}

}  // namespace

TEST_CASE("serve: the auth matrix, every endpoint by every role, answers as specified",
          "[http][e2e]") {
  TempDir dir;
  std::string yaml = "auth:\n  tokens:\n";
  const std::vector<std::pair<std::string, std::string>> callers = {
      {"viewer", "matrix-viewer-token"},
      {"operator", "matrix-operator-token"},
      {"admin", "matrix-admin-token"}};
  for (const auto& [role, token] : callers) {
    yaml += "    - {name: " + role + "-caller, role: " + role +
            ", sha256: " + http::hash_token(token) + "}\n";
  }
  std::string err;
  auto d = Daemon::start(dir.str(), yaml, &err);
  INFO(err);
  REQUIRE(d != nullptr);

  // The oracle covers exactly the operations the daemon documents, with the same roles.
  auto anon = d->client();
  auto doc_response = anon->request("GET", "/api/v1/openapi.json");
  REQUIRE(doc_response->status == 200);
  json::value doc = parse_json_or_null(doc_response->body);
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : ops.as_object()) {
      if (!op.is_object() || !op.as_object().contains("x-factory-role")) continue;
      std::string m(method);
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      std::string key = m + " " + std::string(path);
      documented.insert(key);
      INFO(key);
      REQUIRE(kLeastRole.count(key) == 1);
      CHECK(kLeastRole.at(key) == op.at("x-factory-role").as_string());
    }
  }
  for (const auto& [key, role] : kLeastRole) {
    INFO(key << " is in the test's table but not in the OpenAPI document");
    CHECK(documented.count(key) == 1);
  }

  struct Caller {
    std::string name;
    int rank;  // -1: no valid token
    std::unique_ptr<http::Client> client;
  };
  std::vector<Caller> all;
  all.push_back({"no token", -1, d->client()});
  all.push_back({"a wrong token", -1, d->client("not-a-configured-token")});
  for (const auto& [role, token] : callers) all.push_back({role, rank(role), d->client(token)});

  int cells = 0;
  for (const auto& [key, least] : kLeastRole) {
    std::string method = key.substr(0, key.find(' '));
    std::string path = concrete(key.substr(key.find(' ') + 1));
    bool write = method != "GET";
    for (Caller& caller : all) {
      auto r = caller.client->request(method, path, write ? "{}" : "");
      REQUIRE_OK(r.status());
      INFO(key << " as " << caller.name << " -> " << r->status << " " << r->body);
      ++cells;
      if (least == "public") {
        CHECK(r->status != 401);
        CHECK(r->status != 403);
      } else if (caller.rank < 0) {
        CHECK(r->status == 401);
      } else if (caller.rank < rank(least)) {
        CHECK(r->status == 403);
      } else {
        CHECK(r->status != 401);
        CHECK(r->status != 403);
      }
      // No write gets past auth without at least an operator token.
      if (write && least != "public" && caller.rank < rank("operator")) {
        CHECK((r->status == 401 || r->status == 403));
      }
    }
  }
  CHECK(cells == static_cast<int>(kLeastRole.size() * all.size()));
  CHECK(d->stop().exit_code == 0);
}

}  // namespace factory::test
