// LogAccess: the log operations behind the API's log routes and the CLI's log commands, over
// a local Log or over a running daemon's HTTP API.
//
// The API handlers (api_log.cpp) call a local LogAccess; the CLI calls the local one when it
// holds the data dir and the remote one when a daemon does. The logic that is more than one
// Log call (reading dead letters, replaying them, fetching several partitions with one wait)
// lives only in the local implementation, so the CLI and the API cannot drift apart, and the
// remote implementation returns the same values and Status codes (NotFound, InvalidArgument,
// FailedPrecondition, ...) with the daemon's messages.
//
// Thread-safety: the local implementation is as safe as its Log (handlers share one); the
// remote one is not thread-safe (it owns the use of one http::Client).
//
// Example:
//   auto access = factory::http::local_log_access(log.get());
//   auto plan = access->reset_offsets("codegen", "feature-specs", {.kind = kLatest}, false);
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "factory/log.h"
#include "factory/status.h"
#include "http/log_views.h"

namespace factory::http {

class Client;

inline constexpr std::string_view kDefaultDeadLetterSuffix = ".dlq";

class LogAccess {
 public:
  virtual ~LogAccess() = default;

  // --- Topics: as Log's ---
  virtual Status create_topic(const TopicSpec& spec) = 0;
  virtual Result<TopicChange> apply_topic(const TopicSpec& spec) = 0;
  virtual Status delete_topic(std::string_view name) = 0;
  virtual Result<std::vector<std::string>> list_topics() = 0;
  virtual Result<TopicInfo> describe_topic(std::string_view name) = 0;
  // Every topic described, sorted by name (topics deleted meanwhile are left out).
  virtual Result<std::vector<TopicInfo>> describe_topics() = 0;

  // --- Records ---
  virtual Result<std::vector<RecordPosition>> append(std::string_view topic,
                                                     std::span<const ProducerRecord> records,
                                                     bool sync) = 0;
  // Reads `from`'s partitions in order, up to options.max_records / max_bytes in all (at least
  // one record when there is one). When none has a record it waits up to options.wait_ms for
  // one to be appended to any of them. Errors as Log::read (NotFound, InvalidArgument for a
  // partition, OutOfRange for an offset) naming the partition.
  virtual Result<MultiFetch> fetch(std::string_view topic, std::span<const PartitionPosition> from,
                                   const ReadOptions& options) = 0;
  // Per partition, the first offset at or after timestamp_ms (the log end when none).
  virtual Result<std::vector<PartitionPosition>> offsets_for_timestamp(std::string_view topic,
                                                                       int64_t timestamp_ms) = 0;

  // --- Consumer groups: as Log's ---
  virtual Result<std::vector<std::string>> list_groups() = 0;
  virtual Result<GroupDescription> describe_group(std::string_view group) = 0;
  virtual Result<std::vector<TopicPartitionOffset>> reset_offsets(std::string_view group,
                                                                  std::string_view topic,
                                                                  const OffsetResetSpec& spec,
                                                                  bool execute) = 0;
  // Stores offsets for a group that is not a member anywhere (a simple consumer).
  // FailedPrecondition when the group has active members (they own its offsets);
  // InvalidArgument for an offset beyond its partition's log end.
  virtual Status commit_offsets(std::string_view group,
                                std::span<const TopicPartitionOffset> offsets, bool sync) = 0;

  // --- Dead letters ---
  // The records of `topic` (every "*<suffix>" topic when empty) from their log start, at most
  // `limit` (0: all; the count runs across topics, as `factoryd dlq list -n`).
  virtual Result<std::vector<DeadLetter>> list_dead_letters(std::string_view topic,
                                                            int64_t limit) = 0;
  // Re-appends the chosen dead letters' key, value and non-factory headers (plus
  // factory.replayed_from) to their source topics; with execute=false only plans, and a letter
  // whose copy is already on its source topic (its factory.replayed_from found there) is
  // planned as kAlreadyReplayed, the rest as kWouldReplay. Each dead
  // letter is its own idempotent producer ("dlq-replay/<dlq>/<p>/<o>", sequence 0), so a
  // letter is appended at most once however often replay runs. NotFound when the topic is
  // missing or nothing matches the selector; InvalidArgument when a chosen record has no
  // factory.source.topic header. Rows are ordered by source topic, then dead-letter order.
  virtual Result<std::vector<ReplayRow>> replay_dead_letters(std::string_view topic,
                                                             const ReplaySelector& selector,
                                                             bool execute) = 0;
};

// Over *log, which must outlive the returned object. `dlq_suffix` names dead-letter topics.
std::unique_ptr<LogAccess> local_log_access(
    Log* log, std::string dlq_suffix = std::string(kDefaultDeadLetterSuffix));

// Over a daemon's /api/v1; *client must outlive the returned object. Failures to reach the
// daemon are Unavailable/TimedOut naming its URL; API errors keep their Status code and message
// (401/403 become FailedPrecondition with a hint about tokens).
std::unique_ptr<LogAccess> remote_log_access(Client* client);

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters pass).
std::string url_encode(std::string_view s);

}  // namespace factory::http
