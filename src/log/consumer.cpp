// ConsumerImpl: factory::Consumer over RocksLog and its GroupCoordinator.
#include "factory/consumer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "log/rocks_log.h"

namespace factory::log {
namespace {

class ConsumerImpl final : public Consumer {
 public:
  ConsumerImpl(RocksLog* log, ConsumerOptions options) : log_(log), options_(std::move(options)) {
    member_ = log_->coordinator()->join(options_.group, options_.client_id, options_.topics);
  }
  ~ConsumerImpl() override { log_->coordinator()->leave(options_.group, member_); }

  Result<std::vector<ConsumerRecord>> poll(int32_t max_records, int64_t wait_ms) override;
  Status poll_into(int32_t max_records, int64_t wait_ms,
                   std::vector<ConsumerRecord>* batch) override;
  Status commit() override;
  Status seek(const TopicPartition& tp, Offset offset) override;
  void pause(const TopicPartition& tp) override { paused_.insert(tp); }
  void resume(const TopicPartition& tp) override { paused_.erase(tp); }
  std::vector<TopicPartition> assignment() const override;
  const std::string& member_id() const override { return member_; }

 private:
  struct Position {
    int64_t next = 0;        // next offset to read
    int64_t committed = -1;  // last committed by this member, -1: none
  };

  // Gives up partitions no longer targeted (committing first) and takes free targeted ones.
  Status rebalance();
  Result<int64_t> initial_position(const TopicPartition& tp);
  Status commit_partitions(const std::vector<TopicPartition>& tps);

  RocksLog* const log_;
  const ConsumerOptions options_;
  std::string member_;
  std::map<TopicPartition, Position> owned_;
  std::set<TopicPartition> paused_;
  size_t rr_ = 0;  // round-robin start among owned partitions
};

Result<int64_t> ConsumerImpl::initial_position(const TopicPartition& tp) {
  auto committed = log_->committed_offset(options_.group, tp.topic, tp.partition);
  if (!committed.ok()) return committed.status();
  auto info = log_->partition_info(tp.topic, tp.partition);
  if (!info.ok()) return info.status();
  if (*committed && (*committed)->value() >= info->log_start.value() &&
      (*committed)->value() <= info->log_end.value()) {
    return (*committed)->value();
  }
  return options_.auto_offset_reset == ConsumerOptions::Reset::kEarliest ? info->log_start.value()
                                                                         : info->log_end.value();
}

Status ConsumerImpl::rebalance() {
  GroupCoordinator* c = log_->coordinator();
  std::vector<TopicPartition> target = c->target(options_.group, member_);
  std::vector<TopicPartition> revoked;
  for (const auto& [tp, pos] : owned_) {
    if (std::find(target.begin(), target.end(), tp) == target.end()) revoked.push_back(tp);
  }
  if (!revoked.empty()) {
    FACTORY_RETURN_IF_ERROR(commit_partitions(revoked));
    for (const TopicPartition& tp : revoked) {
      owned_.erase(tp);
      paused_.erase(tp);
      c->release(options_.group, member_, tp);
    }
  }
  for (const TopicPartition& tp : target) {
    if (owned_.count(tp) || !c->try_acquire(options_.group, member_, tp)) continue;
    auto start = initial_position(tp);
    if (!start.ok()) {
      c->release(options_.group, member_, tp);
      return start.status();
    }
    owned_[tp] = Position{*start, -1};
  }
  return Status();
}

Result<std::vector<ConsumerRecord>> ConsumerImpl::poll(int32_t max_records, int64_t wait_ms) {
  std::vector<ConsumerRecord> out;
  FACTORY_RETURN_IF_ERROR(poll_into(max_records, wait_ms, &out));
  return out;
}

Status ConsumerImpl::poll_into(int32_t max_records, int64_t wait_ms,
                               std::vector<ConsumerRecord>* batch) {
  // Records are decoded into batch's slots [0, used); the rest are trimmed at the end.
  size_t used = 0;
  max_records = std::max(max_records, 1);
  batch->reserve(static_cast<size_t>(std::min(max_records, 4096)));
  auto finish = [&](Status s) {
    batch->resize(s.ok() ? used : 0);
    return s;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    uint64_t seq = log_->append_sequence();
    if (Status s = rebalance(); !s.ok()) return finish(s);
    std::vector<TopicPartition> order;
    for (const auto& [tp, pos] : owned_) {
      if (!paused_.count(tp)) order.push_back(tp);
    }
    for (size_t k = 0; k < order.size() && static_cast<int32_t>(used) < max_records; ++k) {
      const TopicPartition& tp = order[(rr_ + k) % order.size()];
      Position& pos = owned_[tp];
      const size_t before = used;
      Status s = log_->read_for_consumer(tp.topic, tp.partition, Offset(pos.next),
                                         max_records - static_cast<int32_t>(used), batch, &used);
      if (s.is_out_of_range()) {
        // Retention passed our position, or the log was reset: apply auto_offset_reset.
        auto info = log_->partition_info(tp.topic, tp.partition);
        if (!info.ok()) return finish(info.status());
        pos.next = options_.auto_offset_reset == ConsumerOptions::Reset::kEarliest
                       ? info->log_start.value()
                       : info->log_end.value();
        continue;
      }
      if (!s.ok()) return finish(s);
      if (used > before) pos.next = (*batch)[used - 1].record.offset.value() + 1;
    }
    if (!order.empty()) rr_ = (rr_ + 1) % order.size();
    if (used > 0) return finish(Status());
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return finish(Status());
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    log_->wait_for_append(seq, std::max<int64_t>(left, 1));
  }
}

Status ConsumerImpl::commit_partitions(const std::vector<TopicPartition>& tps) {
  std::vector<TopicPartitionOffset> offsets;
  for (const TopicPartition& tp : tps) {
    const Position& pos = owned_[tp];
    if (pos.next != pos.committed) offsets.push_back({tp.topic, tp.partition, Offset(pos.next)});
  }
  if (offsets.empty()) return Status();
  Status s = log_->commit_offsets(options_.group, offsets, options_.sync_commits);
  if (!s.ok()) return s;
  for (const TopicPartitionOffset& o : offsets) {
    owned_[{o.topic, o.partition}].committed = o.offset.value();
  }
  return Status();
}

Status ConsumerImpl::commit() {
  std::vector<TopicPartition> tps;
  for (const auto& [tp, pos] : owned_) tps.push_back(tp);
  return commit_partitions(tps);
}

Status ConsumerImpl::seek(const TopicPartition& tp, Offset offset) {
  auto it = owned_.find(tp);
  if (it == owned_.end()) {
    return Status::failed_precondition("partition " + tp.topic + "/" +
                                       std::to_string(tp.partition) +
                                       " is not assigned to this consumer; poll first");
  }
  it->second.next = offset.value();
  return Status();
}

std::vector<TopicPartition> ConsumerImpl::assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, pos] : owned_) out.push_back(tp);
  return out;
}

}  // namespace

Result<std::unique_ptr<Consumer>> RocksLog::subscribe(const ConsumerOptions& options) {
  if (options.group.empty()) return Status::invalid_argument("consumer group id is empty");
  if (options.topics.empty()) return Status::invalid_argument("consumer subscribes to no topic");
  for (const std::string& t : options.topics) {
    auto info = partition_info(t, 0);
    if (!info.ok()) return info.status();
  }
  return std::unique_ptr<Consumer>(new ConsumerImpl(this, options));
}

}  // namespace factory::log
