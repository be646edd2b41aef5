// Damaged files on reopen (issue 11): a WAL with a bad record in the middle, a closed WAL cut
// short, a damaged table file. Each is refused with a Corruption naming the file and what to
// do; none may come back as a shorter log that looks fine. A WAL cut inside its last record is
// what a power cut during a write leaves (a write never acknowledged) and opens without it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "log/log_test_util.h"
#include "log/rocks_log.h"

using namespace factory;
namespace fs = std::filesystem;

namespace {

constexpr char kTopic[] = "damaged";

// Files in dir ending with `ext`, by name (RocksDB numbers them in creation order).
std::vector<fs::path> files_with(const fs::path& dir, std::string_view ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void overwrite(const fs::path& file, uint64_t at, std::string_view bytes) {
  int fd = ::open(file.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)) ==
          static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// n records of ~200 incompressible bytes, one append (one WAL record) each.
std::vector<std::string> fill(Log* log, int n) {
  std::vector<std::string> values;
  std::mt19937_64 rng(n);
  for (int i = 0; i < n; ++i) {
    std::string noise(200, ' ');
    for (char& c : noise) c = static_cast<char>('a' + rng() % 26);
    values.push_back("value-" + std::to_string(i) + "-" + noise);
    test::append_ok(log, kTopic, {test::rec(values.back())});
  }
  return values;
}

// Every record of partition 0, or the first error.
Result<std::vector<std::string>> read_all(Log* log) {
  std::vector<std::string> out;
  auto info = log->partition_info(kTopic, 0);
  if (!info.ok()) return info.status();
  int64_t next = info->log_start.value();
  while (next < info->log_end.value()) {
    auto r = log->read(kTopic, 0, Offset(next), {.max_records = 1000});
    if (!r.ok()) return r.status();
    if (r->records.empty()) return Status::internal("empty read below the log end");
    for (const Record& rec : r->records) {
      out.push_back(rec.value.value_or(""));
      ++next;
    }
  }
  return out;
}

// Reopening the log is refused as Corruption, naming `file` and pointing at a backup.
void check_refused_naming(const LogOptions& options, const fs::path& file) {
  auto reopened = open_log(options);
  REQUIRE_FALSE(reopened.ok());
  const Status& s = reopened.status();
  INFO(s.to_string());
  CHECK(s.code() == Status::Code::kCorruption);
  CHECK(s.message().find(file.filename().string()) != std::string::npos);
  CHECK(s.message().find("backup") != std::string::npos);
}

}  // namespace

TEST_CASE("issue 11: a WAL damaged in the middle is refused, naming the file", "[log][crash]") {
  test::TempDir dir;
  LogOptions options = test::test_log_options(dir);
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = kTopic, .partitions = 1}));
    fill(log.get(), 200);
  }
  auto wals = files_with(options.dir, ".log");
  REQUIRE(wals.size() == 1);
  const uint64_t size = fs::file_size(wals[0]);
  REQUIRE(size > 20'000);
  overwrite(wals[0], size / 2, std::string(64, '\x5a'));  // acknowledged records after this

  check_refused_naming(options, wals[0]);
}

TEST_CASE("issue 11: a WAL cut inside its last record (a torn write) opens without that record",
          "[log][crash]") {
  test::TempDir dir;
  LogOptions options = test::test_log_options(dir);
  std::vector<std::string> values;
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = kTopic, .partitions = 1}));
    values = fill(log.get(), 50);
  }
  auto wals = files_with(options.dir, ".log");
  REQUIRE(wals.size() == 1);
  fs::resize_file(wals[0], fs::file_size(wals[0]) - 100);  // inside the last ~260-byte record

  auto log = test::open_test_log(options);
  auto all = read_all(log.get());
  REQUIRE_OK(all);
  values.pop_back();
  CHECK(*all == values);
}

TEST_CASE("issue 11: a closed WAL cut short is refused, naming the file", "[log][crash]") {
  test::TempDir dir;
  LogOptions options = test::test_log_options(dir);
  options.write_buffer_bytes = 32 << 10;  // the records' memtable switches WALs often
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = kTopic, .partitions = 1}));
    fill(log.get(), 500);
  }
  auto wals = files_with(options.dir, ".log");
  REQUIRE(wals.size() >= 2);  // the metadata family keeps the older ones alive
  fs::resize_file(wals[0], fs::file_size(wals[0]) / 2);

  check_refused_naming(options, wals[0]);
}

TEST_CASE("issue 11: a damaged table file is reported, naming the file, never read past",
          "[log][crash]") {
  test::TempDir dir;
  LogOptions options = test::test_log_options(dir);
  options.write_buffer_bytes = 64 << 10;
  std::vector<std::string> values;
  {
    auto log = test::open_test_log(options);
    REQUIRE_OK(log->create_topic({.name = kTopic, .partitions = 1}));
    values = fill(log.get(), 1200);
    // Flushes run in the background: wait for a table file of a few data blocks.
    REQUIRE(test::eventually([&] {
      for (const auto& f : files_with(options.dir, ".sst")) {
        if (fs::file_size(f) > 40'000) return true;
      }
      return false;
    }));
  }
  fs::path sst;
  for (const auto& f : files_with(options.dir, ".sst")) {
    if (sst.empty() || fs::file_size(f) > fs::file_size(sst)) sst = f;
  }
  overwrite(sst, fs::file_size(sst) / 3, std::string(64, '\x5a'));  // inside a data block

  auto reopened = open_log(options);
  Status s;
  if (!reopened.ok()) {
    s = reopened.status();
  } else {
    auto all = read_all(reopened->get());
    REQUIRE_FALSE(all.ok());  // never a log with records silently missing
    s = all.status();
  }
  INFO(s.to_string());
  CHECK(s.code() == Status::Code::kCorruption);
  CHECK(s.message().find(sst.filename().string()) != std::string::npos);
  CHECK(s.message().find("backup") != std::string::npos);
}
