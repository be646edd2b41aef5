#include "base/clock.h"
#include "log/log_test_util.h"
#include "log/rocks_log.h"

using namespace factory;
using factory::test::append_ok;
using factory::test::rec;

namespace {

struct Fixture {
  test::TempDir dir;
  base::ManualClock clock{1'000'000};
  std::unique_ptr<Log> log;
  Fixture(int64_t step_records = 10'000) {
    LogOptions o = test::test_log_options(dir);
    o.now_ms = [this] { return clock.now_ms(); };
    o.retention_step_records = step_records;
    log = test::open_test_log(o);
  }
};

}  // namespace

TEST_CASE("time retention deletes records older than retention.ms", "[log]") {
  Fixture f;
  TopicSpec spec{.name = "t", .partitions = 1};
  spec.config.retention_ms = 60'000;
  REQUIRE_OK(f.log->create_topic(spec));
  for (int i = 0; i < 10; ++i) {
    append_ok(f.log.get(), "t", {rec("old" + std::to_string(i))});
    f.clock.advance_ms(1000);
  }
  f.clock.advance_ms(30'000);
  for (int i = 0; i < 5; ++i) append_ok(f.log.get(), "t", {rec("new")});

  auto none = f.log->enforce_retention();
  REQUIRE_OK(none);
  CHECK(none->records_deleted == 0);  // the oldest is 40 s old

  f.clock.advance_ms(25'000);  // records 0..4 are now older than 60 s (ts 1'000'000..1'004'000)
  auto r = f.log->enforce_retention();
  REQUIRE_OK(r);
  CHECK(r->records_deleted == 5);
  auto info = f.log->partition_info("t", 0);
  CHECK(info->log_start == Offset(5));
  CHECK(info->log_end == Offset(15));
  CHECK(f.log->read("t", 0, Offset(4), {}).status().is_out_of_range());
  auto first = f.log->read("t", 0, Offset(5), {.max_records = 1});
  CHECK(first->records.at(0).value == "old5");
  // Timestamp lookups still answer from the new start.
  CHECK(f.log->offset_for_timestamp("t", 0, 0)->value() == 5);
  CHECK(f.log->offset_for_timestamp("t", 0, 1'007'000)->value() == 7);
}

TEST_CASE("size retention keeps each partition under retention.bytes", "[log]") {
  Fixture f;
  TopicSpec spec{.name = "t", .partitions = 2};
  spec.config.retention_ms = -1;
  spec.config.retention_bytes = 1000;
  REQUIRE_OK(f.log->create_topic(spec));
  for (int i = 0; i < 40; ++i) {
    ProducerRecord r = rec(std::string(80, 'a' + i % 26));
    r.partition = 0;
    append_ok(f.log.get(), "t", {r});
  }
  auto before = f.log->partition_info("t", 0);
  CHECK(before->size_bytes > 3000);
  REQUIRE_OK(f.log->enforce_retention());
  auto after = f.log->partition_info("t", 0);
  CHECK(after->size_bytes <= 1000);
  CHECK(after->size_bytes > 1000 - 120);  // deletes only what it must
  CHECK(after->log_end == Offset(40));
  auto r = f.log->read("t", 0, after->log_start, {.max_records = 1000});
  CHECK(static_cast<int64_t>(r->records.size()) == 40 - after->log_start.value());
}

TEST_CASE("retention works in bounded steps", "[log]") {
  Fixture f(/*step_records=*/10);
  TopicSpec spec{.name = "t", .partitions = 1};
  spec.config.retention_ms = 1000;
  REQUIRE_OK(f.log->create_topic(spec));
  std::vector<ProducerRecord> batch(35, rec("x"));
  append_ok(f.log.get(), "t", batch);
  f.clock.advance_ms(5000);
  std::vector<int64_t> deleted;
  for (;;) {
    auto r = f.log->enforce_retention();
    REQUIRE_OK(r);
    deleted.push_back(r->records_deleted);
    if (!r->more) break;
  }
  CHECK(deleted == std::vector<int64_t>{10, 10, 10, 5});
  CHECK(f.log->partition_info("t", 0)->log_start == Offset(35));
}

TEST_CASE("retention state survives reopening", "[log]") {
  test::TempDir dir;
  base::ManualClock clock(1'000'000);
  LogOptions o = test::test_log_options(dir);
  o.now_ms = [&] { return clock.now_ms(); };
  {
    auto log = test::open_test_log(o);
    TopicSpec spec{.name = "t", .partitions = 1};
    spec.config.retention_ms = 1000;
    REQUIRE_OK(log->create_topic(spec));
    append_ok(log.get(), "t", {rec("a"), rec("b")});
    clock.advance_ms(2000);
    append_ok(log.get(), "t", {rec("c")});
    REQUIRE_OK(log->enforce_retention());
  }
  auto log = test::open_test_log(o);
  auto info = log->partition_info("t", 0);
  CHECK(info->log_start == Offset(2));
  CHECK(info->log_end == Offset(3));
  CHECK(log->read("t", 0, Offset(2), {})->records.at(0).value == "c");
}
