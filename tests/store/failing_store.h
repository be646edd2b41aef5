// FailingStore: a MetaStore that forwards to a real one and fails chosen calls, for the tests
// of failure paths ("what if the write after the side effect fails?").
//
// Thread-safe: the counters are atomics; the wrapped store is thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "store/meta_store.h"

namespace factory::test {

class FailingStore final : public store::MetaStore {
 public:
  using BatchMatch = std::function<bool(const store::SchedulerBatch&)>;
  // Owns `real`.
  explicit FailingStore(std::unique_ptr<store::MetaStore> real)
      : owned_(std::move(real)), real_(owned_.get()) {}
  // Borrows: set_inner() before first use; *inner must outlive the calls.
  FailingStore() = default;
  void set_inner(store::MetaStore* inner) { real_ = inner; }

  // The next n calls of each kind fail with IOError (before reaching the real store).
  std::atomic<int> fail_commit_processed{0};
  std::atomic<int> fail_record_intents{0};
  std::atomic<int> fail_scheduler_batch{0};
  std::atomic<int> commit_processed_calls{0};

  store::MetaStore* real() { return real_; }

  // The first scheduler transaction that `m` matches fails (once).
  void fail_once_if(BatchMatch m) {
    std::lock_guard<std::mutex> lock(mu_);
    match_ = std::move(m);
  }
  // Scheduler transactions failed so far by fail_once_if() or fail_scheduler_batch.
  int failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }

  Result<std::vector<bool>> is_processed(std::string_view stage,
                                         std::span<const EventId> ids) override {
    return real_->is_processed(stage, ids);
  }
  Result<std::vector<bool>> record_intents(std::string_view stage,
                                           std::span<const EventId> ids) override {
    if (take(fail_record_intents)) return injected("record_intents");
    return real_->record_intents(stage, ids);
  }
  Status commit_processed(std::string_view stage, std::span<const EventId> ids) override {
    ++commit_processed_calls;
    if (take(fail_commit_processed)) return injected("commit_processed");
    return real_->commit_processed(stage, ids);
  }
  Result<std::vector<EventId>> open_intents(std::string_view stage) override {
    return real_->open_intents(stage);
  }
  Result<int64_t> processed_count(std::string_view stage) override {
    return real_->processed_count(stage);
  }
  Result<int64_t> prune_processed(std::string_view stage, int64_t before_ms,
                                  uint8_t slice) override {
    return real_->prune_processed(stage, before_ms, slice);
  }
  Status apply_scheduler_batch(const store::SchedulerBatch& batch) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if ((match_ && match_(batch)) || take(fail_scheduler_batch)) {
        match_ = nullptr;
        ++failed_;
        return injected("apply_scheduler_batch");
      }
    }
    return real_->apply_scheduler_batch(batch);
  }
  Result<std::vector<store::RunRow>> list_runs(const store::RunFilter& filter) override {
    return real_->list_runs(filter);
  }
  Result<store::RunRow> get_run(std::string_view run_id) override { return real_->get_run(run_id); }
  Result<std::vector<store::TaskRow>> list_tasks(std::string_view run_id) override {
    return real_->list_tasks(run_id);
  }
  Result<std::vector<store::TaskRow>> list_unfinished_tasks() override {
    return real_->list_unfinished_tasks();
  }
  Result<std::vector<store::ApprovalRow>> list_approvals(std::string_view state) override {
    return real_->list_approvals(state);
  }
  Result<std::vector<store::AuditRow>> list_audit(int limit) override {
    return real_->list_audit(limit);
  }
  Result<store::StateCounts> count_by_state() override { return real_->count_by_state(); }
  Result<std::optional<std::string>> get_kv(std::string_view key) override {
    return real_->get_kv(key);
  }

 private:
  static bool take(std::atomic<int>& n) {
    int v = n.load();
    while (v > 0) {
      if (n.compare_exchange_weak(v, v - 1)) return true;
    }
    return false;
  }
  static Status injected(std::string_view what) {
    return Status::io_error("injected failure of " + std::string(what) + " (FailingStore)");
  }

  std::unique_ptr<store::MetaStore> owned_;
  store::MetaStore* real_ = nullptr;
  mutable std::mutex mu_;
  BatchMatch match_;  // guarded by mu_
  int failed_ = 0;    // guarded by mu_
};

}  // namespace factory::test
