// factoryd dlq list [TOPIC.dlq] [-n N]
// factoryd dlq replay TOPIC.dlq (--offset P:O | --all) [--execute|--dry-run]
//
// Dead letters are records on "<topic>.dlq" topics whose headers carry why and where from
// (factory.dlq.reason, factory.source.topic/partition/offset, factory.stage, factory.attempts).
// `replay` re-appends the original payload to its source topic. It is a dry run unless
// --execute, and idempotent: each dead letter is appended at most once, however often replay
// runs (each dead letter appends as its own idempotent producer "dlq-replay/<dlq>/<p>/<offset>");
// the dry run says which were already replayed and would be skipped. Where a record carries a
// header twice (an inherited factory.stage), the last is the dead-lettering binding's.
// The listing and the replay are http::LogAccess's, so they run the same against a daemon.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/log_session.h"
#include "http/log_views.h"

namespace factory::cli {
namespace {

using http::DeadLetter;
using http::ReplayRow;

class DlqList : public Command {
 public:
  explicit DlqList(const CommonOptions* common) : common_(common) {}
  std::string topic;
  int64_t limit = 0;

  int run() override {
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto listed = session->access->list_dead_letters(topic, limit);
    if (!listed.ok()) {
      const Status& s = listed.status();
      if (s.is_not_found() && !topic.empty()) return topic_not_found(*common_, topic);
      return status_error("cannot read " + (topic.empty() ? std::string("dead letters") : topic), s,
                          "");
    }
    const std::vector<DeadLetter>& letters = *listed;
    if (common_->json()) {
      std::vector<std::string> items;
      for (const DeadLetter& d : letters) {
        items.push_back(JsonObject()
                            .str("topic", d.topic)
                            .num("partition", d.record.partition)
                            .num("offset", d.record.offset.value())
                            .num("timestamp", d.record.timestamp_ms)
                            .str("source_topic", d.header("factory.source.topic"))
                            .str("source_partition", d.header("factory.source.partition"))
                            .str("source_offset", d.header("factory.source.offset"))
                            .str("stage", d.header("factory.stage"))
                            .str("attempts", d.header("factory.attempts"))
                            .str("reason", d.header("factory.dlq.reason"))
                            .opt_str("key", d.record.key)
                            .opt_str("value", d.record.value)
                            .done());
      }
      write_stdout(json_array(items) + "\n");
      return kExitOk;
    }
    Table t({"TOPIC", "PARTITION", "OFFSET", "SOURCE", "STAGE", "REASON"});
    for (const DeadLetter& d : letters) {
      t.add_row({d.topic, std::to_string(d.record.partition),
                 std::to_string(d.record.offset.value()),
                 d.header("factory.source.topic") + "/" + d.header("factory.source.partition") +
                     "/" + d.header("factory.source.offset"),
                 d.header("factory.stage"), d.header("factory.dlq.reason")});
    }
    write_stdout(t.render());
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

class DlqReplay : public Command {
 public:
  explicit DlqReplay(const CommonOptions* common) : common_(common) {}
  std::string topic;
  std::string at;  // "P:O"
  bool all = false;
  bool execute = false;
  bool dry_run = false;  // the default; --dry-run only says so

  int run() override {
    if (all == !at.empty()) {
      return usage_error("give exactly one of --offset PARTITION:OFFSET or --all",
                         "see factoryd dlq list for the dead letters");
    }
    http::ReplaySelector selector;
    selector.all = all;
    if (!at.empty()) {
      auto colon = at.find(':');
      auto p = colon == std::string::npos ? std::nullopt : parse_int64(at.substr(0, colon));
      auto o = colon == std::string::npos ? std::nullopt : parse_int64(at.substr(colon + 1));
      if (!p || !o)
        return usage_error("--offset '" + at + "' is not PARTITION:OFFSET", "e.g. --offset 0:12");
      selector.partition = static_cast<int32_t>(*p);
      selector.offset = *o;
    }
    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    auto rows = session->access->replay_dead_letters(topic, selector, execute);
    if (!rows.ok()) {
      const Status& s = rows.status();
      if (s.is_not_found() && !session->access->describe_topic(topic).ok()) {
        return topic_not_found(*common_, topic);
      }
      return status_error("", s, "");
    }
    const char* kDryRunNote = "Dry run: nothing was replayed; add --execute to replay.";
    if (common_->json()) {
      // The API's answer, {"executed","results":[...]}; the dry run's note on stderr.
      write_stdout(http::replay_json(execute, *rows) + "\n");
      if (!execute) {
        flush_stdout();
        std::fprintf(stderr, "%s\n", kDryRunNote);
      }
      return kExitOk;
    }
    Table t({"DLQ", "SOURCE-TOPIC", "RESULT"});
    for (const ReplayRow& r : *rows) {
      std::string result;
      switch (r.result) {
        case ReplayRow::Result::kWouldReplay:
          result = "would replay";
          break;
        case ReplayRow::Result::kAlreadyReplayed:
          result = execute ? "already replayed" : "already replayed; would skip";
          break;
        case ReplayRow::Result::kReplayed:
          result = "replayed to " + std::to_string(r.position.partition) + "/" +
                   std::to_string(r.position.offset.value());
          break;
      }
      t.add_row({r.dead_letter, r.source_topic, result});
    }
    write_stdout(t.render());
    if (!execute) write_stdout(std::string(kDryRunNote) + "\n");
    return kExitOk;
  }

 private:
  const CommonOptions* common_;
};

}  // namespace

void add_dlq_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  CLI::App* dlq = root->add_subcommand("dlq", "Show and replay dead letters");
  dlq->require_subcommand(1);
  {
    auto cmd = std::make_unique<DlqList>(common);
    CLI::App* app = dlq->add_subcommand("list", "List dead letters (all *.dlq topics, or one)");
    app->add_option("topic", cmd->topic, "A dead-letter topic (default: every *.dlq topic)");
    app->add_option("-n,--limit", cmd->limit, "At most this many per topic");
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
  {
    auto cmd = std::make_unique<DlqReplay>(common);
    CLI::App* app = dlq->add_subcommand(
        "replay", "Re-append dead letters to their source topic (dry run unless --execute)");
    app->add_option("topic", cmd->topic, "The dead-letter topic")->required();
    app->add_option("--offset", cmd->at, "One dead letter, as PARTITION:OFFSET");
    app->add_flag("--all", cmd->all, "Every dead letter on the topic");
    CLI::Option* execute =
        app->add_flag("--execute", cmd->execute, "Really append (otherwise print the plan)");
    app->add_flag("--dry-run", cmd->dry_run, "Only print the plan (the default)")
        ->excludes(execute);
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

}  // namespace factory::cli
