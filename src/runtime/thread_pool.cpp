#include "runtime/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <system_error>
#include <utility>

#include "base/check.h"
#include "obs/logger.h"

namespace factory::runtime {

namespace {

// The pool whose worker is running on this thread, so shutdown() can refuse to join itself.
thread_local const ThreadPool* tls_current_pool = nullptr;

}  // namespace

Status validate(const ThreadPoolOptions& o) {
  if (o.name.empty()) return Status::invalid_argument("thread pool: name must not be empty");
  if (o.min_threads < 1) {
    return Status::invalid_argument("thread pool '" + o.name + "': min_threads must be >= 1 (got " +
                                    std::to_string(o.min_threads) + ")");
  }
  if (o.max_threads < o.min_threads) {
    return Status::invalid_argument("thread pool '" + o.name + "': max_threads (" +
                                    std::to_string(o.max_threads) + ") must be >= min_threads (" +
                                    std::to_string(o.min_threads) + ")");
  }
  if (o.idle_timeout_ms <= 0) {
    return Status::invalid_argument("thread pool '" + o.name +
                                    "': idle_timeout_ms must be > 0 (got " +
                                    std::to_string(o.idle_timeout_ms) + ")");
  }
  return Status::ok_status();
}

Result<std::unique_ptr<ThreadPool>> ThreadPool::create(const ThreadPoolOptions& options) {
  FACTORY_RETURN_IF_ERROR(validate(options));
  return std::make_unique<ThreadPool>(options);
}

ThreadPool::ThreadPool(ThreadPoolOptions options)
    : options_(std::move(options)), work_cv_(&mu_), changed_cv_(&mu_) {
  FACTORY_CHECK(validate(options_).ok());
  base::MutexLock l(&mu_);
  for (int i = 0; i < options_.min_threads; ++i) start_worker();
}

ThreadPool::~ThreadPool() { shutdown(); }

void ThreadPool::start_worker() {
  uint64_t id = next_worker_id_++;
  try {
    // The new worker blocks on mu_ (held here) until submit() or the constructor returns.
    workers_.emplace(id, std::thread([this, id] { worker_loop(id); }));
  } catch (const std::system_error& e) {
    // Out of threads or memory: keep running with the workers we have; the next submit that
    // finds no idle worker tries again.
    obs::error("thread pool could not start a worker",
               {{"pool", options_.name}, {"threads", threads_}, {"error", e.what()}});
    return;
  }
  ++threads_;
  ++starting_;
  ++threads_started_;
  notify_observers();
}

bool ThreadPool::submit(std::function<void()> task) {
  FACTORY_CHECK(task != nullptr);
  std::vector<std::thread> retired;
  {
    base::MutexLock l(&mu_);
    if (shutting_down_) return false;
    queue_.push_back(std::move(task));
    // Invariant: every queued task has a worker that will take it (idle, or still starting),
    // unless the pool is at max_threads. idle_ includes workers signalled but not yet awake, so
    // a burst of submits grows the pool by exactly the tasks no waiting worker will take.
    if (queue_.size() > static_cast<size_t>(idle_ + starting_) && threads_ < options_.max_threads) {
      start_worker();
    }
    work_cv_.signal();
    notify_observers();
    retired = take_retired();
  }
  for (auto& t : retired) t.join();
  return true;
}

void ThreadPool::shutdown() {
  FACTORY_CHECK(tls_current_pool != this);  // a worker cannot join itself
  std::vector<std::thread> to_join;
  {
    base::MutexLock l(&mu_);
    shutting_down_ = true;
    if (threads_ == 0 && !queue_.empty()) {
      obs::error("thread pool has no workers: dropping queued tasks",
                 {{"pool", options_.name}, {"queued", static_cast<long long>(queue_.size())}});
      queue_.clear();
    }
    // No worker retires once shutting_down_ is set, so workers_ is complete here.
    for (auto& [id, t] : workers_) to_join.push_back(std::move(t));
    workers_.clear();
    for (auto& t : take_retired()) to_join.push_back(std::move(t));
    work_cv_.signal_all();
    notify_observers();
  }
  // Workers drain the queue before they exit.
  for (auto& t : to_join) t.join();
  // A concurrent caller found workers_ empty: it returns once the first caller's joins are done
  // in effect, i.e. every worker has exited.
  base::MutexLock l(&mu_);
  ++observers_;
  while (threads_ > 0) changed_cv_.wait();
  --observers_;
}

int ThreadPool::size() {
  base::MutexLock l(&mu_);
  return threads_;
}

size_t ThreadPool::queued() {
  base::MutexLock l(&mu_);
  return queue_.size();
}

ThreadPool::Stats ThreadPool::stats() {
  base::MutexLock l(&mu_);
  return stats_locked();
}

ThreadPool::Stats ThreadPool::stats_locked() {
  Stats s;
  s.threads = threads_;
  s.idle = idle_;
  s.queued = queue_.size();
  s.completed = completed_;
  s.threads_started = threads_started_;
  s.threads_retired = threads_retired_;
  s.shutting_down = shutting_down_;
  return s;
}

bool ThreadPool::wait_until_for_test(const std::function<bool(const Stats&)>& pred,
                                     int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  base::MutexLock l(&mu_);
  ++observers_;
  bool ok = pred(stats_locked());
  while (!ok) {
    bool signaled = changed_cv_.wait_until(deadline);
    ok = pred(stats_locked());
    if (!signaled) break;
  }
  --observers_;
  return ok;
}

void ThreadPool::notify_observers() {
  if (observers_ > 0) changed_cv_.signal_all();
}

std::vector<std::thread> ThreadPool::take_retired() {
  std::vector<std::thread> out;
  out.swap(retired_);
  return out;
}

void ThreadPool::run_task(std::function<void()>& task) {
  try {
    task();
  } catch (const std::exception& e) {
    obs::error("thread pool task threw", {{"pool", options_.name}, {"what", e.what()}});
  } catch (...) {
    obs::error("thread pool task threw",
               {{"pool", options_.name}, {"what", "non-standard exception"}});
  }
  // Captured state is destroyed here, off the mutex, like the task itself ran.
  task = nullptr;
}

void ThreadPool::worker_loop(uint64_t id) {
  tls_current_pool = this;
  std::string thread_name = options_.name + "-" + std::to_string(id);
  thread_name.resize(std::min<size_t>(thread_name.size(), 15));  // the kernel's limit
  ::pthread_setname_np(::pthread_self(), thread_name.c_str());

  const auto idle_timeout = std::chrono::milliseconds(options_.idle_timeout_ms);
  mu_.lock();
  --starting_;
  // The idle timer starts when the worker runs out of work, not at each (possibly spurious) wake.
  auto idle_deadline = std::chrono::steady_clock::now() + idle_timeout;
  while (true) {
    if (!queue_.empty()) {
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      notify_observers();
      mu_.unlock();
      run_task(task);
      mu_.lock();
      ++completed_;
      notify_observers();
      idle_deadline = std::chrono::steady_clock::now() + idle_timeout;
      continue;
    }
    if (shutting_down_) break;
    ++idle_;
    notify_observers();
    bool timed_out = false;
    if (threads_ > options_.min_threads) {
      timed_out = !work_cv_.wait_until(idle_deadline);
    } else {
      work_cv_.wait();
    }
    --idle_;
    // Re-check under the mutex: a task queued or a sibling retired while we waited wins.
    if (timed_out && queue_.empty() && !shutting_down_ && threads_ > options_.min_threads) {
      --threads_;
      ++threads_retired_;
      auto it = workers_.find(id);
      FACTORY_CHECK(it != workers_.end());
      retired_.push_back(std::move(it->second));
      workers_.erase(it);
      notify_observers();
      mu_.unlock();
      return;  // touches nothing of the pool after unlocking: the joiner may destroy it
    }
  }
  --threads_;
  notify_observers();
  mu_.unlock();
}

}  // namespace factory::runtime
