// factoryd consume TOPIC [-g GROUP] [-p P] [-o OFFSET] [-n N] [-e] [-f
// FORMAT] [--output F]
//
// Without -g the partitions (all, or -p) are read directly from -o on; with -g
// the consumer joins the group through Log::subscribe() and commits after each
// printed batch (and when it stops). -o is kcat's: beginning | end | stored | N
// | -N (N before the end) | @TS (first record at or after TS ms; kcat's s@TS
// also works). -e exits once caught up with the log end on every partition
// read; otherwise the command follows the log until SIGINT/SIGTERM, then
// commits and exits 0. Records are printed per batch and stdout is flushed
// before each commit, so a commit never covers a record that was not written
// out.
//
// Against a running daemon (cli/log_session.h) the reads are the API's fetches, and -f follows
// with long-polls over every partition read. There -g is a simple consumer: it starts at the
// group's committed offsets and commits through the API after each printed batch, but does not
// join the group, so it takes no part in rebalancing (the daemon refuses its commits while the
// group has members there).
#include <signal.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/log_session.h"
#include "cli/record_format.h"
#include "factory/consumer.h"

namespace factory::cli {
namespace {

constexpr int32_t kMaxBatch = 500;
constexpr int64_t kFollowWaitMs = 200;  // bounds how long a stop signal waits to be noticed

volatile std::sig_atomic_t g_stop = 0;

void on_stop_signal(int sig) {
  g_stop = 1;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}

void install_stop_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking read returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stopping() { return g_stop != 0; }

// Where to start reading a partition, parsed from -o.
struct OffsetSpec {
  enum class Kind { kBeginning, kEnd, kStored, kAbsolute, kFromEnd, kTimestamp } kind;
  int64_t value = 0;
};

std::optional<OffsetSpec> parse_offset_spec(std::string_view s) {
  using Kind = OffsetSpec::Kind;
  if (s == "beginning") return OffsetSpec{Kind::kBeginning};
  if (s == "end") return OffsetSpec{Kind::kEnd};
  if (s == "stored") return OffsetSpec{Kind::kStored};
  if (s.starts_with("s@")) s.remove_prefix(1);
  if (s.starts_with("@")) {
    auto ts = parse_int64(s.substr(1));
    if (!ts || *ts < 0) return std::nullopt;
    return OffsetSpec{Kind::kTimestamp, *ts};
  }
  auto n = parse_int64(s);
  if (!n) return std::nullopt;
  if (s.starts_with("-")) return OffsetSpec{Kind::kFromEnd, -*n};
  return OffsetSpec{Kind::kAbsolute, *n};
}

class Consume : public Command {
 public:
  explicit Consume(const CommonOptions* common) : common_(common) {}
  std::string topic;
  std::string group;
  std::optional<int32_t> partition;
  std::optional<std::string> offset_arg;
  std::optional<int64_t> count;
  bool exit_at_end = false;
  std::optional<std::string> format_arg;

  int run() override {
    if (offset_arg) {
      offset_ = parse_offset_spec(*offset_arg);
      if (!offset_) {
        return usage_error("-o '" + *offset_arg + "' is not an offset",
                           "use beginning, end, stored, N, -N or @TIMESTAMP_MS");
      }
      if (offset_->kind == OffsetSpec::Kind::kStored && group.empty()) {
        return usage_error("-o stored needs a consumer group", "add -g GROUP");
      }
    }
    if (format_arg) {
      if (common_->json()) {
        return usage_error("-f and --output json both choose the output", "pass only one");
      }
      auto f = RecordFormat::parse(*format_arg);
      if (!f.ok()) return usage_error(f.status().message(), "");
      format_ = std::move(*f);
    }
    if (!group.empty() && partition) {
      return usage_error("-p cannot be combined with -g (the group assigns partitions)",
                         "drop -p, or drop -g to read one partition directly");
    }

    int code = kExitOk;
    session_ = open_log_session(*common_, &code);
    if (!session_) return code;
    access_ = session_->access.get();
    auto info = access_->describe_topic(topic);
    if (!info.ok()) {
      if (info.status().is_not_found()) return topic_not_found(*common_, topic);
      return status_error("cannot read topic '" + topic + "'", info.status(), "retry");
    }
    if (partition && (*partition < 0 || *partition >= info->spec.partitions)) {
      return runtime_error("partition " + std::to_string(*partition) +
                               " does not exist in topic '" + topic + "' (partitions 0.." +
                               std::to_string(info->spec.partitions - 1) + ")",
                           "pass -p within that range, or omit it to read all partitions");
    }
    install_stop_handlers();
    if (group.empty()) return run_direct(*info);
    // Against a daemon, -g is a simple consumer: it starts at the group's committed offsets
    // and commits through the API, but does not join the group (no rebalancing).
    if (session_->remote()) return run_direct(*info);
    return run_group();
  }

 private:
  struct Cursor {
    int32_t partition;
    Offset next;
    Offset end;  // log end seen by the latest read
  };

  int64_t remaining() const { return count ? *count - printed_ : INT64_MAX; }

  int32_t batch_limit() const {
    return static_cast<int32_t>(std::min<int64_t>(kMaxBatch, remaining()));
  }

  // The start offset for `p` per -o. OutOfRange names the partition and the
  // valid range.
  Result<Offset> start_offset(int32_t p) {
    auto info = access_->describe_topic(topic);
    if (!info.ok()) return info.status();
    if (p < 0 || p >= static_cast<int32_t>(info->partitions.size())) {
      return Status::invalid_argument("partition " + std::to_string(p) +
                                      " does not exist in topic '" + topic + "'");
    }
    const PartitionInfo& pi = info->partitions[static_cast<size_t>(p)];
    OffsetSpec spec = offset_.value_or(OffsetSpec{OffsetSpec::Kind::kBeginning});
    switch (spec.kind) {
      case OffsetSpec::Kind::kBeginning:
      case OffsetSpec::Kind::kStored:
        return pi.log_start;
      case OffsetSpec::Kind::kEnd:
        return pi.log_end;
      case OffsetSpec::Kind::kFromEnd:
        return Offset(std::max(pi.log_start.value(), pi.log_end.value() - spec.value));
      case OffsetSpec::Kind::kTimestamp: {
        auto offsets = access_->offsets_for_timestamp(topic, spec.value);
        if (!offsets.ok()) return offsets.status();
        for (const http::PartitionPosition& o : *offsets) {
          if (o.partition == p) return o.offset;
        }
        return pi.log_end;
      }
      case OffsetSpec::Kind::kAbsolute:
        if (spec.value < pi.log_start.value() || spec.value > pi.log_end.value()) {
          return Status::out_of_range("offset " + std::to_string(spec.value) +
                                      " is outside partition " + std::to_string(p) + " of topic '" +
                                      topic + "' (log start " +
                                      std::to_string(pi.log_start.value()) + ", log end " +
                                      std::to_string(pi.log_end.value()) +
                                      "); use an offset in that range, -o beginning or -o end");
        }
        return Offset(spec.value);
    }
    return Status::internal("unhandled offset kind");
  }

  // Prints records and flushes. False when stdout is broken.
  bool print(const std::string& topic_name, const std::vector<Record>& records, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
      const Record& r = records[i];
      if (common_->json()) {
        out += record_json(topic_name, r);
        out += "\n";
      } else {
        format_.append(topic_name, r, &out);
      }
    }
    printed_ += static_cast<int64_t>(n);
    return write_stdout(out) && flush_stdout();
  }

  // Where each cursor starts: per -o; with -g (a simple consumer, remote only) at the group's
  // committed offset unless -o says otherwise, else at the log start.
  Status place_cursors(const TopicInfo& info, std::vector<Cursor>* cursors) {
    std::map<int32_t, Offset> committed;
    const bool want_seek = offset_ && offset_->kind != OffsetSpec::Kind::kStored;
    if (!group.empty() && !want_seek) {
      auto desc = access_->describe_group(group);
      if (!desc.ok() && !desc.status().is_not_found()) return desc.status();
      if (desc.ok()) {
        for (const GroupPartitionLag& row : desc->partitions) {
          if (row.topic == topic && row.committed) committed[row.partition] = *row.committed;
        }
      }
    }
    for (const PartitionInfo& p : info.partitions) {
      if (partition && p.partition != *partition) continue;
      Offset start;
      if (auto it = committed.find(p.partition); it != committed.end()) {
        // A committed offset outside the log (retention passed it) starts at the log start, as
        // a group member's auto_offset_reset=earliest does.
        bool inside = it->second >= p.log_start && it->second <= p.log_end;
        start = inside ? it->second : p.log_start;
      } else if (!group.empty() && !want_seek) {
        start = p.log_start;
      } else {
        auto s = start_offset(p.partition);
        if (!s.ok()) return s.status();
        start = *s;
      }
      cursors->push_back({p.partition, start, p.log_end});
    }
    return Status();
  }

  // Prints a fetch's records and moves the cursors past what was printed. Returns the exit
  // code when printing or committing failed, else kExitOk.
  int deliver(const http::MultiFetch& fetched, std::vector<Cursor>* cursors) {
    auto cursor = [&](int32_t p) -> Cursor* {
      for (Cursor& c : *cursors) {
        if (c.partition == p) return &c;
      }
      return nullptr;
    };
    // A fetch asks for at most remaining() records; should it return more, the rest is not
    // printed and the cursors stop after the last printed record.
    size_t n = std::min<size_t>(fetched.records.size(), static_cast<size_t>(remaining()));
    for (const http::PartitionFetch& pf : fetched.partitions) {
      Cursor* c = cursor(pf.partition);
      if (!c) continue;
      c->end = pf.log_end;
      if (n == fetched.records.size()) c->next = pf.next_offset;
    }
    if (fetched.records.empty()) return kExitOk;
    if (!print(topic, fetched.records, n)) return broken_stdout();
    for (size_t i = 0; i < n && n < fetched.records.size(); ++i) {
      const Record& r = fetched.records[i];
      if (Cursor* c = cursor(r.partition)) c->next = Offset(r.offset.value() + 1);
    }
    // Uncommitted records are delivered again: commit only what was written out.
    return commit_cursors(*cursors);
  }

  // With -g (a simple consumer), stores every cursor's position as the group's offset.
  int commit_cursors(const std::vector<Cursor>& cursors) {
    if (group.empty()) return kExitOk;
    std::vector<TopicPartitionOffset> offsets;
    for (const Cursor& c : cursors) offsets.push_back({topic, c.partition, c.next});
    Status s = access_->commit_offsets(group, offsets, /*sync=*/true);
    if (!s.ok()) {
      return status_error("committing offsets for group '" + group + "'", s,
                          "the printed records will be delivered again; retry");
    }
    return kExitOk;
  }

  int fetch_error(const Status& s, int32_t p, Offset at) {
    if (s.is_not_found()) return topic_not_found(*common_, topic);
    return status_error("reading partition " + std::to_string(p) + " of topic '" + topic +
                            "' at offset " + std::to_string(at.value()),
                        s, "restart with -o beginning or -o end");
  }

  // Reads the partitions directly, or (against a daemon, with -g) as a simple consumer of the
  // group: the same reads, starting at its committed offsets and committing after each batch.
  int run_direct(const TopicInfo& info) {
    std::vector<Cursor> cursors;
    Status placed = place_cursors(info, &cursors);
    if (!placed.ok()) return status_error("", placed, "");
    while (!stopping() && remaining() > 0) {
      bool got_any = false;
      for (size_t i = 0; i < cursors.size(); ++i) {
        if (stopping() || remaining() <= 0) break;
        ReadOptions ro;
        ro.max_records = batch_limit();
        http::PartitionPosition from{cursors[i].partition, cursors[i].next};
        auto fetched = access_->fetch(topic, {&from, 1}, ro);
        if (!fetched.ok()) {
          if (stopping()) break;  // a signal cut the request short
          return fetch_error(fetched.status(), from.partition, from.offset);
        }
        got_any = got_any || !fetched->records.empty();
        if (int code = deliver(*fetched, &cursors); code != kExitOk) return code;
      }
      if (got_any || stopping()) continue;
      if (exit_at_end && std::all_of(cursors.begin(), cursors.end(),
                                     [](const Cursor& c) { return c.next >= c.end; })) {
        break;
      }
      // Nothing new anywhere: wait (one long-poll over every partition) for the next append.
      std::vector<http::PartitionPosition> from;
      for (const Cursor& c : cursors) from.push_back({c.partition, c.next});
      ReadOptions ro;
      ro.max_records = batch_limit();
      ro.wait_ms = kFollowWaitMs;
      auto fetched = access_->fetch(topic, from, ro);
      if (!fetched.ok()) {
        if (stopping()) break;
        return fetch_error(fetched.status(), from[0].partition, from[0].offset);
      }
      if (int code = deliver(*fetched, &cursors); code != kExitOk) return code;
    }
    return commit_cursors(cursors);
  }

  int run_group() {
    Log* log = session_->log.get();
    ConsumerOptions options;
    options.group = group;
    options.topics = {topic};
    options.client_id = "factoryd-consume";
    if (offset_ && offset_->kind == OffsetSpec::Kind::kEnd) {
      options.auto_offset_reset = ConsumerOptions::Reset::kLatest;
    }
    auto subscribed = log->subscribe(options);
    if (!subscribed.ok()) {
      if (subscribed.status().is_not_found()) return topic_not_found(*common_, topic);
      return status_error("cannot join consumer group '" + group + "'", subscribed.status(),
                          "check the group name");
    }
    std::unique_ptr<Consumer> consumer = std::move(*subscribed);

    std::map<TopicPartition, Offset> position;  // next offset per partition, once known
    // The group assigns partitions inside poll(), so -o is applied to each
    // partition the first time it shows up in the assignment; what that poll
    // returned for it is dropped.
    const bool want_seek = offset_ && offset_->kind != OffsetSpec::Kind::kStored;
    std::set<TopicPartition> seeked;

    int64_t wait_ms = exit_at_end ? 0 : kFollowWaitMs;
    while (!stopping() && remaining() > 0) {
      auto batch = consumer->poll(batch_limit(), wait_ms);
      if (!batch.ok()) {
        if (batch.status().is_not_found()) return topic_not_found(*common_, topic);
        return status_error("polling group '" + group + "'", batch.status(), "retry");
      }
      if (want_seek) {
        std::set<TopicPartition> fresh;
        for (const TopicPartition& tp : consumer->assignment()) {
          if (seeked.count(tp)) continue;
          auto start = start_offset(tp.partition);
          if (!start.ok()) return status_error("", start.status(), "");
          Status s = consumer->seek(tp, *start);
          if (!s.ok()) {
            return status_error("cannot seek partition " + std::to_string(tp.partition), s, "");
          }
          position[tp] = *start;
          seeked.insert(tp);
          fresh.insert(tp);
        }
        if (!fresh.empty()) {
          std::erase_if(*batch, [&](const ConsumerRecord& cr) {
            return fresh.count({cr.topic, cr.record.partition}) > 0;
          });
          if (batch->empty()) {
            wait_ms = 0;  // poll again at once from the new positions
            continue;
          }
        }
      }
      if (batch->empty()) {
        if (exit_at_end) {
          auto caught_up = caught_up_with(consumer.get(), options, &position);
          if (!caught_up.ok()) return status_error("", caught_up.status(), "retry");
          if (*caught_up) break;
        }
        wait_ms = kFollowWaitMs;
        continue;
      }
      std::vector<Record> records;
      records.reserve(batch->size());
      for (ConsumerRecord& cr : *batch) {
        position[{cr.topic, cr.record.partition}] = Offset(cr.record.offset.value() + 1);
        records.push_back(std::move(cr.record));
      }
      // Uncommitted records are delivered again: never commit what was not
      // written out.
      if (!print(topic, records, records.size())) return broken_stdout();
      Status s = consumer->commit();
      if (!s.ok()) {
        return status_error("committing offsets for group '" + group + "'", s,
                            "the printed records will be delivered again; retry");
      }
    }
    Status s = consumer->commit();
    if (!s.ok()) return status_error("committing offsets for group '" + group + "'", s, "retry");
    return kExitOk;
  }

  // True when every assigned partition's position has reached its log end.
  Result<bool> caught_up_with(Consumer* consumer, const ConsumerOptions& options,
                              std::map<TopicPartition, Offset>* position) {
    Log* log = session_->log.get();
    for (const TopicPartition& tp : consumer->assignment()) {
      auto pi = log->partition_info(tp.topic, tp.partition);
      if (!pi.ok()) return pi.status();
      auto it = position->find(tp);
      Offset pos;
      if (it != position->end()) {
        pos = it->second;
      } else {
        auto committed = log->committed_offset(group, tp.topic, tp.partition);
        if (!committed.ok()) return committed.status();
        if (committed->has_value()) {
          pos = **committed;
        } else {
          pos = options.auto_offset_reset == ConsumerOptions::Reset::kLatest ? pi->log_end
                                                                             : pi->log_start;
        }
      }
      if (pos < pi->log_end) return false;
    }
    return true;
  }

  int broken_stdout() {
    // The reader went away (e.g. `| head`); what was not written is not
    // committed.
    return runtime_error("cannot write to stdout", "records not printed were not committed");
  }

  const CommonOptions* common_;
  std::optional<LogSession> session_;
  http::LogAccess* access_ = nullptr;  // session_'s
  std::optional<OffsetSpec> offset_;
  RecordFormat format_;
  int64_t printed_ = 0;
};

}  // namespace

void add_consume_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  auto cmd = std::make_unique<Consume>(common);
  CLI::App* app = root->add_subcommand(
      "consume", "Print a topic's records (like kcat -C); --output sets the format here");
  app->add_option("topic", cmd->topic, "Topic name")->required();
  app->add_option("-g,--group", cmd->group, "Consume as a member of this group and commit");
  app->add_option("-p,--partition", cmd->partition, "Read only this partition (not with -g)");
  app->add_option("-o,--offset", cmd->offset_arg,
                  "Start: beginning (default), end, stored, N, -N (N before the end), "
                  "@TIMESTAMP_MS");
  app->add_option("-n,--limit", cmd->count, "Stop after N records")->check(CLI::NonNegativeNumber);
  add_deprecated_option(app, "-c", &cmd->count, "-c N", "-n N")->check(CLI::NonNegativeNumber);
  add_deprecated_option(app, "--count", &cmd->count, "--count N", "--limit N")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("-e,--exit", cmd->exit_at_end, "Exit once caught up with the end of the log");
  app->add_option("-f,--format", cmd->format_arg,
                  "kcat format: %t topic %p partition %o offset %k key %s "
                  "value %T timestamp "
                  "%h headers %K/%S key/value length %% and \\n \\t \\\\ "
                  "(default: value per line)");
  add_common_options(app, common, "--output");
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
