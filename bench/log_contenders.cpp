#include "bench/log_contenders.h"

#include <chrono>
#include <string_view>

#include <fmt/format.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "base/coding.h"
#include "log/rocks_options.h"

namespace factory::bench {

namespace {

constexpr double kStallS = 30;  // a reader without progress for this long fails the benchmark

// The log's record key: topic id u32 BE | partition u32 BE | offset u64 BE.
void raw_key(std::string* key, uint32_t topic_id, int32_t partition, int64_t offset) {
  key->clear();
  base::put_fixed32_be(key, topic_id);
  base::put_fixed32_be(key, static_cast<uint32_t>(partition));
  base::put_fixed64_be(key, static_cast<uint64_t>(offset));
}

// About the log's encoded size (format byte, varint timestamp, flags, length, payload, header
// count: payload + 10 bytes): an 8-byte timestamp, then the payload.
void raw_value(std::string* value, std::string_view payload) {
  value->clear();
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  base::put_fixed64_be(value, static_cast<uint64_t>(now_ms));
  value->append(payload);
}

class FactorydAppender final : public Appender {
 public:
  FactorydAppender(Log* log, const PayloadPool* pool) : log_(log), pool_(pool) {}

  Status append_batch(const Workload& w, int32_t partition, int64_t first, int64_t n) override {
    batch_.clear();
    for (int64_t i = 0; i < n; i++) {
      ProducerRecord r;
      r.value.emplace(pool_->get(first + i, w.value_bytes));
      r.partition = partition;
      batch_.push_back(std::move(r));
    }
    auto pos = log_->append(w.topic, batch_);
    if (!pos.ok()) return with_context(pos.status(), fmt::format("append to {}", w.topic));
    // Offsets are contiguous per partition and come back in input order.
    int64_t& next = next_offset(w.topic, partition);
    if (pos->size() != static_cast<size_t>(n) || pos->front().partition != partition ||
        pos->front().offset.value() != next || pos->back().offset.value() != next + n - 1) {
      return Status::internal(
          fmt::format("append to {} p{}: unexpected positions", w.topic, partition));
    }
    next += n;
    return Status();
  }

 private:
  int64_t& next_offset(const std::string& topic, int32_t partition) {
    auto& v = next_[topic];
    if (v.empty()) v.assign(kPartitions, 0);
    return v[static_cast<size_t>(partition)];
  }

  Log* const log_;
  const PayloadPool* const pool_;
  std::vector<ProducerRecord> batch_;
  std::map<std::string, std::vector<int64_t>> next_;
};

class RawAppender final : public Appender {
 public:
  RawAppender(rocksdb::DB* db, const PayloadPool* pool) : db_(db), pool_(pool) { wo_.sync = true; }

  Status append_batch(const Workload& w, int32_t partition, int64_t first, int64_t n) override {
    auto& next = next_[w.raw_topic_id];
    if (next.empty()) next.assign(kPartitions, 0);
    int64_t& offset = next[static_cast<size_t>(partition)];
    batch_.Clear();
    for (int64_t i = 0; i < n; i++) {
      raw_key(&key_, w.raw_topic_id, partition, offset + i);
      raw_value(&value_, pool_->get(first + i, w.value_bytes));
      batch_.Put(key_, value_);
    }
    rocksdb::Status s = db_->Write(wo_, &batch_);
    if (!s.ok()) return Status::io_error(fmt::format("rocksdb write: {}", s.ToString()));
    offset += n;
    return Status();
  }

 private:
  rocksdb::DB* const db_;
  const PayloadPool* const pool_;
  rocksdb::WriteOptions wo_;
  rocksdb::WriteBatch batch_;
  std::string key_, value_;
  std::map<uint32_t, std::vector<int64_t>> next_;
};

class RedisAppender final : public Appender {
 public:
  RedisAppender(RedisServer* redis, const PayloadPool* pool) : redis_(redis), pool_(pool) {}

  Status append_batch(const Workload& w, int32_t partition, int64_t first, int64_t n) override {
    values_.clear();
    for (int64_t i = 0; i < n; i++) values_.push_back(pool_->get(first + i, w.value_bytes));
    return redis_->xadd_batch(fmt::format("{}:{}", w.topic, partition), values_);
  }

 private:
  RedisServer* const redis_;
  const PayloadPool* const pool_;
  std::vector<std::string_view> values_;
};

class FactorydReader final : public Reader {
 public:
  FactorydReader(const Workload& w, std::unique_ptr<Consumer> consumer, PollStyle style)
      : w_(w), consumer_(std::move(consumer)), style_(style), next_(kPartitions, 0) {}

  Status read_at_least(int64_t n, int64_t* records, int64_t* payload_bytes) override {
    int64_t got = 0;
    Stopwatch idle;
    while (got < n && total_ < w_.records) {
      std::vector<ConsumerRecord>* batch = &batch_;
      if (style_ == PollStyle::kInto) {
        Status s = consumer_->poll_into(kPollMax, 100, &batch_);
        if (!s.ok()) return with_context(s, "poll_into");
      } else {
        auto fresh = consumer_->poll(kPollMax, 100);
        if (!fresh.ok()) return with_context(fresh.status(), "poll");
        fresh_ = std::move(*fresh);  // the previous batch is freed here, as a caller's would be
        batch = &fresh_;
      }
      if (batch->empty()) {
        if (idle.elapsed_s() > kStallS) {
          return Status::internal(
              fmt::format("consume {}: stalled at {} of {} records", w_.topic, total_, w_.records));
        }
        continue;
      }
      idle.reset();
      for (const ConsumerRecord& cr : *batch) {
        const Record& r = cr.record;
        const bool in_range = r.partition >= 0 && r.partition < kPartitions;
        if (!in_range || r.offset.value() != next_[static_cast<size_t>(r.partition)]) {
          return Status::internal(fmt::format("consume {}: got p{} offset {}, expected {}",
                                              w_.topic, r.partition, r.offset.value(),
                                              in_range ? next_[r.partition] : -1));
        }
        next_[static_cast<size_t>(r.partition)]++;
        *payload_bytes += r.value ? static_cast<int64_t>(r.value->size()) : 0;
      }
      got += static_cast<int64_t>(batch->size());
      total_ += static_cast<int64_t>(batch->size());
    }
    *records += got;
    return Status();
  }

  Status finish() override {
    if (total_ != w_.records) {
      return Status::internal(fmt::format("consume {}: {} of {}", w_.topic, total_, w_.records));
    }
    Status s = consumer_->commit();
    return s.ok() ? s : with_context(s, "commit");
  }

 private:
  const Workload w_;
  std::unique_ptr<Consumer> consumer_;
  const PollStyle style_;
  std::vector<ConsumerRecord> batch_, fresh_;
  std::vector<int64_t> next_;
  int64_t total_ = 0;
};

// Scans the topic's keys in key order (partition by partition), checking offsets and touching
// each value, as a consumer that wants every record would. The iterator is created on the
// first read (inside its timing) and kept across reads.
class RawReader final : public Reader {
 public:
  RawReader(rocksdb::DB* db, const Workload& w) : db_(db), w_(w), next_(kPartitions, 0) {
    base::put_fixed32_be(&lower_, w.raw_topic_id);
    base::put_fixed32_be(&upper_, w.raw_topic_id + 1);
    upper_slice_ = rocksdb::Slice(upper_);
  }

  Status read_at_least(int64_t n, int64_t* records, int64_t* payload_bytes) override {
    if (!it_) {
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper_slice_;
      it_.reset(db_->NewIterator(ro));
      it_->Seek(lower_);
    }
    int64_t got = 0;
    for (; got < n && it_->Valid(); it_->Next()) {
      rocksdb::Slice k = it_->key();
      rocksdb::Slice v = it_->value();
      if (k.size() != 16 || v.size() < 8) return Status::internal("raw scan: malformed entry");
      const auto p = static_cast<int32_t>(base::decode_fixed32_be(k.data() + 4));
      const auto off = static_cast<int64_t>(base::decode_fixed64_be(k.data() + 8));
      if (p < 0 || p >= kPartitions || off != next_[static_cast<size_t>(p)]) {
        return Status::internal(fmt::format("raw scan: unexpected key p{} offset {}", p, off));
      }
      next_[static_cast<size_t>(p)]++;
      sink_ += static_cast<unsigned char>(v.data()[v.size() - 1]);
      *payload_bytes += static_cast<int64_t>(v.size() - 8);
      got++;
    }
    if (!it_->status().ok()) return Status::io_error(it_->status().ToString());
    total_ += got;
    *records += got;
    return Status();
  }

  Status finish() override {
    if (total_ != w_.records || sink_ == 0) {
      return Status::internal(fmt::format("raw scan: {} of {} records", total_, w_.records));
    }
    it_.reset();
    return Status();
  }

 private:
  rocksdb::DB* const db_;
  const Workload w_;
  std::string lower_, upper_;
  rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
  std::vector<int64_t> next_;
  int64_t total_ = 0;
  uint64_t sink_ = 0;
};

}  // namespace

Status with_context(const Status& s, std::string_view what) {
  return Status::internal(fmt::format("{}: {}", what, s.to_string()));
}

std::unique_ptr<Appender> factoryd_appender(Log* log, const PayloadPool* pool) {
  return std::make_unique<FactorydAppender>(log, pool);
}

std::unique_ptr<Appender> raw_appender(rocksdb::DB* db, const PayloadPool* pool) {
  return std::make_unique<RawAppender>(db, pool);
}

std::unique_ptr<Appender> redis_appender(RedisServer* redis, const PayloadPool* pool) {
  return std::make_unique<RedisAppender>(redis, pool);
}

Result<std::unique_ptr<Reader>> factoryd_reader(Log* log, const Workload& w, PollStyle style) {
  const std::string group =
      (style == PollStyle::kInto ? "bench-consume-" : "bench-consume-fresh-") + w.topic;
  auto consumer = log->subscribe({.group = group, .topics = {w.topic}});
  if (!consumer.ok()) return with_context(consumer.status(), "subscribe");
  return std::unique_ptr<Reader>(new FactorydReader(w, std::move(*consumer), style));
}

std::unique_ptr<Reader> raw_reader(rocksdb::DB* db, const Workload& w) {
  return std::make_unique<RawReader>(db, w);
}

Result<std::unique_ptr<rocksdb::DB>> raw_open(const std::string& dir) {
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(log::make_rocksdb_options(LogOptions{}), dir, &db);
  if (!s.ok()) return Status::io_error(fmt::format("rocksdb open {}: {}", dir, s.ToString()));
  return std::unique_ptr<rocksdb::DB>(db);
}

Status raw_put(rocksdb::DB* db, uint32_t topic_id, int32_t partition, int64_t offset,
               std::string_view payload) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::string key, value;
  raw_key(&key, topic_id, partition, offset);
  raw_value(&value, payload);
  rocksdb::Status s = db->Put(wo, key, value);
  if (!s.ok()) return Status::io_error(fmt::format("rocksdb put: {}", s.ToString()));
  return Status();
}

}  // namespace factory::bench
