#include "http/audit_writer.h"

#include <vector>

namespace factory::http {

Status AuditWriter::append(store::AuditRow row) {
  Waiter w;
  w.row = std::move(row);
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&w);
  cv_.wait(lock, [&] { return w.done || queue_.front() == &w; });
  if (w.done) return w.status;

  // This caller leads: everything queued so far goes into one transaction.
  std::vector<Waiter*> group(queue_.begin(), queue_.end());
  store::SchedulerBatch batch;
  batch.audit.reserve(group.size());
  for (Waiter* g : group) batch.audit.push_back(g->row);
  lock.unlock();
  Status s = store_->apply_scheduler_batch(batch);
  lock.lock();
  for (Waiter* g : group) {
    queue_.pop_front();  // the group is the queue's prefix: later callers queued behind it
    g->status = s;
    g->done = true;
  }
  cv_.notify_all();
  return s;
}

}  // namespace factory::http
