#include <atomic>
#include <map>
#include <thread>

#include "factory/consumer.h"
#include "factory/log.h"
#include "log/log_test_util.h"

using namespace factory;

// Several appenders and consumers at once: every acknowledged record is present at its offset,
// offsets are contiguous, each appender's records keep their order within a partition, and the
// group consumes each record exactly once.
TEST_CASE("concurrent appenders and consumers: order and completeness", "[log][concurrency]") {
  test::TempDir dir;
  auto log = test::open_test_log(test::test_log_options(dir));
  constexpr int kPartitions = 3, kAppenders = 4, kBatches = 60, kBatchSize = 5;
  constexpr int kTotal = kAppenders * kBatches * kBatchSize;
  REQUIRE_OK(log->create_topic({.name = "t", .partitions = kPartitions}));

  struct Ack {
    int appender, seq;
    RecordPosition pos;
  };
  std::vector<std::vector<Ack>> acks(kAppenders);
  std::atomic<int> failures{0};
  std::vector<std::thread> appenders;
  for (int a = 0; a < kAppenders; ++a) {
    appenders.emplace_back([&, a] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<ProducerRecord> batch;
        for (int i = 0; i < kBatchSize; ++i) {
          int seq = b * kBatchSize + i;
          ProducerRecord r;
          r.key = "a" + std::to_string(a) + "-" + std::to_string(seq % 7);
          r.value = std::to_string(a) + ":" + std::to_string(seq);
          batch.push_back(std::move(r));
        }
        auto pos = log->append("t", batch);
        if (!pos.ok()) {
          ++failures;
          return;
        }
        for (int i = 0; i < kBatchSize; ++i) acks[a].push_back({a, b * kBatchSize + i, (*pos)[i]});
      }
    });
  }

  // Two members of one group consume while the appends run.
  std::mutex seen_mu;
  std::map<std::string, int> seen;
  std::atomic<int> consumed{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c) {
    consumers.emplace_back([&] {
      auto sub = log->subscribe({.group = "g", .topics = {"t"}});
      if (!sub.ok()) {
        ++failures;
        return;
      }
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (consumed.load() < kTotal && std::chrono::steady_clock::now() < deadline) {
        auto got = (*sub)->poll(100, 100);
        if (!got.ok()) {
          ++failures;
          return;
        }
        {
          std::lock_guard<std::mutex> lock(seen_mu);
          for (auto& r : *got) ++seen[*r.record.value];
        }
        if (!(*sub)->commit().ok()) ++failures;
        consumed += static_cast<int>(got->size());
      }
    });
  }
  for (auto& t : appenders) t.join();
  for (auto& t : consumers) t.join();
  REQUIRE(failures == 0);

  // Completeness and exactly-once consumption.
  CHECK(consumed == kTotal);
  CHECK(seen.size() == static_cast<size_t>(kTotal));
  for (auto& [v, n] : seen) CHECK(n == 1);

  // Every ack is at a distinct offset holding exactly that record; offsets are contiguous.
  std::map<std::pair<int32_t, int64_t>, std::string> by_pos;
  for (auto& list : acks) {
    for (auto& ack : list) {
      auto [it, fresh] =
          by_pos.emplace(std::make_pair(ack.pos.partition, ack.pos.offset.value()),
                         std::to_string(ack.appender) + ":" + std::to_string(ack.seq));
      CHECK(fresh);
    }
  }
  int64_t total = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    auto r = log->read("t", p, Offset(0), {.max_records = kTotal, .max_bytes = 1 << 30});
    REQUIRE_OK(r);
    std::map<int, int> last_seq;  // appender -> last seq seen in this partition
    for (size_t i = 0; i < r->records.size(); ++i) {
      const Record& rec = r->records[i];
      CHECK(rec.offset == Offset(static_cast<int64_t>(i)));
      CHECK(by_pos[{p, rec.offset.value()}] == *rec.value);
      auto colon = rec.value->find(':');
      int a = std::stoi(rec.value->substr(0, colon)), seq = std::stoi(rec.value->substr(colon + 1));
      auto it = last_seq.find(a);
      if (it != last_seq.end()) CHECK(seq > it->second);  // ack order == offset order
      last_seq[a] = seq;
    }
    total += static_cast<int64_t>(r->records.size());
  }
  CHECK(total == kTotal);
}
