// Disk full against the real daemon (issue 11): `factoryd serve` with its data dir on a small
// tmpfs that the test fills. API writes are refused with 507 naming the disk (nothing is
// acknowledged), reads and /healthz keep working, /readyz says why it is not ready, and once the
// filler is deleted the next write succeeds without a restart. Nothing acknowledged is lost.
#include <catch2/catch.hpp>

#include "http/daemon_harness.h"
#include "small_disk.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

std::string produce_body(int i) {
  return R"({"records":[{"key":"k)" + std::to_string(i) + R"(","value":"v)" + std::to_string(i) +
         "\"}]}";
}

std::string error_message_of(const http::ClientResponse& r) {
  auto v = parse_json_or_null(r.body);
  if (!v.is_object() || !v.as_object().contains("error")) return "";
  return std::string(v.at("error").at("message").as_string());
}

}  // namespace

TEST_CASE(
    "issue 11: on a full disk the daemon refuses writes with 507, keeps reading, says why "
    "in /readyz, and resumes by itself once space is freed",
    "[http][e2e][disk]") {
  std::string why;
  auto disk = SmallDisk::make(96 << 20, &why);
  if (!disk) {
    WARN("skipped: " << why);
    return;
  }
  std::string err;
  auto d = Daemon::start(disk->path(), "", &err);
  INFO(err);
  REQUIRE(d != nullptr);
  auto c = d->client();
  REQUIRE(c);
  const std::string data_dir = d->data_dir();
  const std::string records = "/api/v1/topics/disk-full/records";
  REQUIRE(c->request("POST", "/api/v1/topics", R"({"name":"disk-full","partitions":1})")->status ==
          201);

  std::vector<std::pair<int64_t, std::string>> acked;  // offset, value
  auto produce = [&](int i) {
    auto r = c->request("POST", records, produce_body(i));
    REQUIRE_OK(r.status());
    if (r->status == 200) {
      auto body = parse_json_or_null(r->body);
      acked.emplace_back(body.at("offsets").at(0).at("offset").as_int64(), "v" + std::to_string(i));
    }
    return *r;
  };
  auto check_acked = [&] {
    for (const auto& [offset, value] : acked) {
      auto r = c->request(
          "GET", records + "?partition=0&offset=" + std::to_string(offset) + "&max_records=1");
      REQUIRE_OK(r.status());
      REQUIRE(r->status == 200);
      INFO(r->body);
      REQUIRE(r->body.find("\"" + value + "\"") != std::string::npos);
    }
  };
  for (int i = 0; i < 5; ++i) REQUIRE(produce(i).status == 200);

  REQUIRE(disk->fill() > 0);
  // Writes are refused, saying which disk is full; nothing is acknowledged.
  auto refused = produce(100);
  INFO(refused.body);
  CHECK(refused.status == 507);
  CHECK(error_message_of(refused).find("the disk holding '" + data_dir + "' is full") !=
        std::string::npos);
  auto topic = c->request("POST", "/api/v1/topics", R"({"name":"other","partitions":1})");
  CHECK(topic->status == 507);
  CHECK(acked.size() == 5);
  // Reads and liveness keep working; readiness says why not.
  check_acked();
  CHECK(c->request("GET", "/healthz")->status == 200);
  auto ready = c->request("GET", "/readyz");
  INFO(ready->body);
  CHECK(ready->status == 503);
  CHECK(error_message_of(*ready).find("not ready: disk full at " + data_dir) != std::string::npos);

  // Space comes back: the very next write succeeds, no restart.
  disk->unfill();
  CHECK(produce(200).status == 200);
  CHECK(c->request("GET", "/readyz")->status == 200);
  CHECK(acked.size() == 6);
  check_acked();
  // The audit (in the store, on the same disk) writes again: a write with a request id of its
  // own finds its row.
  auto audited = c->request("POST", records, produce_body(300), {{"X-Request-Id", "after-full"}});
  REQUIRE(audited->status == 200);
  acked.emplace_back(parse_json_or_null(audited->body).at("offsets").at(0).at("offset").as_int64(),
                     "v300");
  auto audit = c->request("GET", "/api/v1/audit?limit=20");
  REQUIRE(audit->status == 200);
  bool found = false;
  json::value rows = parse_json_or_null(audit->body);
  for (const auto& row : rows.at("audit").as_array()) {
    found = found || (row.at("request_id").as_string() == "after-full" &&
                      row.at("result").as_string() == "ok");
  }
  CHECK(found);

  auto exit = d->stop(SIGTERM);
  CHECK(exit.exit_code == 0);
  auto d2 = Daemon::restart(*d, &err);
  INFO(err);
  REQUIRE(d2 != nullptr);
  c = d2->client();
  check_acked();
  CHECK(d2->stop(SIGTERM).exit_code == 0);
}

}  // namespace factory::test
