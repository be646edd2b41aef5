// RocksLog's topic administration: create, apply (update), delete, list, describe.
#include <rocksdb/write_batch.h>

#include "base/coding.h"
#include "log/record_codec.h"
#include "log/rocks_log.h"
#include "log/rocks_log_internal.h"
#include "obs/logger.h"

namespace factory::log {

Status RocksLog::create_topic(const TopicSpec& spec) {
  FACTORY_RETURN_IF_ERROR(validate_topic_spec(spec));
  return exclusive([&] { return create_topic_locked(spec); });
}

Status RocksLog::create_topic_locked(const TopicSpec& spec) {
  auto t = std::make_shared<Topic>();
  t->spec = spec;
  {
    base::MutexLock lock(&mu_);
    if (topics_.count(spec.name)) {
      return Status::already_exists("topic " + quote(spec.name) +
                                    " already exists; use `factoryd topics apply` to change it");
    }
    t->id = next_topic_id_++;
  }
  for (int32_t p = 0; p < spec.partitions; ++p) t->parts.push_back(std::make_unique<Partition>());
  rocksdb::WriteBatch batch;
  // A new topic starts with no committed offsets. Group offsets are keyed by topic name, and a
  // data dir written before commits were checked against deletions (issue 11.10) may still
  // hold offsets of an earlier topic of this name: drop them with the creation.
  std::vector<GroupKey> orphans;
  {
    base::MutexLock lock(&mu_);
    for (const auto& [k, v] : committed_) {
      if (std::get<1>(k) == spec.name) orphans.push_back(k);
    }
  }
  for (const auto& [g, tp, p] : orphans) batch.Delete(meta_cf_, group_meta_key(g, tp, p));
  FACTORY_RETURN_IF_ERROR(put_topic_meta(&batch, *t));
  std::string next;
  base::put_fixed32_be(&next, t->id + 1);
  batch.Put(meta_cf_, "N", next);
  for (int32_t p = 0; p < spec.partitions; ++p) put_partition_meta(&batch, t->id, p, *t->parts[p]);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "creating topic"));
  base::MutexLock lock(&mu_);
  for (const auto& k : orphans) committed_.erase(k);
  topics_[spec.name] = std::move(t);
  obs::debug("topic created", {{"topic", spec.name}, {"partitions", spec.partitions}});
  return Status();
}

Result<TopicChange> RocksLog::apply_topic(const TopicSpec& spec) {
  FACTORY_RETURN_IF_ERROR(validate_topic_spec(spec));
  TopicChange change = TopicChange::kUnchanged;
  Status s = exclusive([&]() -> Status {
    std::shared_ptr<Topic> t;
    {
      base::MutexLock lock(&mu_);
      auto it = topics_.find(spec.name);
      if (it != topics_.end()) t = it->second;
    }
    if (!t) {
      change = TopicChange::kCreated;
      return create_topic_locked(spec);
    }
    int32_t old_parts = static_cast<int32_t>(t->parts.size());
    if (spec.partitions < old_parts) {
      return Status::invalid_argument(
          "topic " + quote(spec.name) + " has " + std::to_string(old_parts) +
          " partitions; the partition count cannot be lowered to " +
          std::to_string(spec.partitions) + " (Kafka cannot either): keep " +
          std::to_string(old_parts) + " or create a new topic");
    }
    if (spec.partitions == old_parts && spec.config == t->spec.config) return Status();
    Topic updated;
    updated.id = t->id;
    updated.spec = spec;
    rocksdb::WriteBatch batch;
    FACTORY_RETURN_IF_ERROR(put_topic_meta(&batch, updated));
    Partition empty;
    for (int32_t p = old_parts; p < spec.partitions; ++p)
      put_partition_meta(&batch, t->id, p, empty);
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "updating topic"));
    base::MutexLock lock(&mu_);
    t->spec = spec;
    for (int32_t p = old_parts; p < spec.partitions; ++p) {
      t->parts.push_back(std::make_unique<Partition>());
    }
    change = TopicChange::kUpdated;
    return Status();
  });
  if (!s.ok()) return s;
  if (change != TopicChange::kUnchanged) wake_waiters();  // consumers rebalance new partitions
  return change;
}

Status RocksLog::delete_topic(std::string_view name) {
  std::string topic(name);
  Status s = exclusive([&]() -> Status {
    std::shared_ptr<Topic> t;
    std::vector<GroupKey> group_keys;
    {
      base::MutexLock lock(&mu_);
      auto found = find_topic(topic);
      if (!found.ok()) return found.status();
      t = *found;
      for (const auto& [k, v] : committed_) {
        if (std::get<1>(k) == topic) group_keys.push_back(k);
      }
    }
    rocksdb::WriteBatch batch;
    batch.Delete(meta_cf_, topic_meta_key(topic));
    batch.DeleteRange(meta_cf_, partition_meta_key(t->id, 0), partition_meta_key(t->id + 1, 0));
    batch.DeleteRange(meta_cf_, producer_meta_key(t->id, ""), producer_meta_key(t->id + 1, ""));
    std::string lo = partition_prefix(t->id, 0), hi = partition_prefix(t->id + 1, 0);
    batch.DeleteRange(records_cf_, lo, hi);
    batch.DeleteRange(index_cf_, lo, hi);
    std::string dlo, dhi;
    base::put_fixed32_be(&dlo, t->id);
    base::put_fixed32_be(&dhi, t->id + 1);
    batch.DeleteRange(dedupe_cf_, dlo, dhi);
    for (const auto& [g, tp, p] : group_keys) batch.Delete(meta_cf_, group_meta_key(g, tp, p));
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "deleting topic"));
    base::MutexLock lock(&mu_);
    t->deleted = true;
    topics_.erase(topic);
    for (const auto& k : group_keys) committed_.erase(k);
    std::erase_if(producer_seqs_, [&](const auto& kv) { return kv.first.first == t->id; });
    return Status();
  });
  if (s.ok()) wake_waiters();
  return s;
}

std::vector<std::string> RocksLog::list_topics() {
  base::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, t] : topics_) out.push_back(name);
  return out;
}

Result<TopicInfo> RocksLog::describe_topic(std::string_view name) {
  base::MutexLock lock(&mu_);
  auto t = find_topic(name);
  if (!t.ok()) return t.status();
  TopicInfo info;
  info.id = (*t)->id;
  info.spec = (*t)->spec;
  for (size_t p = 0; p < (*t)->parts.size(); ++p) {
    const Partition& s = *(*t)->parts[p];
    info.partitions.push_back({static_cast<int32_t>(p), Offset(s.start), Offset(s.end), s.bytes});
  }
  return info;
}

}  // namespace factory::log
