// Log views: the JSON shapes of the log half of the API (topics, records, groups, dead
// letters), written by the API handlers (api_log.cpp) and read back by the daemon client that
// the CLI uses (log_access.h). Each shape is written by one function and read by its inverse,
// so the CLI renders the same values whether it read them from its own log or from a daemon.
//
// Bytes. Keys, values and header values are bytes, carried as wire_bytes.h says: a string when
// valid UTF-8, else base64 under a "_b64" name ({"value_b64": "3q2+7w=="}); a null key or value
// is {"key": null}.
//
// Shapes (the API's responses):
//   topic      {"topic","partition_count","config":{"retention.ms":604800000,...},
//               "partitions":[{"partition","log_start","log_end","records","size_bytes"}]}
//   record     {"partition","offset","timestamp","key"|"key_b64","value"|"value_b64",
//               "headers":[{"name","value"|"value_b64"}]}
//   fetch      {"topic",["partition","next_offset","log_start","log_end",]"records":[record...],
//               "partitions":[{"partition","next_offset","log_start","log_end"}]}
//               (the bracketed members repeat partitions[0] when one partition was read)
//   positions  {"offsets":[{"partition","offset"}]}
//   group      {"group","state","partitions":[{"topic","partition","current_offset"|null,
//               "log_end_offset","lag","consumer_id"}]}        (sorted by topic, partition)
//   reset plan {"group","executed","offsets":[{"topic","partition","new_offset"}]}
//   dead letter record fields + {"topic","source_topic","source_partition","source_offset",
//               "stage","attempts","reason"} (from the factory.* headers)
//   replay     {"executed","results":[{"dead_letter","source_topic","result",
//               "partition","offset"}]}  result: would_replay | replayed | already_replayed
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "factory/log.h"
#include "factory/status.h"
#include "http/wire_bytes.h"

namespace factory::http {

// --- Values shared by the API and its clients ---

// A partition and where to read it from.
struct PartitionPosition {
  int32_t partition = 0;
  Offset offset;
};

// What one fetch over one or more partitions returned.
struct PartitionFetch {
  int32_t partition = 0;
  Offset next_offset;  // where to read next: after the last record returned, else `from`
  Offset log_start;
  Offset log_end;
};
struct MultiFetch {
  std::vector<Record> records;  // partition by partition, in the order asked, offset order
  std::vector<PartitionFetch> partitions;
};

// A record on a dead-letter topic (see stages' dead-letter headers: factory.source.topic, ...).
struct DeadLetter {
  std::string topic;
  Record record;
  // The header's last value ("" when absent): the one the dead-lettering binding appended,
  // after any the record inherited (an output carries its producing stage's factory.stage).
  std::string header(std::string_view name) const;
};

// Which dead letters to replay: all of a topic, or the one at partition/offset.
struct ReplaySelector {
  bool all = false;
  int32_t partition = -1;
  int64_t offset = -1;
};

struct ReplayRow {
  enum class Result { kWouldReplay, kReplayed, kAlreadyReplayed };
  std::string dead_letter;  // "<dlq>/<partition>/<offset>"
  std::string source_topic;
  Result result = Result::kWouldReplay;
  RecordPosition position;  // where it landed (kReplayed)
};
std::string_view replay_result_name(ReplayRow::Result r);  // "would_replay", ...

// --- Writers (compact JSON text) ---
std::string topic_json(const TopicInfo& info);
std::string topics_json(const std::vector<TopicInfo>& infos);  // {"topics":[topic...]}
// {"topic","action":"created"|"updated"|"unchanged","partitions"}
std::string topic_change_json(const TopicSpec& spec, TopicChange change);
std::string_view topic_change_name(TopicChange change);
void append_record_json(std::string* out, const Record& r);
std::string fetch_json(std::string_view topic, const MultiFetch& fetch);
std::string positions_json(const std::vector<RecordPosition>& positions);
std::string group_json(const GroupDescription& desc);  // sorts a copy of the rows
std::string reset_plan_json(std::string_view group, bool executed,
                            const std::vector<TopicPartitionOffset>& plan);
std::string dead_letters_json(const std::vector<DeadLetter>& letters);
std::string replay_json(bool executed, const std::vector<ReplayRow>& rows);
// Request bodies the client sends.
std::string topic_spec_json(const TopicSpec& spec, bool with_name);  // {name?,partitions,config}
std::string produce_json(std::span<const ProducerRecord> records, bool sync);
std::string commit_json(std::span<const TopicPartitionOffset> offsets, bool sync);

// --- Readers: the inverse of each writer. InvalidArgument naming the field for a bad shape.
Result<TopicInfo> parse_topic(const boost::json::value& v);
Result<std::vector<TopicInfo>> parse_topics(const boost::json::value& v);
Result<TopicChange> parse_topic_change(const boost::json::value& v);
Result<Record> parse_record(const boost::json::value& v, std::string_view where);
Result<MultiFetch> parse_fetch(const boost::json::value& v);
Result<std::vector<RecordPosition>> parse_positions(const boost::json::value& v);
Result<GroupDescription> parse_group(const boost::json::value& v);
Result<std::vector<TopicPartitionOffset>> parse_reset_plan(const boost::json::value& v);
Result<std::vector<DeadLetter>> parse_dead_letters(const boost::json::value& v);
Result<std::vector<ReplayRow>> parse_replay(const boost::json::value& v);
// Sets one topic config entry from a JSON value (integer, or string for cleanup.policy).
Status set_topic_config_json(TopicConfig* config, std::string_view key, const boost::json::value& v,
                             std::string_view where);

}  // namespace factory::http
