// The OpenAPI document (src/http/openapi.json, served by openapi.cpp) against the code: the
// Router and the document list the same operations with the same roles, audit actions and body
// limits; every operation answers, through the real handlers over a real log, store, Scheduler
// and Engine in a temp dir, with a body that validates (valijson) against the schema the
// document gives for that status; the errors the server itself sends (401, 403, 413, 429, ...)
// do too; and the document is OpenAPI 3.1 whose every $ref resolves.
#define VALIJSON_USE_EXCEPTIONS 1
#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "http/api.h"
#include "http/client.h"
#include "http/router.h"
#include "http/server.h"
#include "obs/metrics.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler_harness.h"

namespace factory::http {
namespace {

namespace json = boost::json;

// REQUIRE/CHECK with a message that is shown only with this assertion (an INFO would stay in
// scope and decorate every later failure).
#define REQUIRE_MSG(cond, msg) \
  do {                         \
    INFO(msg);                 \
    REQUIRE(cond);             \
  } while (0)
#define CHECK_MSG(cond, msg) \
  do {                       \
    INFO(msg);               \
    CHECK(cond);             \
  } while (0)

constexpr const char* kMethods[] = {"get", "put", "post", "delete", "patch", "head", "options"};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// --- The document ---

// The document as the daemon serves it (GET /api/v1/openapi.json).
json::value served_document() {
  Router router;
  add_openapi_routes(&router, nullptr);
  Router::Match m = router.match("GET", "/api/v1/openapi.json");
  REQUIRE(m.route != nullptr);
  Response r = m.route->handler(Request{});
  REQUIRE(r.status == 200);
  REQUIRE(r.content_type == "application/json");
  boost::system::error_code ec;
  json::value doc = json::parse(r.body, ec);
  REQUIRE_MSG(!ec, "the served document is not valid JSON: " << ec.message());
  return doc;
}

const json::value& document() {
  static const json::value doc = served_document();
  return doc;
}

// What `ref` ("#/components/schemas/Topic") points to in the document; null when it does not
// resolve.
const json::value* resolve_ref(const json::value& doc, std::string_view ref) {
  if (!ref.starts_with("#/")) return nullptr;
  boost::system::error_code ec;
  const json::value* v = doc.find_pointer(ref.substr(1), ec);
  return ec ? nullptr : v;
}

// A copy of `v` with every {"$ref": "#/..."} replaced by its target, recursively: what valijson
// validates with (it would otherwise resolve "#/..." against the schema, not the document).
// Unresolvable references are appended to *missing and left in place.
json::value inline_refs(const json::value& v, const json::value& doc,
                        std::vector<std::string>* missing, int depth = 0) {
  if (depth > 64) {
    missing->push_back("(a reference cycle)");
    return v;
  }
  if (const json::object* o = v.if_object()) {
    if (const json::value* r = o->if_contains("$ref"); r && r->is_string()) {
      const json::value* target = resolve_ref(doc, r->get_string());
      if (!target) {
        missing->push_back(std::string(r->get_string()));
        return v;
      }
      return inline_refs(*target, doc, missing, depth + 1);
    }
    json::object out;
    for (const auto& [k, x] : *o) out[k] = inline_refs(x, doc, missing, depth + 1);
    return out;
  }
  if (const json::array* a = v.if_array()) {
    json::array out;
    for (const json::value& x : *a) out.push_back(inline_refs(x, doc, missing, depth + 1));
    return out;
  }
  return v;
}

json::value inlined(const json::value& v) {
  std::vector<std::string> missing;
  json::value out = inline_refs(v, document(), &missing);
  REQUIRE_MSG(missing.empty(), "unresolved $ref: " << (missing.empty() ? "" : missing.front()));
  return out;
}

// "" when `instance` validates against `schema` (refs already inlined), else the errors.
std::string schema_errors(const json::value& schema, const json::value& instance) {
  try {
    valijson::Schema compiled;
    valijson::SchemaParser parser;
    valijson::adapters::BoostJsonAdapter schema_adapter(schema);
    parser.populateSchema(schema_adapter, compiled);
    valijson::Validator validator;
    valijson::ValidationResults results;
    valijson::adapters::BoostJsonAdapter target(instance);
    if (validator.validate(compiled, target, &results)) return "";
    // valijson reports a chain from the innermost error outwards; the wrappers ("Failed to
    // validate against schema associated with ...") only repeat a leaf's path.
    std::string out;
    for (const auto& err : results) {
      if (err.description.starts_with("Failed to validate")) continue;
      std::string path;
      for (const std::string& c : err.context) path += c;
      out += "\n  at " + path + ": " + err.description;
    }
    return out.empty() ? "invalid" : out;
  } catch (const std::exception& e) {
    return std::string("the schema does not compile: ") + e.what();
  }
}

struct Operation {
  std::string method;  // "GET"
  std::string path;    // "/api/v1/topics/{topic}"
  const json::object* path_item = nullptr;
  const json::object* op = nullptr;
  std::string name() const { return method + " " + path; }
};

std::vector<Operation> operations() {
  std::vector<Operation> out;
  for (const auto& [path, item] : document().at("paths").as_object()) {
    for (const char* m : kMethods) {
      if (const json::value* op = item.as_object().if_contains(m)) {
        out.push_back({upper(m), std::string(path), &item.as_object(), &op->as_object()});
      }
    }
  }
  return out;
}

std::optional<Operation> find_operation(std::string_view method, std::string_view pattern) {
  for (const Operation& o : operations()) {
    if (o.method == method && o.path == pattern) return o;
  }
  return std::nullopt;
}

// The operation's parameters (path item's and its own), refs inlined.
std::vector<json::object> parameters(const Operation& op) {
  std::vector<json::object> out;
  for (const json::object* holder : {op.path_item, op.op}) {
    if (const json::value* ps = holder->if_contains("parameters")) {
      for (const json::value& p : ps->as_array()) out.push_back(inlined(p).as_object());
    }
  }
  return out;
}

std::string media_type(std::string_view content_type) {
  std::string_view base = content_type.substr(0, content_type.find(';'));
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  return std::string(base);
}

// Checks `r`, the answer of `op`, against the document: its status is documented (or covered by
// "default"), its media type is the documented one, and a JSON body validates against the
// documented schema; a 4xx/5xx body also against the shared Error schema.
void check_answer(const Operation& op, const Response& r, std::string_view what) {
  INFO(what << " -> " << r.status << " " << r.body.substr(0, 2000));
  const json::object& responses = op.op->at("responses").as_object();
  const json::value* documented = responses.if_contains(std::to_string(r.status));
  if (!documented) documented = responses.if_contains("default");
  REQUIRE_MSG(documented != nullptr,
              op.name() << " documents no response " << r.status << " (and no default)");
  json::value response = inlined(*documented);
  const json::value* content = response.as_object().if_contains("content");
  REQUIRE_MSG(content != nullptr, op.name() << " response " << r.status << " documents no content");
  std::string type = media_type(r.content_type);
  const json::value* media = content->as_object().if_contains(type);
  REQUIRE_MSG(media != nullptr,
              op.name() << " response " << r.status << " does not document media type " << type);
  if (type != "application/json") return;
  boost::system::error_code ec;
  json::value body = json::parse(r.body, ec);
  REQUIRE_MSG(!ec, "the body is not JSON: " << ec.message());
  const json::value& schema = media->at("schema");
  std::string errors = schema_errors(schema, body);
  CHECK_MSG(errors.empty(),
            op.name() << " answered " << r.status << " with a body its schema refuses:" << errors);
  if (r.status >= 400) {
    std::string error_shape =
        schema_errors(inlined(document().at_pointer("/components/schemas/Error")), body);
    CHECK_MSG(error_shape.empty(), "the error body is not the Error shape:" << error_shape);
  }
}

// --- A daemon's worth of objects, with every route on one Router ---

constexpr char kGated[] = R"(
dag_id: gated
description: build, ask a person, deploy
params:
  defaults: {ticket: none}
error_budget: {stage: noop, field: passed, window: 1h, max_failure_ratio: 0.02, min_samples: 20}
tasks:
  build: {stage: noop, params: {ticket: "{{ run.conf.ticket }}"}}
  approve: {stage: approval, upstream: [build]}
  deploy: {stage: noop, upstream: [approve], retries: 2, retry_delay: 1}
)";

// Cron: its views carry timezone and catchup.
constexpr char kNightly[] = R"(
dag_id: nightly
schedule: {cron: "0 3 1 1 *", timezone: UTC}
catchup: false
tasks:
  only: {stage: noop}
)";

const std::string kGithubSecret = "It's a Secret to Everybody";
const std::string kJiraSecret = "jira-secret";

scheduler::Dag parse_dag(const std::string& yaml) {
  auto d = scheduler::parse_dag_yaml(yaml, "test.yaml", {});
  INFO(d.status().to_string());
  REQUIRE(d.ok());
  return std::move(*d);
}

struct Daemon : test::SchedulerHarness {
  obs::Registry metrics;
  ApiContext ctx;
  Router router;
  std::set<std::string> answered;  // operations that answered 2xx and validated
  int requests = 0;

  Daemon() : SchedulerHarness({parse_dag(kGated), parse_dag(kNightly)}, {.start = false}) {
    REQUIRE_OK(log->create_topic({.name = "jira-events", .partitions = 1}));
    start();
    ctx.log = log.get();
    ctx.store = store.get();
    ctx.scheduler = sched.get();
    ctx.engine = engine.get();
    ctx.metrics = &metrics;
    ctx.data_dir = dir.str();
    ctx.github = {.enabled = true, .topic = "jira-events", .secret = kGithubSecret};
    ctx.jira = {.enabled = true, .topic = "jira-events", .secret = kJiraSecret};
    ctx.ready = true;
    add_health_routes(&router, &ctx);
    add_openapi_routes(&router, &ctx);
    add_metrics_routes(&router, &ctx);
    add_webhook_routes(&router, &ctx);
    add_log_routes(&router, &ctx);
    add_scheduler_routes(&router, &ctx);
  }

  // Calls "METHOD /path?a=b" (query values already decoded) through the matched route's
  // handler, as an admin, the way the server would minus auth and audit.
  Response raw(const std::string& method, const std::string& target, const std::string& body = "",
               const Headers& headers = {}, const Route** route = nullptr) {
    Request req;
    req.method = method;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = target.substr(q + 1);
      while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string kv = rest.substr(0, amp);
        size_t eq = kv.find('=');
        req.query.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
        rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
      }
    }
    req.body = body;
    for (const auto& [k, v] : headers) req.headers.emplace_back(lower(k), v);
    req.principal = {.name = "openapi-test", .role = Role::kAdmin};
    req.request_id = "req-" + std::to_string(++requests);
    Router::Match m = router.match(method, req.path);
    REQUIRE_MSG(m.route != nullptr, "no route for " << method << " " << target);
    req.params = m.params;
    if (route) *route = m.route;
    return m.route->handler(req);
  }

  // Calls, requires `status`, checks the answer against the document; returns the body.
  json::value call(const std::string& method, const std::string& target,
                   const std::string& body = "", int status = 200, const Headers& headers = {}) {
    const Route* route = nullptr;
    Response r = raw(method, target, body, headers, &route);
    INFO(method << " " << target << " " << body.substr(0, 300) << " -> " << r.status << " "
                << r.body.substr(0, 2000));
    REQUIRE(r.status == status);
    auto op = find_operation(method, route->pattern);
    REQUIRE_MSG(op, "the document has no operation " << method << " " << route->pattern);
    check_answer(*op, r, method + " " + target);
    if (r.status < 300) answered.insert(op->name());
    if (media_type(r.content_type) != "application/json") return nullptr;
    return json::parse(r.body);
  }

  std::string task_state(const std::string& run_id, const std::string& task) {
    Response r = raw("GET", "/api/v1/runs/" + run_id + "/tasks/" + task);
    if (r.status != 200) return "";
    return std::string(json::parse(r.body).at("state").as_string());
  }
  std::string run_state(const std::string& run_id) {
    Response r = raw("GET", "/api/v1/runs/" + run_id);
    if (r.status != 200) return "";
    return std::string(json::parse(r.body).at("state").as_string());
  }
  void await_approval(const std::string& run_id) {
    REQUIRE_MSG(test::eventually(
                    [&] { return task_state(run_id, "approve") == "awaiting_approval"; }, 20'000),
                "run " << run_id << " never parked at its approval");
  }
  void await_run(const std::string& run_id, const std::string& state) {
    REQUIRE_MSG(test::eventually([&] { return run_state(run_id) == state; }, 20'000),
                "run " << run_id << " never reached " << state);
  }
};

std::string sign(const std::string& secret, const std::string& body) {
  return "sha256=" + hmac_sha256_hex(secret, body);
}

// Fills the path's {name} segments from `values`.
std::string fill_path(const std::string& pattern,
                      const std::map<std::string, std::string>& values) {
  std::string out;
  size_t i = 0;
  while (i < pattern.size()) {
    size_t open = pattern.find('{', i);
    if (open == std::string::npos) {
      out += pattern.substr(i);
      break;
    }
    size_t close = pattern.find('}', open);
    out += pattern.substr(i, open - i);
    std::string name = pattern.substr(open + 1, close - open - 1);
    auto it = values.find(name);
    REQUIRE_MSG(it != values.end(), "no value for path parameter {" << name << "} of " << pattern);
    out += it->second;
    i = close + 1;
  }
  return out;
}

// A value for a documented query parameter: the first enum value, else one from `samples`.
std::string sample_query_value(const Operation& op, const json::object& param,
                               const std::map<std::string, std::string>& samples) {
  std::string name(param.at("name").as_string());
  const json::object& schema = param.at("schema").as_object();
  if (const json::value* e = schema.if_contains("enum")) {
    return std::string(e->as_array().at(0).as_string());
  }
  auto it = samples.find(name);
  REQUIRE_MSG(it != samples.end(),
              "no sample value for query parameter " << name << " of " << op.name());
  return it->second;
}

// GETs every GET operation: once with just its required parameters, then once per documented
// query parameter (each alone), so a documented parameter the handler refuses fails too.
void walk_gets(Daemon& d, const std::map<std::string, std::string>& path_values,
               const std::map<std::string, std::string>& query_samples) {
  for (const Operation& op : operations()) {
    if (op.method != "GET") continue;
    std::string path = fill_path(op.path, path_values);
    std::string required;
    std::vector<std::string> optional;
    for (const json::object& p : parameters(op)) {
      if (p.at("in") != "query") continue;
      std::string name(p.at("name").as_string());
      std::string item = name + "=" + sample_query_value(op, p, query_samples);
      bool req = p.contains("required") && p.at("required").as_bool();
      if (req) {
        required += (required.empty() ? "" : "&") + item;
      } else {
        optional.push_back(item);
      }
    }
    d.call("GET", path + (required.empty() ? "" : "?" + required));
    for (const std::string& item : optional) {
      d.call("GET", path + "?" + (required.empty() ? "" : required + "&") + item);
    }
  }
}

// --- The tests ---

TEST_CASE("the document is OpenAPI 3.1, every $ref resolves, operations are complete",
          "[http][openapi]") {
  const json::value& doc = document();
  REQUIRE(doc.is_object());
  CHECK(doc.at("openapi") == "3.1.0");
  CHECK(doc.at("info").at("title").is_string());
  CHECK(doc.at("info").at("version").is_string());
  const json::value& bearer = doc.at_pointer("/components/securitySchemes/bearerAuth");
  CHECK(bearer.at("type") == "http");
  CHECK(bearer.at("scheme") == "bearer");
  CHECK(doc.at("security") == json::parse(R"([{"bearerAuth": []}])"));

  // Every $ref anywhere resolves.
  std::vector<std::string> missing;
  (void)inline_refs(doc, doc, &missing);
  CHECK_MSG(missing.empty(), "unresolved $ref: " << (missing.empty() ? "" : missing.front()));

  // The document is the source file (the build embeds it; a stale build would differ).
  std::ifstream in(std::string(FACTORY_SOURCE_DIR) + "/src/http/openapi.json");
  std::stringstream text;
  text << in.rdbuf();
  CHECK(json::parse(text.str()) == doc);

  // Every schema compiles (valijson, draft 7 subset of what 3.1 allows).
  for (const auto& [name, schema] : doc.at_pointer("/components/schemas").as_object()) {
    INFO("components/schemas/" << std::string(name));
    std::string errors = schema_errors(inlined(schema), json::value(nullptr));
    CHECK(errors.find("does not compile") == std::string::npos);
  }

  std::set<std::string> ids;
  for (const Operation& op : operations()) {
    INFO(op.name());
    const json::object& o = *op.op;
    REQUIRE(o.contains("operationId"));
    CHECK(ids.insert(std::string(o.at("operationId").as_string())).second);
    REQUIRE(o.contains("x-factory-role"));
    std::string role(o.at("x-factory-role").as_string());
    CHECK((role == "public" || parse_role(role)));
    // Public operations need no token; the rest inherit bearerAuth.
    if (role == "public") {
      REQUIRE(o.contains("security"));
      CHECK(o.at("security").as_array().empty());
    } else {
      CHECK(!o.contains("security"));
      for (const char* code : {"401", "403", "429"}) {
        CHECK_MSG(o.at("responses").as_object().contains(code),
                  "a token-protected operation documents " << code);
      }
    }
    // The daemon answers 503 on every route but the liveness checks while it starts or drains
    // (serve_cmd.cpp's add_gated).
    if (op.path != "/livez" && op.path != "/healthz") {
      CHECK_MSG(o.at("responses").as_object().contains("503"), "documents 503 (not ready)");
    }
    // Every {name} in the path is a declared path parameter, and no other is.
    std::set<std::string> in_path, declared;
    for (size_t i = op.path.find('{'); i != std::string::npos; i = op.path.find('{', i + 1)) {
      in_path.insert(op.path.substr(i + 1, op.path.find('}', i) - i - 1));
    }
    for (const json::object& p : parameters(op)) {
      REQUIRE(p.contains("schema"));
      if (p.at("in") == "path") {
        CHECK(p.at("required") == true);
        declared.insert(std::string(p.at("name").as_string()));
      }
    }
    CHECK(in_path == declared);
    // Every 4xx/5xx response is the shared Error shape; every response documents content.
    for (const auto& [status, response] : o.at("responses").as_object()) {
      INFO("response " << std::string(status));
      json::value r = inlined(response);
      REQUIRE(r.as_object().contains("content"));
      if (status == "default" || status.starts_with("4") || status.starts_with("5")) {
        CHECK(r.at_pointer("/content/application~1json/schema") ==
              doc.at_pointer("/components/schemas/Error"));
      }
    }
    // A request body is JSON and carries its limit.
    if (o.contains("requestBody")) {
      CHECK(o.at("requestBody").at("content").as_object().contains("application/json"));
      CHECK(o.contains("x-factory-body-limit"));
    }
  }
}

// The validation above can fail: the schemas refuse what the code never sends.
TEST_CASE("the schemas refuse answers that break them", "[http][openapi]") {
  auto errors = [](std::string_view schema, std::string_view instance) {
    return schema_errors(inlined(document().at_pointer(schema)), json::parse(instance));
  };
  CHECK(errors("/components/schemas/Error", R"({"error":{"code":"x","message":"m","details":{}}})")
            .empty());
  CHECK(!errors("/components/schemas/Error", R"({"error":{"code":"x","message":"m"}})").empty());
  CHECK(!errors("/components/schemas/Error", R"({"code":"x","message":"m","details":{}})").empty());
  // Times: null or ISO-8601, nothing else.
  CHECK(errors("/components/schemas/Time", "null").empty());
  CHECK(errors("/components/schemas/Time", R"("2024-05-01T12:00:00.250Z")").empty());
  CHECK(!errors("/components/schemas/Time", R"("yesterday")").empty());
  CHECK(!errors("/components/schemas/Time", "17").empty());
  // A record carries its key as text or base64, never both, never neither.
  auto with = [](std::string value) {
    return R"({"partition":0,"offset":1,"timestamp":2,"key":null,)" + value + R"(,"headers":[]})";
  };
  CHECK(errors("/components/schemas/Record", with(R"("value":"v")")).empty());
  CHECK(errors("/components/schemas/Record", with(R"("value_b64":"AP8=")")).empty());
  CHECK(!errors("/components/schemas/Record", with(R"("value":"v","value_b64":"AP8=")")).empty());
  CHECK(!errors("/components/schemas/Record", with(R"("value_b64":"not base64!")")).empty());
  CHECK(!errors("/components/schemas/Record", with(R"("value":"v","extra":1)")).empty());
  // Enums and required fields.
  CHECK(!errors("/components/schemas/GroupSummary", R"({"group":"g","state":"Weird","lag":0})")
             .empty());
  CHECK(!errors("/components/schemas/GroupSummary", R"({"group":"g","state":"Empty"})").empty());
  CHECK(!errors("/components/schemas/RunDetail", R"({"run_id":"r"})").empty());
}

TEST_CASE("the Router and the document list the same operations with the same roles",
          "[http][openapi]") {
  Daemon d;
  std::vector<Operation> ops = operations();
  for (const Route& route : d.router.routes()) {
    INFO("route " << route.method << " " << route.pattern);
    auto op = find_operation(route.method, route.pattern);
    REQUIRE_MSG(op, "the route is not in openapi.json");
    const json::object& o = *op->op;
    CHECK(std::string(o.at("x-factory-role").as_string()) == role_name(route.role));
    if (route.audited) {
      REQUIRE_MSG(o.contains("x-factory-audit-action"),
                  "an audited route documents its audit action");
      std::string action = route.action.empty() ? route.method + " " + route.pattern : route.action;
      CHECK(std::string(o.at("x-factory-audit-action").as_string()) == action);
    } else {
      CHECK(!o.contains("x-factory-audit-action"));
    }
    if (o.contains("requestBody")) {
      CHECK(o.at("x-factory-body-limit").to_number<int64_t>() ==
            static_cast<int64_t>(route.body_limit));
    }
    CHECK((route.method == "GET" || route.method == "DELETE" || o.contains("requestBody")));
  }
  for (const Operation& op : ops) {
    bool found =
        std::any_of(d.router.routes().begin(), d.router.routes().end(),
                    [&](const Route& r) { return r.method == op.method && r.pattern == op.path; });
    CHECK_MSG(found, "openapi.json documents " << op.name() << ", which the Router does not have");
  }
  CHECK(ops.size() == d.router.routes().size());
}

TEST_CASE("every operation answers in its documented schema", "[http][openapi]") {
  Daemon d;

  // --- Writes, each once with a valid body, building the objects the reads need ---
  d.call("POST", "/api/v1/topics",
         R"({"name":"orders","partitions":2,"config":{"retention.ms":86400000}})", 201);
  d.call("PUT", "/api/v1/topics/orders",
         R"({"partitions":3,"config":{"retention.ms":"86400000","cleanup.policy":"delete"}})");
  d.call("PUT", "/api/v1/topics/scratch", "{}", 201);
  d.call("POST", "/api/v1/topics", R"({"name":"orders.dlq"})", 201);
  json::value produced = d.call("POST", "/api/v1/topics/orders/records", R"({"records":[
      {"key":"k1","value":{"n":1},"headers":{"source":"test"},"partition":0},
      {"key_b64":"3q2+7w==","value_b64":"AP8=","partition":1,"timestamp":1700000000000,
       "headers":[{"name":"bin","value_b64":"AA=="},{"name_b64":"/w==","value":"x"}]},
      {"value":null,"partition":2},
      {"value":"plain text","partition":0}],"sync":true})");
  CHECK(produced.at("offsets").as_array().size() == 4);
  d.call("POST", "/api/v1/topics/orders.dlq/records", R"({"records":[
      {"key":"k1","value":"{\"n\":1}","headers":[
        {"name":"factory.source.topic","value":"orders"},
        {"name":"factory.source.partition","value":"0"},
        {"name":"factory.source.offset","value":"0"},
        {"name":"factory.stage","value":"enrich"},
        {"name":"factory.attempts","value":"3"},
        {"name":"factory.dlq.reason","value":"boom"}]}]})");
  d.call("POST", "/api/v1/groups/billing/offsets",
         R"({"offsets":[{"topic":"orders","partition":0,"offset":1},
                        {"topic":"orders","partition":1,"offset":0}],"sync":true})");
  d.call("POST", "/api/v1/groups/billing/reset-offsets",
         R"({"topic":"orders","to":"earliest","execute":false})");
  d.call("POST", "/api/v1/groups/billing/reset-offsets",
         R"({"topic":"orders","to":"offset","offset":1,"execute":true})");
  d.call("POST", "/api/v1/dead-letters/replay",
         R"({"topic":"orders.dlq","partition":0,"offset":0})");  // dry run
  d.call("POST", "/api/v1/dead-letters/replay",
         R"({"topic":"orders.dlq","all":true,"execute":true})");
  d.call("POST", "/api/v1/dead-letters/replay",
         R"({"topic":"orders.dlq","all":true,"execute":true})");

  d.call("POST", "/api/v1/dags/gated/pause", "{}");
  d.call("POST", "/api/v1/dags/gated/unpause");  // no body: as {}
  json::value r1 = d.call("POST", "/api/v1/dags/gated/runs",
                          R"({"run_id":"r1","conf":{"ticket":"PROJ-1"}})", 201);
  CHECK(r1.at("run_id") == "r1");
  d.call("POST", "/api/v1/dags/gated/runs", R"({"run_id":"r2"})", 201);
  d.call("POST", "/api/v1/dags/gated/runs", "", 201);  // generated run id
  d.call("POST", "/api/v1/dags/gated/runs", R"({"run_id":"r3"})", 201);
  d.await_approval("r1");
  d.await_approval("r2");
  d.await_approval("r3");

  // The server appends an audit row per write (hooks.audit in serve_cmd.cpp); one such row.
  store::SchedulerBatch audit;
  audit.audit.push_back({.at_ms = 1'700'000'000'000,
                         .actor = "token:ops",
                         .action = "topic.create",
                         .object = "topics",
                         .result = "ok",
                         .detail = "",
                         .request_id = "req-1"});
  REQUIRE_OK(d.store->apply_scheduler_batch(audit));

  // Webhooks: produced (202), a repeated delivery (200), GitHub's ping (200).
  const std::string payload = R"({"action":"opened","issue":{"key":"PROJ-1"}})";
  d.call("POST", "/hooks/github", payload, 202,
         {{"X-Hub-Signature-256", sign(kGithubSecret, payload)},
          {"X-GitHub-Delivery", "d-1"},
          {"X-GitHub-Event", "issues"}});
  d.call("POST", "/hooks/github", payload, 200,
         {{"X-Hub-Signature-256", sign(kGithubSecret, payload)},
          {"X-GitHub-Delivery", "d-1"},
          {"X-GitHub-Event", "issues"}});
  d.call("POST", "/hooks/github", "{}", 200,
         {{"X-Hub-Signature-256", sign(kGithubSecret, "{}")},
          {"X-GitHub-Delivery", "d-ping"},
          {"X-GitHub-Event", "ping"}});
  const std::string jira = R"({"webhookEvent":"jira:issue_created","issue":{"key":"PROJ-2"}})";
  d.call("POST", "/hooks/jira", jira, 202,
         {{"X-Hub-Signature", sign(kJiraSecret, jira)}, {"X-Atlassian-Webhook-Identifier", "j-1"}});

  // --- Every GET, with runs parked at their approval (pending approvals have an age) ---
  const std::map<std::string, std::string> path_values = {{"topic", "orders"},
                                                          {"group", "billing"},
                                                          {"dag_id", "gated"},
                                                          {"run_id", "r1"},
                                                          {"task_id", "approve"}};
  const std::map<std::string, std::string> query_samples = {
      {"timestamp_ms", "0"}, {"partition", "1"},   {"offset", "0"},  {"positions", "0:0,1:0,2:0"},
      {"max_records", "2"},  {"max_bytes", "100"}, {"wait_ms", "0"}, {"topic", "orders.dlq"},
      {"limit", "2"},        {"dag_id", "gated"}};
  walk_gets(d, path_values, query_samples);
  CHECK(d.call("GET", "/api/v1/approvals").at("approvals").as_array().size() == 4);
  d.call("GET", "/api/v1/dags/nightly");
  d.call("GET", "/api/v1/runs/r1/tasks/build");

  // --- The decisions and changes, then every GET again over ended runs ---
  d.call("POST", "/api/v1/runs/r1/tasks/approve/approve", R"({"comment":"ship it"})");
  d.call("POST", "/api/v1/runs/r2/tasks/approve/reject");
  d.call("POST", "/api/v1/runs/r3/cancel");
  CHECK(d.call("POST", "/api/v1/auto-approval/pause", "{}").at("paused") == true);
  CHECK(d.call("POST", "/api/v1/auto-approval/resume").at("paused") == false);
  d.await_run("r1", "success");
  json::value cleared =
      d.call("POST", "/api/v1/runs/r1/tasks/deploy/clear", R"({"downstream":true})");
  CHECK(cleared.at("cleared").as_array().size() == 1);
  d.call("DELETE", "/api/v1/topics/scratch");
  walk_gets(d,
            {{"topic", "orders"},
             {"group", "billing"},
             {"dag_id", "nightly"},
             {"run_id", "r2"},
             {"task_id", "deploy"}},
            query_samples);
  d.call("GET", "/api/v1/approvals?state=all");
  d.call("GET", "/api/v1/runs/r3");

  // Every operation in the document answered 2xx with a valid body at least once.
  for (const Operation& op : operations()) {
    CHECK_MSG(d.answered.count(op.name()) == 1, "never exercised with a success: " << op.name());
  }

  // --- Errors the handlers send, each against the operation's documented response ---
  Response e = d.raw("POST", "/api/v1/topics", R"({"name":"x","partitionz":1})");
  CHECK(e.status == 400);
  check_answer(*find_operation("POST", "/api/v1/topics"), e, "unknown field");
  e = d.raw("POST", "/api/v1/topics/orders/records", "{\"records\": [");
  CHECK(e.status == 400);
  check_answer(*find_operation("POST", "/api/v1/topics/{topic}/records"), e, "bad JSON");
  e = d.raw("GET", "/api/v1/topics/nope");
  CHECK(e.status == 404);
  check_answer(*find_operation("GET", "/api/v1/topics/{topic}"), e, "unknown topic");
  e = d.raw("POST", "/api/v1/topics", R"({"name":"orders"})");
  CHECK(e.status == 409);
  check_answer(*find_operation("POST", "/api/v1/topics"), e, "topic exists");
  e = d.raw("POST", "/api/v1/runs/r1/tasks/approve/approve");
  CHECK(e.status == 409);
  check_answer(*find_operation("POST", "/api/v1/runs/{run_id}/tasks/{task_id}/approve"), e,
               "already decided");
  e = d.raw("GET", "/api/v1/runs?limit=-1");
  CHECK(e.status == 400);
  check_answer(*find_operation("GET", "/api/v1/runs"), e, "limit out of range");
  e = d.raw("POST", "/hooks/github", payload, {{"X-Hub-Signature-256", "sha256=00"}});
  CHECK(e.status == 401);
  check_answer(*find_operation("POST", "/hooks/github"), e, "bad signature");
  d.ctx.ready = false;
  e = d.raw("GET", "/readyz");
  CHECK(e.status == 503);
  check_answer(*find_operation("GET", "/readyz"), e, "not ready");
  d.ctx.ready = true;
}

// The errors the server answers before any handler runs: 401, 403, 413, 429 on operations
// that document them, 400 for a token in the query, and 404/405/431, which belong to no
// operation, in the shared Error shape.
TEST_CASE("the server's own refusals are documented and in the Error shape", "[http][openapi]") {
  Daemon d;
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.handler_threads = 2;
  options.tokens = {{.name = "view", .role = Role::kViewer, .sha256_hex = hash_token("v-token")},
                    {.name = "boss", .role = Role::kAdmin, .sha256_hex = hash_token("a-token")}};
  ServerHooks hooks;
  store::MetaStore* audit_store = d.store.get();
  hooks.audit = [audit_store](store::AuditRow row) {
    store::SchedulerBatch batch;
    batch.audit.push_back(std::move(row));
    (void)audit_store->apply_scheduler_batch(batch);
  };
  auto server = Server::start(options, &d.router, hooks);
  REQUIRE_OK(server);
  std::string url = "http://127.0.0.1:" + std::to_string((*server)->port());
  auto client = [&](std::string token) {
    auto c = Client::connect({.url = url, .token = std::move(token)});
    REQUIRE_OK(c);
    return std::move(*c);
  };
  auto as_response = [](const ClientResponse& c) {
    Response r;
    r.status = c.status;
    r.body = c.body;
    r.content_type = c.header("content-type");
    return r;
  };
  auto error_shape = [](const ClientResponse& c) {
    INFO(c.status << " " << c.body);
    boost::system::error_code ec;
    json::value body = json::parse(c.body, ec);
    REQUIRE(!ec);
    CHECK(schema_errors(inlined(document().at_pointer("/components/schemas/Error")), body) == "");
  };

  auto anonymous = client("");
  auto viewer = client("v-token");
  auto admin = client("a-token");
  auto topics_get = *find_operation("GET", "/api/v1/topics");
  auto topics_post = *find_operation("POST", "/api/v1/topics");

  auto r = anonymous->request("GET", "/api/v1/topics");
  REQUIRE_OK(r);
  CHECK(r->status == 401);
  check_answer(topics_get, as_response(*r), "no token");

  r = viewer->request("POST", "/api/v1/topics", R"({"name":"t"})");
  REQUIRE_OK(r);
  CHECK(r->status == 403);
  check_answer(topics_post, as_response(*r), "viewer creates a topic");

  std::string big = R"({"name":"t","pad":")" + std::string(70 * 1024, 'x') + "\"}";
  r = admin->request("POST", "/api/v1/topics", big);
  REQUIRE_OK(r);
  CHECK(r->status == 413);
  check_answer(topics_post, as_response(*r), "body over 64 KiB");

  r = admin->request("GET", "/api/v1/topics?token=a-token");
  REQUIRE_OK(r);
  CHECK(r->status == 400);
  check_answer(topics_get, as_response(*r), "token in the query");

  r = admin->request("PATCH", "/api/v1/topics");
  REQUIRE_OK(r);
  CHECK(r->status == 405);
  error_shape(*r);

  r = admin->request("GET", "/api/v1/nope");
  REQUIRE_OK(r);
  CHECK(r->status == 404);
  error_shape(*r);

  r = admin->request("GET", "/api/v1/topics", "", {{"X-Big", std::string(20 * 1024, 'h')}});
  REQUIRE_OK(r);
  CHECK(r->status == 431);
  error_shape(*r);

  // Through the server, with a token: the success answers validate too, and the refused write
  // above is in the audit log.
  // (The server writes a refusal's audit row on its handler pool, after answering.)
  CHECK(test::eventually([&] {
    auto a = admin->request("GET", "/api/v1/audit");
    return a.ok() && a->status == 200 && a->body.find("403 ") != std::string::npos;
  }));
  r = admin->request("GET", "/api/v1/audit");
  REQUIRE_OK(r);
  REQUIRE(r->status == 200);
  check_answer(*find_operation("GET", "/api/v1/audit"), as_response(*r), "audit over HTTP");
  r = anonymous->request("GET", "/api/v1/openapi.json");
  REQUIRE_OK(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body) == document());
  (*server)->stop(5'000);

  // 429: a second server that allows one request per token, then refuses.
  options.rate_limit = {.requests_per_s = 0.001, .burst = 1};
  auto limited = Server::start(options, &d.router, {});
  REQUIRE_OK(limited);
  auto c = Client::connect(
      {.url = "http://127.0.0.1:" + std::to_string((*limited)->port()), .token = "v-token"});
  REQUIRE_OK(c);
  r = (*c)->request("GET", "/api/v1/topics");
  REQUIRE_OK(r);
  CHECK(r->status == 200);
  check_answer(topics_get, as_response(*r), "within the rate");
  r = (*c)->request("GET", "/api/v1/topics");
  REQUIRE_OK(r);
  CHECK(r->status == 429);
  CHECK(!r->header("retry-after").empty());
  check_answer(topics_get, as_response(*r), "over the rate");
  (*limited)->stop(5'000);
}

}  // namespace
}  // namespace factory::http
