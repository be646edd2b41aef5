// RocksLog's retention: bounded steps by time and size, and the background loop.
#include <chrono>

#include <rocksdb/write_batch.h>

#include "log/record_codec.h"
#include "log/rocks_log.h"
#include "log/rocks_log_internal.h"
#include "obs/logger.h"

namespace factory::log {

Result<RetentionStats> RocksLog::enforce_retention() {
  RetentionStats stats;
  Status s = exclusive([&] { return retention_step(&stats); });
  if (!s.ok()) return s;
  return stats;
}

Status RocksLog::retention_step(RetentionStats* stats) {
  struct Work {
    std::shared_ptr<Topic> topic;
    int32_t partition;
    Partition state;
  };
  std::vector<Work> work;
  {
    base::MutexLock lock(&mu_);
    for (const auto& [name, t] : topics_) {
      const TopicConfig& c = t->spec.config;
      if (c.retention_ms < 0 && c.retention_bytes < 0) continue;
      for (size_t p = 0; p < t->parts.size(); ++p) {
        if (t->parts[p]->end > t->parts[p]->start) {
          work.push_back({t, static_cast<int32_t>(p), *t->parts[p]});
        }
      }
    }
  }
  const int64_t now = now_ms();
  rocksdb::WriteBatch batch;
  std::vector<std::pair<Work*, Partition>> changes;
  for (Work& w : work) {
    const TopicConfig& c = w.topic->spec.config;
    const uint32_t id = w.topic->id;
    Partition next = w.state;
    std::string upper = record_key(id, w.partition, w.state.end);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
    int64_t scanned = 0;
    for (it->Seek(record_key(id, w.partition, w.state.start)); it->Valid(); it->Next()) {
      if (scanned == options_.retention_step_records) {
        stats->more = true;
        break;
      }
      int64_t ts = 0;
      decode_record_timestamp(std::string_view(it->value().data(), it->value().size()), &ts);
      bool too_old = c.retention_ms >= 0 && ts < now - c.retention_ms;
      bool too_big = c.retention_bytes >= 0 && next.bytes > c.retention_bytes;
      if (!too_old && !too_big) break;
      int64_t size = static_cast<int64_t>(kRecordKeySize + it->value().size());
      next.bytes -= size;
      next.start = record_key_offset(std::string_view(it->key().data(), it->key().size())) + 1;
      stats->bytes_deleted += size;
      ++stats->records_deleted;
      ++scanned;
    }
    FACTORY_RETURN_IF_ERROR(to_status(it->status(), "retention scan"));
    if (next.start == w.state.start) continue;
    batch.DeleteRange(records_cf_, record_key(id, w.partition, w.state.start),
                      record_key(id, w.partition, next.start));
    // Drop time-index entries that no longer answer any lookup: entry i is dead once entry i+1
    // starts at or before the new log start (lookups clamp to the start).
    std::string prefix = partition_prefix(id, w.partition);
    std::unique_ptr<rocksdb::Iterator> idx(db_->NewIterator(rocksdb::ReadOptions(), index_cf_));
    std::string prev;
    for (idx->Seek(prefix); idx->Valid() && idx->key().starts_with(prefix); idx->Next()) {
      int64_t ts, off;
      if (!parse_time_index_key(std::string_view(idx->key().data(), idx->key().size()), &ts, &off))
        break;
      if (off > next.start) break;
      if (!prev.empty()) batch.Delete(index_cf_, prev);
      prev = idx->key().ToString();
    }
    // Forget the idempotency keys of the deleted records: nothing can append them twice any
    // more that a consumer could still read.
    std::string dlo = dedupe_position_key(id, w.partition, w.state.start);
    std::string dhi = dedupe_position_key(id, w.partition, next.start);
    rocksdb::Slice dhi_slice(dhi);
    rocksdb::ReadOptions dro;
    dro.iterate_upper_bound = &dhi_slice;
    std::unique_ptr<rocksdb::Iterator> dk(db_->NewIterator(dro, dedupe_cf_));
    for (dk->Seek(dlo); dk->Valid(); dk->Next()) {
      batch.Delete(dedupe_cf_,
                   dedupe_key(id, std::string_view(dk->value().data(), dk->value().size())));
    }
    FACTORY_RETURN_IF_ERROR(to_status(dk->status(), "retention scan of idempotency keys"));
    batch.DeleteRange(dedupe_cf_, dlo, dhi);
    put_partition_meta(&batch, id, w.partition, next);
    changes.emplace_back(&w, next);
  }
  if (changes.empty()) return Status();
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "retention"));
  base::MutexLock lock(&mu_);
  for (auto& [w, next] : changes) {
    Partition& ps = *w->topic->parts[w->partition];
    ps.start = next.start;
    ps.bytes = next.bytes;
  }
  obs::debug("retention step", {{"records_deleted", stats->records_deleted}});
  return Status();
}

void RocksLog::retention_loop() {
  for (;;) {
    bool more = false;
    {
      base::MutexLock lock(&mu_);
      if (closing_) return;
      auto deadline = std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(options_.retention_interval_ms);
      while (!closing_ && retention_cv_.wait_until(deadline)) {
      }
      if (closing_) return;
    }
    do {
      auto r = enforce_retention();
      if (!r.ok()) {
        obs::warn("retention step failed", {{"error", r.status().to_string()}});
        break;
      }
      more = r->more;
    } while (more);
  }
}

}  // namespace factory::log
