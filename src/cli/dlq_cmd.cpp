// factoryd dlq list [TOPIC.dlq] [-n N]
// factoryd dlq replay TOPIC.dlq (--offset P:O | --all) [--execute]
//
// Dead letters are records on "<topic>.dlq" topics whose headers carry why and where from
// (factory.dlq.reason, factory.source.topic/partition/offset, factory.stage, factory.attempts).
// `replay` re-appends the original payload to its source topic. It is a dry run unless
// --execute, and idempotent: each dead letter is appended at most once, however often replay
// runs (each dead letter appends as its own idempotent producer "dlq-replay/<dlq>/<p>/<offset>").
#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace factory::cli {
namespace {

std::string header(const Record& r, std::string_view name) {
  for (const Header& h : r.headers) {
    if (h.key == name) return h.value;
  }
  return "";
}

struct DeadLetter {
  std::string topic;
  Record record;
};

// Every record of `topic` from its log start, at most `limit` (0: all).
Status read_all(Log* log, const std::string& topic, int64_t limit, std::vector<DeadLetter>* out) {
  auto info = log->describe_topic(topic);
  if (!info.ok()) return info.status();
  for (const PartitionInfo& p : info->partitions) {
    int64_t next = p.log_start.value();
    while (next < p.log_end.value()) {
      auto r = log->read(topic, p.partition, Offset(next), {.max_records = 1000});
      if (!r.ok()) return r.status();
      if (r->records.empty()) break;
      for (Record& rec : r->records) {
        next = rec.offset.value() + 1;
        out->push_back({topic, std::move(rec)});
        if (limit > 0 && static_cast<int64_t>(out->size()) >= limit) return Status();
      }
    }
  }
  return Status();
}

class DlqList : public Command {
 public:
  explicit DlqList(const CommonOptions* common) : common_(common) {}
  std::string topic;
  int64_t limit = 0;

  int run() override {
    auto log = open_log_or_report(*common_);
    if (!log) return kExitRuntime;
    std::vector<std::string> topics;
    if (!topic.empty()) {
      topics.push_back(topic);
    } else {
      for (const std::string& t : log->list_topics()) {
        if (t.ends_with(".dlq")) topics.push_back(t);
      }
    }
    std::vector<DeadLetter> letters;
    for (const std::string& t : topics) {
      Status s = read_all(log.get(), t, limit, &letters);
      if (s.is_not_found()) return topic_not_found(*common_, t);
      if (!s.ok()) return status_error("cannot read " + t, s, "");
    }
    if (common_->json()) {
      std::vector<std::string> items;
      for (const DeadLetter& d : letters) {
        items.push_back(JsonObject()
                            .str("topic", d.topic)
                            .num("partition", d.record.partition)
                            .num("offset", d.record.offset.value())
                            .num("timestamp", d.record.timestamp_ms)
                            .str("source_topic", header(d.record, "factory.source.topic"))
                            .str("source_partition", header(d.record, "factory.source.partition"))
                            .str("source_offset", header(d.record, "factory.source.offset"))
                            .str("stage", header(d.record, "factory.stage"))
                            .str("attempts", header(d.record, "factory.attempts"))
                            .str("reason", header(d.record, "factory.dlq.reason"))
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
                 header(d.record, "factory.source.topic") + "/" +
                     header(d.record, "factory.source.partition") + "/" +
                     header(d.record, "factory.source.offset"),
                 header(d.record, "factory.stage"), header(d.record, "factory.dlq.reason")});
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

  int run() override {
    if (all == !at.empty()) {
      return usage_error("give exactly one of --offset PARTITION:OFFSET or --all",
                         "see factoryd dlq list for the dead letters");
    }
    int32_t want_partition = -1;
    int64_t want_offset = -1;
    if (!at.empty()) {
      auto colon = at.find(':');
      auto p = colon == std::string::npos ? std::nullopt : parse_int64(at.substr(0, colon));
      auto o = colon == std::string::npos ? std::nullopt : parse_int64(at.substr(colon + 1));
      if (!p || !o)
        return usage_error("--offset '" + at + "' is not PARTITION:OFFSET", "e.g. --offset 0:12");
      want_partition = static_cast<int32_t>(*p);
      want_offset = *o;
    }
    auto log = open_log_or_report(*common_);
    if (!log) return kExitRuntime;
    std::vector<DeadLetter> letters;
    Status s = read_all(log.get(), topic, 0, &letters);
    if (s.is_not_found()) return topic_not_found(*common_, topic);
    if (!s.ok()) return status_error("cannot read " + topic, s, "");
    std::map<std::string, std::vector<ProducerRecord>> by_source;
    Table t({"DLQ", "SOURCE-TOPIC", "RESULT"});
    int chosen = 0;
    for (const DeadLetter& d : letters) {
      if (!all &&
          (d.record.partition != want_partition || d.record.offset.value() != want_offset)) {
        continue;
      }
      ++chosen;
      std::string source = header(d.record, "factory.source.topic");
      if (source.empty()) {
        return runtime_error("dead letter " + topic + "/" + std::to_string(d.record.partition) +
                                 "/" + std::to_string(d.record.offset.value()) +
                                 " has no factory.source.topic header",
                             "it was not written by factoryd; produce it by hand instead");
      }
      ProducerRecord r;
      r.key = d.record.key;
      r.value = d.record.value;
      for (const Header& h : d.record.headers) {
        if (!h.key.starts_with("factory.")) r.headers.push_back(h);
      }
      std::string from = topic + "/" + std::to_string(d.record.partition) + "/" +
                         std::to_string(d.record.offset.value());
      r.headers.push_back({"factory.replayed_from", from});
      // One producer per dead letter: replays in any order, each at most once.
      r.producer_id = "dlq-replay/" + from;
      r.sequence = 0;
      by_source[source].push_back(std::move(r));
    }
    if (chosen == 0) {
      return runtime_error(
          "no dead letter " + (all ? std::string("in ") + topic : at + " in " + topic),
          "list them with factoryd dlq list " + topic);
    }
    for (auto& [source, records] : by_source) {
      if (!execute) {
        for (const ProducerRecord& r : records) {
          t.add_row({r.headers.back().value, source, "would replay"});
        }
        continue;
      }
      auto pos = log->append(source, records);
      if (!pos.ok()) return status_error("cannot replay into " + source, pos.status(), "");
      for (size_t i = 0; i < records.size(); ++i) {
        const RecordPosition& p = (*pos)[i];
        t.add_row({records[i].headers.back().value, source,
                   p.duplicate ? "already replayed"
                               : "replayed to " + std::to_string(p.partition) + "/" +
                                     std::to_string(p.offset.value())});
      }
    }
    write_stdout(t.render());
    if (!execute) write_stdout("Dry run: nothing was replayed; add --execute to replay.\n");
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
    app->add_flag("--execute", cmd->execute, "Really append (otherwise print the plan)");
    add_common_options(app, common);
    registry->add(app, std::move(cmd));
  }
}

}  // namespace factory::cli
