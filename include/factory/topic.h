// Topic specifications and descriptions. Plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"
#include "factory/types.h"

namespace factory {

// Per-topic config, named as Kafka names it (`retention.ms`, ...). -1 means unlimited.
struct TopicConfig {
  int64_t retention_ms = 604'800'000;     // 7 days, Kafka's default
  int64_t retention_bytes = -1;           // per partition, as in Kafka
  int64_t max_message_bytes = 1'048'588;  // Kafka's default; key + value + headers
  std::string cleanup_policy = "delete";  // only "delete" is supported
  bool operator==(const TopicConfig&) const = default;
};

// Sets one config entry from its Kafka name and text value. Returns InvalidArgument naming the
// key for an unknown key, a non-numeric or out-of-range value, or an unsupported cleanup.policy;
// *config is unchanged then.
Status set_topic_config(TopicConfig* config, std::string_view key, std::string_view value);
// The entries as (name, value) pairs in a fixed order, for display.
std::vector<std::pair<std::string, std::string>> topic_config_entries(const TopicConfig& config);

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  TopicConfig config;
};

// Returns InvalidArgument when the name is not a legal topic name (Kafka's rule: 1-249 chars of
// [a-zA-Z0-9._-], not "." or ".."), the partition count is outside 1..10000, or the config is
// invalid (retention below -1, max.message.bytes <= 0, a cleanup.policy other than delete).
Status validate_topic_spec(const TopicSpec& spec);

struct PartitionInfo {
  int32_t partition = 0;
  Offset log_start;  // first readable offset
  Offset log_end;    // offset the next append gets (the high watermark)
  int64_t size_bytes = 0;
};

struct TopicInfo {
  // Never reused, as Kafka's topic id: a topic deleted and created again under the same name
  // gets another id, so an identity that includes it tells the two incarnations apart.
  uint64_t id = 0;
  TopicSpec spec;
  std::vector<PartitionInfo> partitions;
};

// Internal topics ("factory." prefix: the scheduler's dispatch, task results and task events,
// their dead letters, and later spans and logs) are the daemon's: only factoryd's own code
// appends to them, creates, deletes or moves their consumers' offsets. The API, the CLI's
// produce, webhooks and dead-letter replay refuse them (HTTP 403 `internal_topic`), because a
// record there is an order to the daemon — a dispatch runs a stage, a result decides a task.
// Reading them is allowed. The one place that decides what is internal; every check calls it.
inline constexpr std::string_view kInternalTopicPrefix = "factory.";
inline bool is_internal_topic(std::string_view name) {
  return name.starts_with(kInternalTopicPrefix);
}
// The refusal's message: what was refused on which topic, why, and what to do instead. `what`
// names the refused action ("producing to", "deleting", ...).
inline std::string internal_topic_refusal(std::string_view topic, std::string_view what) {
  return std::string(what) + " topic '" + std::string(topic) +
         "' is refused: topics named 'factory.*' are internal to factoryd (its records are "
         "orders to the scheduler and the task workers), so only the daemon writes them; reading "
         "them is allowed; use a topic name without the 'factory.' prefix for your own records";
}

// What apply_topic did.
enum class TopicChange { kCreated, kUpdated, kUnchanged };

}  // namespace factory
