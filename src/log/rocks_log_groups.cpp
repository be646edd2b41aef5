// RocksLog's consumer-group offsets: commits, lookups, describe (lag) and resets.
#include <algorithm>
#include <map>
#include <set>

#include "log/rocks_log.h"
#include "log/rocks_log_internal.h"

namespace factory::log {

Status RocksLog::commit_offsets(std::string_view group,
                                std::span<const TopicPartitionOffset> offsets, bool sync) {
  if (group.empty()) return Status::invalid_argument("group name is empty; give a group id");
  Writer w(&mu_, Writer::Kind::kCommit);
  w.group = std::string(group);
  {
    base::MutexLock lock(&mu_);
    for (const TopicPartitionOffset& o : offsets) {
      auto t = find_topic(o.topic);
      if (!t.ok()) return t.status();
      if (o.partition < 0 || static_cast<size_t>(o.partition) >= (*t)->parts.size()) {
        return partition_out_of_range(o.topic, o.partition, (*t)->parts.size());
      }
      if (o.offset.value() < 0) {
        return Status::invalid_argument("cannot commit negative offset " +
                                        std::to_string(o.offset.value()) + " for topic " +
                                        quote(o.topic));
      }
      w.offset_topics.push_back(*t);
    }
  }
  w.offsets.assign(offsets.begin(), offsets.end());
  w.bytes = offsets.size() * 32;
  w.sync = sync;
  return write(&w);
}

Result<std::optional<Offset>> RocksLog::committed_offset(std::string_view group,
                                                         std::string_view topic,
                                                         int32_t partition) {
  base::MutexLock lock(&mu_);
  auto it = committed_.find({std::string(group), std::string(topic), partition});
  if (it == committed_.end()) return std::optional<Offset>();
  return std::optional<Offset>(Offset(it->second));
}

std::vector<std::string> RocksLog::list_groups() {
  std::set<std::string> names;
  for (auto& g : coordinator_.groups_with_members()) names.insert(std::move(g));
  base::MutexLock lock(&mu_);
  for (const auto& [k, v] : committed_) names.insert(std::get<0>(k));
  return {names.begin(), names.end()};
}

Result<GroupDescription> RocksLog::describe_group(std::string_view group) {
  std::string g(group);
  GroupDescription d;
  d.group = g;
  bool active = coordinator_.has_members(g);
  d.state = active ? "Stable" : "Empty";
  std::map<TopicPartition, std::string> owners = coordinator_.owners(g);
  std::map<TopicPartition, std::optional<int64_t>> rows;
  base::MutexLock lock(&mu_);
  for (auto it = committed_.lower_bound({g, "", INT32_MIN});
       it != committed_.end() && std::get<0>(it->first) == g; ++it) {
    rows[{std::get<1>(it->first), std::get<2>(it->first)}] = it->second;
  }
  for (const auto& [tp, member] : owners) rows.try_emplace(tp);
  if (rows.empty() && !active) {
    return Status::not_found("consumer group " + quote(group) +
                             " does not exist (no committed offsets, no members); "
                             "`factoryd groups list` shows the groups");
  }
  for (const auto& [tp, committed] : rows) {
    auto t = topics_.find(tp.topic);
    if (t == topics_.end() || tp.partition >= static_cast<int32_t>(t->second->parts.size()))
      continue;
    const Partition& ps = *t->second->parts[tp.partition];
    GroupPartitionLag row;
    row.topic = tp.topic;
    row.partition = tp.partition;
    if (committed) row.committed = Offset(*committed);
    row.log_end = Offset(ps.end);
    row.lag = ps.end - std::max(committed.value_or(ps.start), ps.start);
    if (row.lag < 0) row.lag = 0;
    auto o = owners.find(tp);
    if (o != owners.end()) row.member = o->second;
    d.partitions.push_back(std::move(row));
  }
  return d;
}

Result<std::vector<TopicPartitionOffset>> RocksLog::reset_offsets(std::string_view group,
                                                                  std::string_view topic,
                                                                  const OffsetResetSpec& spec,
                                                                  bool execute) {
  if (group.empty()) return Status::invalid_argument("group name is empty; give a group id");
  if (coordinator_.has_members(std::string(group))) {
    return Status::failed_precondition(
        "consumer group " + quote(group) +
        " has active members; stop its consumers before resetting offsets (as Kafka requires)");
  }
  auto info = describe_topic(topic);
  if (!info.ok()) return info.status();
  std::vector<TopicPartitionOffset> plan;
  for (const PartitionInfo& p : info->partitions) {
    int64_t o = 0;
    switch (spec.kind) {
      case OffsetResetSpec::Kind::kEarliest:
        o = p.log_start.value();
        break;
      case OffsetResetSpec::Kind::kLatest:
        o = p.log_end.value();
        break;
      case OffsetResetSpec::Kind::kOffset:
        o = std::clamp(spec.value, p.log_start.value(), p.log_end.value());
        break;
      case OffsetResetSpec::Kind::kTimestamp: {
        auto r = offset_for_timestamp(topic, p.partition, spec.value);
        if (!r.ok()) return r.status();
        o = r->value();
        break;
      }
    }
    plan.push_back({std::string(topic), p.partition, Offset(o)});
  }
  if (execute) FACTORY_RETURN_IF_ERROR(commit_offsets(group, plan));
  return plan;
}

}  // namespace factory::log
