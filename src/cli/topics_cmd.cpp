// factoryd topics apply -f FILE | create NAME --partitions N [--config k=v]...
// | list |
//                describe NAME | delete NAME
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/log_session.h"
#include "factory/topic.h"
#include "log/topic_file.h"

namespace factory::cli {
namespace {

const char* change_name(TopicChange c) {
  switch (c) {
    case TopicChange::kCreated:
      return "created";
    case TopicChange::kUpdated:
      return "updated";
    case TopicChange::kUnchanged:
      return "unchanged";
  }
  return "unknown";
}

// How to fix a failed apply_topic/create_topic, by code.
const char* topic_write_hint(const Status& s) {
  if (s.is_invalid_argument()) {
    return "partitions can only grow and config keys must be Kafka's (e.g. "
           "retention.ms); "
           "fix the spec";
  }
  if (s.is_busy()) return "another process holds the data dir; stop it and retry";
  return "check the data dir's disk and permissions, then retry";
}

class TopicsApply : public Command {
 public:
  explicit TopicsApply(const CommonOptions* common) : common_(common) {}
  std::string file;

  int run() override {
    auto entries = factory::log::parse_topic_file(file);
    if (!entries.ok()) {
      const Status& s = entries.status();
      if (s.is_invalid_argument()) return status_error("", s, "fix the topics file");
      return status_error("cannot read topics file '" + file + "'", s,
                          "pass an existing, readable YAML file with -f");
    }
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;

    std::vector<std::string> json_items;
    for (const factory::log::TopicFileEntry& entry : *entries) {
      const std::string& name = entry.spec.name;
      std::string where = file + ":" + std::to_string(entry.line);
      JsonObject item;
      item.str("topic", name).str("source", where);
      auto change = session->access->apply_topic(entry.spec);
      if (!change.ok()) {
        code = status_error(where + ": topic '" + name + "'", change.status(),
                            topic_write_hint(change.status()));
        item.str("action", "failed").str("error", change.status().message());
        json_items.push_back(item.done());
        continue;
      }
      std::vector<std::string> notes_json;
      for (const std::string& note : entry.notes) notes_json.push_back(json_quote(note));
      item.str("action", change_name(*change))
          .num("partitions", entry.spec.partitions)
          .raw("notes", json_array(notes_json));
      if (common_->json()) {
        json_items.push_back(item.done());
      } else {
        std::string line = name + ": " + change_name(*change) + " (" +
                           std::to_string(entry.spec.partitions) +
                           (entry.spec.partitions == 1 ? " partition)" : " partitions)");
        for (const std::string& note : entry.notes) line += "; " + note;
        write_stdout(line + "\n");
      }
    }
    if (common_->json()) write_stdout(json_array(json_items) + "\n");
    return code;
  }

 private:
  const CommonOptions* common_;
};

class TopicsCreate : public Command {
 public:
  explicit TopicsCreate(const CommonOptions* common) : common_(common) {}
  TopicSpec spec;
  std::vector<std::string> configs;

  int run() override {
    for (const std::string& c : configs) {
      auto kv = split_assignment(c);
      if (!kv) {
        return usage_error("--config '" + c + "' is not key=value",
                           "write it as --config retention.ms=604800000");
      }
      Status s = set_topic_config(&spec.config, kv->first, kv->second);
      if (!s.ok()) return usage_error("--config '" + c + "': " + s.message(), "");
    }
    Status valid = validate_topic_spec(spec);
    if (!valid.ok()) return usage_error("topic '" + spec.name + "': " + valid.message(), "");

    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    Status s = session->access->create_topic(spec);
    if (s.is_already_exists()) {
      return runtime_error("topic '" + spec.name + "' already exists in " + common_->log_dir(),
                           "use 'factoryd topics apply -f FILE' to change it, or pick another "
                           "name");
    }
    if (!s.ok()) {
      return status_error("cannot create topic '" + spec.name + "'", s, topic_write_hint(s));
    }
    if (common_->json()) {
      write_stdout(JsonObject()
                       .str("topic", spec.name)
                       .str("action", "created")
                       .num("partitions", spec.partitions)
                       .done() +
                   "\n");
    } else {
      write_stdout("Created topic " + spec.name + " with " + std::to_string(spec.partitions) +
                   (spec.partitions == 1 ? " partition.\n" : " partitions.\n"));
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class TopicsList : public Command {
 public:
  explicit TopicsList(const CommonOptions* common) : common_(common) {}

  int run() override {
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto listed = session->access->list_topics();
    if (!listed.ok()) return status_error("cannot list topics", listed.status(), "retry");
    const std::vector<std::string>& names = *listed;
    if (common_->json()) {
      std::vector<std::string> items;
      for (const std::string& n : names) items.push_back(json_quote(n));
      write_stdout(json_array(items) + "\n");
    } else {
      for (const std::string& n : names) write_stdout(n + "\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class TopicsDescribe : public Command {
 public:
  explicit TopicsDescribe(const CommonOptions* common) : common_(common) {}
  std::string name;

  int run() override {
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto info = session->access->describe_topic(name);
    if (!info.ok()) {
      if (info.status().is_not_found()) return topic_not_found(*common_, name);
      return status_error("cannot describe topic '" + name + "'", info.status(), "retry");
    }
    auto entries = topic_config_entries(info->spec.config);
    if (common_->json()) {
      JsonObject config;
      for (const auto& [k, v] : entries) config.raw(k, json_scalar(v));
      std::vector<std::string> parts;
      for (const PartitionInfo& p : info->partitions) {
        parts.push_back(JsonObject()
                            .num("partition", p.partition)
                            .num("log_start", p.log_start.value())
                            .num("log_end", p.log_end.value())
                            .num("records", p.log_end.value() - p.log_start.value())
                            .num("size_bytes", p.size_bytes)
                            .done());
      }
      write_stdout(JsonObject()
                       .str("topic", info->spec.name)
                       .num("partition_count", info->spec.partitions)
                       .raw("config", config.done())
                       .raw("partitions", json_array(parts))
                       .done() +
                   "\n");
      return kExitOk;
    }
    std::string out = "Topic: " + info->spec.name +
                      "  PartitionCount: " + std::to_string(info->spec.partitions) + "\n";
    out += "Configs:";
    for (const auto& [k, v] : entries) out += " " + k + "=" + v;
    out += "\n";
    Table table({"PARTITION", "LOG-START", "LOG-END", "RECORDS", "SIZE-BYTES"});
    for (const PartitionInfo& p : info->partitions) {
      table.add_row({std::to_string(p.partition), std::to_string(p.log_start.value()),
                     std::to_string(p.log_end.value()),
                     std::to_string(p.log_end.value() - p.log_start.value()),
                     std::to_string(p.size_bytes)});
    }
    write_stdout(out + table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class TopicsDelete : public Command {
 public:
  explicit TopicsDelete(const CommonOptions* common) : common_(common) {}
  std::string name;

  int run() override {
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    Status s = session->access->delete_topic(name);
    if (s.is_not_found()) return topic_not_found(*common_, name);
    if (!s.ok()) return status_error("cannot delete topic '" + name + "'", s, topic_write_hint(s));
    if (common_->json()) {
      write_stdout(JsonObject().str("topic", name).str("action", "deleted").done() + "\n");
    } else {
      write_stdout("Deleted topic " + name + ".\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

void add_topics_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* topics = root->add_subcommand("topics", "Create, change, inspect and delete topics");
  topics->require_subcommand(1);

  {
    auto cmd = std::make_unique<TopicsApply>(common);
    CLI::App* app = topics->add_subcommand("apply",
                                           "Create or update the topics in a YAML file "
                                           "(Strimzi KafkaTopic or short form)");
    app->add_option("-f,--file", cmd->file, "Topics YAML file")->required();
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<TopicsCreate>(common);
    CLI::App* app = topics->add_subcommand("create", "Create one topic");
    app->add_option("name", cmd->spec.name, "Topic name")->required();
    app->add_option("--partitions", cmd->spec.partitions, "Partition count")
        ->check(CLI::Range(1, 10000))
        ->capture_default_str();
    app->add_option("--config", cmd->configs, "Config entry key=value (Kafka names), repeatable")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<TopicsList>(common);
    CLI::App* app = topics->add_subcommand("list", "List topic names");
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<TopicsDescribe>(common);
    CLI::App* app =
        topics->add_subcommand("describe", "Show a topic's config and per-partition offsets");
    app->add_option("name", cmd->name, "Topic name")->required();
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<TopicsDelete>(common);
    CLI::App* app =
        topics->add_subcommand("delete", "Delete a topic, its records and its group offsets");
    app->add_option("name", cmd->name, "Topic name")->required();
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

}  // namespace factory::cli
