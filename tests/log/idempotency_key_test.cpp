// Keyed idempotence (ProducerRecord::idempotency_key): a record identity that does not depend on
// offsets, for outputs whose input offsets a reset or a re-created topic can reuse.
#include "factory/log.h"
#include "log/log_test_util.h"

using namespace factory;
using factory::test::append_ok;
using factory::test::rec;

namespace {

ProducerRecord keyed(std::string value, std::string key) {
  ProducerRecord r = rec(std::move(value));
  r.idempotency_key = std::move(key);
  return r;
}

std::vector<std::string> values(Log* log, const std::string& topic) {
  auto r = log->read(topic, 0, Offset(0), {.max_records = 1000, .max_bytes = 1 << 20});
  REQUIRE_OK(r);
  std::vector<std::string> out;
  for (const Record& x : r->records) out.push_back(*x.value);
  return out;
}

}  // namespace

TEST_CASE("a keyed record is appended once: in one call, in later calls and after a reopen",
          "[log]") {
  test::TempDir dir;
  auto opts = test::test_log_options(dir);
  {
    auto log = test::open_test_log(opts);
    REQUIRE_OK(log->create_topic({.name = "out"}));
    auto first =
        append_ok(log.get(), "out", {keyed("a", "k/a"), keyed("b", "k/b"), keyed("a2", "k/a")});
    CHECK(first[0] == RecordPosition{0, Offset(0), false});
    CHECK(first[1] == RecordPosition{0, Offset(1), false});
    CHECK(first[2] == RecordPosition{0, Offset(0), true});  // the first record with that key
    auto again = append_ok(log.get(), "out", {keyed("b", "k/b"), keyed("c", "k/c"), rec("plain")});
    CHECK(again[0] == RecordPosition{0, Offset(1), true});
    CHECK(again[1] == RecordPosition{0, Offset(2), false});
    CHECK(again[2] == RecordPosition{0, Offset(3), false});
  }
  auto log = test::open_test_log(opts);
  auto reopened = append_ok(log.get(), "out", {keyed("c", "k/c"), keyed("d", "k/d")});
  CHECK(reopened[0] == RecordPosition{0, Offset(2), true});
  CHECK(reopened[1] == RecordPosition{0, Offset(4), false});
  CHECK(values(log.get(), "out") == std::vector<std::string>{"a", "b", "c", "plain", "d"});
}

TEST_CASE("keys are per topic and a re-created topic starts with none", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "x"}));
  REQUIRE_OK(log->create_topic({.name = "y"}));
  append_ok(log.get(), "x", {keyed("1", "same")});
  CHECK(!append_ok(log.get(), "y", {keyed("1", "same")})[0].duplicate);
  auto before = log->describe_topic("x");
  REQUIRE_OK(before);
  REQUIRE_OK(log->delete_topic("x"));
  REQUIRE_OK(log->create_topic({.name = "x"}));
  auto after = log->describe_topic("x");
  REQUIRE_OK(after);
  CHECK(after->id != before->id);  // topic ids are never reused
  CHECK(!append_ok(log.get(), "x", {keyed("1", "same")})[0].duplicate);
}

TEST_CASE("a record with both a producer sequence and a key, or an oversize key, is refused",
          "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t"}));
  ProducerRecord both = keyed("v", "k");
  both.producer_id = std::string(1, 'p');  // not = "p": GCC 12 -Wrestrict false positive
  both.sequence = 1;
  auto r = log->append("t", std::vector<ProducerRecord>{both});
  CHECK(r.status().is_invalid_argument());
  CHECK(r.status().message().find("both a producer sequence and an idempotency key") !=
        std::string::npos);
  auto big = log->append("t", std::vector<ProducerRecord>{keyed("v", std::string(2000, 'k'))});
  CHECK(big.status().is_invalid_argument());
  CHECK(values(log.get(), "t").empty());
}

TEST_CASE("retention forgets the keys of the records it deletes", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  TopicSpec spec{.name = "t"};
  spec.config.retention_bytes = 1;  // every record is over the limit
  REQUIRE_OK(log->create_topic(spec));
  append_ok(log.get(), "t", {keyed("a", "k/a"), keyed("b", "k/b")});
  CHECK(append_ok(log.get(), "t", {keyed("a", "k/a")})[0].duplicate);
  auto stats = log->enforce_retention();
  REQUIRE_OK(stats);
  CHECK(stats->records_deleted == 2);
  auto again = append_ok(log.get(), "t", {keyed("a", "k/a"), keyed("b", "k/b")});
  CHECK(again[0] == RecordPosition{0, Offset(2), false});
  CHECK(again[1] == RecordPosition{0, Offset(3), false});
}
