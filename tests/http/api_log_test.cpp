// The log half of the API (api_log.cpp), called through a Router without a server, over a real
// log in a temp dir; and the JSON shapes of log_views.h read back by the daemon client.
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "factory/consumer.h"
#include "http/api.h"
#include "http/client.h"
#include "http/log_access.h"
#include "http/log_views.h"
#include "http/router.h"
#include "http/server.h"
#include "log/log_test_util.h"
#include "log/rocks_log.h"
#include "test_util.h"

namespace factory::http {
namespace {

namespace json = boost::json;

struct Reply {
  int status = 0;
  json::value body;
  std::string raw;
  std::string error_code() const {
    const json::object* o = body.if_object();
    if (!o || !o->contains("error")) return "";
    return std::string(o->at("error").at("code").as_string());
  }
  std::string message() const {
    if (error_code().empty()) return "";
    return std::string(body.at("error").at("message").as_string());
  }
};

// Long-polls waiting in the log right now: a test appends only once its fetch waits.
int waiters(Log* log) { return static_cast<log::RocksLog*>(log)->long_poll_waiters_for_test(); }

// A log with the log routes on a Router; requests go straight to the matched handler.
struct Api {
  test::TempDir dir;
  std::unique_ptr<Log> log;
  ApiContext ctx;
  Router router;

  Api() {
    log = test::open_test_log(test::test_log_options(dir));
    ctx.log = log.get();
    ctx.data_dir = dir.str();
    ctx.ready = true;
    add_log_routes(&router, &ctx);
  }

  // Runs the handler `target` routes to; no assertions, so any thread may call it (Catch's
  // macros are for the test's own thread). `target` is a path with an optional query of
  // already-decoded name=value pairs. Status 0 when no route matches.
  Response handle(const std::string& method, const std::string& target, std::string body = {}) {
    Request req;
    req.method = method;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string query = target.substr(q + 1);
      size_t start = 0;
      while (start < query.size()) {
        size_t amp = query.find('&', start);
        std::string item = query.substr(start, amp == std::string::npos ? amp : amp - start);
        size_t eq = item.find('=');
        req.query.emplace_back(item.substr(0, eq),
                               eq == std::string::npos ? "" : item.substr(eq + 1));
        if (amp == std::string::npos) break;
        start = amp + 1;
      }
    }
    req.body = std::move(body);
    req.principal = {.name = "test", .role = Role::kAdmin};
    req.request_id = "req-1";
    Router::Match m = router.match(method, req.path);
    if (!m.route) return Response{.status = 0};
    req.params = m.params;
    return m.route->handler(req);
  }

  Reply reply(const Response& resp) {
    Reply r;
    r.status = resp.status;
    r.raw = resp.body;
    CHECK(resp.content_type == "application/json");
    boost::system::error_code ec;
    r.body = json::parse(resp.body, ec);
    INFO(resp.body);
    REQUIRE(!ec);
    return r;
  }

  Reply call(const std::string& method, const std::string& target, std::string body = {}) {
    Response resp = handle(method, target, std::move(body));
    INFO(method << " " << target);
    REQUIRE(resp.status != 0);  // a route matched
    return reply(resp);
  }

  // A 200 answer's body, from a handler that ran on another thread.
  json::value ok_body(const Response& resp) {
    Reply r = reply(resp);
    INFO(r.raw);
    REQUIRE(r.status == 200);
    return r.body;
  }

  // Requires `status` and returns the body.
  json::value ok(const std::string& method, const std::string& target, std::string body = {},
                 int status = 200) {
    Reply r = call(method, target, std::move(body));
    INFO(method << " " << target << " -> " << r.status << " " << r.raw);
    REQUIRE(r.status == status);
    return r.body;
  }

  // Requires a 4xx with `code`; returns the message.
  std::string fails(int status, std::string_view code, const std::string& method,
                    const std::string& target, std::string body = {}) {
    Reply r = call(method, target, std::move(body));
    INFO(method << " " << target << " -> " << r.status << " " << r.raw);
    REQUIRE(r.status == status);
    CHECK(r.error_code() == code);
    return r.message();
  }

  const Route* route(const std::string& method, const std::string& path) {
    return router.match(method, path).route;
  }

  void create(const std::string& topic, int partitions) {
    ok("POST", "/api/v1/topics",
       R"({"name":")" + topic + R"(","partitions":)" + std::to_string(partitions) + "}", 201);
  }
};

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("routes carry the role and audit flag of what they do", "[http][log]") {
  Api api;
  struct Want {
    const char* method;
    const char* path;
    Role role;
    bool audited;
  };
  const Want wants[] = {
      {"GET", "/api/v1/topics", Role::kViewer, false},
      {"POST", "/api/v1/topics", Role::kAdmin, true},
      {"GET", "/api/v1/topics/t", Role::kViewer, false},
      {"PUT", "/api/v1/topics/t", Role::kAdmin, true},
      {"DELETE", "/api/v1/topics/t", Role::kAdmin, true},
      {"GET", "/api/v1/topics/t/offsets", Role::kViewer, false},
      {"POST", "/api/v1/topics/t/records", Role::kOperator, true},
      {"GET", "/api/v1/topics/t/records", Role::kViewer, false},
      {"GET", "/api/v1/groups", Role::kViewer, false},
      {"GET", "/api/v1/groups/g", Role::kViewer, false},
      {"POST", "/api/v1/groups/g/reset-offsets", Role::kAdmin, true},
      {"POST", "/api/v1/groups/g/offsets", Role::kOperator, true},
      {"GET", "/api/v1/dead-letters", Role::kViewer, false},
      {"POST", "/api/v1/dead-letters/replay", Role::kOperator, true},
  };
  for (const Want& w : wants) {
    INFO(w.method << " " << w.path);
    const Route* r = api.route(w.method, w.path);
    REQUIRE(r != nullptr);
    CHECK(r->role == w.role);
    CHECK(r->audited == w.audited);
  }
  CHECK(api.route("POST", "/api/v1/topics/t/records")->body_limit == (8u << 20));
}

TEST_CASE("topics: create, list, describe, apply, delete", "[http][log]") {
  Api api;
  json::value created = api.ok(
      "POST", "/api/v1/topics",
      R"({"name":"orders","partitions":3,"config":{"retention.ms":1000,"cleanup.policy":"delete"}})",
      201);
  CHECK(created.at("topic").as_string() == "orders");
  CHECK(created.at("partition_count").as_int64() == 3);
  CHECK(created.at("config").at("retention.ms").as_int64() == 1000);
  CHECK(created.at("partitions").as_array().size() == 3);

  std::string dup = api.fails(409, "already_exists", "POST", "/api/v1/topics",
                              R"({"name":"orders","partitions":1})");
  CHECK(contains(dup, "orders"));

  api.create("alpha", 1);
  json::value list = api.ok("GET", "/api/v1/topics");
  REQUIRE(list.at("topics").as_array().size() == 2);
  CHECK(list.at("topics").at(0).at("topic").as_string() == "alpha");  // sorted by name
  CHECK(list.at("topics").at(1).at("partitions").at(2).at("log_end").as_int64() == 0);

  ProducerRecord one = test::rec("x");
  one.partition = 1;
  test::append_ok(api.log.get(), "orders", {one});
  json::value desc = api.ok("GET", "/api/v1/topics/orders");
  CHECK(desc.at("partitions").at(1).at("log_end").as_int64() == 1);
  CHECK(desc.at("partitions").at(1).at("records").as_int64() == 1);
  CHECK(desc.at("partitions").at(1).at("size_bytes").as_int64() > 0);
  api.fails(404, "not_found", "GET", "/api/v1/topics/nope");

  SECTION("apply creates, updates and leaves alone") {
    json::value same = api.ok("PUT", "/api/v1/topics/orders",
                              R"({"partitions":3,"config":{"retention.ms":1000}})");
    CHECK(same.at("action").as_string() == "unchanged");
    json::value grown = api.ok("PUT", "/api/v1/topics/orders", R"({"partitions":4})");
    CHECK(grown.at("action").as_string() == "updated");
    CHECK(api.ok("GET", "/api/v1/topics/orders").at("partition_count").as_int64() == 4);
    json::value fresh = api.ok("PUT", "/api/v1/topics/beta", R"({"partitions":2})", 201);
    CHECK(fresh.at("action").as_string() == "created");
    std::string shrink =
        api.fails(400, "invalid_argument", "PUT", "/api/v1/topics/orders", R"({"partitions":1})");
    CHECK(contains(shrink, "partition"));
    api.fails(400, "invalid_argument", "PUT", "/api/v1/topics/orders",
              R"({"name":"other","partitions":4})");
  }
  SECTION("delete, then it is gone") {
    json::value del = api.ok("DELETE", "/api/v1/topics/orders");
    CHECK(del.at("action").as_string() == "deleted");
    api.fails(404, "not_found", "DELETE", "/api/v1/topics/orders");
    api.fails(404, "not_found", "GET", "/api/v1/topics/orders");
  }
}

TEST_CASE("topics: bad bodies get a 400 naming the problem", "[http][log]") {
  Api api;
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics", "{\"name\":"),
                 "not valid JSON"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics", ""), "empty"));
  CHECK(
      contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics", "[1]"), "JSON object"));
  CHECK(contains(
      api.fails(400, "invalid_argument", "POST", "/api/v1/topics", R"({"name":"t","partitons":3})"),
      "partitons"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics",
                           R"({"name":"t","partitions":"3"})"),
                 "body.partitions must be an integer"));
  CHECK(
      contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics", R"({"partitions":3})"),
               "body.name is required"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics",
                           R"({"name":"t","partitions":0})"),
                 "body.partitions"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics",
                           R"({"name":"bad name!","partitions":1})"),
                 "name"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics",
                           R"({"name":"t","config":{"retention.mz":5}})"),
                 "body.config.retention.mz"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", "/api/v1/topics",
                           R"({"name":"t","config":{"retention.ms":[1]}})"),
                 "body.config.retention.ms must be an integer or a string"));
  CHECK(contains(api.fails(400, "invalid_argument", "GET", "/api/v1/topics?limit=3"), "limit"));
  CHECK(api.ok("GET", "/api/v1/topics").at("topics").as_array().empty());
}

TEST_CASE("produce then fetch round-trips keys, values and headers", "[http][log]") {
  Api api;
  api.create("t", 2);
  json::value acks = api.ok("POST", "/api/v1/topics/t/records", R"({"records":[
      {"key":"k1","value":"hello","partition":1,"headers":{"trace":"abc","type":"spec"}},
      {"key":null,"value":{"n":1,"s":"x"},"partition":1},
      {"value":null,"partition":1},
      {"key_b64":"/wA=","value_b64":"3q2+7w==","partition":1,
       "headers":[{"name":"h","value":"1"},{"name":"h","value_b64":"gA=="}]},
      {"value":42,"partition":0,"timestamp":1234}
    ],"sync":true})");
  const json::array& offsets = acks.at("offsets").as_array();
  REQUIRE(offsets.size() == 5);
  for (int i = 0; i < 4; ++i) {
    CHECK(offsets[i].at("partition").as_int64() == 1);
    CHECK(offsets[i].at("offset").as_int64() == i);
  }
  CHECK(offsets[4].at("partition").as_int64() == 0);

  json::value got = api.ok("GET", "/api/v1/topics/t/records?partition=1&offset=0");
  CHECK(got.at("next_offset").as_int64() == 4);
  CHECK(got.at("log_end").as_int64() == 4);
  const json::array& recs = got.at("records").as_array();
  REQUIRE(recs.size() == 4);
  CHECK(recs[0].at("key").as_string() == "k1");
  CHECK(recs[0].at("value").as_string() == "hello");
  CHECK(recs[0].at("headers").at(0).at("name").as_string() == "trace");
  CHECK(recs[0].at("headers").at(1).at("value").as_string() == "spec");
  CHECK(recs[0].at("timestamp").as_int64() > 1'600'000'000'000LL);
  CHECK(recs[1].at("key").is_null());
  CHECK(json::parse(recs[1].at("value").as_string()) == json::parse(R"({"n":1,"s":"x"})"));
  CHECK(recs[2].at("value").is_null());
  // Bytes that are not UTF-8 come back as base64, the rest as text.
  CHECK(recs[3].at("key_b64").as_string() == "/wA=");
  CHECK(!recs[3].as_object().contains("key"));
  CHECK(recs[3].at("value_b64").as_string() == "3q2+7w==");
  CHECK(recs[3].at("headers").at(0).at("value").as_string() == "1");
  CHECK(recs[3].at("headers").at(1).at("value_b64").as_string() == "gA==");

  // The daemon client reads the same records back, bytes intact.
  auto fetch = parse_fetch(got);
  REQUIRE_OK(fetch);
  REQUIRE(fetch->records.size() == 4);
  CHECK(fetch->records[3].key == std::optional<std::string>(std::string("\xff\x00", 2)));
  CHECK(fetch->records[3].value == std::optional<std::string>("\xde\xad\xbe\xef"));
  CHECK(fetch->records[3].headers[1].value == "\x80");
  auto direct = api.log->read("t", 1, Offset(0), {});
  REQUIRE_OK(direct);
  CHECK(fetch->records == direct->records);

  json::value p0 = api.ok("GET", "/api/v1/topics/t/records?partition=0");
  CHECK(p0.at("records").at(0).at("value").as_string() == "42");
  CHECK(p0.at("records").at(0).at("timestamp").as_int64() == 1234);

  SECTION("max_records and next_offset page through a partition") {
    json::value page = api.ok("GET", "/api/v1/topics/t/records?partition=1&offset=1&max_records=2");
    CHECK(page.at("records").as_array().size() == 2);
    CHECK(page.at("next_offset").as_int64() == 3);
    json::value end = api.ok("GET", "/api/v1/topics/t/records?partition=1&offset=4");
    CHECK(end.at("records").as_array().empty());
    CHECK(end.at("next_offset").as_int64() == 4);
  }
  SECTION("positions read several partitions in the order given") {
    json::value both = api.ok("GET", "/api/v1/topics/t/records?positions=1:2,0:0");
    const json::array& r = both.at("records").as_array();
    REQUIRE(r.size() == 3);
    CHECK(r[0].at("partition").as_int64() == 1);
    CHECK(r[2].at("partition").as_int64() == 0);
    CHECK(both.at("partitions").at(0).at("next_offset").as_int64() == 4);
    CHECK(both.at("partitions").at(1).at("next_offset").as_int64() == 1);
    json::value capped = api.ok("GET", "/api/v1/topics/t/records?positions=1:2,0:0&max_records=1");
    CHECK(capped.at("records").as_array().size() == 1);
    CHECK(capped.at("partitions").at(1).at("next_offset").as_int64() == 0);
  }
}

TEST_CASE("produce: bad records get a 400 naming the record and field", "[http][log]") {
  Api api;
  api.create("t", 1);
  const std::string path = "/api/v1/topics/t/records";
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path, R"({"records":{}})"),
                 "body.records must be an array"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path, R"({})"),
                 "body.records is required"));
  CHECK(
      contains(api.fails(400, "invalid_argument", "POST", path, R"({"records":[],"x":1})"), "'x'"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path,
                           R"({"records":[{"value":"a"},{"valeu":"b"}]})"),
                 "records[1]"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path,
                           R"({"records":[{"value":"a","partition":"0"}]})"),
                 "records[0].partition must be an integer"));
  CHECK(contains(
      api.fails(400, "invalid_argument", "POST", path, R"({"records":[{"key":5,"value":"a"}]})"),
      "records[0].key"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path,
                           R"({"records":[{"value_b64":"not base64!"}]})"),
                 "records[0].value_b64"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path,
                           R"({"records":[{"value":"a","headers":{"h":1}}]})"),
                 "records[0].headers.h"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path,
                           R"({"records":[{"value":"a","partition":7}]})"),
                 "partition 7"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", path, R"({"records":[],"sync":1})"),
                 "body.sync must be a boolean"));
  api.fails(404, "not_found", "POST", "/api/v1/topics/nope/records",
            R"({"records":[{"value":"a"}]})");
  // Nothing of a refused batch was stored; an empty batch stores nothing and succeeds.
  CHECK(api.ok("POST", path, R"({"records":[]})").at("offsets").as_array().empty());
  CHECK(api.ok("GET", "/api/v1/topics/t").at("partitions").at(0).at("log_end").as_int64() == 0);
}

TEST_CASE("fetch: bad queries get a 400, unknown topics a 404", "[http][log]") {
  Api api;
  api.create("t", 2);
  const std::string path = "/api/v1/topics/t/records";
  CHECK(contains(api.fails(400, "invalid_argument", "GET", path + "?partiton=0"), "partiton"));
  CHECK(
      contains(api.fails(400, "invalid_argument", "GET", path + "?max_records=0"), "max_records"));
  CHECK(contains(api.fails(400, "invalid_argument", "GET", path + "?offset=x"), "offset"));
  CHECK(
      contains(api.fails(400, "out_of_range", "GET", path + "?partition=0&offset=5"), "offset 5"));
  CHECK(contains(api.fails(400, "invalid_argument", "GET", path + "?partition=9"), "partition 9"));
  CHECK(contains(api.fails(400, "invalid_argument", "GET", path + "?positions=0:0,0:1"), "twice"));
  CHECK(contains(api.fails(400, "invalid_argument", "GET", path + "?positions=0-1"), "positions"));
  CHECK(contains(api.fails(400, "invalid_argument", "GET", path + "?positions=0:0&partition=1"),
                 "positions"));
  api.fails(404, "not_found", "GET", "/api/v1/topics/nope/records");
  api.fails(404, "not_found", "GET", "/api/v1/topics/nope/records?positions=0:0,1:0");
  // wait_ms beyond the cap is capped, not refused (no record arrives: the answer is empty).
  CHECK(api.ok("GET", path + "?partition=0&wait_ms=0").at("records").as_array().empty());
}

TEST_CASE("fetch long-polls until a record is appended", "[http][log]") {
  Api api;
  api.create("t", 2);
  SECTION("one partition") {
    auto pending = std::async(std::launch::async, [&] {
      return api.handle("GET", "/api/v1/topics/t/records?partition=1&offset=0&wait_ms=30000");
    });
    // Append once the fetch waits, and see it woken well before its 30 s deadline.
    REQUIRE(test::eventually([&] { return waiters(api.log.get()) == 1; }));
    ProducerRecord r = test::rec("late");
    r.partition = 1;
    test::append_ok(api.log.get(), "t", {r});
    REQUIRE(pending.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    json::value got = api.ok_body(pending.get());
    REQUIRE(got.at("records").as_array().size() == 1);
    CHECK(got.at("records").at(0).at("value").as_string() == "late");
  }
  SECTION("a daemon shutting down ends the wait with what there is") {
    api.ctx.ready = false;
    auto pending = std::async(std::launch::async, [&] {
      return api.handle("GET", "/api/v1/topics/t/records?partition=0&wait_ms=30000");
    });
    // Well before the 30 s the fetch asked for.
    REQUIRE(pending.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(api.ok_body(pending.get()).at("records").as_array().empty());
  }
  SECTION("several partitions") {
    auto pending = std::async(std::launch::async, [&] {
      return api.handle("GET", "/api/v1/topics/t/records?positions=0:0,1:0&wait_ms=30000");
    });
    REQUIRE(test::eventually([&] { return waiters(api.log.get()) == 1; }));
    ProducerRecord r = test::rec("late");
    r.partition = 0;
    test::append_ok(api.log.get(), "t", {r});
    REQUIRE(pending.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    json::value got = api.ok_body(pending.get());
    REQUIRE(got.at("records").as_array().size() == 1);
    CHECK(got.at("partitions").at(0).at("next_offset").as_int64() == 1);
  }
}

TEST_CASE("topic offsets for a timestamp", "[http][log]") {
  Api api;
  api.create("t", 2);
  api.ok("POST", "/api/v1/topics/t/records",
         R"({"records":[{"value":"a","partition":0,"timestamp":100},
                        {"value":"b","partition":0,"timestamp":200}]})");
  json::value o = api.ok("GET", "/api/v1/topics/t/offsets?timestamp_ms=150");
  CHECK(o.at("offsets").at(0).at("offset").as_int64() == 1);
  CHECK(o.at("offsets").at(1).at("offset").as_int64() == 0);
  api.fails(400, "invalid_argument", "GET", "/api/v1/topics/t/offsets");
  api.fails(400, "invalid_argument", "GET", "/api/v1/topics/t/offsets?timestamp_ms=-1");
  api.fails(404, "not_found", "GET", "/api/v1/topics/x/offsets?timestamp_ms=1");
}

TEST_CASE("groups: commit, describe with lag, reset offsets", "[http][log]") {
  Api api;
  api.create("t", 2);
  api.ok("POST", "/api/v1/topics/t/records",
         R"({"records":[{"value":"a","partition":0},{"value":"b","partition":0},
                        {"value":"c","partition":0},{"value":"d","partition":1}]})");
  api.fails(404, "not_found", "GET", "/api/v1/groups/g");
  CHECK(api.ok("GET", "/api/v1/groups").at("groups").as_array().empty());

  json::value committed = api.ok(
      "POST", "/api/v1/groups/g/offsets",
      R"({"offsets":[{"topic":"t","partition":0,"offset":2},{"topic":"t","partition":1,"offset":1}]})");
  CHECK(committed.at("committed").as_int64() == 2);
  json::value g = api.ok("GET", "/api/v1/groups/g");
  CHECK(g.at("group").as_string() == "g");
  CHECK(g.at("state").as_string() == "Empty");
  CHECK(g.at("partitions").at(0).at("current_offset").as_int64() == 2);
  CHECK(g.at("partitions").at(0).at("log_end_offset").as_int64() == 3);
  CHECK(g.at("partitions").at(0).at("lag").as_int64() == 1);
  CHECK(g.at("partitions").at(1).at("lag").as_int64() == 0);
  json::value list = api.ok("GET", "/api/v1/groups");
  CHECK(list.at("groups").at(0).at("group").as_string() == "g");
  CHECK(list.at("groups").at(0).at("lag").as_int64() == 1);

  // Round trip through the client's reader.
  auto parsed = parse_group(g);
  REQUIRE_OK(parsed);
  CHECK(parsed->partitions.size() == 2);
  CHECK(parsed->partitions[0].committed == std::optional<Offset>(Offset(2)));

  SECTION("reset-offsets is a dry run unless execute") {
    json::value dry =
        api.ok("POST", "/api/v1/groups/g/reset-offsets", R"({"topic":"t","to":"earliest"})");
    CHECK(!dry.at("executed").as_bool());
    CHECK(dry.at("offsets").at(0).at("new_offset").as_int64() == 0);
    CHECK(api.ok("GET", "/api/v1/groups/g").at("partitions").at(0).at("lag").as_int64() == 1);

    json::value done = api.ok("POST", "/api/v1/groups/g/reset-offsets",
                              R"({"topic":"t","to":"earliest","execute":true})");
    CHECK(done.at("executed").as_bool());
    CHECK(api.ok("GET", "/api/v1/groups/g").at("partitions").at(0).at("lag").as_int64() == 3);

    api.ok("POST", "/api/v1/groups/g/reset-offsets",
           R"({"topic":"t","to":"offset","offset":99,"execute":true})");  // clamped to the end
    CHECK(api.ok("GET", "/api/v1/groups/g").at("partitions").at(0).at("lag").as_int64() == 0);
    json::value ts = api.ok("POST", "/api/v1/groups/g/reset-offsets",
                            R"({"topic":"t","to":"timestamp","timestamp_ms":0})");
    CHECK(ts.at("offsets").at(1).at("new_offset").as_int64() == 0);
    json::value latest =
        api.ok("POST", "/api/v1/groups/g/reset-offsets", R"({"topic":"t","to":"latest"})");
    CHECK(latest.at("offsets").at(0).at("new_offset").as_int64() == 3);
  }
  SECTION("bad reset and commit bodies") {
    const std::string reset = "/api/v1/groups/g/reset-offsets";
    CHECK(contains(api.fails(400, "invalid_argument", "POST", reset, R"({"topic":"t"})"),
                   "body.to is required"));
    CHECK(contains(
        api.fails(400, "invalid_argument", "POST", reset, R"({"topic":"t","to":"yesterday"})"),
        "body.to must be one of"));
    CHECK(contains(
        api.fails(400, "invalid_argument", "POST", reset, R"({"topic":"t","to":"offset"})"),
        "body.offset is required"));
    CHECK(contains(api.fails(400, "invalid_argument", "POST", reset,
                             R"({"topic":"t","to":"latest","offset":1})"),
                   "only allowed"));
    CHECK(contains(api.fails(400, "invalid_argument", "POST", reset,
                             R"({"topic":"t","to":"latest","execute":"yes"})"),
                   "body.execute must be a boolean"));
    api.fails(404, "not_found", "POST", reset, R"({"topic":"nope","to":"latest"})");

    const std::string commit = "/api/v1/groups/g/offsets";
    CHECK(contains(api.fails(400, "invalid_argument", "POST", commit,
                             R"({"offsets":[{"topic":"t","partition":0}]})"),
                   "body.offsets[0].offset is required"));
    CHECK(contains(api.fails(400, "invalid_argument", "POST", commit,
                             R"({"offsets":[{"topic":"t","partition":0,"offset":9}]})"),
                   "beyond the log end"));
    CHECK(contains(api.fails(400, "invalid_argument", "POST", commit,
                             R"({"offsets":[{"topic":"t","partition":5,"offset":0}]})"),
                   "partition 5"));
    api.fails(404, "not_found", "POST", commit,
              R"({"offsets":[{"topic":"nope","partition":0,"offset":0}]})");
  }
  SECTION("a group with active members refuses resets and remote commits") {
    auto consumer = api.log->subscribe({.group = "g", .topics = {"t"}});
    REQUIRE_OK(consumer);
    REQUIRE_OK((*consumer)->poll(10, 0));
    CHECK(api.ok("GET", "/api/v1/groups/g").at("state").as_string() == "Stable");
    CHECK(contains(api.fails(409, "failed_precondition", "POST", "/api/v1/groups/g/reset-offsets",
                             R"({"topic":"t","to":"earliest","execute":true})"),
                   "active members"));
    CHECK(contains(api.fails(409, "failed_precondition", "POST", "/api/v1/groups/g/offsets",
                             R"({"offsets":[{"topic":"t","partition":0,"offset":0}]})"),
                   "active members"));
  }
}

// A dead letter as the runtime writes it.
ProducerRecord dead_letter(const std::string& value, const std::string& source_offset) {
  ProducerRecord r = test::rec(value, "K");
  r.headers = {{"trace", "t1"},
               {"factory.dlq.reason", "boom"},
               {"factory.source.topic", "src"},
               {"factory.source.partition", "0"},
               {"factory.source.offset", source_offset},
               {"factory.stage", "codegen"},
               {"factory.attempts", "3"}};
  return r;
}

TEST_CASE("a dead letter's stage is the binding that dead-lettered it, not the inherited one",
          "[http][log]") {
  Api api;
  api.create("src.dlq", 1);
  // An output of `ingest` (its factory.stage) that `codegen` dead-lettered: both headers.
  ProducerRecord r = dead_letter("v0", "7");
  r.headers.insert(r.headers.begin(),
                   {{"factory.stage", "ingest"}, {"factory.source.event_id", "abc"}});
  test::append_ok(api.log.get(), "src.dlq", {r});
  json::value list = api.ok("GET", "/api/v1/dead-letters");
  REQUIRE(list.at("dead_letters").as_array().size() == 1);
  CHECK(list.at("dead_letters").at(0).at("stage").as_string() == "codegen");
  auto parsed = parse_dead_letters(list);
  REQUIRE_OK(parsed);
  CHECK(parsed->at(0).header("factory.stage") == "codegen");
}

TEST_CASE("dead letters: list and replay, dry run unless execute", "[http][log]") {
  Api api;
  api.create("src", 1);
  api.create("src.dlq", 1);
  api.create("other", 1);
  test::append_ok(api.log.get(), "src.dlq", {dead_letter("v0", "7"), dead_letter("v1", "8")});

  json::value list = api.ok("GET", "/api/v1/dead-letters");
  const json::array& letters = list.at("dead_letters").as_array();
  REQUIRE(letters.size() == 2);
  CHECK(letters[0].at("topic").as_string() == "src.dlq");
  CHECK(letters[0].at("source_topic").as_string() == "src");
  CHECK(letters[0].at("source_offset").as_string() == "7");
  CHECK(letters[0].at("reason").as_string() == "boom");
  CHECK(letters[0].at("stage").as_string() == "codegen");
  CHECK(letters[1].at("value").as_string() == "v1");
  CHECK(api.ok("GET", "/api/v1/dead-letters?topic=src.dlq&limit=1")
            .at("dead_letters")
            .as_array()
            .size() == 1);
  auto parsed = parse_dead_letters(list);
  REQUIRE_OK(parsed);
  CHECK(parsed->at(1).header("factory.source.offset") == "8");
  api.fails(404, "not_found", "GET", "/api/v1/dead-letters?topic=nope.dlq");

  json::value dry =
      api.ok("POST", "/api/v1/dead-letters/replay", R"({"topic":"src.dlq","all":true})");
  CHECK(!dry.at("executed").as_bool());
  REQUIRE(dry.at("results").as_array().size() == 2);
  CHECK(dry.at("results").at(0).at("result").as_string() == "would_replay");
  CHECK(dry.at("results").at(0).at("dead_letter").as_string() == "src.dlq/0/0");
  CHECK(api.ok("GET", "/api/v1/topics/src").at("partitions").at(0).at("log_end").as_int64() == 0);

  json::value one = api.ok("POST", "/api/v1/dead-letters/replay",
                           R"({"topic":"src.dlq","partition":0,"offset":1,"execute":true})");
  REQUIRE(one.at("results").as_array().size() == 1);
  CHECK(one.at("results").at(0).at("result").as_string() == "replayed");
  CHECK(one.at("results").at(0).at("offset").as_int64() == 0);
  // A dry run tells the letter already replayed (which a replay skips) from the other.
  json::value planned =
      api.ok("POST", "/api/v1/dead-letters/replay", R"({"topic":"src.dlq","all":true})");
  CHECK(!planned.at("executed").as_bool());
  CHECK(planned.at("results").at(0).at("result").as_string() == "would_replay");
  CHECK(planned.at("results").at(1).at("result").as_string() == "already_replayed");
  CHECK(planned.at("results").at(1).at("dead_letter").as_string() == "src.dlq/0/1");
  json::value again = api.ok("POST", "/api/v1/dead-letters/replay",
                             R"({"topic":"src.dlq","all":true,"execute":true})");
  CHECK(again.at("results").at(0).at("result").as_string() == "replayed");
  CHECK(again.at("results").at(1).at("result").as_string() == "already_replayed");

  json::value src = api.ok("GET", "/api/v1/topics/src/records");
  REQUIRE(src.at("records").as_array().size() == 2);
  const json::value& replayed = src.at("records").at(0);
  CHECK(replayed.at("value").as_string() == "v1");
  CHECK(replayed.at("key").as_string() == "K");
  REQUIRE(replayed.at("headers").as_array().size() == 2);  // trace + factory.replayed_from
  CHECK(replayed.at("headers").at(1).at("value").as_string() == "src.dlq/0/1");

  const std::string replay = "/api/v1/dead-letters/replay";
  CHECK(contains(api.fails(400, "invalid_argument", "POST", replay, R"({"topic":"src.dlq"})"),
                 "exactly one"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", replay,
                           R"({"topic":"src.dlq","all":true,"partition":0,"offset":0})"),
                 "exactly one"));
  CHECK(contains(
      api.fails(400, "invalid_argument", "POST", replay, R"({"topic":"src.dlq","partition":0})"),
      "exactly one"));
  CHECK(contains(api.fails(400, "invalid_argument", "POST", replay,
                           R"({"topic":"src.dlq","all":true,"exec":true})"),
                 "'exec'"));
  CHECK(contains(api.fails(404, "not_found", "POST", replay,
                           R"({"topic":"src.dlq","partition":0,"offset":9})"),
                 "no dead letter 0:9"));
  api.fails(404, "not_found", "POST", replay, R"({"topic":"nope.dlq","all":true})");
  test::append_ok(api.log.get(), "other", {test::rec("no headers")});
  CHECK(contains(
      api.fails(400, "invalid_argument", "POST", replay, R"({"topic":"other","all":true})"),
      "factory.source.topic"));
}

// Issue 12: a record on a factory.* topic is an order to the daemon (a dispatch runs a stage, a
// result decides a task), so no caller may write one, nor create, delete or move them.
TEST_CASE("internal topics: writes are refused with 403 internal_topic, reads allowed",
          "[http][log][security]") {
  Api api;
  REQUIRE_OK(api.log->create_topic({.name = "factory.dispatch.deploy", .partitions = 1}));
  REQUIRE_OK(api.log->create_topic({.name = "factory.task-results", .partitions = 1}));
  const std::string produce = R"({"records":[{"key":"r/deploy","value":{"run_id":"r"}}]})";
  std::string m = api.fails(403, "internal_topic", "POST",
                            "/api/v1/topics/factory.dispatch.deploy/records", produce);
  CHECK(contains(m, "producing to topic 'factory.dispatch.deploy' is refused"));
  CHECK(contains(m, "internal to factoryd"));
  api.fails(403, "internal_topic", "POST", "/api/v1/topics/factory.task-results/records", produce);
  api.fails(403, "internal_topic", "POST", "/api/v1/topics",
            R"({"name":"factory.dispatch.codegen","partitions":1})");
  api.fails(403, "internal_topic", "PUT", "/api/v1/topics/factory.spans", R"({"partitions":1})");
  api.fails(403, "internal_topic", "DELETE", "/api/v1/topics/factory.dispatch.deploy");
  api.fails(403, "internal_topic", "POST", "/api/v1/groups/task.deploy/reset-offsets",
            R"({"topic":"factory.dispatch.deploy","to":"earliest","execute":true})");
  api.fails(403, "internal_topic", "POST", "/api/v1/groups/task.deploy/offsets",
            R"({"offsets":[{"topic":"factory.dispatch.deploy","partition":0,"offset":0}]})");
  api.fails(403, "internal_topic", "POST", "/api/v1/groups/factory.scheduler/offsets",
            R"({"offsets":[{"topic":"factory.task-results","partition":0,"offset":0}]})");
  // A dead letter's source is a header its producer wrote: replaying it is a produce.
  api.create("mine.dlq", 1);
  ProducerRecord letter = dead_letter("{}", "0");
  for (Header& h : letter.headers) {
    if (h.key == "factory.source.topic") h.value = "factory.dispatch.deploy";
  }
  test::append_ok(api.log.get(), "mine.dlq", {letter});
  api.fails(403, "internal_topic", "POST", "/api/v1/dead-letters/replay",
            R"({"topic":"mine.dlq","all":true,"execute":true})");
  // Nothing reached the internal topics; reading them, tuning their config and a reader's own
  // group's commits stay allowed.
  json::value fetched = api.ok("GET", "/api/v1/topics/factory.dispatch.deploy/records");
  CHECK(fetched.at("records").as_array().empty());
  api.ok("GET", "/api/v1/topics/factory.task-results");
  api.ok("PUT", "/api/v1/topics/factory.task-results",
         R"({"partitions":1,"config":{"retention.ms":3600000}})");
  api.ok("POST", "/api/v1/groups/watcher/offsets",
         R"({"offsets":[{"topic":"factory.task-results","partition":0,"offset":0}]})");
  // The CLI's local paths refuse the same through LogAccess.
  auto local = local_log_access(api.log.get());
  Status s =
      local->append("factory.task-results", std::vector<ProducerRecord>{test::rec("x")}, true)
          .status();
  CHECK(s.code() == Status::Code::kFailedPrecondition);
  CHECK(contains(s.message(), "internal to factoryd"));
  CHECK(local->delete_topic("factory.task-results").code() == Status::Code::kFailedPrecondition);
  CHECK(local->replay_dead_letters("mine.dlq", {.all = true}, true).status().code() ==
        Status::Code::kFailedPrecondition);
}

TEST_CASE("log_views: bytes encodings and error bodies", "[http][log]") {
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  CHECK(!is_valid_utf8("\xff"));
  CHECK(!is_valid_utf8("\xc0\xaf"));      // overlong
  CHECK(!is_valid_utf8("\xed\xa0\x80"));  // surrogate
  CHECK(!is_valid_utf8("\xe2\x82"));      // truncated
  for (std::string s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("foob"), std::string("\0\xff\x80", 3)}) {
    auto back = base64_decode(base64_encode(s));
    REQUIRE(back.has_value());
    CHECK(*back == s);
  }
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(!base64_decode("Zm8").has_value());
  CHECK(!base64_decode("Z=8=").has_value());
  CHECK(!base64_decode("Zm8*").has_value());

  Status nf = status_from_error(404, R"({"error":{"code":"not_found","message":"topic 'x'"}})");
  CHECK(nf.is_not_found());
  CHECK(nf.message() == "topic 'x'");
  CHECK(
      status_from_error(409, R"({"error":{"code":"failed_precondition","message":"m"}})").code() ==
      Status::Code::kFailedPrecondition);
  CHECK(status_from_error(403, R"({"error":{"code":"forbidden","message":"no"}})").code() ==
        Status::Code::kFailedPrecondition);
  CHECK(status_from_error(400, "not json").is_invalid_argument());
  CHECK(status_from_error(502, "").code() == Status::Code::kInternal);
}

TEST_CASE("log_views: topic and produce request shapes read back", "[http][log]") {
  TopicInfo info;
  info.spec.name = "t";
  info.spec.partitions = 2;
  info.spec.config.retention_ms = 5;
  info.spec.config.retention_bytes = 1024;
  info.partitions = {{0, Offset(1), Offset(4), 99}, {1, Offset(0), Offset(0), 0}};
  auto back = parse_topic(json::parse(topic_json(info)));
  REQUIRE_OK(back);
  CHECK(back->spec.name == "t");
  CHECK(back->spec.config == info.spec.config);
  REQUIRE(back->partitions.size() == 2);
  CHECK(back->partitions[0].log_start == Offset(1));
  CHECK(back->partitions[0].size_bytes == 99);

  // A produce body the client writes is what the API reads, byte for byte.
  Api api;
  api.create("p", 1);
  std::vector<ProducerRecord> records(3);
  records[0].key = "k";
  records[0].value = "{\"not\": \"parsed\"}";
  records[0].headers = {{"a", "1"}, {"a", "2"}};
  records[1].value = std::string("\x01\xfe", 2);
  records[2].partition = 0;
  auto acks =
      parse_positions(api.ok("POST", "/api/v1/topics/p/records", produce_json(records, true)));
  REQUIRE_OK(acks);
  REQUIRE(acks->size() == 3);
  auto stored = api.log->read("p", 0, Offset(0), {});
  REQUIRE_OK(stored);
  REQUIRE(stored->records.size() == 3);
  CHECK(stored->records[0].value == records[0].value);
  CHECK(stored->records[0].headers == records[0].headers);
  CHECK(stored->records[1].value == records[1].value);
  CHECK(!stored->records[1].key.has_value());
  CHECK(!stored->records[2].value.has_value());
}

// The log routes behind a real server on a free port, and the daemon client over them.
struct Served {
  Api api;
  std::unique_ptr<Server> server;
  std::unique_ptr<Client> client;
  std::unique_ptr<LogAccess> remote;
  std::unique_ptr<LogAccess> local;

  Served() {
    ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    auto started = Server::start(options, &api.router, {});
    REQUIRE_OK(started);
    server = std::move(*started);
    auto c = Client::connect({.url = "http://127.0.0.1:" + std::to_string(server->port())});
    REQUIRE_OK(c);
    client = std::move(*c);
    remote = remote_log_access(client.get());
    local = local_log_access(api.log.get());
  }
};

TEST_CASE("the daemon client answers as the local log does", "[http][log]") {
  Served s;
  REQUIRE_OK(s.remote->create_topic({.name = "t", .partitions = 2}));
  TopicSpec spec{.name = "u", .partitions = 1};
  spec.config.retention_ms = 1234;
  auto created = s.remote->apply_topic(spec);
  REQUIRE_OK(created);
  CHECK(*created == TopicChange::kCreated);
  auto same = s.remote->apply_topic(spec);
  REQUIRE_OK(same);
  CHECK(*same == TopicChange::kUnchanged);

  std::vector<ProducerRecord> records(4);
  records[0].key = "k";
  records[0].value = "plain";
  records[0].headers = {{"h", "1"}, {"h", std::string("\xff", 1)}};
  records[0].partition = 1;
  records[1].value = std::string("\0\xc3", 2);
  records[1].partition = 1;
  records[2].partition = 0;
  records[2].timestamp_ms = 500;
  records[3].key = std::string("\x80", 1);
  records[3].value = "";
  records[3].partition = 0;
  records[3].timestamp_ms = 900;
  auto acks = s.remote->append("t", records, true);
  REQUIRE_OK(acks);
  REQUIRE(acks->size() == 4);
  CHECK((*acks)[1] == RecordPosition{1, Offset(1)});

  auto rtopic = s.remote->describe_topic("t");
  auto ltopic = s.local->describe_topic("t");
  REQUIRE_OK(rtopic);
  REQUIRE_OK(ltopic);
  CHECK(topic_json(*rtopic) == topic_json(*ltopic));
  auto rtopics = s.remote->describe_topics();
  REQUIRE_OK(rtopics);
  CHECK(topics_json(*rtopics) == topics_json(*s.local->describe_topics()));
  auto names = s.remote->list_topics();
  REQUIRE_OK(names);
  CHECK(*names == std::vector<std::string>{"t", "u"});

  const PartitionPosition one[] = {{1, Offset(0)}};
  const PartitionPosition both[] = {{0, Offset(1)}, {1, Offset(0)}};
  using Positions = std::span<const PartitionPosition>;
  for (Positions from : {Positions(one), Positions(both)}) {
    auto r = s.remote->fetch("t", from, {});
    auto l = s.local->fetch("t", from, {});
    REQUIRE_OK(r);
    REQUIRE_OK(l);
    CHECK(r->records == l->records);
    CHECK(fetch_json("t", *r) == fetch_json("t", *l));
  }
  auto direct = s.api.log->read("t", 1, Offset(0), {});
  REQUIRE_OK(direct);
  CHECK(s.remote->fetch("t", one, {})->records == direct->records);

  auto ts = s.remote->offsets_for_timestamp("t", 600);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 2);
  CHECK(ts->at(0).offset == Offset(1));

  const TopicPartitionOffset commit[] = {{"t", 0, Offset(1)}, {"t", 1, Offset(2)}};
  REQUIRE_OK(s.remote->commit_offsets("g", commit, true));
  auto rgroup = s.remote->describe_group("g");
  REQUIRE_OK(rgroup);
  CHECK(group_json(*rgroup) == group_json(*s.local->describe_group("g")));
  CHECK(*s.remote->list_groups() == *s.local->list_groups());
  OffsetResetSpec earliest;
  auto rplan = s.remote->reset_offsets("g", "t", earliest, false);
  REQUIRE_OK(rplan);
  CHECK(reset_plan_json("g", false, *rplan) ==
        reset_plan_json("g", false, *s.local->reset_offsets("g", "t", earliest, false)));
  OffsetResetSpec at_ts{.kind = OffsetResetSpec::Kind::kTimestamp, .value = 600};
  auto executed = s.remote->reset_offsets("g", "t", at_ts, true);
  REQUIRE_OK(executed);
  CHECK(s.api.log->committed_offset("g", "t", 0)->value() == Offset(1));

  REQUIRE_OK(s.remote->create_topic({.name = "src"}));
  REQUIRE_OK(s.remote->create_topic({.name = "src.dlq"}));
  test::append_ok(s.api.log.get(), "src.dlq", {dead_letter(std::string("\xfe", 1), "4")});
  auto rdead = s.remote->list_dead_letters("", 0);
  REQUIRE_OK(rdead);
  REQUIRE(rdead->size() == 1);
  CHECK(rdead->at(0).record == s.local->list_dead_letters("", 0)->at(0).record);
  auto replayed = s.remote->replay_dead_letters("src.dlq", {.all = true}, true);
  REQUIRE_OK(replayed);
  REQUIRE(replayed->size() == 1);
  CHECK(replayed->at(0).result == ReplayRow::Result::kReplayed);
  CHECK(replayed->at(0).position == RecordPosition{0, Offset(0)});
  auto again = s.remote->replay_dead_letters("src.dlq", {.all = true}, true);
  REQUIRE_OK(again);
  CHECK(again->at(0).result == ReplayRow::Result::kAlreadyReplayed);

  REQUIRE_OK(s.remote->delete_topic("u"));

  SECTION("errors keep their code and message") {
    auto missing = s.remote->describe_topic("nope");
    CHECK(missing.status().is_not_found());
    CHECK(missing.status().message() == s.local->describe_topic("nope").status().message());
    CHECK(s.remote->create_topic({.name = "t"}).code() == Status::Code::kAlreadyExists);
    CHECK(s.remote->delete_topic("u").is_not_found());
    CHECK(s.remote->describe_group("nope").status().is_not_found());
    CHECK(s.remote->fetch("t", std::span(one).subspan(0, 1), {}).ok());
    const PartitionPosition beyond[] = {{0, Offset(9)}};
    CHECK(s.remote->fetch("t", beyond, {}).status().is_out_of_range());
    ProducerRecord bad;
    bad.partition = 5;
    CHECK(s.remote->append("t", {&bad, 1}, true).status().is_invalid_argument());
    CHECK(s.remote->replay_dead_letters("src.dlq", {.partition = 0, .offset = 9}, false)
              .status()
              .is_not_found());
    auto member = s.api.log->subscribe({.group = "g", .topics = {"t"}});
    REQUIRE_OK(member);
    REQUIRE_OK((*member)->poll(1, 0));
    CHECK(s.remote->reset_offsets("g", "t", earliest, true).status().code() ==
          Status::Code::kFailedPrecondition);
    CHECK(s.remote->commit_offsets("g", commit, true).code() == Status::Code::kFailedPrecondition);
  }
  SECTION("a long-poll over the API wakes on append") {
    const PartitionPosition end[] = {{0, Offset(2)}, {1, Offset(2)}};
    auto pending = std::async(std::launch::async, [&] {
      // A client of its own: the Client is not thread-safe.
      auto c = Client::connect({.url = s.client->options().url});
      if (!c.ok()) return Result<MultiFetch>(c.status());
      return remote_log_access(c->get())->fetch("t", end, {.wait_ms = 30'000});
    });
    REQUIRE(test::eventually([&] { return waiters(s.api.log.get()) == 1; }));
    ProducerRecord late = test::rec("late");
    late.partition = 1;
    test::append_ok(s.api.log.get(), "t", {late});
    REQUIRE(pending.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    auto got = pending.get();
    REQUIRE_OK(got);
    REQUIRE(got->records.size() == 1);
    CHECK(got->records[0].value == std::optional<std::string>("late"));
  }
  SECTION("an unreachable daemon is Unavailable, naming its URL") {
    std::string url = s.client->options().url;
    s.server.reset();  // stopped and destroyed: its connections are closed
    auto gone = s.remote->describe_topic("t");
    CHECK(gone.status().code() == Status::Code::kUnavailable);
    CHECK(contains(gone.status().message(), url));
  }
}

}  // namespace
}  // namespace factory::http
