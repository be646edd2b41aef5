// Disk full (issue 11): the log on a small real filesystem (tmpfs) that fills up. Appends fail
// with NoSpace naming the dir and acknowledge nothing, reads keep working, and writes resume by
// themselves once space is freed; nothing acknowledged is lost, also across a reopen.
#include <map>

#include "log/log_test_util.h"
#include "small_disk.h"

using namespace factory;

TEST_CASE("issue 11: a full disk refuses appends with NoSpace, and they resume once space is freed",
          "[log][disk]") {
  std::string why;
  auto disk = test::SmallDisk::make(16 << 20, &why);
  if (!disk) {
    WARN("skipped: " << why);
    return;
  }
  LogOptions options;
  options.dir = disk->path() + "/log";
  options.retention_interval_ms = 0;
  options.write_buffer_bytes = 256 << 10;  // a small WAL preallocation, so the disk is felt soon
  constexpr char kTopic[] = "full";
  std::map<int64_t, std::string> acked;  // offset -> value (one partition)
  auto append = [&](Log* log, int i) {
    std::string value = "value-" + std::to_string(i) + "-" + std::string(1000, 'v');
    std::vector<ProducerRecord> one{test::rec(value)};
    auto r = log->append(kTopic, one);
    if (r.ok()) acked[(*r)[0].offset.value()] = value;
    return r.status();
  };
  auto check_all = [&](Log* log) {
    for (const auto& [offset, value] : acked) {
      auto r = log->read(kTopic, 0, Offset(offset), {.max_records = 1});
      REQUIRE_OK(r);
      REQUIRE(r->records.size() == 1);
      REQUIRE(r->records[0].value == value);
    }
  };
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = kTopic, .partitions = 1}));
    for (int i = 0; i < 20; ++i) REQUIRE_OK(append(log.get(), i));
    REQUIRE(disk->fill() > 0);

    Status failed;
    int i = 20;
    for (; i < 5000 && failed.ok(); ++i) failed = append(log.get(), i);
    INFO(failed.to_string());
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.code() == Status::Code::kNoSpace);
    CHECK(failed.message().find(options.dir) != std::string::npos);
    CHECK(failed.message().find("full") != std::string::npos);
    // Still refused (RocksDB's failed flushes free the space of their partial files: take
    // that too); reads keep working.
    disk->fill();
    CHECK(append(log.get(), i++).code() == Status::Code::kNoSpace);
    check_all(log.get());

    disk->unfill();
    // Resumes by itself, without a write (RocksDB polls for free space every few seconds).
    const auto freed = std::chrono::steady_clock::now();
    REQUIRE(test::eventually([&] { return log->writable().ok(); }, 20'000));
    INFO("resumed after " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - freed)
                                 .count()
                          << " ms");
    REQUIRE_OK(append(log.get(), i++));
    TopicPartitionOffset commit{kTopic, 0, Offset(3)};
    REQUIRE_OK(log->commit_offsets("g", {&commit, 1}));
    // Full again, straight into a write this time: the next write after freeing resumes.
    REQUIRE(disk->fill() > 0);
    failed = Status();
    for (; i < 10000 && failed.ok(); ++i) failed = append(log.get(), i);
    CHECK(failed.code() == Status::Code::kNoSpace);
    disk->unfill();
    REQUIRE(test::eventually([&] { return log->writable().ok(); }, 20'000));
    REQUIRE_OK(append(log.get(), i++));
    check_all(log.get());
  }
  // Nothing acknowledged was lost, and the log opens cleanly after all that.
  auto log = test::open_test_log(options);
  check_all(log.get());
  auto c = log->committed_offset("g", kTopic, 0);
  REQUIRE_OK(c);
  CHECK(c->value_or(Offset(-1)) == Offset(3));
  REQUIRE_OK(append(log.get(), 99999));
}
