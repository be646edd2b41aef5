#include "log/group_coordinator.h"

#include <algorithm>

namespace factory::log {

GroupCoordinator::GroupCoordinator(std::function<int32_t(const std::string&)> partition_count,
                                   std::function<void()> on_change)
    : partition_count_(std::move(partition_count)), on_change_(std::move(on_change)) {}

std::string GroupCoordinator::join(const std::string& group, const std::string& client_id,
                                   const std::vector<std::string>& topics) {
  std::string id;
  {
    base::MutexLock lock(&mu_);
    id = client_id + "-" + std::to_string(next_member_++);
    groups_[group].members[id] = topics;
  }
  on_change_();
  return id;
}

void GroupCoordinator::leave(const std::string& group, const std::string& member) {
  {
    base::MutexLock lock(&mu_);
    auto it = groups_.find(group);
    if (it == groups_.end()) return;
    Group& g = it->second;
    g.members.erase(member);
    std::erase_if(g.owners, [&](const auto& kv) { return kv.second == member; });
    if (g.members.empty()) groups_.erase(it);
  }
  on_change_();
}

std::vector<TopicPartition> GroupCoordinator::compute_target(const Group& g,
                                                             const std::string& member) {
  std::vector<TopicPartition> out;
  auto me = g.members.find(member);
  if (me == g.members.end()) return out;
  for (const std::string& topic : me->second) {
    // Members subscribed to this topic, in id order (std::map keeps them sorted).
    std::vector<const std::string*> subs;
    for (const auto& [id, topics] : g.members) {
      if (std::find(topics.begin(), topics.end(), topic) != topics.end()) subs.push_back(&id);
    }
    auto pos = std::find_if(subs.begin(), subs.end(), [&](auto* s) { return *s == member; });
    int32_t index = static_cast<int32_t>(pos - subs.begin());
    int32_t m = static_cast<int32_t>(subs.size());
    int32_t n = partition_count_(topic);
    int32_t per = n / m, extra = n % m;
    int32_t first = index * per + std::min(index, extra);
    int32_t count = per + (index < extra ? 1 : 0);
    for (int32_t p = first; p < first + count; ++p) out.push_back({topic, p});
  }
  return out;
}

std::vector<TopicPartition> GroupCoordinator::target(const std::string& group,
                                                     const std::string& member) {
  base::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return {};
  return compute_target(it->second, member);
}

bool GroupCoordinator::try_acquire(const std::string& group, const std::string& member,
                                   const TopicPartition& tp) {
  {
    base::MutexLock lock(&mu_);
    auto it = groups_.find(group);
    if (it == groups_.end()) return false;
    auto [o, inserted] = it->second.owners.try_emplace(tp, member);
    if (!inserted) return o->second == member;
  }
  on_change_();
  return true;
}

void GroupCoordinator::release(const std::string& group, const std::string& member,
                               const TopicPartition& tp) {
  {
    base::MutexLock lock(&mu_);
    auto it = groups_.find(group);
    if (it == groups_.end()) return;
    auto o = it->second.owners.find(tp);
    if (o == it->second.owners.end() || o->second != member) return;
    it->second.owners.erase(o);
  }
  on_change_();
}

bool GroupCoordinator::has_members(const std::string& group) {
  base::MutexLock lock(&mu_);
  return groups_.count(group) > 0;
}

std::vector<std::string> GroupCoordinator::groups_with_members() {
  base::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, g] : groups_) out.push_back(name);
  return out;
}

std::map<TopicPartition, std::string> GroupCoordinator::owners(const std::string& group) {
  base::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return {};
  return it->second.owners;
}

}  // namespace factory::log
