// Topic files (topic_file.h): the schema, on top of config::YamlReader (config/yaml_reader.h),
// which loads the documents, gives every error its "SOURCE:LINE:COLUMN: what; how to fix" form
// (1-based, the form editors jump to), and rejects repeated keys (yaml-cpp 0.7 keeps both
// entries, so a repeated `partitions:` would silently pick one).
#include "log/topic_file.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "base/file.h"
#include "config/yaml_reader.h"

namespace factory::log {
namespace {

using MapEntry = config::YamlEntry;
using config::in_quotes;

constexpr std::string_view kStrimziGroup = "kafka.strimzi.io/";

// Keys each form takes, for messages and the did-you-mean.
const config::YamlKeys kSpecKeys = {"partitions", "replicas", "config", "topicName"};
const config::YamlKeys kTopicKeys = {"name", "partitions", "replicas", "config"};
const config::YamlKeys kManifestKeys = {"apiVersion", "kind", "metadata", "spec"};

std::string join_keys(const config::YamlKeys& keys) {
  std::string s;
  for (std::string_view k : keys) {
    if (!s.empty()) s += ", ";
    s += k;
  }
  return s;
}

// One topic while it is read, with where its partition count was written.
struct Draft {
  TopicFileEntry entry;
  YAML::Mark partitions_at = YAML::Mark::null_mark();
};

// Parses one file's documents into entries. Not thread-safe; one per parse call.
class TopicFileParser {
 public:
  explicit TopicFileParser(std::string_view source) : yaml_(std::string(source), nullptr) {}

  Result<std::vector<TopicFileEntry>> parse(std::string_view text) {
    std::vector<YAML::Node> docs;
    FACTORY_RETURN_IF_ERROR(yaml_.load_all(text, &docs));
    // Reading nodes does not throw for the accesses made here, but a yaml-cpp exception must
    // never escape this module, whatever the input.
    try {
      for (const YAML::Node& doc : docs) {
        FACTORY_RETURN_IF_ERROR(parse_document(doc));
      }
    } catch (const YAML::Exception& e) {
      return error(e.mark, "cannot read this YAML: " + e.msg);
    }
    return std::move(out_);
  }

 private:
  Status error(const YAML::Mark& mark, std::string_view what) const {
    return yaml_.error(mark, what);
  }
  static YAML::Mark where(const MapEntry& e) { return config::YamlReader::where(e); }
  static bool has_key(const std::vector<MapEntry>& entries, std::string_view key) {
    return find_key(entries, key) != nullptr;
  }
  static const MapEntry* find_key(const std::vector<MapEntry>& entries, std::string_view key) {
    return config::YamlReader::find(entries, key);
  }
  Status entries(const YAML::Node& map, std::string_view what, std::vector<MapEntry>* out) const {
    return yaml_.entries(map, what, nullptr, out);
  }
  Status text_of(const MapEntry& e, std::string_view field, std::string* out) const {
    return yaml_.text(e, field, out);
  }

  // "unknown key 'x' in WHERE; did you mean 'y'?", or the keys it takes.
  Status unknown_key(const MapEntry& e, std::string_view where, const config::YamlKeys& keys,
                     std::string_view takes) const {
    std::string msg = "unknown key " + in_quotes(e.key) + " in " + std::string(where);
    std::string_view guess = yaml_.suggest(e.key, keys);
    if (!guess.empty())
      return error(e.key_node.Mark(), msg + "; did you mean " + in_quotes(guess) + "?");
    return error(e.key_node.Mark(), msg + "; " + std::string(takes) + " " + join_keys(keys) +
                                        "; fix the spelling or remove it");
  }

  Status parse_document(const YAML::Node& doc) {
    if (doc.IsNull()) return Status::ok_status();  // empty document: a stray `---` or comments
    if (!doc.IsMap()) {
      return error(doc.Mark(),
                   "expected a KafkaTopic manifest or a `topics:` list here; see "
                   "config/topics.yaml for both forms");
    }
    std::vector<MapEntry> root;
    FACTORY_RETURN_IF_ERROR(entries(doc, "this document", &root));
    if (has_key(root, "kind") || has_key(root, "apiVersion")) return parse_manifest(doc, root);
    if (has_key(root, "topics")) return parse_short_form(root);
    return error(doc.Mark(),
                 "this document is neither a KafkaTopic manifest (apiVersion: "
                 "kafka.strimzi.io/v1beta2, kind: KafkaTopic) nor a topic list (topics: "
                 "- name: ...); add one of those headers");
  }

  Status parse_manifest(const YAML::Node& doc, const std::vector<MapEntry>& root) {
    const MapEntry* kind = find_key(root, "kind");
    if (kind == nullptr) {
      return error(doc.Mark(), "kind is missing from this manifest; add kind: KafkaTopic");
    }
    std::string kind_text;
    FACTORY_RETURN_IF_ERROR(text_of(*kind, "kind", &kind_text));
    if (kind_text != "KafkaTopic") {
      return error(where(*kind), "kind " + in_quotes(kind_text) +
                                     " is not a topic: a topic file holds only kind: KafkaTopic "
                                     "manifests; move this document to another file");
    }
    const MapEntry* api = find_key(root, "apiVersion");
    if (api == nullptr) {
      return error(doc.Mark(),
                   "apiVersion is missing from this KafkaTopic; add apiVersion: "
                   "kafka.strimzi.io/v1beta2");
    }
    std::string api_text;
    FACTORY_RETURN_IF_ERROR(text_of(*api, "apiVersion", &api_text));
    if (!api_text.starts_with(kStrimziGroup)) {
      return error(where(*api), "apiVersion " + in_quotes(api_text) +
                                    " is not Strimzi's; a KafkaTopic uses apiVersion: "
                                    "kafka.strimzi.io/v1beta2");
    }

    const MapEntry* metadata = nullptr;
    const MapEntry* spec = nullptr;
    for (const MapEntry& e : root) {
      if (e.key == "metadata") {
        metadata = &e;
      } else if (e.key == "spec") {
        spec = &e;
      } else if (e.key != "apiVersion" && e.key != "kind" && e.key != "status") {
        return error(e.key_node.Mark(), misplaced_key_hint(e.key));
      }
    }

    Draft draft;
    TopicFileEntry& entry = draft.entry;
    entry.line = doc.Mark().line + 1;
    // `name` and `name_at` point into these; they live until add() returns.
    std::vector<MapEntry> meta;
    std::vector<MapEntry> fields;
    const MapEntry* name = nullptr;
    if (metadata != nullptr && !metadata->value.IsNull()) {
      FACTORY_RETURN_IF_ERROR(entries(metadata->value, "metadata", &meta));
      name = find_key(meta, "name");  // labels, namespace, annotations: Kubernetes' business
    }
    if (name == nullptr || name->value.IsNull()) {
      YAML::Mark at = name       ? name->key_node.Mark()
                      : metadata ? metadata->key_node.Mark()
                                 : doc.Mark();
      return error(at, "metadata.name is missing; add `name: <topic>` indented under metadata:");
    }
    FACTORY_RETURN_IF_ERROR(text_of(*name, "metadata.name", &entry.spec.name));
    const MapEntry* name_at = name;

    if (spec != nullptr && !spec->value.IsNull()) {
      FACTORY_RETURN_IF_ERROR(entries(spec->value, "spec", &fields));
      for (const MapEntry& e : fields) {
        if (e.key == "partitions") {
          FACTORY_RETURN_IF_ERROR(parse_partitions(e, "spec.partitions", &draft));
        } else if (e.key == "replicas") {
          FACTORY_RETURN_IF_ERROR(parse_replicas(e, "spec.replicas", &entry));
        } else if (e.key == "config") {
          FACTORY_RETURN_IF_ERROR(parse_config(e, "spec.config", &entry.spec.config));
        } else if (e.key == "topicName") {
          // Strimzi's override for names Kubernetes cannot hold (upper case, '_', long names).
          FACTORY_RETURN_IF_ERROR(text_of(e, "spec.topicName", &entry.spec.name));
          name_at = &e;
        } else {
          return unknown_key(e, "spec", kSpecKeys, "a KafkaTopic spec takes");
        }
      }
    }
    return add(std::move(draft), *name_at);
  }

  static std::string misplaced_key_hint(const std::string& key) {
    std::string msg = "unknown key " + in_quotes(key) + " at the top of a KafkaTopic manifest";
    if (key == "name") {
      return msg + "; it belongs under metadata: indent it by two spaces below metadata:";
    }
    if (key == "partitions" || key == "replicas" || key == "config" || key == "topicName") {
      return msg + "; it belongs under spec: indent it by two spaces below spec:";
    }
    if (key.find('.') != std::string::npos) {
      return msg + "; topic configs belong under spec: config: indent it there";
    }
    return msg + "; a manifest takes " + join_keys(kManifestKeys) +
           "; fix the spelling or remove it";
  }

  Status parse_short_form(const std::vector<MapEntry>& root) {
    const MapEntry* topics = nullptr;
    for (const MapEntry& e : root) {
      if (e.key != "topics") {
        return error(e.key_node.Mark(), "unknown key " + in_quotes(e.key) +
                                            " next to topics:; a topic list document holds only "
                                            "topics:, and each topic goes in it as - name: ...");
      }
      topics = &e;
    }
    if (!topics->value.IsSequence()) {
      return error(where(*topics), "topics must be a list, one `- name: ...` entry per topic");
    }
    for (const YAML::Node& item : topics->value) {
      if (!item.IsMap()) {
        return error(item.Mark(),
                     "each entry under topics must be a mapping, e.g. "
                     "- {name: jira-events, partitions: 3}");
      }
      std::vector<MapEntry> fields;
      FACTORY_RETURN_IF_ERROR(entries(item, "this topic", &fields));
      Draft draft;
      TopicFileEntry& entry = draft.entry;
      entry.line = item.Mark().line + 1;
      const MapEntry* name = nullptr;
      for (const MapEntry& e : fields) {
        if (e.key == "name") {
          name = &e;
        } else if (e.key == "partitions") {
          FACTORY_RETURN_IF_ERROR(parse_partitions(e, "partitions", &draft));
        } else if (e.key == "replicas") {
          FACTORY_RETURN_IF_ERROR(parse_replicas(e, "replicas", &entry));
        } else if (e.key == "config") {
          FACTORY_RETURN_IF_ERROR(parse_config(e, "config", &entry.spec.config));
        } else {
          return unknown_key(e, "a topic", kTopicKeys, "a topic takes");
        }
      }
      if (name == nullptr || name->value.IsNull()) {
        return error(name ? name->key_node.Mark() : item.Mark(),
                     "this topic has no name; add name: <topic> to it");
      }
      FACTORY_RETURN_IF_ERROR(text_of(*name, "name", &entry.spec.name));
      FACTORY_RETURN_IF_ERROR(add(std::move(draft), *name));
    }
    return Status::ok_status();
  }

  Status parse_partitions(const MapEntry& e, std::string_view field, Draft* draft) const {
    std::string text;
    FACTORY_RETURN_IF_ERROR(text_of(e, field, &text));
    int64_t v = 0;
    if (!base::parse_int64(text, &v)) {
      return error(where(e), std::string(field) + ": " + in_quotes(text) +
                                 " is not a whole number; write the partition count as digits, "
                                 "e.g. partitions: 12");
    }
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      return error(where(e), std::string(field) + ": " + text + " is out of range; use 1 to 10000");
    }
    // The range itself is validate_topic_spec's rule; add() checks it and points here.
    draft->entry.spec.partitions = static_cast<int32_t>(v);
    draft->partitions_at = where(e);
    return Status::ok_status();
  }

  // Strimzi's replication factor; one node has one copy, so it is checked and then ignored.
  Status parse_replicas(const MapEntry& e, std::string_view field, TopicFileEntry* entry) const {
    std::string text;
    FACTORY_RETURN_IF_ERROR(text_of(e, field, &text));
    int64_t v = 0;
    if (!base::parse_int64(text, &v) || v < 1 || v > 32767) {
      return error(where(e), std::string(field) + ": " + in_quotes(text) +
                                 " is not a replica count; use a whole number from 1 to 32767, "
                                 "e.g. replicas: 3");
    }
    entry->notes.push_back("replicas: " + text + " ignored: factoryd runs on one node");
    return Status::ok_status();
  }

  Status parse_config(const MapEntry& e, std::string_view field, TopicConfig* config) const {
    if (e.value.IsNull()) return Status::ok_status();  // `config:` with nothing under it
    std::vector<MapEntry> items;
    FACTORY_RETURN_IF_ERROR(entries(e.value, field, &items));
    for (const MapEntry& item : items) {
      std::string value;
      FACTORY_RETURN_IF_ERROR(text_of(item, std::string(field) + "." + item.key, &value));
      Status s = set_topic_config(config, item.key, value);
      if (!s.ok()) {
        // Point at the key when it is the problem, else at the value.
        return error(is_config_key(item.key) ? where(item) : item.key_node.Mark(), s.message());
      }
    }
    return Status::ok_status();
  }

  static bool is_config_key(std::string_view key) {
    for (const auto& [name, value] : topic_config_entries(TopicConfig{})) {
      if (name == key) return true;
    }
    return false;
  }

  // Validates the finished spec and records it; `name` is the entry that named the topic.
  Status add(Draft draft, const MapEntry& name) {
    TopicFileEntry& entry = draft.entry;
    // The name alone first (the default partition count is valid), so a bad name is reported at
    // the name and anything left is the partition count.
    TopicSpec name_only;
    name_only.name = entry.spec.name;
    Status s = validate_topic_spec(name_only);
    if (!s.ok()) return error(where(name), s.message());
    s = validate_topic_spec(entry.spec);
    if (!s.ok()) {
      return error(draft.partitions_at.is_null() ? where(name) : draft.partitions_at, s.message());
    }

    auto [it, inserted] = first_line_.emplace(entry.spec.name, name.key_node.Mark().line + 1);
    if (!inserted) {
      return error(where(name), "topic " + in_quotes(entry.spec.name) +
                                    " is defined twice (first at " + yaml_.source() + ":" +
                                    std::to_string(it->second) +
                                    "); keep one definition, or merge them");
    }
    out_.push_back(std::move(entry));
    return Status::ok_status();
  }

  config::YamlReader yaml_;
  std::vector<TopicFileEntry> out_;
  std::map<std::string, int, std::less<>> first_line_;  // topic name -> 1-based line
};

}  // namespace

Result<std::vector<TopicFileEntry>> parse_topic_yaml(std::string_view text,
                                                     std::string_view source) {
  TopicFileParser parser(source);
  return parser.parse(text);
}

Result<std::vector<TopicFileEntry>> parse_topic_file(const std::string& path) {
  std::string text;
  Status s = base::read_file(path, "topic file", &text);
  if (s.is_not_found()) {
    return Status::not_found(s.message() + "; check the path given to -f");
  }
  if (!s.ok()) return s;
  return parse_topic_yaml(text, path);
}

}  // namespace factory::log
