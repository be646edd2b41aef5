// factoryd groups list | describe GROUP |
//     reset-offsets GROUP --topic T (--to-earliest|--to-latest|--to-offset
//     N|--to-datetime ISO)
//                   [--execute]
// As kafka-consumer-groups: reset-offsets is a dry run (prints the plan) unless
// --execute.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/log_session.h"

namespace factory::cli {
namespace {

int group_not_found(const CommonOptions& common, const std::string& group) {
  return runtime_error("consumer group '" + group + "' not found in " + common.log_dir(),
                       "list groups with 'factoryd groups list', or check --data-dir");
}

class GroupsList : public Command {
 public:
  explicit GroupsList(const CommonOptions* common) : common_(common) {}

  int run() override {
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto listed = session->access->list_groups();
    if (!listed.ok()) return status_error("cannot list groups", listed.status(), "retry");
    std::vector<std::string> groups = std::move(*listed);
    std::sort(groups.begin(), groups.end());
    if (common_->json()) {
      std::vector<std::string> items;
      for (const std::string& g : groups) items.push_back(json_quote(g));
      write_stdout(json_array(items) + "\n");
    } else {
      for (const std::string& g : groups) write_stdout(g + "\n");
    }
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class GroupsDescribe : public Command {
 public:
  explicit GroupsDescribe(const CommonOptions* common) : common_(common) {}
  std::string group;

  int run() override {
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto desc = session->access->describe_group(group);
    if (!desc.ok()) {
      if (desc.status().is_not_found()) return group_not_found(*common_, group);
      return status_error("cannot describe group '" + group + "'", desc.status(), "retry");
    }
    std::vector<GroupPartitionLag> rows = desc->partitions;
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
    });
    if (common_->json()) {
      std::vector<std::string> items;
      for (const GroupPartitionLag& r : rows) {
        JsonObject o;
        o.str("topic", r.topic).num("partition", r.partition);
        if (r.committed) {
          o.num("current_offset", r.committed->value());
        } else {
          o.null("current_offset");
        }
        o.num("log_end_offset", r.log_end.value()).num("lag", r.lag).str("consumer_id", r.member);
        items.push_back(o.done());
      }
      write_stdout(JsonObject()
                       .str("group", desc->group)
                       .str("state", desc->state)
                       .raw("partitions", json_array(items))
                       .done() +
                   "\n");
      return kExitOk;
    }
    Table table(
        {"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"});
    for (const GroupPartitionLag& r : rows) {
      table.add_row({desc->group, r.topic, std::to_string(r.partition),
                     r.committed ? std::to_string(r.committed->value()) : "-",
                     std::to_string(r.log_end.value()), std::to_string(r.lag),
                     r.member.empty() ? "-" : r.member});
    }
    write_stdout(table.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class GroupsResetOffsets : public Command {
 public:
  explicit GroupsResetOffsets(const CommonOptions* common) : common_(common) {}
  std::string group;
  std::string topic;
  bool to_earliest = false;
  bool to_latest = false;
  std::optional<int64_t> to_offset;
  std::optional<std::string> to_datetime;
  bool execute = false;
  bool dry_run = false;

  int run() override {
    int chosen = int{to_earliest} + int{to_latest} + int{to_offset.has_value()} +
                 int{to_datetime.has_value()};
    if (chosen != 1) {
      return usage_error(
          chosen == 0 ? "reset-offsets needs a target" : "reset-offsets takes only one target",
          "pass exactly one of --to-earliest, --to-latest, --to-offset N, "
          "--to-datetime ISO");
    }
    OffsetResetSpec spec;
    if (to_earliest) spec.kind = OffsetResetSpec::Kind::kEarliest;
    if (to_latest) spec.kind = OffsetResetSpec::Kind::kLatest;
    if (to_offset) {
      spec.kind = OffsetResetSpec::Kind::kOffset;
      spec.value = *to_offset;
    }
    if (to_datetime) {
      auto ms = parse_iso8601_ms(*to_datetime);
      if (!ms.ok()) return usage_error("--to-datetime: " + ms.status().message(), "");
      spec.kind = OffsetResetSpec::Kind::kTimestamp;
      spec.value = *ms;
    }

    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto plan = session->access->reset_offsets(group, topic, spec, execute);
    if (!plan.ok()) {
      const Status& s = plan.status();
      if (s.is_not_found() && !session->access->describe_topic(topic).ok()) {
        return topic_not_found(*common_, topic);
      }
      if (s.is_failed_precondition()) {
        return status_error("cannot reset offsets of group '" + group + "'", s,
                            "stop the group's consumers first, then retry");
      }
      return status_error("cannot reset offsets of group '" + group + "' on topic '" + topic + "'",
                          s, "retry");
    }
    std::vector<TopicPartitionOffset> rows = *plan;
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
    });
    const char* kDryRunNote = "Dry run: nothing was changed; add --execute to store these offsets.";
    if (common_->json()) {
      std::vector<std::string> items;
      for (const TopicPartitionOffset& r : rows) {
        items.push_back(JsonObject()
                            .str("topic", r.topic)
                            .num("partition", r.partition)
                            .num("new_offset", r.offset.value())
                            .done());
      }
      write_stdout(JsonObject()
                       .str("group", group)
                       .boolean("executed", execute)
                       .raw("offsets", json_array(items))
                       .done() +
                   "\n");
      if (!execute) {
        flush_stdout();
        std::fprintf(stderr, "%s\n", kDryRunNote);
      }
      return kExitOk;
    }
    Table table({"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"});
    for (const TopicPartitionOffset& r : rows) {
      table.add_row(
          {group, r.topic, std::to_string(r.partition), std::to_string(r.offset.value())});
    }
    std::string out = table.render();
    if (!execute) out += std::string("\n") + kDryRunNote + "\n";
    write_stdout(out);
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

void add_groups_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* groups = root->add_subcommand("groups", "Inspect consumer groups and move offsets");
  groups->require_subcommand(1);
  {
    auto cmd = std::make_unique<GroupsList>(common);
    CLI::App* app = groups->add_subcommand("list", "List consumer groups");
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<GroupsDescribe>(common);
    CLI::App* app = groups->add_subcommand("describe",
                                           "Show a group's committed offsets, log end "
                                           "offsets and lag per partition");
    app->add_option("group", cmd->group, "Group name")->required();
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<GroupsResetOffsets>(common);
    CLI::App* app = groups->add_subcommand("reset-offsets",
                                           "Move a group's committed offsets on a topic "
                                           "(dry run unless --execute)");
    app->add_option("group", cmd->group, "Group name")->required();
    app->add_option("--topic", cmd->topic, "Topic whose partitions to reset")->required();
    app->add_flag("--to-earliest", cmd->to_earliest, "To each partition's log start");
    app->add_flag("--to-latest", cmd->to_latest, "To each partition's log end");
    app->add_option("--to-offset", cmd->to_offset, "To offset N (clamped to the log)")
        ->check(CLI::NonNegativeNumber);
    app->add_option("--to-datetime", cmd->to_datetime,
                    "To the first record at or after an ISO-8601 time, e.g. "
                    "2026-11-28T09:00:00.000 (UTC unless Z/+HH:MM given)");
    CLI::Option* execute = app->add_flag("--execute", cmd->execute, "Store the new offsets");
    app->add_flag("--dry-run", cmd->dry_run, "Only print the plan (the default)")
        ->excludes(execute);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

}  // namespace factory::cli
