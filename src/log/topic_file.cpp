// Topic files (topic_file.h), read with yaml-cpp.
//
// yaml-cpp reports problems by throwing and keeps a 0-based Mark on every node; this is the one
// module that sees either. Every error leaves here as InvalidArgument "SOURCE:LINE:COLUMN: ..."
// with 1-based positions, the form editors and compilers use, so a user can jump to it.
//
// yaml-cpp 0.7 accepts a mapping with a repeated key and keeps both entries; a repeated
// `partitions:` would silently pick one, so every mapping read here is checked for repeats.
#include "log/topic_file.h"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/yaml_load.h"

namespace factory::log {
namespace {

constexpr std::string_view kStrimziGroup = "kafka.strimzi.io/";

// A mapping entry with both nodes kept, so errors can point at the key or the value.
struct MapEntry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

std::string quoted(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

std::string join_keys(std::initializer_list<std::string_view> keys) {
  std::string s;
  for (std::string_view k : keys) {
    if (!s.empty()) s += ", ";
    s += k;
  }
  return s;
}

bool has_key(const std::vector<MapEntry>& entries, std::string_view key) {
  for (const MapEntry& e : entries) {
    if (e.key == key) return true;
  }
  return false;
}

const MapEntry* find_key(const std::vector<MapEntry>& entries, std::string_view key) {
  for (const MapEntry& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

// The text of 0-based line `line`, for hints about a syntax error.
std::string_view line_at(std::string_view text, int line) {
  size_t start = 0;
  for (int i = 0; i < line; ++i) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

// One topic while it is read, with where its partition count was written.
struct Draft {
  TopicFileEntry entry;
  YAML::Mark partitions_at = YAML::Mark::null_mark();
};

// Parses one file's documents into entries. Not thread-safe; one per parse call.
class TopicFileParser {
 public:
  explicit TopicFileParser(std::string_view source) : source_(source) {}

  Result<std::vector<TopicFileEntry>> parse(std::string_view text) {
    std::vector<YAML::Node> docs;
    try {
      docs = base::load_all_yaml(std::string(text));
    } catch (const YAML::Exception& e) {  // ParserException and the rest: all carry a mark
      return syntax_error(text, e.mark, e.msg);
    }
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
  // "SOURCE:LINE:COLUMN: what"; yaml-cpp marks are 0-based, people count from 1.
  Status error(const YAML::Mark& mark, std::string_view what) const {
    std::string msg = source_;
    if (!mark.is_null() && mark.line >= 0) {
      msg += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    }
    msg += ": ";
    msg += what;
    return Status::invalid_argument(msg);
  }

  Status syntax_error(std::string_view text, const YAML::Mark& mark, const std::string& msg) const {
    std::string what = "YAML syntax error: " + msg + "; ";
    std::string_view line = mark.is_null() ? std::string_view() : line_at(text, mark.line);
    size_t indent_end = line.find_first_not_of(" \t");
    if (line.substr(0, indent_end).find('\t') != std::string_view::npos) {
      what += "YAML indents with spaces, not tabs: replace the tabs at the start of this line";
    } else {
      what += "check the indentation and quoting on this line and the one before it";
    }
    return error(mark, what);
  }

  // Where to point for a value: at the value, unless it is empty (yaml-cpp then marks the next
  // token, often on another line), in which case at its key.
  static YAML::Mark where(const MapEntry& e) {
    return e.value.IsNull() ? e.key_node.Mark() : e.value.Mark();
  }

  // The entries of a mapping in order; rejects non-text keys and a key given twice.
  Status entries(const YAML::Node& map, std::string_view what, std::vector<MapEntry>* out) const {
    out->clear();
    if (!map.IsMap()) {
      return error(map.Mark(), std::string(what) + " must be a mapping of key: value lines");
    }
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        return error(it->first.Mark(),
                     "a key in " + std::string(what) + " is not plain text; write key: value");
      }
      MapEntry e{it->first.Scalar(), it->first, it->second};
      if (const MapEntry* first = find_key(*out, e.key)) {
        return error(e.key_node.Mark(),
                     quoted(e.key) + " appears twice in " + std::string(what) + " (first at line " +
                         std::to_string(first->key_node.Mark().line + 1) + "); keep one of them");
      }
      out->push_back(std::move(e));
    }
    return Status::ok_status();
  }

  // A scalar's text; `field` is its dotted path (e.g. "metadata.name") for messages.
  Status text_of(const MapEntry& e, std::string_view field, std::string* out) const {
    if (!e.value.IsScalar()) {
      return error(where(e), std::string(field) + " must be a single value, e.g. " +
                                 std::string(field.substr(field.rfind('.') + 1)) + ": value");
    }
    *out = e.value.Scalar();
    return Status::ok_status();
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
      return error(where(*kind), "kind " + quoted(kind_text) +
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
      return error(where(*api), "apiVersion " + quoted(api_text) +
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
          return error(e.key_node.Mark(),
                       "unknown key " + quoted(e.key) + " in spec; a KafkaTopic spec takes " +
                           join_keys({"partitions", "replicas", "config", "topicName"}) +
                           "; fix the spelling or remove it");
        }
      }
    }
    return add(std::move(draft), *name_at);
  }

  static std::string misplaced_key_hint(const std::string& key) {
    std::string msg = "unknown key " + quoted(key) + " at the top of a KafkaTopic manifest";
    if (key == "name") {
      return msg + "; it belongs under metadata: indent it by two spaces below metadata:";
    }
    if (key == "partitions" || key == "replicas" || key == "config" || key == "topicName") {
      return msg + "; it belongs under spec: indent it by two spaces below spec:";
    }
    if (key.find('.') != std::string::npos) {
      return msg + "; topic configs belong under spec: config: indent it there";
    }
    return msg + "; a manifest takes " + join_keys({"apiVersion", "kind", "metadata", "spec"}) +
           "; fix the spelling or remove it";
  }

  Status parse_short_form(const std::vector<MapEntry>& root) {
    const MapEntry* topics = nullptr;
    for (const MapEntry& e : root) {
      if (e.key != "topics") {
        return error(e.key_node.Mark(), "unknown key " + quoted(e.key) +
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
          return error(e.key_node.Mark(),
                       "unknown key " + quoted(e.key) + " in a topic; a topic takes " +
                           join_keys({"name", "partitions", "replicas", "config"}) +
                           "; fix the spelling or remove it");
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
      return error(where(e), std::string(field) + ": " + quoted(text) +
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
      return error(where(e), std::string(field) + ": " + quoted(text) +
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
      return error(where(name),
                   "topic " + quoted(entry.spec.name) + " is defined twice (first at " + source_ +
                       ":" + std::to_string(it->second) + "); keep one definition, or merge them");
    }
    out_.push_back(std::move(entry));
    return Status::ok_status();
  }

  std::string source_;
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
