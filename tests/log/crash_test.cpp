// Crash test: kill -9 a real `factoryd produce --acks` (and a `factoryd consume -g`) at random
// moments, then reopen the log and check that nothing acknowledged was lost or reused.
#include <signal.h>

#include <map>
#include <random>
#include <set>

#include "cli/run_process.h"
#include "factory/log.h"
#include "log/log_test_util.h"

using namespace factory;

namespace {

constexpr char kTopic[] = "crash";
constexpr int32_t kPartitions = 4;
constexpr char kGroup[] = "crash-readers";

struct Acked {
  std::string key, value, round;
};

std::string random_value(std::mt19937_64& rng, int round, int i) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789{}\":,";
  std::string v = "r" + std::to_string(round) + "-" + std::to_string(i) + "-";
  size_t n = 10 + rng() % 300;
  for (size_t k = 0; k < n; ++k) v.push_back(kAlphabet[rng() % (sizeof kAlphabet - 1)]);
  return v;
}

}  // namespace

TEST_CASE("kill -9 during produce --acks loses no acknowledged record and reuses no offset",
          "[log][crash]") {
  const uint64_t seed = test::test_seed();
  INFO("seed " << seed << " (set FACTORY_TEST_SEED to replay)");
  std::mt19937_64 rng(seed);
  test::TempDir dir;
  const std::string data = dir.str();
  auto created = test::run_factoryd({"topics", "create", kTopic, "--partitions",
                                     std::to_string(kPartitions), "--data-dir", data});
  INFO(created.err);
  REQUIRE(created.exit_code == 0);

  std::map<std::pair<int32_t, int64_t>, Acked> acked;  // every ack ever received
  std::map<int32_t, int64_t> last_committed;           // group offsets seen so far (-1: none)
  std::map<int32_t, std::set<int64_t>> delivered;      // offsets the group's consumers printed
  for (int32_t p = 0; p < kPartitions; ++p) last_committed[p] = -1;
  int rounds_with_kill_before_all_acks = 0;
  constexpr int kRounds = 24;

  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    // 1. Produce: write a random number of lines in random chunks; read acks; kill -9 after a
    //    random number of acks (sometimes before the first one).
    const int lines = 200 + static_cast<int>(rng() % 1500);
    const int kill_after_acks = static_cast<int>(rng() % (lines + 1));
    std::vector<std::pair<std::string, std::string>> sent;  // key, value in input order
    auto producer = test::spawn_factoryd({"produce", kTopic, "--acks", "-K", "|", "-H",
                                          "round=" + std::to_string(round), "--data-dir", data});
    size_t acks_read = 0;
    std::string chunk;
    bool killed = false;
    while (!killed) {
      // Send the next chunk, if any is left.
      if (static_cast<int>(sent.size()) < lines) {
        int n = 1 + static_cast<int>(rng() % 200);
        chunk.clear();
        for (int i = 0; i < n && static_cast<int>(sent.size()) < lines; ++i) {
          std::string key = "key-" + std::to_string(rng() % 50);
          std::string value = random_value(rng, round, static_cast<int>(sent.size()));
          chunk += key + "|" + value + "\n";
          sent.emplace_back(key, value);
        }
        if (!producer.write_stdin(chunk)) break;
      }
      // Read acks up to what was sent, killing at the chosen count.
      while (acks_read < sent.size()) {
        if (static_cast<int>(acks_read) == kill_after_acks) {
          producer.kill(SIGKILL);
          killed = true;
          break;
        }
        auto line = producer.read_stdout_line(20'000);
        REQUIRE(line.has_value());
        int32_t p;
        int64_t o;
        REQUIRE(std::sscanf(line->c_str(), "%d %ld", &p, &o) == 2);
        auto [it, fresh] = acked.try_emplace(
            {p, o}, Acked{sent[acks_read].first, sent[acks_read].second, std::to_string(round)});
        INFO("ack " << *line << " for a second record: offset reused");
        REQUIRE(fresh);
        ++acks_read;
        if (static_cast<int>(sent.size()) < lines && rng() % 4 == 0) break;  // send more first
      }
      if (!killed && static_cast<int>(acks_read) == lines) {
        producer.kill(SIGKILL);  // all acked: kill anyway, mid-idle
        killed = true;
      }
    }
    auto pr = producer.wait();
    if (static_cast<int>(acks_read) < lines) ++rounds_with_kill_before_all_acks;

    // 2. Consume through a group and kill -9 it after a random number of records. Every
    //    "partition offset" line it printed, read before the kill or left in the pipe, is a
    //    delivery (a line the kill cut short is not).
    {
      auto consumer = test::spawn_factoryd(
          {"consume", kTopic, "-g", kGroup, "-f", "%p %o\n", "--data-dir", data});
      auto take = [&](const std::string& line) {
        int32_t p;
        int64_t o;
        INFO("consumer printed '" << line << "'");
        REQUIRE(std::sscanf(line.c_str(), "%d %ld", &p, &o) == 2);
        delivered[p].insert(o);
      };
      int want = static_cast<int>(rng() % 400);
      for (int i = 0; i < want; ++i) {
        auto line = consumer.read_stdout_line(5'000);
        if (!line) break;  // caught up: nothing more to print
        take(*line);
      }
      consumer.kill(SIGKILL);
      test::ProcessResult rest = consumer.wait();
      for (size_t at = 0, nl; (nl = rest.out.find('\n', at)) != std::string::npos; at = nl + 1) {
        take(rest.out.substr(at, nl - at));
      }
    }

    // 3. Reopen in this process and check everything.
    LogOptions options = test::test_log_options(dir);
    options.dir = (dir.path() / "log").string();
    auto log = test::open_test_log(options);
    std::set<std::string> values;
    for (int32_t p = 0; p < kPartitions; ++p) {
      auto info = log->partition_info(kTopic, p);
      REQUIRE_OK(info);
      int64_t next = info->log_start.value();
      while (next < info->log_end.value()) {
        auto r = log->read(kTopic, p, Offset(next), {.max_records = 5000, .max_bytes = 64 << 20});
        REQUIRE_OK(r);
        REQUIRE_FALSE(r->records.empty());
        for (const Record& rec : r->records) {
          REQUIRE(rec.offset.value() == next);  // contiguous: no hole
          ++next;
          REQUIRE(rec.value.has_value());
          INFO("duplicate value at " << p << "/" << rec.offset.value());
          REQUIRE(values.insert(*rec.value).second);  // no record stored twice
        }
      }
    }
    for (const auto& [pos, a] : acked) {
      auto r = log->read(kTopic, pos.first, Offset(pos.second), {.max_records = 1});
      INFO("acked record at " << pos.first << "/" << pos.second);
      REQUIRE_OK(r);
      REQUIRE(r->records.size() == 1);
      const Record& rec = r->records[0];
      CHECK(rec.key == a.key);
      CHECK(rec.value == a.value);
      REQUIRE(rec.headers.size() == 1);
      CHECK(rec.headers[0] == Header{"round", a.round});
    }
    for (int32_t p = 0; p < kPartitions; ++p) {
      auto c = log->committed_offset(kGroup, kTopic, p);
      REQUIRE_OK(c);
      int64_t now = c->has_value() ? (*c)->value() : -1;
      INFO("partition " << p);
      CHECK(now >= last_committed[p]);  // committed offsets never move backwards
      CHECK(now <= log->partition_info(kTopic, p)->log_end.value());
      // A commit never runs ahead of delivery: every offset below it was printed by a consumer
      // of the group (at least once, in some round) before that consumer committed it.
      int64_t undelivered = -1;  // the first offset below the commit that no consumer printed
      for (int64_t o = 0; o < now && undelivered < 0; ++o) {
        if (!delivered[p].contains(o)) undelivered = o;
      }
      INFO("offset " << undelivered << " is below the committed " << now
                     << " but was never delivered");
      CHECK(undelivered == -1);
      last_committed[p] = now;
    }
  }
  INFO("rounds killed before every line was acked: " << rounds_with_kill_before_all_acks);
  CHECK(rounds_with_kill_before_all_acks >= kRounds / 2);  // the kills really hit mid-stream
  CHECK(acked.size() > 1000);
}
