// GroupCoordinator: in-process membership and partition assignment for consumer groups.
//
// Operation: each member subscribes to topics. The target assignment is Kafka's range assignor,
// recomputed whenever membership or a partition count changes (members sorted by id; per topic,
// the first `partitions % members` members get one extra). Ownership is separate from the
// target: a member owns a partition only after try_acquire() and until release(). A partition
// moves to its new target member only once the old owner released it (cooperative rebalance),
// so two members never read the same partition at once.
//
// Concurrency: thread-safe (one internal mutex). on_change runs after every membership or
// ownership change, without the mutex held, so waiting pollers wake up.
//
// Limitations: members are in-process only; a crashed process simply loses its members.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "factory/consumer.h"

namespace factory::log {

class GroupCoordinator {
 public:
  // partition_count returns a topic's current partition count (0 when it does not exist).
  GroupCoordinator(std::function<int32_t(const std::string&)> partition_count,
                   std::function<void()> on_change);

  // Adds a member and returns its id ("<client_id>-<n>").
  std::string join(const std::string& group, const std::string& client_id,
                   const std::vector<std::string>& topics);
  // Removes the member and releases what it owns.
  void leave(const std::string& group, const std::string& member);

  // The partitions the member should own now.
  std::vector<TopicPartition> target(const std::string& group, const std::string& member);
  // Takes ownership when the partition is free or already ours; false while another owns it.
  bool try_acquire(const std::string& group, const std::string& member, const TopicPartition& tp);
  void release(const std::string& group, const std::string& member, const TopicPartition& tp);

  bool has_members(const std::string& group);
  std::vector<std::string> groups_with_members();
  // Partition -> owning member id, for `groups describe`.
  std::map<TopicPartition, std::string> owners(const std::string& group);

 private:
  struct Group {
    std::map<std::string, std::vector<std::string>> members;  // member id -> topics
    std::map<TopicPartition, std::string> owners;
  };

  std::vector<TopicPartition> compute_target(const Group& g, const std::string& member)
      REQUIRES(mu_);

  const std::function<int32_t(const std::string&)> partition_count_;
  const std::function<void()> on_change_;
  base::Mutex mu_;
  std::map<std::string, Group> groups_ GUARDED_BY(mu_);
  uint64_t next_member_ GUARDED_BY(mu_) = 1;
};

}  // namespace factory::log
