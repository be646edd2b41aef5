// Pipeline files (pipeline_config.h): the schema, on top of config::YamlReader
// (config/yaml_reader.h), which gives every error its "SOURCE:LINE:COLUMN: what; how to fix" form,
// rejects repeated and unknown keys, reads typed scalars and turns `config:` blocks into JSON.
//
// The checks that need several fields (retry, back-pressure, breakers) reuse the validate()
// functions of retry.h, backpressure.h and circuit_breaker.h, so the file and the code agree on
// one rule; their messages are pointed at the offending key and put in the file's spelling.
//
// Whether the named stage exists is not checked: plugins are loaded after the files are read,
// so the stage host checks it when it builds the bindings.
#include "runtime/pipeline_config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "base/file.h"
#include "config/yaml_reader.h"
#include "factory/topic.h"

namespace factory::runtime {
namespace {

using config::in_quotes;
using config::YamlAliases;
using config::YamlEntry;
using config::YamlKeys;
using config::YamlReader;

constexpr int kMaxConcurrency = 256;
constexpr int kMaxPollRecords = 100'000;
// A week: far beyond any sane per-event timeout, and far from overflowing the steady_clock
// deadline (nanoseconds in an int64) that the host computes from it.
constexpr int64_t kMaxTimeoutMs = 7LL * 24 * 3600 * 1000;
constexpr int kMaxCount = 1'000'000;  // attempts, windows, probes: anything beyond is a typo

const YamlKeys kRootKeys = {"pipeline", "plugins", "bindings"};
const YamlKeys kBindingKeys = {"stage",      "name",        "input",        "output",
                               "group",      "dead_letter", "concurrency",  "max_poll_records",
                               "timeout_ms", "retry",       "backpressure", "breakers",
                               "config"};
const YamlKeys kRetryKeys = {"attempts", "initial_delay_ms", "multiplier", "max_delay_ms",
                             "jitter"};
const YamlKeys kBackpressureKeys = {"enabled", "high", "low"};
const YamlKeys kBreakerKeys = {"name",    "window",           "min_calls", "failure_rate",
                               "open_ms", "half_open_probes", "fallback"};

// Names people reach for that are spelled differently here (Kafka's, or our structs').
// clang-format off
const YamlAliases kAliases = {
    {"input_topic", "input"},           {"topic", "input"},
    {"source", "input"},                {"output_topic", "output"},
    {"sink", "output"},                 {"consumer_group", "group"},
    {"group_id", "group"},              {"dlq", "dead_letter"},
    {"dead_letter_topic", "dead_letter"}, {"deadletter", "dead_letter"},
    {"workers", "concurrency"},         {"parallelism", "concurrency"},
    {"batch_size", "max_poll_records"}, {"max.poll.records", "max_poll_records"},
    {"timeout", "timeout_ms"},          {"max_attempts", "attempts"},
    {"retries", "attempts"},            {"failure_rate_threshold", "failure_rate"},
    {"high_watermark", "high"},         {"low_watermark", "low"},
    {"breaker", "breakers"},            {"circuit_breakers", "breakers"},
    {"fallback_topic", "fallback"},     {"plugin_dirs", "plugins"},
    {"stages", "bindings"},             {"agent", "stage"},
};
// clang-format on

// Binding names become consumer groups, metric labels and scratch directory names.
bool valid_binding_name(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

using FieldNames = std::vector<std::pair<std::string_view, std::string_view>>;

// A validate() message with its prefix dropped and the struct's field names in the file's
// spelling (`fields`: struct name -> YAML key). *key is the YAML key of the field the message
// names first, the one at fault ("" when none): "max_delay_ms (100) must be >= initial_delay_ms".
std::string translate_message(std::string msg, std::string_view prefix, const FieldNames& fields,
                              std::string* key) {
  if (msg.starts_with(prefix)) msg.erase(0, prefix.size());
  size_t first = std::string::npos;
  key->clear();
  for (const auto& [field, yaml_key] : fields) {
    size_t at = msg.find(field);
    if (at != std::string::npos && at < first) {
      first = at;
      *key = std::string(yaml_key);
    }
  }
  for (const auto& [field, yaml_key] : fields) {
    if (field != yaml_key) msg = replace_all(std::move(msg), field, yaml_key);
  }
  return msg;
}

// Parses one file. Not thread-safe; one per parse call.
class PipelineParser {
 public:
  explicit PipelineParser(std::string_view source) : yaml_(std::string(source), &kAliases) {}

  Result<PipelineConfig> parse(std::string_view text) {
    YAML::Node doc;
    FACTORY_RETURN_IF_ERROR(yaml_.load(text, &doc));
    // Reading nodes does not throw for the accesses made here, but no yaml-cpp or Boost.JSON
    // exception may escape this module, whatever the input.
    try {
      FACTORY_RETURN_IF_ERROR(parse_document(doc));
    } catch (const YAML::Exception& e) {
      return yaml_.error(e.mark, "cannot read this YAML: " + e.msg);
    } catch (const std::exception& e) {  // std::bad_alloc and the like
      return Status::internal(yaml_.source() + ": cannot read this pipeline file: " + e.what());
    }
    return std::move(out_);
  }

 private:
  Status error(const YAML::Mark& mark, std::string_view what) const {
    return yaml_.error(mark, what);
  }
  static YAML::Mark where(const YamlEntry& e) { return YamlReader::where(e); }
  static const YamlEntry* find(const std::vector<YamlEntry>& entries, std::string_view key) {
    return YamlReader::find(entries, key);
  }

  // A topic name, checked with the log's rule.
  Status topic(const YamlEntry& e, std::string_view field, std::string* out) const {
    FACTORY_RETURN_IF_ERROR(yaml_.text(e, field, out));
    TopicSpec spec;
    spec.name = *out;
    Status s = validate_topic_spec(spec);
    if (!s.ok()) return error(where(e), std::string(field) + ": " + s.message());
    return Status::ok_status();
  }

  Status parse_document(const YAML::Node& doc) {
    if (doc.IsNull()) return Status::ok_status();  // an empty file, or only comments
    if (!doc.IsMap()) {
      return error(doc.Mark(),
                   "a pipeline file is a mapping with a bindings: list; see "
                   "docs/pipelines.md or config/pipelines/example.yaml");
    }
    std::vector<YamlEntry> root;
    FACTORY_RETURN_IF_ERROR(yaml_.entries(doc, "a pipeline file", &kRootKeys, &root));
    const YamlEntry* bindings = nullptr;
    for (const YamlEntry& e : root) {
      if (e.key == "pipeline") {
        std::string name;
        FACTORY_RETURN_IF_ERROR(yaml_.text(e, "pipeline", &name));  // for display only
      } else if (e.key == "plugins") {
        FACTORY_RETURN_IF_ERROR(parse_plugins(e));
      } else if (e.key == "bindings") {
        bindings = &e;
      }
    }
    if (bindings == nullptr) {
      return error(doc.Mark(),
                   "this pipeline file has no bindings:; add a bindings: list with "
                   "one `- stage: ...` entry per stage");
    }
    if (bindings->value.IsNull()) return Status::ok_status();  // `bindings:` with nothing yet
    if (!bindings->value.IsSequence()) {
      return error(where(*bindings),
                   "bindings must be a list, one `- stage: ...` entry per binding");
    }
    for (const YAML::Node& item : bindings->value) {
      Binding b;
      FACTORY_RETURN_IF_ERROR(parse_binding(item, &b));
      out_.bindings.push_back(std::move(b));
    }
    return Status::ok_status();
  }

  Status parse_plugins(const YamlEntry& e) {
    if (e.value.IsNull()) return Status::ok_status();
    std::vector<YamlEntry> items;
    if (e.value.IsScalar()) {
      items.push_back(e);
    } else if (e.value.IsSequence()) {
      for (const YAML::Node& dir : e.value) items.push_back({"plugins", e.key_node, dir});
    } else {
      return error(where(e), "plugins must be a list of directories, e.g. plugins: [plugins/]");
    }
    // Relative directories are relative to the file, so a pipeline works from any cwd.
    std::filesystem::path base = std::filesystem::path(yaml_.source()).parent_path();
    for (const YamlEntry& item : items) {
      std::string dir;
      FACTORY_RETURN_IF_ERROR(yaml_.text(item, "plugins", &dir));
      if (dir.empty()) {
        return error(where(item), "plugins: an empty directory name; remove it or name one");
      }
      std::filesystem::path p(dir);
      if (p.is_relative()) p = base / p;
      std::string resolved = p.lexically_normal().string();
      if (std::find(out_.plugin_dirs.begin(), out_.plugin_dirs.end(), resolved) ==
          out_.plugin_dirs.end()) {
        out_.plugin_dirs.push_back(std::move(resolved));
      }
    }
    return Status::ok_status();
  }

  Status parse_binding(const YAML::Node& item, Binding* b) {
    if (!item.IsMap()) {
      return error(item.Mark(),
                   "each entry under bindings must be a mapping, e.g. "
                   "- {stage: noop, input: tickets, output: tickets-seen}");
    }
    std::vector<YamlEntry> fields;
    FACTORY_RETURN_IF_ERROR(yaml_.entries(item, "a binding", &kBindingKeys, &fields));
    b->source = yaml_.source();
    b->line = item.Mark().line + 1;

    const YamlEntry* stage = find(fields, "stage");
    if (stage == nullptr) {
      return error(item.Mark(),
                   "this binding has no stage; add stage: <name> (a built-in "
                   "such as noop, exec or fail, or a plugin's stage)");
    }
    FACTORY_RETURN_IF_ERROR(yaml_.text(*stage, "stage", &b->stage));
    if (b->stage.empty()) {
      return error(where(*stage), "stage is empty; name a registered stage, e.g. stage: noop");
    }
    const YamlEntry* name = find(fields, "name");
    if (name != nullptr) {
      FACTORY_RETURN_IF_ERROR(yaml_.text(*name, "name", &b->name));
    } else {
      b->name = b->stage;
    }
    if (!valid_binding_name(b->name)) {
      const YamlEntry& at = name ? *name : *stage;
      return error(where(at), "binding name " + in_quotes(b->name) +
                                  " is not usable as a consumer group name; use 1 to 249 "
                                  "letters, digits, '.', '_' or '-'" +
                                  (name ? "" : " (the name defaults to the stage: add name:)"));
    }
    const YamlEntry* input = find(fields, "input");
    if (input == nullptr) {
      return error(item.Mark(), "binding " + in_quotes(b->name) +
                                    " has no input; add input: <topic> (the topic it consumes)");
    }

    const YamlEntry* dead_letter = nullptr;
    for (const YamlEntry& e : fields) {
      const std::string& k = e.key;
      if (k == "input") {
        FACTORY_RETURN_IF_ERROR(topic(e, "input", &b->input_topic));
      } else if (k == "output") {
        if (!e.value.IsNull()) FACTORY_RETURN_IF_ERROR(topic(e, "output", &b->output_topic));
      } else if (k == "group") {
        FACTORY_RETURN_IF_ERROR(yaml_.text(e, "group", &b->group));
        if (b->group.empty()) {
          return error(where(e), "group is empty; remove it to use the binding name");
        }
      } else if (k == "dead_letter") {
        FACTORY_RETURN_IF_ERROR(topic(e, "dead_letter", &b->dead_letter_topic));
        dead_letter = &e;
      } else if (k == "concurrency") {
        FACTORY_RETURN_IF_ERROR(
            yaml_.integer(e, "concurrency", 1, kMaxConcurrency, &b->concurrency));
      } else if (k == "max_poll_records") {
        FACTORY_RETURN_IF_ERROR(
            yaml_.integer(e, "max_poll_records", 1, kMaxPollRecords, &b->max_poll_records));
      } else if (k == "timeout_ms") {
        FACTORY_RETURN_IF_ERROR(yaml_.integer(e, "timeout_ms", 1, kMaxTimeoutMs, &b->timeout_ms));
      } else if (k == "retry") {
        FACTORY_RETURN_IF_ERROR(parse_retry(e, &b->retry));
      } else if (k == "backpressure") {
        FACTORY_RETURN_IF_ERROR(parse_backpressure(e, b));
      } else if (k == "breakers") {
        FACTORY_RETURN_IF_ERROR(parse_breakers(e, &b->breakers));
      } else if (k == "config") {
        FACTORY_RETURN_IF_ERROR(parse_config(e, &b->config_json));
      }
    }

    if (b->group.empty()) b->group = b->name;
    if (dead_letter == nullptr) {
      b->dead_letter_topic = b->input_topic + ".dlq";
      TopicSpec spec;
      spec.name = b->dead_letter_topic;
      Status s = validate_topic_spec(spec);  // only the length can fail: input is valid
      if (!s.ok()) {
        return error(where(*input), "the default dead_letter topic " + in_quotes("<input>.dlq") +
                                        " is invalid: " + s.message() +
                                        "; set dead_letter: explicitly");
      }
    }
    // Either would feed the binding its own output: every event processed again, forever.
    if (b->output_topic == b->input_topic) {
      return error(where(*find(fields, "output")),
                   "output is the same topic as input (" + in_quotes(b->input_topic) +
                       "): every event would be processed again forever; write to another topic");
    }
    if (b->dead_letter_topic == b->input_topic) {
      return error(where(*dead_letter),
                   "dead_letter is the same topic as input (" + in_quotes(b->input_topic) +
                       "): failed events would be retried forever; use another topic, e.g. " +
                       b->input_topic + ".dlq");
    }
    auto [it, inserted] = first_line_.emplace(b->name, b->line);
    if (!inserted) {
      return error(name ? where(*name) : where(*stage),
                   "binding name " + in_quotes(b->name) + " is used twice (first at " +
                       yaml_.source() + ":" + std::to_string(it->second) +
                       "); give one of them another name: name: <unique>");
    }
    return Status::ok_status();
  }

  // Points a failed validate() at the field it names, in the file's spelling.
  Status validation_error(const Status& s, std::string_view prefix, std::string_view block,
                          const YamlEntry& block_entry, const std::vector<YamlEntry>& fields,
                          const FieldNames& names) const {
    std::string key;
    std::string msg = translate_message(s.message(), prefix, names, &key);
    const YamlEntry* at = key.empty() ? nullptr : find(fields, key);
    return error(at ? where(*at) : where(block_entry),
                 std::string(block) + (key.empty() ? "" : "." + key) + ": " + msg +
                     "; change the value, or remove it for the default");
  }

  Status parse_retry(const YamlEntry& e, RetryPolicy* policy) const {
    if (e.value.IsNull()) return Status::ok_status();  // an empty block: all defaults
    std::vector<YamlEntry> fields;
    FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "retry", &kRetryKeys, &fields));
    for (const YamlEntry& f : fields) {
      if (f.key == "attempts") {
        FACTORY_RETURN_IF_ERROR(
            yaml_.integer(f, "retry.attempts", 1, kMaxCount, &policy->max_attempts));
      } else if (f.key == "initial_delay_ms") {
        FACTORY_RETURN_IF_ERROR(yaml_.integer(f, "retry.initial_delay_ms", 0, kMaxTimeoutMs,
                                              &policy->initial_delay_ms));
      } else if (f.key == "multiplier") {
        FACTORY_RETURN_IF_ERROR(yaml_.number(f, "retry.multiplier", &policy->multiplier));
      } else if (f.key == "max_delay_ms") {
        FACTORY_RETURN_IF_ERROR(
            yaml_.integer(f, "retry.max_delay_ms", 0, kMaxTimeoutMs, &policy->max_delay_ms));
      } else if (f.key == "jitter") {
        FACTORY_RETURN_IF_ERROR(yaml_.number(f, "retry.jitter", &policy->jitter));
      }
    }
    Status s = validate(*policy);
    if (!s.ok()) {
      return validation_error(s, "retry policy: ", "retry", e, fields,
                              {{"max_attempts", "attempts"},
                               {"initial_delay_ms", "initial_delay_ms"},
                               {"multiplier", "multiplier"},
                               {"max_delay_ms", "max_delay_ms"},
                               {"jitter", "jitter"}});
    }
    return Status::ok_status();
  }

  Status parse_backpressure(const YamlEntry& e, Binding* b) const {
    b->backpressure_enabled = true;  // the block's presence turns it on
    if (e.value.IsNull()) return Status::ok_status();
    std::vector<YamlEntry> fields;
    FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "backpressure", &kBackpressureKeys, &fields));
    bool low_given = false;
    for (const YamlEntry& f : fields) {
      if (f.key == "enabled") {
        FACTORY_RETURN_IF_ERROR(yaml_.boolean(f, "backpressure.enabled", &b->backpressure_enabled));
      } else if (f.key == "high") {
        FACTORY_RETURN_IF_ERROR(yaml_.integer(
            f, "backpressure.high", 1, std::numeric_limits<int64_t>::max(), &b->backpressure.high));
      } else if (f.key == "low") {
        FACTORY_RETURN_IF_ERROR(yaml_.integer(
            f, "backpressure.low", 1, std::numeric_limits<int64_t>::max(), &b->backpressure.low));
        low_given = true;
      }
    }
    // Only `high:` given: resume at half of it, rather than at a default low that may be above.
    if (!low_given && find(fields, "high") != nullptr) {
      b->backpressure.low = b->backpressure.high / 2;
    }
    Status s = validate(b->backpressure);
    if (!s.ok()) {
      return validation_error(s, "watermarks: ", "backpressure", e, fields,
                              {{"low", "low"}, {"high", "high"}});
    }
    return Status::ok_status();
  }

  Status parse_breakers(const YamlEntry& e, std::vector<BreakerBinding>* out) const {
    if (e.value.IsNull()) return Status::ok_status();
    if (!e.value.IsSequence()) {
      return error(where(e), "breakers must be a list, e.g. breakers: [{name: llm, window: 20}]");
    }
    for (const YAML::Node& item : e.value) {
      if (!item.IsMap()) {
        return error(item.Mark(),
                     "each entry under breakers must be a mapping, e.g. "
                     "- {name: llm, failure_rate: 0.5}");
      }
      std::vector<YamlEntry> fields;
      FACTORY_RETURN_IF_ERROR(yaml_.entries(item, "a breaker", &kBreakerKeys, &fields));
      BreakerBinding b;
      const YamlEntry* name = find(fields, "name");
      if (name == nullptr) {
        return error(item.Mark(),
                     "this breaker has no name; add name: <name> (the name the "
                     "stage passes to ctx.breaker(), e.g. llm)");
      }
      CircuitBreakerConfig& c = b.config;
      for (const YamlEntry& f : fields) {
        if (f.key == "name") {
          FACTORY_RETURN_IF_ERROR(yaml_.text(f, "breakers.name", &b.name));
          if (b.name.empty()) {
            return error(where(f), "breakers.name is empty; name the breaker, e.g. name: llm");
          }
        } else if (f.key == "window") {
          FACTORY_RETURN_IF_ERROR(yaml_.integer(f, "breakers.window", 1, kMaxCount, &c.window));
        } else if (f.key == "min_calls") {
          FACTORY_RETURN_IF_ERROR(
              yaml_.integer(f, "breakers.min_calls", 1, kMaxCount, &c.min_calls));
        } else if (f.key == "failure_rate") {
          FACTORY_RETURN_IF_ERROR(
              yaml_.number(f, "breakers.failure_rate", &c.failure_rate_threshold));
        } else if (f.key == "open_ms") {
          FACTORY_RETURN_IF_ERROR(
              yaml_.integer(f, "breakers.open_ms", 1, kMaxTimeoutMs, &c.open_ms));
        } else if (f.key == "half_open_probes") {
          FACTORY_RETURN_IF_ERROR(
              yaml_.integer(f, "breakers.half_open_probes", 1, kMaxCount, &c.half_open_probes));
        } else if (f.key == "fallback") {
          if (!f.value.IsNull()) {
            FACTORY_RETURN_IF_ERROR(topic(f, "breakers.fallback", &b.fallback_topic));
          }
        }
      }
      for (const BreakerBinding& other : *out) {
        if (other.name == b.name) {
          return error(where(*name), "breaker " + in_quotes(b.name) +
                                         " is listed twice in this binding; keep one of them");
        }
      }
      Status s = validate(c);
      if (!s.ok()) {
        YamlEntry block{b.name, item, item};
        return validation_error(s, "circuit breaker: ", "breakers", block, fields,
                                {{"window", "window"},
                                 {"min_calls", "min_calls"},
                                 {"failure_rate_threshold", "failure_rate"},
                                 {"open_ms", "open_ms"},
                                 {"half_open_probes", "half_open_probes"}});
      }
      out->push_back(std::move(b));
    }
    return Status::ok_status();
  }

  Status parse_config(const YamlEntry& e, std::string* out) const {
    if (e.value.IsNull()) {
      *out = "{}";
      return Status::ok_status();
    }
    if (!e.value.IsMap()) {
      return error(where(e),
                   "config must be a mapping of the stage's settings, e.g. "
                   "config: {command: [cat]}");
    }
    return yaml_.to_json(e.value, "config", out);
  }

  YamlReader yaml_;
  PipelineConfig out_;
  std::map<std::string, int, std::less<>> first_line_;  // binding name -> 1-based line
};

}  // namespace

Result<PipelineConfig> parse_pipeline_yaml(std::string_view text, std::string_view source) {
  PipelineParser parser(source);
  return parser.parse(text);
}

Result<PipelineConfig> load_pipelines(const std::string& config_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(config_dir) / "pipelines";
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (!fs::exists(st)) return PipelineConfig{};
  if (!fs::is_directory(st)) {
    return Status::invalid_argument(in_quotes(dir.string()) +
                                    " is not a directory; pipeline files go in "
                                    "<config>/pipelines/*.yaml");
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::error_code type_ec;
    if ((p.extension() == ".yaml" || p.extension() == ".yml") && it->is_regular_file(type_ec)) {
      files.push_back(p);
    }
  }
  if (ec) {
    return Status::io_error("cannot list " + in_quotes(dir.string()) + ": " + ec.message());
  }
  std::sort(files.begin(), files.end());

  PipelineConfig all;
  struct Origin {
    std::string source;
    int line;
  };
  std::map<std::string, Origin> names;
  for (const fs::path& file : files) {
    std::string text;
    FACTORY_RETURN_IF_ERROR(base::read_file(file.string(), "pipeline file", &text));
    Result<PipelineConfig> one = parse_pipeline_yaml(text, file.string());
    if (!one.ok()) return one.status();
    for (Binding& b : one->bindings) {
      auto [it, inserted] = names.emplace(b.name, Origin{b.source, b.line});
      if (!inserted) {
        return Status::invalid_argument(
            b.source + ":" + std::to_string(b.line) + ": binding name " + in_quotes(b.name) +
            " is already used at " + it->second.source + ":" + std::to_string(it->second.line) +
            "; binding names are unique across all pipeline files: give one of them another "
            "name: name: <unique>");
      }
      all.bindings.push_back(std::move(b));
    }
    for (std::string& d : one->plugin_dirs) {
      if (std::find(all.plugin_dirs.begin(), all.plugin_dirs.end(), d) == all.plugin_dirs.end()) {
        all.plugin_dirs.push_back(std::move(d));
      }
    }
  }
  return all;
}

}  // namespace factory::runtime
