#include "factory/consumer.h"

#include <set>

#include "log/log_test_util.h"

using namespace factory;
using factory::test::append_ok;
using factory::test::rec;

namespace {

std::vector<ConsumerRecord> poll_ok(Consumer* c, int32_t max = 1000, int64_t wait_ms = 0) {
  auto r = c->poll(max, wait_ms);
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  return std::move(*r);
}

// Polls until `n` records arrived in total or a poll waited 5 s with nothing new.
std::vector<ConsumerRecord> poll_n(Consumer* c, size_t n) {
  std::vector<ConsumerRecord> all;
  while (all.size() < n) {
    auto got = poll_ok(c, static_cast<int32_t>(n - all.size()), 5000);
    if (got.empty()) break;
    for (auto& r : got) all.push_back(std::move(r));
  }
  return all;
}

void fill(Log* log, const std::string& topic, int32_t partitions, int per_partition) {
  for (int32_t p = 0; p < partitions; ++p) {
    std::vector<ProducerRecord> batch;
    for (int i = 0; i < per_partition; ++i) {
      ProducerRecord r = rec(std::to_string(p) + ":" + std::to_string(i));
      r.partition = p;
      batch.push_back(r);
    }
    append_ok(log, topic, batch);
  }
}

}  // namespace

TEST_CASE("a group member reads every partition and resumes from its commit", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 4}));
  fill(log.get(), "t", 4, 25);
  {
    auto c = log->subscribe({.group = "g", .topics = {"t"}});
    REQUIRE_OK(c);
    auto got = poll_n(c->get(), 60);
    CHECK(got.size() == 60);
    REQUIRE_OK((*c)->commit());
    CHECK((*c)->assignment().size() == 4);
  }
  auto c = log->subscribe({.group = "g", .topics = {"t"}});
  auto rest = poll_n(c->get(), 40);
  CHECK(rest.size() == 40);
  CHECK(poll_ok(c->get(), 10, 20).empty());
  std::set<std::string> values;
  for (auto& r : rest) values.insert(*r.record.value);
  CHECK(values.size() == 40);

  auto d = log->describe_group("g");
  REQUIRE_OK(d);
  CHECK(d->state == "Stable");
  int64_t lag = 0;
  for (auto& row : d->partitions) lag += row.lag;
  CHECK(lag == 40);  // the second member has not committed yet
  REQUIRE_OK((*c)->commit());
  d = log->describe_group("g");
  lag = 0;
  for (auto& row : d->partitions) lag += row.lag;
  CHECK(lag == 0);
}

TEST_CASE("two members split the partitions by range and rebalance without overlap", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 5}));
  fill(log.get(), "t", 5, 20);

  auto a = std::move(*log->subscribe({.group = "g", .topics = {"t"}, .client_id = "a"}));
  auto first = poll_ok(a.get(), 30);  // a alone owns all five partitions
  CHECK(first.size() == 30);
  CHECK(a->assignment().size() == 5);

  auto b = std::move(*log->subscribe({.group = "g", .topics = {"t"}, .client_id = "b"}));
  // b's targets are still owned by a until a polls again: b gets nothing yet.
  CHECK(poll_ok(b.get(), 100).empty());
  auto second = poll_ok(a.get(), 1000);  // a gives up b's partitions, committing its position
  auto b_got = poll_n(b.get(), 40);      // partitions 3 and 4, untouched by a so far

  auto as = a->assignment(), bs = b->assignment();
  CHECK(as.size() == 3);  // range assignor: 5 partitions over 2 members -> 3 + 2
  CHECK(bs.size() == 2);
  for (auto& tp : as) CHECK(std::find(bs.begin(), bs.end(), tp) == bs.end());

  // Every record exactly once across both members.
  std::multiset<std::string> seen;
  for (auto* batch : {&first, &second, &b_got}) {
    for (auto& r : *batch) seen.insert(*r.record.value);
  }
  CHECK(seen.size() == 100);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == 100);

  // When b leaves (after committing), a takes every partition back from b's positions.
  REQUIRE_OK(b->commit());
  b.reset();
  CHECK(poll_ok(a.get(), 10).empty());
  CHECK(a->assignment().size() == 5);
}

TEST_CASE("auto_offset_reset latest starts at the end", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 1}));
  fill(log.get(), "t", 1, 5);
  auto c = std::move(*log->subscribe(
      {.group = "late", .topics = {"t"}, .auto_offset_reset = ConsumerOptions::Reset::kLatest}));
  CHECK(poll_ok(c.get(), 10).empty());
  append_ok(log.get(), "t", {rec("new")});
  auto got = poll_ok(c.get(), 10, 5000);
  REQUIRE(got.size() == 1);
  CHECK(got[0].record.value == "new");
}

TEST_CASE("offset resets are a dry run unless executed, and refused while members are active",
          "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 2}));
  for (int i = 0; i < 10; ++i) {
    ProducerRecord r = rec("x");
    r.partition = i % 2;
    r.timestamp_ms = 1000 * (i / 2);
    append_ok(log.get(), "t", {r});
  }
  std::vector<TopicPartitionOffset> c = {{"t", 0, Offset(5)}, {"t", 1, Offset(5)}};
  REQUIRE_OK(log->commit_offsets("g", c));

  auto plan = log->reset_offsets("g", "t", {.kind = OffsetResetSpec::Kind::kEarliest}, false);
  REQUIRE_OK(plan);
  REQUIRE(plan->size() == 2);
  CHECK((*plan)[0].offset == Offset(0));
  CHECK(**log->committed_offset("g", "t", 0) == Offset(5));  // unchanged: dry run

  plan = log->reset_offsets("g", "t", {.kind = OffsetResetSpec::Kind::kTimestamp, .value = 2500},
                            true);
  REQUIRE_OK(plan);
  CHECK(**log->committed_offset("g", "t", 0) == Offset(3));
  CHECK(**log->committed_offset("g", "t", 1) == Offset(3));

  plan = log->reset_offsets("g", "t", {.kind = OffsetResetSpec::Kind::kOffset, .value = 99}, true);
  CHECK(**log->committed_offset("g", "t", 0) == Offset(5));  // clamped to the log end
  plan = log->reset_offsets("g", "t", {.kind = OffsetResetSpec::Kind::kLatest}, true);
  CHECK(**log->committed_offset("g", "t", 1) == Offset(5));

  auto member = log->subscribe({.group = "g", .topics = {"t"}});
  REQUIRE_OK(member);
  auto refused = log->reset_offsets("g", "t", {.kind = OffsetResetSpec::Kind::kEarliest}, true);
  CHECK(refused.status().code() == Status::Code::kFailedPrecondition);
  CHECK(refused.status().message().find("active members") != std::string::npos);
}

TEST_CASE("subscribing needs a group and existing topics", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  CHECK(log->subscribe({.group = "", .topics = {"t"}}).status().is_invalid_argument());
  CHECK(log->subscribe({.group = "g", .topics = {}}).status().is_invalid_argument());
  CHECK(log->subscribe({.group = "g", .topics = {"nope"}}).status().is_not_found());
  CHECK(log->describe_group("nope").status().is_not_found());
}

TEST_CASE("poll_into returns what poll returns and reuses the batch's buffers", "[log]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = 2}));
  // Partition 0: long values; partition 1: short values, null keys and values, headers.
  std::vector<ProducerRecord> p0, p1;
  for (int i = 0; i < 20; ++i) {
    ProducerRecord r = rec(std::string(64, static_cast<char>('a' + i)));
    r.partition = 0;
    r.key = "k" + std::to_string(i);
    p0.push_back(r);
    ProducerRecord s;
    s.partition = 1;
    if (i % 3 != 0) s.value = std::to_string(i);
    if (i % 2 == 0) s.headers = {{"h", std::to_string(i)}};
    p1.push_back(s);
  }
  append_ok(log.get(), "t", p0);
  append_ok(log.get(), "t", p1);

  auto by_poll = log->subscribe({.group = "by-poll", .topics = {"t"}});
  auto by_into = log->subscribe({.group = "by-into", .topics = {"t"}});
  REQUIRE_OK(by_poll);
  REQUIRE_OK(by_into);
  std::vector<ConsumerRecord> batch;
  bool reused_a_buffer = false;
  size_t total = 0;
  for (int32_t max : {7, 7, 13, 1, 40, 40}) {
    auto expected = poll_ok(by_poll->get(), max);
    std::vector<const char*> buffers;
    for (const ConsumerRecord& r : batch)
      buffers.push_back(r.record.value ? r.record.value->data() : nullptr);
    REQUIRE_OK((*by_into)->poll_into(max, 0, &batch));
    REQUIRE(batch.size() == expected.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      CHECK(batch[i].topic == expected[i].topic);
      CHECK(batch[i].record == expected[i].record);
      if (i < buffers.size() && batch[i].record.value &&
          batch[i].record.value->data() == buffers[i] && batch[i].record.value->size() > 15) {
        reused_a_buffer = true;
      }
    }
    total += batch.size();
  }
  CHECK(total == 40);
  CHECK(reused_a_buffer);  // a long value landed in a slot whose string already had room
  // Nothing left: an empty batch, not the previous records.
  REQUIRE_OK((*by_into)->poll_into(10, 0, &batch));
  CHECK(batch.empty());
  // Commits cover what poll_into returned.
  REQUIRE_OK((*by_into)->commit());
  for (int32_t p = 0; p < 2; ++p) {
    auto committed = log->committed_offset("by-into", "t", p);
    REQUIRE_OK(committed);
    REQUIRE(committed->has_value());
    CHECK((*committed)->value() == 20);
  }
}
