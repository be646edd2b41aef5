#include "runtime/thread_pool.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "obs/logger.h"
#include "test_util.h"

using namespace factory;
using runtime::ThreadPool;
using runtime::ThreadPoolOptions;

namespace {

constexpr int64_t kWaitMs = 10000;  // generous deadline: a failing test fails, never hangs

// A countdown latch whose waits have a deadline (std::latch has none).
class Latch {
 public:
  explicit Latch(int count) : cv_(&mu_), count_(count) {}
  void count_down() {
    base::MutexLock l(&mu_);
    if (--count_ <= 0) cv_.signal_all();
  }
  // True once the count reached zero; false when timeout_ms passed first.
  bool wait(int64_t timeout_ms = kWaitMs) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    base::MutexLock l(&mu_);
    while (count_ > 0) {
      if (!cv_.wait_until(deadline)) return count_ <= 0;
    }
    return true;
  }

 private:
  base::Mutex mu_;
  base::CondVar cv_;
  int count_ GUARDED_BY(mu_);
};

ThreadPoolOptions fixed(const std::string& name, int n) {
  return {.name = name, .min_threads = n, .max_threads = n};
}

std::string current_thread_name() {
  char buf[32] = {};
  ::pthread_getname_np(::pthread_self(), buf, sizeof buf);
  return buf;
}

}  // namespace

// Everything a task touches is declared before the pool, so the pool (destroyed first) has
// finished every task before those objects go away. No Catch macros run inside tasks: Catch2
// v2 assertions are not thread-safe.

TEST_CASE("thread pool runs every submitted task on its named workers", "[runtime]") {
  constexpr int kTasks = 200;
  Latch done(kTasks);
  std::atomic<int> ran{0};
  base::Mutex names_mu;
  std::set<std::string> names;
  ThreadPool pool(fixed("cpu", 2));
  REQUIRE(pool.size() == 2);
  for (int i = 0; i < kTasks; ++i) {
    REQUIRE(pool.submit([&] {
      {
        base::MutexLock l(&names_mu);
        names.insert(current_thread_name());
      }
      ++ran;
      done.count_down();
    }));
  }
  REQUIRE(done.wait());
  pool.shutdown();
  CHECK(ran == kTasks);
  base::MutexLock l(&names_mu);
  for (const auto& n : names) CHECK(n.rfind("cpu-", 0) == 0);
  CHECK(names.size() <= 2);
}

TEST_CASE("thread pool shutdown drains queued work, then rejects submits", "[runtime]") {
  Latch started(1), release(1);
  std::atomic<int> ran{0};
  ThreadPool pool(fixed("drain", 1));
  REQUIRE(pool.submit([&] {
    started.count_down();
    release.wait();
  }));
  REQUIRE(started.wait());
  // The only worker is held, so these stay queued until shutdown has begun.
  constexpr int kQueued = 50;
  for (int i = 0; i < kQueued; ++i) REQUIRE(pool.submit([&] { ++ran; }));
  CHECK(pool.queued() == kQueued);

  std::thread stopper([&] { pool.shutdown(); });
  REQUIRE(pool.wait_until_for_test([](const ThreadPool::Stats& s) { return s.shutting_down; },
                                   kWaitMs));
  CHECK_FALSE(pool.submit([&] { ++ran; }));
  CHECK(ran == 0);
  release.count_down();
  stopper.join();

  CHECK(ran == kQueued);
  CHECK(pool.size() == 0);
  CHECK(pool.queued() == 0);
  CHECK_FALSE(pool.submit([] {}));
  pool.shutdown();  // idempotent
}

TEST_CASE("thread pool destructor runs queued tasks", "[runtime]") {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(fixed("dtor", 1));
    for (int i = 0; i < 20; ++i) REQUIRE(pool.submit([&] { ++ran; }));
  }
  CHECK(ran == 20);
}

TEST_CASE("thread pool: a throwing task is logged and its worker survives", "[runtime]") {
  std::FILE* sink = std::tmpfile();
  REQUIRE(sink != nullptr);
  obs::set_sink(sink);
  {
    Latch done(1);
    ThreadPool pool(fixed("throws", 1));
    REQUIRE(pool.submit([] { throw std::runtime_error("boom"); }));
    REQUIRE(pool.submit([] { throw 42; }));
    REQUIRE(pool.submit([&] { done.count_down(); }));
    REQUIRE(done.wait());
    CHECK(pool.size() == 1);
    auto s = pool.stats();
    CHECK(s.completed >= 2);
    CHECK(s.threads_started == 1);
  }
  obs::set_sink(nullptr);
  std::string out;
  std::rewind(sink);
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, sink)) out.append(buf, n);
  std::fclose(sink);
  CHECK(out.find("thread pool task threw") != std::string::npos);
  CHECK(out.find("boom") != std::string::npos);
  CHECK(out.find("non-standard exception") != std::string::npos);
  CHECK(out.find("\"pool\":\"throws\"") != std::string::npos);
}

TEST_CASE("thread pool: tasks may submit follow-up tasks", "[runtime]") {
  Latch done(1);
  std::atomic<int> depth{0};
  std::atomic<int> rejected{0};
  std::function<void()> step;
  ThreadPool pool(fixed("chain", 2));
  step = [&] {
    if (++depth == 10) {
      done.count_down();
      return;
    }
    if (!pool.submit(step)) ++rejected;
  };
  REQUIRE(pool.submit(step));
  REQUIRE(done.wait());
  pool.shutdown();
  CHECK(depth == 10);
  CHECK(rejected == 0);
}

TEST_CASE("blocking pool grows while all workers are busy, up to max_threads", "[runtime]") {
  Latch started(3), release(1);
  Latch started2(2), release2(1);
  std::atomic<int> ran{0};
  ThreadPool pool({.name = "blocking", .min_threads = 1, .max_threads = 3, .idle_timeout_ms = 20});
  CHECK(pool.size() == 1);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(pool.submit([&] {
      started.count_down();
      release.wait();
      ++ran;
    }));
  }
  // Three blocked tasks run at once: the pool grew to three threads.
  REQUIRE(started.wait());
  CHECK(pool.size() == 3);

  // At the max, more work queues instead of growing the pool.
  REQUIRE(pool.submit([&] { ++ran; }));
  CHECK(pool.size() == 3);
  CHECK(pool.queued() == 1);

  release.count_down();
  REQUIRE(pool.wait_until_for_test([](const ThreadPool::Stats& s) { return s.completed == 4; },
                                   kWaitMs));
  CHECK(ran == 4);

  // Idle workers above min_threads retire after the idle timeout; min_threads stay.
  REQUIRE(
      pool.wait_until_for_test([](const ThreadPool::Stats& s) { return s.threads == 1; }, kWaitMs));
  auto s = pool.stats();
  CHECK(s.threads_started == 3);
  CHECK(s.threads_retired == 2);

  // And it grows again on demand.
  for (int i = 0; i < 2; ++i) {
    REQUIRE(pool.submit([&] {
      started2.count_down();
      release2.wait();
    }));
  }
  REQUIRE(started2.wait());
  CHECK(pool.size() == 2);
  release2.count_down();
}

TEST_CASE("blocked tasks in the blocking pool leave the CPU pool free", "[runtime]") {
  Latch blocked(4), release(1);
  Latch fast(100);
  ThreadPool cpu(fixed("cpu", 1));
  ThreadPool blocking({.name = "blk", .min_threads = 1, .max_threads = 4, .idle_timeout_ms = 1000});
  for (int i = 0; i < 4; ++i) {
    REQUIRE(blocking.submit([&] {
      blocked.count_down();
      release.wait();
    }));
  }
  REQUIRE(blocked.wait());
  CHECK(blocking.size() == 4);
  for (int i = 0; i < 100; ++i) REQUIRE(cpu.submit([&] { fast.count_down(); }));
  CHECK(fast.wait());
  release.count_down();
}

TEST_CASE("a fixed pool never grows or retires", "[runtime]") {
  Latch started(2), release(1);
  ThreadPool pool({.name = "fixed", .min_threads = 2, .max_threads = 2, .idle_timeout_ms = 1});
  for (int i = 0; i < 2; ++i) {
    REQUIRE(pool.submit([&] {
      started.count_down();
      release.wait();
    }));
  }
  REQUIRE(started.wait());
  for (int i = 0; i < 5; ++i) REQUIRE(pool.submit([] {}));
  CHECK(pool.size() == 2);
  release.count_down();
  REQUIRE(pool.wait_until_for_test([](const ThreadPool::Stats& s) { return s.completed == 7; },
                                   kWaitMs));
  // Both workers go idle (idle_timeout_ms = 1 would retire them were they above min_threads).
  REQUIRE(
      pool.wait_until_for_test([](const ThreadPool::Stats& s) { return s.idle == 2; }, kWaitMs));
  auto s = pool.stats();
  CHECK(s.threads == 2);
  CHECK(s.threads_retired == 0);
}

TEST_CASE("concurrent submitters on an elastic pool: every task runs once", "[runtime]") {
  uint64_t seed = test::test_seed();
  INFO("seed " << seed);
  constexpr int kSubmitters = 4, kPerSubmitter = 500;
  std::vector<std::atomic<int>> hits(kSubmitters * kPerSubmitter);
  Latch done(kSubmitters * kPerSubmitter);
  std::atomic<int> rejected{0};
  ThreadPool pool({.name = "elastic", .min_threads = 1, .max_threads = 4, .idle_timeout_ms = 1});
  std::vector<std::thread> submitters;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&, t] {
      uint64_t x = seed + t;
      for (int i = 0; i < kPerSubmitter; ++i) {
        int id = t * kPerSubmitter + i;
        // Some tasks do a little work so workers both queue up and go idle (and retire).
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int spin = static_cast<int>(x >> 60);
        bool ok = pool.submit([&, id, spin] {
          volatile int sink = 0;
          for (int k = 0; k < spin * 1000; ++k) sink = sink + k;
          ++hits[id];
          done.count_down();
        });
        if (!ok) ++rejected;
      }
    });
  }
  for (auto& t : submitters) t.join();
  REQUIRE(rejected == 0);
  REQUIRE(done.wait());
  for (auto& h : hits) REQUIRE(h == 1);
  auto s = pool.stats();
  CHECK(s.threads <= 4);
  CHECK(s.threads_started - s.threads_retired == static_cast<uint64_t>(s.threads));
  pool.shutdown();
}

TEST_CASE("thread pool options are validated", "[runtime]") {
  CHECK(runtime::validate(ThreadPoolOptions{}).ok());
  auto r = ThreadPool::create({.name = "x", .min_threads = 0, .max_threads = 1});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  CHECK(r.status().message().find("min_threads must be >= 1") != std::string::npos);

  auto s = runtime::validate({.name = "x", .min_threads = 2, .max_threads = 1});
  CHECK(s.message().find("max_threads (1) must be >= min_threads (2)") != std::string::npos);
  CHECK(runtime::validate({.name = "", .min_threads = 1, .max_threads = 1}).is_invalid_argument());
  CHECK(runtime::validate({.name = "x", .min_threads = 1, .max_threads = 2, .idle_timeout_ms = 0})
            .is_invalid_argument());

  auto ok = ThreadPool::create({.name = "ok", .min_threads = 1, .max_threads = 2});
  REQUIRE_OK(ok);
  CHECK((*ok)->size() == 1);
  CHECK((*ok)->name() == "ok");
}
