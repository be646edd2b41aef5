#include "log/rocks_log.h"

#include <atomic>
#include <future>
#include <thread>

#include "log/log_test_util.h"

using namespace factory;
using factory::test::append_ok;
using factory::test::rec;

TEST_CASE("topics are created, listed, described, updated and deleted", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "b", .partitions = 3}));
  REQUIRE_OK(log->create_topic({.name = "a", .partitions = 1}));
  CHECK(log->list_topics() == std::vector<std::string>{"a", "b"});

  Status dup = log->create_topic({.name = "a", .partitions = 1});
  CHECK(dup.code() == Status::Code::kAlreadyExists);
  CHECK(dup.message().find("'a'") != std::string::npos);
  CHECK(log->create_topic({.name = "bad name!", .partitions = 1}).is_invalid_argument());
  CHECK(log->create_topic({.name = "zero", .partitions = 0}).is_invalid_argument());

  auto info = log->describe_topic("b");
  REQUIRE_OK(info);
  CHECK(info->partitions.size() == 3);

  TopicSpec grown{.name = "b", .partitions = 5};
  grown.config.retention_ms = 1000;
  auto change = log->apply_topic(grown);
  REQUIRE_OK(change);
  CHECK(*change == TopicChange::kUpdated);
  CHECK(*log->apply_topic(grown) == TopicChange::kUnchanged);
  auto shrink = log->apply_topic({.name = "b", .partitions = 2});
  CHECK(shrink.status().is_invalid_argument());
  CHECK(shrink.status().message().find("cannot be lowered") != std::string::npos);
  info = log->describe_topic("b");
  CHECK(info->partitions.size() == 5);
  CHECK(info->spec.config.retention_ms == 1000);

  append_ok(log.get(), "b", {rec("x")});
  REQUIRE_OK(log->delete_topic("b"));
  CHECK(log->list_topics() == std::vector<std::string>{"a"});
  CHECK(log->describe_topic("b").status().is_not_found());
  CHECK(log->delete_topic("b").is_not_found());
  // A re-created topic starts empty: the old records went with the old topic.
  REQUIRE_OK(log->create_topic({.name = "b", .partitions = 1}));
  CHECK(log->partition_info("b", 0)->log_end == Offset(0));
}

TEST_CASE("appended records read back byte-identical at contiguous offsets", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 2}));
  std::vector<ProducerRecord> in;
  for (int i = 0; i < 50; ++i) {
    ProducerRecord r;
    r.partition = 1;
    if (i % 3) r.key = "k" + std::to_string(i);
    if (i % 5) r.value = std::string("v\0", 2) + std::to_string(i);
    r.headers = {{"i", std::to_string(i)}};
    r.timestamp_ms = 1000 + i;
    in.push_back(r);
  }
  auto pos = append_ok(log.get(), "t", in);
  for (size_t i = 0; i < in.size(); ++i) CHECK(pos[i] == RecordPosition{1, Offset(i)});

  auto fetched = log->read("t", 1, Offset(0), {.max_records = 1000});
  REQUIRE_OK(fetched);
  REQUIRE(fetched->records.size() == in.size());
  CHECK(fetched->log_end == Offset(50));
  for (size_t i = 0; i < in.size(); ++i) {
    const Record& r = fetched->records[i];
    CHECK(r.offset == Offset(i));
    CHECK(r.partition == 1);
    CHECK(r.key == in[i].key);
    CHECK(r.value == in[i].value);
    CHECK(r.headers == in[i].headers);
    CHECK(r.timestamp_ms == 1000 + static_cast<int64_t>(i));
  }
  auto limited = log->read("t", 1, Offset(10), {.max_records = 7});
  REQUIRE(limited->records.size() == 7);
  CHECK(limited->records.front().offset == Offset(10));
  auto by_bytes = log->read("t", 1, Offset(0), {.max_records = 1000, .max_bytes = 1});
  CHECK(by_bytes->records.size() == 1);  // always at least one record
}

TEST_CASE("partitions come from the record, murmur2 of the key, or a sticky choice", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 12}));
  std::vector<ProducerRecord> keyed;
  for (int i = 0; i < 40; ++i) keyed.push_back(rec("v", "PROJ-" + std::to_string(i)));
  auto pos = append_ok(log.get(), "t", keyed);
  for (size_t i = 0; i < keyed.size(); ++i) {
    CHECK(pos[i].partition == partition_for_key(*keyed[i].key, 12));
  }
  // Null keys: one partition per append call, moving on with the next call.
  std::set<int32_t> seen;
  for (int call = 0; call < 12; ++call) {
    auto p = append_ok(log.get(), "t", {rec("a"), rec("b"), rec("c")});
    CHECK(p[0].partition == p[1].partition);
    CHECK(p[1].partition == p[2].partition);
    seen.insert(p[0].partition);
  }
  CHECK(seen.size() == 12);

  ProducerRecord bad = rec("x");
  bad.partition = 12;
  auto r = log->append("t", {&bad, 1});
  CHECK(r.status().is_invalid_argument());
  CHECK(r.status().message().find("partition 12 does not exist") != std::string::npos);
  CHECK(log->append("missing", {&bad, 1}).status().is_not_found());
}

TEST_CASE("an oversize record is refused and nothing of its batch is written", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  TopicSpec spec{.name = "small", .partitions = 1};
  spec.config.max_message_bytes = 100;
  REQUIRE_OK(log->create_topic(spec));
  auto r = log->append("small", std::vector<ProducerRecord>{rec("ok"), rec(std::string(101, 'x'))});
  CHECK(r.status().is_invalid_argument());
  CHECK(r.status().message().find("record 1 is 101 bytes") != std::string::npos);
  CHECK(r.status().message().find("max.message.bytes=100") != std::string::npos);
  CHECK(log->partition_info("small", 0)->log_end == Offset(0));
}

TEST_CASE("reads outside the log are out of range with the bounds", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
  append_ok(log.get(), "t", {rec("a"), rec("b")});
  auto above = log->read("t", 0, Offset(3), {});
  CHECK(above.status().is_out_of_range());
  CHECK(above.status().message().find("0..2") != std::string::npos);
  auto at_end = log->read("t", 0, Offset(2), {});
  REQUIRE_OK(at_end);
  CHECK(at_end->records.empty());
  CHECK(log->read("t", 1, Offset(0), {}).status().is_invalid_argument());
}

TEST_CASE("a long-poll read returns as soon as a record arrives", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  auto* rocks = static_cast<log::RocksLog*>(log.get());
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
  auto reader = std::async(std::launch::async,
                           [&] { return log->read("t", 0, Offset(0), {.wait_ms = 30'000}); });
  // Append only once the reader is blocked in its wait, so the append must wake it.
  REQUIRE(test::eventually([&] { return rocks->long_poll_waiters_for_test() == 1; }));
  append_ok(log.get(), "t", {rec("hello")});
  // Woken by the append, not by its 30 s deadline: 5 s is a bound even a loaded CI meets.
  REQUIRE(reader.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  auto got = reader.get();
  REQUIRE_OK(got);
  REQUIRE(got->records.size() == 1);
  CHECK(got->records[0].value == "hello");

  auto t0 = std::chrono::steady_clock::now();
  auto empty = log->read("t", 0, Offset(1), {.wait_ms = 50});
  auto waited = std::chrono::steady_clock::now() - t0;
  REQUIRE_OK(empty);
  CHECK(empty->records.empty());
  CHECK(waited >= std::chrono::milliseconds(50));
}

TEST_CASE("topics, records and committed offsets survive reopening", "[log]") {
  test::TempDir dir;
  auto options = test::test_log_options(dir);
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = "t", .partitions = 3}));
    for (int i = 0; i < 10; ++i) append_ok(log.get(), "t", {rec("v" + std::to_string(i), "k")});
    std::vector<TopicPartitionOffset> c = {{"t", 1, Offset(4)}};
    REQUIRE_OK(log->commit_offsets("g", c));
  }
  auto log = test::open_test_log(options);
  CHECK(log->list_topics() == std::vector<std::string>{"t"});
  int32_t p = partition_for_key("k", 3);
  auto info = log->partition_info("t", p);
  REQUIRE_OK(info);
  CHECK(info->log_end == Offset(10));
  auto r = log->read("t", p, Offset(9), {});
  CHECK(r->records.at(0).value == "v9");
  CHECK(*log->committed_offset("g", "t", 1) == std::optional<Offset>(Offset(4)));
  CHECK(log->list_groups() == std::vector<std::string>{"g"});
  // Appends continue after the recovered end.
  auto pos = append_ok(log.get(), "t", {rec("v10", "k")});
  CHECK(pos[0].offset == Offset(10));
}

TEST_CASE("a second open of the same data dir is refused with Busy", "[log]") {
  test::TempDir dir;
  auto options = test::test_log_options(dir);
  auto first = test::open_test_log(options);
  auto second = open_log(options);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().is_busy());
  CHECK(second.status().message().find("in use by another factoryd process") != std::string::npos);
}

TEST_CASE("offset_for_timestamp finds the first record at or after a time", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
  // Timestamps out of order, as producer-set timestamps can be.
  std::vector<int64_t> ts = {100, 300, 200, 300, 500, 400, 600};
  std::vector<ProducerRecord> in;
  for (int64_t t : ts) {
    ProducerRecord r = rec("x");
    r.timestamp_ms = t;
    in.push_back(r);
  }
  append_ok(log.get(), "t", in);
  auto at = [&](int64_t t) { return log->offset_for_timestamp("t", 0, t)->value(); };
  CHECK(at(0) == 0);
  CHECK(at(100) == 0);
  CHECK(at(150) == 1);
  CHECK(at(250) == 1);
  CHECK(at(301) == 4);
  CHECK(at(450) == 4);
  CHECK(at(501) == 6);
  CHECK(at(601) == 7);  // none: the log end
}

TEST_CASE("an idempotent producer's replayed sequences are skipped, across restarts", "[log]") {
  test::TempDir dir;
  auto options = test::test_log_options(dir);
  auto batch = [](std::vector<int64_t> seqs) {
    std::vector<ProducerRecord> out;
    for (int64_t s : seqs) {
      ProducerRecord r = rec("seq" + std::to_string(s));
      r.partition = 0;
      r.sequence = s;
      out.push_back(r);
    }
    return out;
  };
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
    auto first = log->append("t", batch({1, 2, 3}), {.producer_id = "stage-a/in/0"});
    REQUIRE_OK(first);
    CHECK((*first)[2] == RecordPosition{0, Offset(2)});
    auto replay = log->append("t", batch({2, 3, 4}), {.producer_id = "stage-a/in/0"});
    REQUIRE_OK(replay);
    CHECK((*replay)[0].duplicate);
    CHECK((*replay)[1].duplicate);
    CHECK((*replay)[2] == RecordPosition{0, Offset(3)});
    // Another producer has its own sequence space.
    auto other = log->append("t", batch({1}), {.producer_id = "stage-b/in/0"});
    CHECK_FALSE((*other)[0].duplicate);
    // Sequences must be present and increasing.
    CHECK(log->append("t", batch({5, 5}), {.producer_id = "p"}).status().is_invalid_argument());
    std::vector<ProducerRecord> unsequenced{rec("x")};
    CHECK(log->append("t", unsequenced, {.producer_id = "p"}).status().is_invalid_argument());
  }
  auto log = test::open_test_log(options);
  auto after = log->append("t", batch({3, 4, 5}), {.producer_id = "stage-a/in/0"});
  REQUIRE_OK(after);
  CHECK((*after)[0].duplicate);
  CHECK((*after)[1].duplicate);
  CHECK((*after)[2].offset == Offset(5));
  auto all = log->read("t", 0, Offset(0), {.max_records = 100});
  std::vector<std::string> values;
  for (auto& r : all->records) values.push_back(*r.value);
  CHECK(values == std::vector<std::string>{"seq1", "seq2", "seq3", "seq4", "seq1", "seq5"});
}

TEST_CASE("records of several producers share one idempotent append", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 2}));
  auto make = [](std::string producer, int64_t seq, int32_t partition) {
    ProducerRecord r = rec(producer + "#" + std::to_string(seq));
    r.producer_id = std::move(producer);
    r.sequence = seq;
    r.partition = partition;
    return r;
  };
  std::vector<ProducerRecord> batch = {make("a", 10, 0), make("b", 1, 1), make("a", 11, 1),
                                       make("b", 2, 0)};
  REQUIRE_OK(log->append("t", batch));
  std::vector<ProducerRecord> replay = {make("b", 2, 0), make("a", 11, 1), make("a", 12, 0),
                                        rec("plain")};
  auto r = log->append("t", replay);
  REQUIRE_OK(r);
  CHECK((*r)[0].duplicate);
  CHECK((*r)[1].duplicate);
  CHECK_FALSE((*r)[2].duplicate);
  CHECK_FALSE((*r)[3].duplicate);  // no producer: never deduplicated
  std::vector<ProducerRecord> backwards = {make("a", 20, 0), make("a", 19, 0)};
  CHECK(log->append("t", backwards).status().is_invalid_argument());
}

TEST_CASE(
    "issue 11.10: an offset commit racing its topic's deletion leaves no offset for a topic "
    "recreated under the same name",
    "[log]") {
  test::TempDir dir;
  auto options = test::test_log_options(dir);
  // The clock holds the retention step (an exclusive writer at the queue front) while the
  // deletion and then the commit queue up behind it: the commit has validated its topic
  // before the deletion runs, and reaches the front only after it.
  std::atomic<bool> hold_next_clock_read{false};
  std::promise<void> clock_entered, clock_released;
  std::shared_future<void> released = clock_released.get_future().share();
  options.now_ms = [&]() -> int64_t {
    if (hold_next_clock_read.exchange(false)) {
      clock_entered.set_value();
      released.wait();
    }
    return 1'700'000'000'000;
  };
  {
    auto log = test::open_test_log(options);
    auto* rocks = static_cast<log::RocksLog*>(log.get());
    REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
    append_ok(log.get(), "t", {rec("a"), rec("b"), rec("c")});

    hold_next_clock_read = true;
    auto retention = std::async(std::launch::async, [&] { return log->enforce_retention(); });
    clock_entered.get_future().wait();
    auto deleted = std::async(std::launch::async, [&] { return log->delete_topic("t"); });
    REQUIRE(test::eventually([&] { return rocks->queued_writers_for_test() == 2; }));
    std::vector<TopicPartitionOffset> offsets = {{"t", 0, Offset(3)}};
    auto committed =
        std::async(std::launch::async, [&] { return log->commit_offsets("g", offsets); });
    REQUIRE(test::eventually([&] { return rocks->queued_writers_for_test() == 3; }));
    clock_released.set_value();
    REQUIRE_OK(retention.get());
    REQUIRE_OK(deleted.get());
    Status commit = committed.get();
    INFO(commit.to_string());
    CHECK(commit.is_not_found());  // the topic it names is gone: nothing was committed

    REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
    CHECK(*log->committed_offset("g", "t", 0) == std::nullopt);
    CHECK(log->list_groups().empty());
  }
  // Nor on disk: a reopened log has no offset for the new topic either.
  auto log = test::open_test_log(options);
  CHECK(*log->committed_offset("g", "t", 0) == std::nullopt);
  CHECK(log->list_groups().empty());
}
