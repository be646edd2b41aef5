// factoryd produce TOPIC [-k KEY] [-p PARTITION] [-H name=value]... [-K SEP]
// [--acks]
//
// Reads stdin, one record per line (an empty line is an empty-string value).
// Lines are batched for throughput — up to kMaxBatchRecords lines, or fewer
// when no more input is immediately available (poll() on fd 0) — so an
// interactive or slow writer still gets each line appended and acknowledged
// promptly. Each batch is one synced append; with --acks the batch's positions
// are printed ("PARTITION OFFSET", in input order) and stdout flushed after the
// append returns. Against a running daemon each batch is one POST
// /api/v1/topics/T/records (one append there too), with smaller batches so an
// escaped JSON body stays under the route's 8 MiB limit.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "cli/log_session.h"
#include "factory/topic.h"

namespace factory::cli {
namespace {

// -K's separator as kcat reads it: \t, \r and \\ are a tab, a carriage return and a backslash
// (a shell passes '\t' as two characters); any other backslash stays as it is.
std::string unescape_separator(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size()) {
      const char next = in[i + 1];
      const char c = next == 't' ? '\t' : next == 'r' ? '\r' : next == '\\' ? '\\' : 0;
      if (c) {
        out.push_back(c);
        ++i;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

constexpr size_t kMaxBatchRecords = 1000;
constexpr size_t kMaxBatchBytes = 4 << 20;
constexpr size_t kMaxRemoteBatchBytes = 1 << 20;  // JSON escaping grows a body up to 6x
constexpr size_t kReadChunk = 64 << 10;

// Splits a file descriptor's bytes into lines and says whether a read would
// block. Not thread-safe; the fd is borrowed and must stay open while the
// reader is used.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // Blocks until some input or EOF arrives; appends each completed line
  // (without '\n') to *lines. At EOF a final unterminated line is appended too
  // and eof() becomes true.
  Status fill(std::vector<std::string>* lines, size_t* bytes) {
    char buf[kReadChunk];
    ssize_t n;
    do {
      n = ::read(fd_, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Status::io_error(std::string("reading stdin: ") + std::strerror(errno));
    if (n == 0) {
      eof_ = true;
      if (!partial_.empty()) {
        *bytes += partial_.size();
        lines->push_back(std::move(partial_));
        partial_.clear();
      }
      return Status();
    }
    std::string_view chunk(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl = chunk.find('\n'); nl != std::string_view::npos; nl = chunk.find('\n', start)) {
      partial_.append(chunk.substr(start, nl - start));
      *bytes += partial_.size();
      lines->push_back(std::move(partial_));
      partial_.clear();
      start = nl + 1;
    }
    partial_.append(chunk.substr(start));
    return Status();
  }

  bool eof() const { return eof_; }

  // True when a read would return at once (data, EOF or an error is pending).
  bool ready() const {
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    return r != 0;
  }

 private:
  int fd_;
  bool eof_ = false;
  std::string partial_;
};

class Produce : public Command {
 public:
  explicit Produce(const CommonOptions* common) : common_(common) {}
  std::string topic;
  std::optional<std::string> key;
  std::optional<int32_t> partition;
  std::vector<std::string> header_args;
  std::optional<std::string> key_separator;
  bool acks = false;

  int run() override {
    if (is_internal_topic(topic)) {
      return runtime_error(internal_topic_refusal(topic, "producing to"),
                           "produce to one of your own topics (factoryd topics list)");
    }
    std::vector<Header> headers;
    for (const std::string& h : header_args) {
      auto kv = split_assignment(h);
      if (!kv) {
        return usage_error("-H '" + h + "' is not name=value",
                           "write headers as -H event-type=spec.created");
      }
      headers.push_back({kv->first, kv->second});
    }
    if (key_separator) *key_separator = unescape_separator(*key_separator);
    if (key_separator && key_separator->empty()) {
      return usage_error("-K needs a non-empty separator", "e.g. -K : for lines like key:value");
    }

    int code = kExitOk;
    auto session = open_log_session(*common_, &code);
    if (!session) return code;
    // Check the topic (and partition) up front, so a typo fails even on empty
    // input.
    auto info = session->access->describe_topic(topic);
    if (!info.ok()) {
      if (info.status().is_not_found()) return topic_not_found(*common_, topic);
      return status_error("cannot read topic '" + topic + "'", info.status(), "retry");
    }
    if (partition && (*partition < 0 || *partition >= info->spec.partitions)) {
      return runtime_error("partition " + std::to_string(*partition) +
                               " does not exist in topic '" + topic + "' (partitions 0.." +
                               std::to_string(info->spec.partitions - 1) + ")",
                           "pass -p within that range, or omit -p to partition by key");
    }

    const size_t max_batch_bytes = session->remote() ? kMaxRemoteBatchBytes : kMaxBatchBytes;
    LineReader reader(STDIN_FILENO);
    std::vector<std::string> pending;
    size_t pending_bytes = 0;
    int64_t next_line = 1;  // input line number of pending[0], for error messages
    while (!reader.eof() || !pending.empty()) {
      if (!reader.eof()) {
        Status s = reader.fill(&pending, &pending_bytes);
        if (!s.ok()) return status_error("", s, "check what is piped into factoryd produce");
      }
      while (pending.size() >= kMaxBatchRecords || pending_bytes >= max_batch_bytes ||
             (!pending.empty() && (reader.eof() || !reader.ready()))) {
        size_t n = std::min(pending.size(), kMaxBatchRecords);
        code = send(session->access.get(), headers, pending, n, next_line);
        if (code != kExitOk) return code;
        for (size_t i = 0; i < n; ++i) pending_bytes -= pending[i].size();
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
        next_line += static_cast<int64_t>(n);
      }
    }
    return kExitOk;
  }

 private:
  // Appends lines[0, n) as one batch and prints their acks. Returns the exit
  // code.
  int send(http::LogAccess* log, const std::vector<Header>& headers,
           const std::vector<std::string>& lines, size_t n, int64_t first_line) {
    std::vector<ProducerRecord> records(n);
    for (size_t i = 0; i < n; ++i) {
      ProducerRecord& r = records[i];
      const std::string& line = lines[i];
      r.headers = headers;
      r.partition = partition;
      size_t sep = key_separator ? line.find(*key_separator) : std::string::npos;
      if (sep != std::string::npos) {
        r.key = line.substr(0, sep);
        r.value = line.substr(sep + key_separator->size());
      } else {
        r.key = key;  // a -K line without the separator has no key (as in kcat)
        r.value = line;
      }
    }
    auto positions = log->append(topic, records, /*sync=*/true);
    if (!positions.ok()) {
      const Status& s = positions.status();
      std::string context = "producing input lines " + std::to_string(first_line) + "-" +
                            std::to_string(first_line + static_cast<int64_t>(n) - 1) +
                            " to topic '" + topic + "' failed (earlier lines were stored)";
      if (s.is_not_found()) return status_error(context, s, "the topic was deleted; recreate it");
      if (s.is_invalid_argument()) {
        return status_error(context, s,
                            "shorten the record or raise the topic's max.message.bytes");
      }
      return status_error(context, s, "check the data dir's disk, then resend these lines");
    }
    if (!acks) return kExitOk;
    std::string out;
    for (const RecordPosition& p : *positions) {
      if (common_->json()) {
        out += JsonObject().num("partition", p.partition).num("offset", p.offset.value()).done();
        out += "\n";
      } else {
        out += std::to_string(p.partition) + " " + std::to_string(p.offset.value()) + "\n";
      }
    }
    if (!write_stdout(out) || !flush_stdout()) {
      return runtime_error("cannot write acks to stdout (lines up to " +
                               std::to_string(first_line + static_cast<int64_t>(n) - 1) +
                               " were stored)",
                           "check where stdout goes");
    }
    return kExitOk;
  }

  const CommonOptions* common_;
};

}  // namespace

void add_produce_command(CLI::App* root, CommandRegistry* registry) {
  CommonOptions* common = registry->common();
  auto cmd = std::make_unique<Produce>(common);
  CLI::App* app = root->add_subcommand(
      "produce", "Append stdin to a topic, one record per line (like kcat -P)");
  app->add_option("topic", cmd->topic, "Topic name")->required();
  CLI::Option* key = app->add_option("-k,--key", cmd->key, "Key for every record");
  app->add_option("-p,--partition", cmd->partition,
                  "Partition for every record (default: murmur2 of the key, as Kafka)");
  app->add_option("-H,--header", cmd->header_args, "Header name=value on every record, repeatable")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("-K,--key-delimiter", cmd->key_separator,
                  "Split each line at the first SEP into key and value (\\t: a tab)")
      ->excludes(key);
  app->add_flag("--acks", cmd->acks,
                "Print 'PARTITION OFFSET' per record once it is stored, in input order");
  add_common_options(app, common);
  registry->add(app, std::move(cmd));
}

}  // namespace factory::cli
