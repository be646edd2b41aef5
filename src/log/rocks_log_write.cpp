// RocksLog's write path: the writer queue (group commit) and appends.
#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include <rocksdb/write_batch.h>

#include "base/check.h"
#include "base/coding.h"
#include "factory/event.h"
#include "log/record_codec.h"
#include "log/rocks_log.h"
#include "log/rocks_log_internal.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace factory::log {
namespace {

constexpr size_t kMaxGroupBytes = 4 << 20;

// Raw size Kafka compares with max.message.bytes: key + value + headers.
int64_t record_size(const ProducerRecord& r) {
  int64_t n = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (const Header& h : r.headers) n += h.key.size() + h.value.size();
  return n;
}

// A topic's append metrics. Looked up once per thread and topic, so an append takes no lock
// for them: one histogram observe and three counter adds per append call, not per record.
struct AppendMetrics {
  obs::Counter* appends;
  obs::Counter* records;
  obs::Counter* bytes;
  obs::Counter* errors;
  obs::Histogram* duration;
};

const AppendMetrics& append_metrics(std::string_view topic) {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  thread_local std::unordered_map<std::string, AppendMetrics, Hash, std::equal_to<>> cache;
  if (auto it = cache.find(topic); it != cache.end()) return it->second;
  obs::Registry& r = obs::default_registry();
  static auto& appends =
      r.counter("factory_log_appends_total", "Append calls that succeeded.", {"topic"});
  static auto& records = r.counter("factory_log_append_records_total",
                                   "Records appended by successful append calls.", {"topic"});
  static auto& bytes = r.counter("factory_log_append_bytes_total",
                                 "Encoded bytes of the records appended.", {"topic"});
  static auto& errors =
      r.counter("factory_log_append_errors_total",
                "Append calls to an existing topic that failed to write.", {"topic"});
  static auto& duration = r.histogram(
      "factory_log_append_duration_seconds",
      "Time of a successful append call, including the wait for its group commit (fsync).",
      {"topic"});
  AppendMetrics m{appends.labels({topic}), records.labels({topic}), bytes.labels({topic}),
                  errors.labels({topic}), duration.labels({topic})};
  return cache.emplace(std::string(topic), m).first->second;
}

}  // namespace

Status RocksLog::write(Writer* w) {
  base::MutexLock lock(&mu_);
  if (closing_) return Status::shutting_down("the log is closing");
  if (w->kind == Writer::Kind::kAppend) {
    // Null-key records share one sticky partition per call, moving round-robin between calls.
    int32_t sticky = -1;
    for (int32_t& p : w->partitions) {
      if (p >= 0) continue;
      if (sticky < 0) {
        sticky = static_cast<int32_t>(w->topic->sticky++ % w->topic->parts.size());
      }
      p = sticky;
    }
  }
  writers_.push_back(w);
  while (!w->done && w != writers_.front()) w->cv.wait();
  if (w->done) return w->status;

  if (w->kind == Writer::Kind::kExclusive) {
    mu_.unlock();
    Status s = (*w->fn)();
    mu_.lock();
    writers_.pop_front();
    if (!writers_.empty()) writers_.front()->cv.signal();
    return s;
  }

  // Lead a group: this writer and the appends/commits queued right behind it.
  std::vector<Writer*> group;
  size_t max_bytes = w->bytes <= (256 << 10) ? w->bytes + (1 << 20) : kMaxGroupBytes;
  size_t bytes = 0;
  for (Writer* x : writers_) {
    if (x->kind == Writer::Kind::kExclusive) break;
    if (!group.empty() && bytes + x->bytes > max_bytes) break;
    bytes += x->bytes;
    group.push_back(x);
  }
  Status s = write_group(group);
  for (Writer* x : group) {
    FACTORY_CHECK(writers_.front() == x);
    writers_.pop_front();
    if (x->status.ok()) x->status = s;
    x->done = true;
    if (x != w) x->cv.signal();
  }
  if (!writers_.empty()) writers_.front()->cv.signal();
  return w->status;
}

Status RocksLog::lookup_keys(std::vector<Writer*>& group) {
  // One MultiGet for the whole group: its keys share index and filter block reads.
  std::vector<std::string> keys;
  std::vector<std::pair<Writer*, size_t>> owners;
  for (Writer* x : group) {
    for (size_t i = 0; i < x->keys.size(); ++i) {
      if (x->keys[i].empty()) continue;
      keys.push_back(dedupe_key(x->topic->id, x->keys[i]));
      owners.emplace_back(x, i);
    }
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), dedupe_cf_, keys.size(), slices.data(), values.data(),
                statuses.data());
  for (size_t k = 0; k < keys.size(); ++k) {
    if (statuses[k].IsNotFound()) continue;
    FACTORY_RETURN_IF_ERROR(to_status(statuses[k], "reading idempotency keys"));
    auto [x, i] = owners[k];
    const rocksdb::Slice v = values[k];
    if (v.size() != 12) {
      return Status::corruption("idempotency key of topic " + quote(x->topic->spec.name) + " in '" +
                                options_.dir + "' has a " + std::to_string(v.size()) +
                                "-byte value, not 12");
    }
    x->key_found[i] =
        RecordPosition{static_cast<int32_t>(base::decode_fixed32_be(v.data())),
                       Offset(static_cast<int64_t>(base::decode_fixed64_be(v.data() + 4))), true};
  }
  return Status();
}

Status RocksLog::write_group(std::vector<Writer*>& group) {
  // Phase 0, mu_ released: look up the idempotency keys. Only the writer at the queue front
  // writes, so what these reads see cannot change before this group's own write.
  bool keyed = false;
  for (Writer* x : group) keyed = keyed || !x->keys.empty();
  if (keyed) {
    mu_.unlock();
    Status s = lookup_keys(group);
    mu_.lock();
    if (!s.ok()) return s;
  }
  // Phase 1, under mu_: assign offsets and stage each touched partition's next state.
  struct Staged {
    uint32_t topic_id;
    int32_t partition;
    Partition next;
  };
  std::map<Partition*, Staged> staged;
  std::map<ProducerKey, int64_t> staged_seqs;
  struct StagedKey {
    RecordPosition position;
    uint32_t topic_id;
    const std::string* key;
  };
  std::map<std::string, StagedKey> staged_keys;  // dedupe_key -> first record in the group
  std::vector<std::string> index_keys;
  for (Writer* x : group) {
    if (x->kind == Writer::Kind::kCommit) {
      // A commit validated its topics before it queued; a deletion queued ahead of it may have
      // run since. Its offsets must not be written then: keyed by the topic's name, they would
      // outlive the topic and a topic recreated under that name would start from them. No
      // deletion can run between this check and the publish: deletions are exclusive writers.
      for (const auto& t : x->offset_topics) {
        if (!t->deleted) continue;
        x->status = Status::not_found("topic " + quote(t->spec.name) +
                                      " was deleted while offsets of group " + quote(x->group) +
                                      " were being committed to it; nothing was committed");
        break;
      }
      continue;
    }
    if (x->kind != Writer::Kind::kAppend) continue;
    Topic& t = *x->topic;
    if (t.deleted) {
      x->status = Status::not_found("topic " + quote(t.spec.name) + " was deleted");
      continue;
    }
    x->positions.resize(x->values.size());
    std::vector<int64_t*> last_seqs;  // per entry of x->producers
    for (const std::string& producer : x->producers) {
      ProducerKey key{t.id, producer};
      auto [it, fresh] = staged_seqs.try_emplace(key, INT64_MIN);
      if (fresh) {
        auto known = producer_seqs_.find(key);
        if (known != producer_seqs_.end()) it->second = known->second;
      }
      last_seqs.push_back(&it->second);
    }
    for (size_t i = 0; i < x->values.size(); ++i) {
      if (!x->producer_of.empty() && x->producer_of[i] >= 0) {
        int64_t* last = last_seqs[x->producer_of[i]];
        if (x->sequences[i] <= *last) {
          x->positions[i] = {-1, Offset(-1), true};
          continue;
        }
        *last = x->sequences[i];
      }
      std::string dkey;
      if (!x->keys.empty() && !x->keys[i].empty()) {
        if (x->key_found[i]) {
          x->positions[i] = *x->key_found[i];
          continue;
        }
        dkey = dedupe_key(t.id, x->keys[i]);
        if (auto seen = staged_keys.find(dkey); seen != staged_keys.end()) {
          x->positions[i] = seen->second.position;
          continue;
        }
      }
      int32_t p = x->partitions[i];
      Partition* ps = t.parts[p].get();
      auto [it, fresh] = staged.try_emplace(ps, Staged{t.id, p, *ps});
      Partition& n = it->second.next;
      x->positions[i] = {p, Offset(n.end)};
      if (!dkey.empty()) {
        staged_keys.emplace(std::move(dkey),
                            StagedKey{{p, Offset(n.end), true}, t.id, &x->keys[i]});
      }
      n.bytes += static_cast<int64_t>(kRecordKeySize + x->values[i].size());
      if (x->timestamps[i] > n.max_ts) {
        n.max_ts = x->timestamps[i];
        index_keys.push_back(time_index_key(t.id, p, n.max_ts, n.end));
      }
      ++n.end;
    }
  }
  mu_.unlock();

  // Phase 2, mu_ released: this writer stays at the queue front, so no one else writes.
  rocksdb::WriteBatch batch;
  for (Writer* x : group) {
    if (!x->status.ok()) continue;
    if (x->kind == Writer::Kind::kAppend) {
      for (size_t i = 0; i < x->values.size(); ++i) {
        if (x->positions[i].duplicate) continue;
        batch.Put(
            records_cf_,
            record_key(x->topic->id, x->positions[i].partition, x->positions[i].offset.value()),
            x->values[i]);
      }
    } else {
      for (const TopicPartitionOffset& o : x->offsets) {
        batch.Put(meta_cf_, group_meta_key(x->group, o.topic, o.partition),
                  encode_u64(static_cast<uint64_t>(o.offset.value())));
      }
    }
  }
  for (const std::string& k : index_keys) batch.Put(index_cf_, k, rocksdb::Slice());
  for (const auto& [k, staged] : staged_keys) {
    const RecordPosition& pos = staged.position;
    batch.Put(dedupe_cf_, k, encode_position(pos.partition, pos.offset.value()));
    batch.Put(dedupe_cf_, dedupe_position_key(staged.topic_id, pos.partition, pos.offset.value()),
              *staged.key);
  }
  for (const auto& [ps, st] : staged)
    put_partition_meta(&batch, st.topic_id, st.partition, st.next);
  for (const auto& [key, seq] : staged_seqs) {
    batch.Put(meta_cf_, producer_meta_key(key.first, key.second),
              encode_u64(static_cast<uint64_t>(seq)));
  }
  rocksdb::WriteOptions wo;
  wo.sync = false;
  for (Writer* x : group) wo.sync = wo.sync || x->sync;
  wo.sync = wo.sync && options_.sync;
  Status s = db_write(wo, &batch, "appending");

  // Phase 3, under mu_ again: publish.
  mu_.lock();
  if (!s.ok()) {
    obs::error("log write failed", {{"error", s.to_string()}});
    return s;
  }
  for (const auto& [key, seq] : staged_seqs) producer_seqs_[key] = seq;
  for (const auto& [ps, st] : staged) {
    ps->end = st.next.end;
    ps->bytes = st.next.bytes;
    ps->max_ts = st.next.max_ts;
  }
  for (Writer* x : group) {
    if (x->kind != Writer::Kind::kCommit || !x->status.ok()) continue;
    for (const TopicPartitionOffset& o : x->offsets) {
      committed_[{x->group, o.topic, o.partition}] = o.offset.value();
    }
  }
  ++append_seq_;
  data_cv_.signal_all();
  return Status();
}

Status RocksLog::exclusive(const std::function<Status()>& fn) {
  Writer w(&mu_, Writer::Kind::kExclusive);
  w.fn = &fn;
  return write(&w);
}

Result<std::vector<RecordPosition>> RocksLog::append(std::string_view topic,
                                                     std::span<const ProducerRecord> records,
                                                     const AppendOptions& options) {
  if (records.empty()) return std::vector<RecordPosition>{};
  const auto started = std::chrono::steady_clock::now();
  Writer w(&mu_, Writer::Kind::kAppend);
  std::map<std::string_view, std::pair<int32_t, int64_t>> producer_state;  // index, last seq
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& producer =
        records[i].producer_id.empty() ? options.producer_id : records[i].producer_id;
    if (producer.empty()) continue;
    if (w.producer_of.empty()) {
      w.producer_of.assign(records.size(), -1);
      w.sequences.assign(records.size(), 0);
    }
    auto [it, fresh] =
        producer_state.try_emplace(producer, static_cast<int32_t>(w.producers.size()), INT64_MIN);
    if (fresh) w.producers.push_back(producer);
    if (!records[i].sequence || *records[i].sequence <= it->second.second) {
      return Status::invalid_argument(
          "record " + std::to_string(i) + " of an idempotent append (producer " + quote(producer) +
          ") has " +
          (records[i].sequence ? "a sequence not above the previous one of that producer"
                               : "no sequence") +
          "; give every record of a producer a strictly increasing sequence");
    }
    it->second.second = *records[i].sequence;
    w.producer_of[i] = it->second.first;
    w.sequences[i] = *records[i].sequence;
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& key = records[i].idempotency_key;
    if (key.empty()) continue;
    if (key.size() > kMaxIdempotencyKeyBytes) {
      return Status::invalid_argument("record " + std::to_string(i) +
                                      " has an idempotency key of " + std::to_string(key.size()) +
                                      " bytes; the limit is " +
                                      std::to_string(kMaxIdempotencyKeyBytes));
    }
    if (!w.producer_of.empty() && w.producer_of[i] >= 0) {
      return Status::invalid_argument(
          "record " + std::to_string(i) +
          " has both a producer sequence and an idempotency key; give it one of them");
    }
    if (w.keys.empty()) {
      w.keys.resize(records.size());
      w.key_found.resize(records.size());
    }
    const EventId digest = event_id_for_bytes(key);
    w.keys[i].assign(reinterpret_cast<const char*>(digest.digest.data()), digest.digest.size());
  }
  size_t nparts;
  int64_t max_bytes;
  {
    base::MutexLock lock(&mu_);
    auto t = find_topic(topic);
    if (!t.ok()) return t.status();
    w.topic = *t;
    nparts = w.topic->parts.size();
    max_bytes = w.topic->spec.config.max_message_bytes;
  }
  int64_t now = now_ms();
  w.partitions.reserve(records.size());
  w.values.resize(records.size());
  w.timestamps.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const ProducerRecord& r = records[i];
    int64_t size = record_size(r);
    if (size > max_bytes) {
      return Status::invalid_argument(
          "record " + std::to_string(i) + " is " + std::to_string(size) +
          " bytes (key + value + headers), over max.message.bytes=" + std::to_string(max_bytes) +
          " of topic " + quote(topic) +
          "; split the record or raise the limit with "
          "`factoryd topics apply` (config max.message.bytes)");
    }
    int32_t p = -1;
    if (r.partition) {
      if (*r.partition < 0 || static_cast<size_t>(*r.partition) >= nparts) {
        return partition_out_of_range(topic, *r.partition, nparts);
      }
      p = *r.partition;
    } else if (r.key) {
      p = partition_for_key(*r.key, static_cast<int32_t>(nparts));
    }
    w.partitions.push_back(p);
    int64_t ts = r.timestamp_ms.value_or(now);
    w.timestamps.push_back(ts);
    encode_record(r, ts, &w.values[i]);
    w.bytes += w.values[i].size() + kRecordKeySize;
  }
  w.sync = options.sync;
  Status s = write(&w);
  const AppendMetrics& m = append_metrics(topic);  // the topic exists: a bounded label
  if (!s.ok()) {
    m.errors->inc();
    return s;
  }
  m.appends->inc();
  m.records->inc(records.size());
  m.bytes->inc(w.bytes);
  m.duration->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return std::move(w.positions);
}

}  // namespace factory::log
