// Helpers shared by the tests: REQUIRE_OK, a temp dir per test, waiting on a condition.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include "factory/status.h"

#define REQUIRE_OK(expr)                                      \
  do {                                                        \
    const auto& factory_s_ = (expr);                          \
    INFO(::factory::test::status_of(factory_s_).to_string()); \
    REQUIRE(::factory::test::status_of(factory_s_).ok());     \
  } while (0)

namespace factory::test {

inline const Status& status_of(const Status& s) { return s; }
template <typename T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

// A TCP socket listening on 127.0.0.1 at a free port (the kernel's choice), for peers a test
// plays itself; *port receives the port. The caller closes the descriptor.
inline int listen_loopback_for_test(int backlog, int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A fresh directory under $TMPDIR, removed when the TempDir goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "factory-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Polls `cond` until it is true or `timeout_ms` passes; returns the last value. For conditions
// owned by another process (no latch to wait on); in-process waits use the API's own waits.
template <typename F>
bool eventually(F&& cond, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

// Seed for randomized tests: FACTORY_TEST_SEED when set, else a new one per call derived from
// the clock, so every CI run explores other schedules. Always printed on stderr (ctest keeps it
// with the test's output) so a failure can be replayed with FACTORY_TEST_SEED=<seed>; callers
// also INFO it so Catch2 shows it beside the failed assertion.
inline uint64_t test_seed() {
  uint64_t seed;
  if (const char* s = std::getenv("FACTORY_TEST_SEED"); s != nullptr && *s != '\0') {
    seed = std::strtoull(s, nullptr, 10);
  } else {
    // splitmix64 of the clock: two calls in the same tick still differ in most bits' history.
    static std::atomic<uint64_t> counter{0};
    uint64_t x =
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) +
        0x9e3779b97f4a7c15ULL * ++counter;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    seed = (x ^ (x >> 31)) % 1'000'000'000'000ULL;  // short enough to copy from a log
  }
  std::fprintf(stderr, "test seed %llu (FACTORY_TEST_SEED=%llu replays it)\n",
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  return seed;
}

}  // namespace factory::test
