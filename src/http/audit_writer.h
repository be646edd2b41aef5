// AuditWriter: appends the server's audit rows to the store with group commit.
//
// Every write request's audit row must be durable before its response goes out, and the store
// has one writer with one fsync per transaction: written one by one, concurrent requests queue
// behind each other's fsyncs (the produce route's largest cost). Here concurrent callers form
// a queue; the caller at its head writes every row queued so far in ONE transaction and wakes
// the others with its outcome (leveldb's writer queue, as the log's appends do).
//
// Thread-safety: append() is safe to call concurrently. *store must outlive the AuditWriter.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>

#include "factory/status.h"
#include "store/meta_store.h"

namespace factory::http {

class AuditWriter {
 public:
  explicit AuditWriter(store::MetaStore* store) : store_(store) {}

  // Returns once `row` is written (durable per the store's sync setting), with the status of
  // the transaction that wrote it.
  Status append(store::AuditRow row);

 private:
  struct Waiter {
    store::AuditRow row;
    Status status;
    bool done = false;
  };
  store::MetaStore* const store_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Waiter*> queue_;  // guarded by mu_; the front is the one writing
};

}  // namespace factory::http
