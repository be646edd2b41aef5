// Disk full (issue 11): the store on a small real filesystem (tmpfs) that fills up. A write
// transaction fails with NoSpace naming the disk and leaves nothing half-written, reads keep
// working, writes resume once space is freed, and nothing acknowledged is lost across a reopen.
#include <algorithm>
#include <random>

#include "small_disk.h"
#include "store/sqlite_store.h"
#include "test_util.h"

using namespace factory;

TEST_CASE(
    "issue 11: a full disk fails store writes with NoSpace, and they resume once space "
    "is freed",
    "[store][disk]") {
  std::string why;
  auto disk = test::SmallDisk::make(8 << 20, &why);
  if (!disk) {
    WARN("skipped: " << why);
    return;
  }
  const std::string dir = disk->path() + "/store";
  std::mt19937_64 rng(test::test_seed());
  std::vector<EventId> acked;
  auto batch = [&] {
    std::vector<EventId> ids(100);
    for (auto& id : ids) {
      for (auto& b : id.digest) b = static_cast<uint8_t>(rng());
    }
    return ids;
  };
  {
    auto opened = store::open_sqlite_store({.dir = dir});
    REQUIRE_OK(opened);
    auto& st = *opened;
    for (int i = 0; i < 3; ++i) {
      auto ids = batch();
      REQUIRE_OK(st->commit_processed("s", ids));
      acked.insert(acked.end(), ids.begin(), ids.end());
    }
    REQUIRE_OK(st->writable());
    REQUIRE(disk->fill() > 0);

    Status failed;
    std::vector<EventId> refused;
    for (int i = 0; i < 2000 && failed.ok(); ++i) {
      auto ids = batch();
      failed = st->commit_processed("s", ids);
      if (failed.ok()) {
        acked.insert(acked.end(), ids.begin(), ids.end());
      } else {
        refused = ids;
      }
    }
    INFO(failed.to_string());
    REQUIRE(failed.code() == Status::Code::kNoSpace);
    CHECK(failed.message().find("the disk holding '" + dir + "' is full") != std::string::npos);
    CHECK(st->writable().code() == Status::Code::kNoSpace);
    // Reads keep working; the refused batch left nothing behind.
    auto done = st->is_processed("s", acked);
    REQUIRE_OK(done);
    CHECK(std::count(done->begin(), done->end(), true) == static_cast<long>(acked.size()));
    auto none = st->is_processed("s", refused);
    REQUIRE_OK(none);
    CHECK(std::count(none->begin(), none->end(), true) == 0);

    disk->unfill();
    REQUIRE_OK(st->writable());
    REQUIRE_OK(st->commit_processed("s", refused));
    acked.insert(acked.end(), refused.begin(), refused.end());
  }
  auto reopened = store::open_sqlite_store({.dir = dir});
  REQUIRE_OK(reopened);
  auto done = (*reopened)->is_processed("s", acked);
  REQUIRE_OK(done);
  CHECK(std::count(done->begin(), done->end(), true) == static_cast<long>(acked.size()));
}
