// ThreadPool: named worker threads that run submitted tasks, fixed-size or elastic.
//
// The runtime owns two pools. The CPU pool (min_threads == max_threads == cores) runs fast
// stages. The blocking pool (e.g. min 1, max 64) runs stages that declare they block (LLM calls,
// subprocesses): it grows a thread whenever a task is queued and no worker is idle, and retires
// a worker above min_threads after idle_timeout_ms without work, so a stage blocked for seconds
// never occupies a thread the fast stages need, and a quiet factory holds few threads.
//
// Usage:
//   ThreadPool cpu({.name = "cpu", .min_threads = 2, .max_threads = 2});
//   if (!cpu.submit([] { run_stage(); })) { /* shutting down: leave the record uncommitted */ }
//   cpu.shutdown();  // runs what is queued, then joins; the destructor does the same
//
// Operation: one FIFO queue under one mutex; idle workers wait on a condition variable. A task
// that throws is caught, logged (obs::error "thread pool task threw") and does not kill its
// worker; tasks report failure as data, the catch is the last line of defence.
//
// Concurrency: thread-safe. Tasks may call submit() (it returns false once shutting down), but
// must not call shutdown() or destroy the pool: a worker cannot join itself (checked, aborts).
//
// Limitations: no priorities, no work stealing, no cancellation of queued tasks. Idle timeouts
// use the steady clock: they tune resources, they are not behaviour tests need to drive. A
// retired worker's thread is joined by the next submit() or shutdown(), not at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "factory/status.h"

namespace factory::runtime {

struct ThreadPoolOptions {
  // Workers are named "<name>-<n>" (Linux keeps the first 15 bytes) for top -H, gdb and perf.
  std::string name = "pool";
  // Threads started up front and never retired.
  int min_threads = 1;
  // Upper bound for growth; equal to min_threads for a fixed pool.
  int max_threads = 1;
  // A worker above min_threads exits after this long without a task.
  int64_t idle_timeout_ms = 60000;
};

// OK, or invalid_argument naming the bad field: min_threads >= 1, max_threads >= min_threads,
// idle_timeout_ms > 0, a non-empty name.
Status validate(const ThreadPoolOptions& options);

class ThreadPool {
 public:
  // A point-in-time view for metrics and tests.
  struct Stats {
    int threads = 0;         // live workers
    int idle = 0;            // workers waiting for a task
    size_t queued = 0;       // tasks submitted and not yet started
    uint64_t completed = 0;  // tasks finished (thrown or not)
    uint64_t threads_started = 0;
    uint64_t threads_retired = 0;  // idle workers that exited before shutdown
    bool shutting_down = false;
  };

  // Validates, then constructs; invalid_argument for bad options.
  static Result<std::unique_ptr<ThreadPool>> create(const ThreadPoolOptions& options);
  // Starts min_threads workers. `options` must be valid (validate()); aborts otherwise.
  explicit ThreadPool(ThreadPoolOptions options);
  // shutdown(): queued tasks still run.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`; true when it will run, false (task dropped) once shutdown() has begun.
  bool submit(std::function<void()> task);

  // Stops accepting tasks, runs every task already queued, then joins all workers. Idempotent;
  // a concurrent second caller returns once the workers are gone. Not from a task (aborts).
  void shutdown();

  // Live worker threads.
  int size();
  // Tasks waiting for a worker.
  size_t queued();
  Stats stats();
  const std::string& name() const { return options_.name; }

  // Test hook: waits until pred(stats()) holds or timeout_ms passes; returns the last value.
  bool wait_until_for_test(const std::function<bool(const Stats&)>& pred, int64_t timeout_ms);

 private:
  void start_worker() REQUIRES(mu_);
  void worker_loop(uint64_t id);
  void run_task(std::function<void()>& task);
  // Moves exited workers' threads out for joining without the mutex.
  std::vector<std::thread> take_retired() REQUIRES(mu_);
  void notify_observers() REQUIRES(mu_);
  Stats stats_locked() REQUIRES(mu_);

  const ThreadPoolOptions options_;

  base::Mutex mu_;
  base::CondVar work_cv_;     // workers: a task was queued or shutdown began
  base::CondVar changed_cv_;  // shutdown() and test waiters: stats changed
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  // Workers still running (joined at shutdown) and workers that retired (joined lazily).
  std::map<uint64_t, std::thread> workers_ GUARDED_BY(mu_);
  std::vector<std::thread> retired_ GUARDED_BY(mu_);
  uint64_t next_worker_id_ GUARDED_BY(mu_) = 1;
  int threads_ GUARDED_BY(mu_) = 0;
  int idle_ GUARDED_BY(mu_) = 0;
  int starting_ GUARDED_BY(mu_) = 0;  // started, not yet looking at the queue
  int observers_ GUARDED_BY(mu_) = 0;
  uint64_t completed_ GUARDED_BY(mu_) = 0;
  uint64_t threads_started_ GUARDED_BY(mu_) = 0;
  uint64_t threads_retired_ GUARDED_BY(mu_) = 0;
  bool shutting_down_ GUARDED_BY(mu_) = false;
};

}  // namespace factory::runtime
