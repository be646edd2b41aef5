// Topic config parsing and topic spec validation (factory/topic.h).
//
// Config keys and value rules follow Kafka's topic configs so a Strimzi manifest means the same
// thing here as on a cluster; only the subset factoryd enforces is accepted, and every other key
// is rejected rather than silently ignored, so a typo never changes behaviour unnoticed.
#include "factory/topic.h"

#include <charconv>
#include <string>
#include <system_error>

#include "base/coding.h"

namespace factory {
namespace {

constexpr int32_t kMaxPartitions = 10'000;
constexpr size_t kMaxTopicNameLength = 249;  // Kafka's limit (255 minus room for ".deleted" etc.)
constexpr std::string_view kSupportedKeys =
    "retention.ms, retention.bytes, max.message.bytes, cleanup.policy";

std::string quoted(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

// `min` is -1 for the retention limits (unlimited) and 1 for sizes that must be positive.
Status parse_limit(std::string_view key, std::string_view value, int64_t min,
                   std::string_view example, int64_t* out) {
  int64_t v = 0;
  if (!base::parse_int64(value, &v)) {
    return Status::invalid_argument(std::string(key) + ": " + quoted(value) +
                                    " is not a whole number; write it as digits, e.g. " +
                                    std::string(key) + ": " + std::string(example));
  }
  if (v < min) {
    std::string msg = std::string(key) + ": " + std::to_string(v) + " is out of range; ";
    msg += min == -1 ? "use a value >= 0, or -1 for unlimited"
                     : "use a positive number of bytes, e.g. " + std::string(example);
    return Status::invalid_argument(msg);
  }
  *out = v;
  return Status::ok_status();
}

std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return quoted(std::string_view(&c, 1));
  if (c == ' ') return "a space";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "byte 0x";
  s += kHex[u >> 4];
  s += kHex[u & 0xf];
  return s;
}

bool legal_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Status set_topic_config(TopicConfig* config, std::string_view key, std::string_view value) {
  if (key == "retention.ms") {
    return parse_limit(key, value, -1, "604800000 (7 days)", &config->retention_ms);
  }
  if (key == "retention.bytes") {
    return parse_limit(key, value, -1, "1073741824 (1 GiB per partition)",
                       &config->retention_bytes);
  }
  if (key == "max.message.bytes") {
    return parse_limit(key, value, 1, "1048588 (Kafka's default)", &config->max_message_bytes);
  }
  if (key == "cleanup.policy") {
    if (value == "delete") {
      config->cleanup_policy = "delete";
      return Status::ok_status();
    }
    // Kafka also accepts "compact,delete" (both policies); any mention of compact is compaction.
    if (value.find("compact") != std::string_view::npos) {
      return Status::invalid_argument(
          "cleanup.policy: " + quoted(value) +
          " is not supported yet: factoryd does not compact topics, it only deletes records past "
          "retention; use cleanup.policy: delete (or remove the key)");
    }
    return Status::invalid_argument("cleanup.policy: " + quoted(value) +
                                    " is not a cleanup policy; use cleanup.policy: delete");
  }
  return Status::invalid_argument("unknown topic config key " + quoted(key) +
                                  "; supported keys are " + std::string(kSupportedKeys) +
                                  "; fix the spelling or remove it");
}

std::vector<std::pair<std::string, std::string>> topic_config_entries(const TopicConfig& config) {
  // Sorted by name: a stable order for tables and diffs.
  return {
      {"cleanup.policy", config.cleanup_policy},
      {"max.message.bytes", std::to_string(config.max_message_bytes)},
      {"retention.bytes", std::to_string(config.retention_bytes)},
      {"retention.ms", std::to_string(config.retention_ms)},
  };
}

Status validate_topic_spec(const TopicSpec& spec) {
  const std::string& name = spec.name;
  if (name.empty()) {
    return Status::invalid_argument(
        "topic name is empty; name the topic with 1 to 249 of "
        "[a-zA-Z0-9._-], e.g. jira-events");
  }
  if (name.size() > kMaxTopicNameLength) {
    return Status::invalid_argument("topic name '" + name.substr(0, 40) + "...' is " +
                                    std::to_string(name.size()) +
                                    " characters long; shorten it to at most 249");
  }
  if (name == "." || name == "..") {
    return Status::invalid_argument("topic name " + quoted(name) +
                                    " is reserved; use letters or digits too, e.g. jira-events");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!legal_name_char(name[i])) {
      return Status::invalid_argument(
          "topic name " + quoted(name) + " contains " + describe_char(name[i]) + " at position " +
          std::to_string(i + 1) + "; topic names use only letters, digits, '.', '_' and '-'");
    }
  }
  if (spec.partitions < 1 || spec.partitions > kMaxPartitions) {
    return Status::invalid_argument("topic '" + name + "': partition count " +
                                    std::to_string(spec.partitions) +
                                    " is out of range; use 1 to 10000");
  }
  // Specs built in code bypass set_topic_config, so the same limits are checked here.
  const TopicConfig& c = spec.config;
  if (c.retention_ms < -1 || c.retention_bytes < -1) {
    return Status::invalid_argument("topic '" + name +
                                    "': retention.ms and retention.bytes must be >= 0, or -1 "
                                    "for unlimited");
  }
  if (c.max_message_bytes <= 0) {
    return Status::invalid_argument("topic '" + name + "': max.message.bytes " +
                                    std::to_string(c.max_message_bytes) +
                                    " must be positive; Kafka's default is 1048588");
  }
  if (c.cleanup_policy != "delete") {
    return Status::invalid_argument("topic '" + name + "': cleanup.policy " +
                                    quoted(c.cleanup_policy) + " is not supported; only delete is");
  }
  return Status::ok_status();
}

}  // namespace factory
