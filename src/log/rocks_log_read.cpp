// RocksLog's read path: fetches, long-polls, partition bounds, timestamp lookups.
#include <algorithm>
#include <chrono>

#include "log/record_codec.h"
#include "log/rocks_log.h"
#include "log/rocks_log_internal.h"

namespace factory::log {

Result<RocksLog::ReadBounds> RocksLog::read_bounds(std::string_view topic, int32_t partition,
                                                   Offset from, int64_t wait_ms) {
  base::MutexLock lock(&mu_);
  auto t = find_topic(topic);
  if (!t.ok()) return t.status();
  std::shared_ptr<Topic> tp = *t;
  if (partition < 0 || static_cast<size_t>(partition) >= tp->parts.size()) {
    return partition_out_of_range(topic, partition, tp->parts.size());
  }
  const Partition& ps = *tp->parts[partition];
  if (from.value() < ps.start || from.value() > ps.end) {
    return Status::out_of_range(
        "offset " + std::to_string(from.value()) + " is out of range for topic " + quote(topic) +
        " partition " + std::to_string(partition) + ": the log holds " + std::to_string(ps.start) +
        ".." + std::to_string(ps.end) +
        " (start..end); read from the start (earliest) or the end (latest)");
  }
  if (from.value() == ps.end && wait_ms > 0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    ++long_poll_waiters_;
    while (ps.end == from.value() && !closing_ && !tp->deleted) {
      if (!data_cv_.wait_until(deadline)) break;
    }
    --long_poll_waiters_;
  }
  return ReadBounds{tp->id, ps.start, ps.end};
}

// Scans records [from, end) of one partition, at most max_records and max_bytes of encoded
// values (at least one record), decoding each into the Record that next_record() returns (a
// slot in the caller's output, so a record is decoded in place, never moved or copied).
// Returns how many records were decoded.
template <typename NextRecord>
Result<size_t> RocksLog::scan_records(std::string_view topic, int32_t partition,
                                      const ReadBounds& bounds, int64_t from, int64_t max_records,
                                      int64_t max_bytes, NextRecord&& next_record) {
  char upper[kRecordKeySize], lower[kRecordKeySize];
  encode_record_key(bounds.topic_id, partition, bounds.end, upper);
  encode_record_key(bounds.topic_id, partition, from, lower);
  rocksdb::Slice upper_slice(upper, sizeof upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
  int64_t bytes = 0;
  int64_t expect = from;
  size_t n = 0;
  for (it->Seek(rocksdb::Slice(lower, sizeof lower)); it->Valid(); it->Next()) {
    if (static_cast<int64_t>(n) >= max_records) break;
    const rocksdb::Slice value = it->value();
    if (n > 0 && bytes + static_cast<int64_t>(value.size()) > max_bytes) break;
    const int64_t offset = record_key_offset(std::string_view(it->key().data(), it->key().size()));
    if (offset != expect) {
      // Retention removed the records under us between the bounds check and the seek.
      return Status::out_of_range("offset " + std::to_string(expect) + " of topic " + quote(topic) +
                                  " partition " + std::to_string(partition) +
                                  " was removed by retention; read from the new log start");
    }
    Record& r = next_record();
    r.partition = partition;
    r.offset = Offset(offset);
    FACTORY_RETURN_IF_ERROR(decode_record(std::string_view(value.data(), value.size()), &r));
    bytes += static_cast<int64_t>(value.size());
    ++expect;
    ++n;
  }
  FACTORY_RETURN_IF_ERROR(to_status(it->status(), "reading"));
  return n;
}

Result<FetchResult> RocksLog::read(std::string_view topic, int32_t partition, Offset from,
                                   const ReadOptions& options) {
  auto bounds = read_bounds(topic, partition, from, options.wait_ms);
  if (!bounds.ok()) return bounds.status();
  FetchResult out;
  out.log_start = Offset(bounds->start);
  out.log_end = Offset(bounds->end);
  if (from >= out.log_end) return out;
  const int64_t max_records = std::max<int32_t>(options.max_records, 1);
  out.records.reserve(
      static_cast<size_t>(std::min<int64_t>(max_records, bounds->end - from.value())));
  auto n = scan_records(topic, partition, *bounds, from.value(), max_records, options.max_bytes,
                        [&]() -> Record& { return out.records.emplace_back(); });
  if (!n.ok()) return n.status();
  return out;
}

Status RocksLog::read_for_consumer(const std::string& topic, int32_t partition, Offset from,
                                   int32_t max_records, std::vector<ConsumerRecord>* out,
                                   size_t* used) {
  auto bounds = read_bounds(topic, partition, from, 0);
  if (!bounds.ok()) return bounds.status();
  if (from.value() >= bounds->end) return Status();
  const ReadOptions defaults;
  size_t next = *used;
  auto n = scan_records(topic, partition, *bounds, from.value(), std::max<int32_t>(max_records, 1),
                        defaults.max_bytes, [&]() -> Record& {
                          if (next == out->size()) out->emplace_back();
                          ConsumerRecord& cr = (*out)[next++];
                          cr.topic.assign(topic);
                          return cr.record;
                        });
  if (!n.ok()) return n.status();
  *used = next;
  return Status();
}

Result<PartitionInfo> RocksLog::partition_info(std::string_view topic, int32_t partition) {
  base::MutexLock lock(&mu_);
  auto t = find_topic(topic);
  if (!t.ok()) return t.status();
  if (partition < 0 || static_cast<size_t>(partition) >= (*t)->parts.size()) {
    return partition_out_of_range(topic, partition, (*t)->parts.size());
  }
  const Partition& s = *(*t)->parts[partition];
  return PartitionInfo{partition, Offset(s.start), Offset(s.end), s.bytes};
}

Result<Offset> RocksLog::offset_for_timestamp(std::string_view topic, int32_t partition,
                                              int64_t timestamp_ms) {
  auto info = partition_info(topic, partition);
  if (!info.ok()) return info.status();
  uint32_t id;
  {
    base::MutexLock lock(&mu_);
    id = (*find_topic(topic))->id;
  }
  // The index yields the first offset whose running-max timestamp reached timestamp_ms; no
  // earlier record can match. Scan forward from there (usually that very record matches).
  std::string prefix = partition_prefix(id, partition);
  std::unique_ptr<rocksdb::Iterator> idx(db_->NewIterator(rocksdb::ReadOptions(), index_cf_));
  idx->Seek(time_index_key(id, partition, timestamp_ms, 0));
  if (!idx->Valid() || !idx->key().starts_with(prefix)) {
    FACTORY_RETURN_IF_ERROR(to_status(idx->status(), "reading the time index"));
    return info->log_end;
  }
  int64_t ts, candidate;
  if (!parse_time_index_key(std::string_view(idx->key().data(), idx->key().size()), &ts,
                            &candidate)) {
    return Status::corruption("malformed time-index key in '" + options_.dir + "'");
  }
  candidate = std::max(candidate, info->log_start.value());
  std::string upper = record_key(id, partition, info->log_end.value());
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
  for (it->Seek(record_key(id, partition, candidate)); it->Valid(); it->Next()) {
    int64_t rts;
    if (decode_record_timestamp(std::string_view(it->value().data(), it->value().size()), &rts) &&
        rts >= timestamp_ms) {
      return Offset(record_key_offset(std::string_view(it->key().data(), it->key().size())));
    }
  }
  FACTORY_RETURN_IF_ERROR(to_status(it->status(), "reading"));
  return info->log_end;
}

uint64_t RocksLog::append_sequence() {
  base::MutexLock lock(&mu_);
  return append_seq_;
}

uint64_t RocksLog::wait_for_append(uint64_t seen, int64_t wait_ms) {
  base::MutexLock lock(&mu_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  ++long_poll_waiters_;
  while (append_seq_ == seen && !closing_) {
    if (!data_cv_.wait_until(deadline)) break;
  }
  --long_poll_waiters_;
  return append_seq_;
}

}  // namespace factory::log
