#include "http/log_access.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "factory/topic.h"
#include "http/client.h"
#include "http/router.h"

namespace factory::http {

namespace json = boost::json;

namespace {

// FailedPrecondition for an action on an internal topic (factory/topic.h): the CLI's local
// paths refuse what the API refuses with 403 internal_topic.
Status refuse_internal(std::string_view topic, std::string_view what) {
  return Status::failed_precondition(internal_topic_refusal(topic, what));
}

int64_t record_bytes(const Record& r) {
  int64_t n = static_cast<int64_t>((r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0));
  for (const Header& h : r.headers) n += static_cast<int64_t>(h.key.size() + h.value.size());
  return n;
}

// ---------------------------------------------------------------------------------------------
// Local: straight onto a Log.

class LocalLogAccess final : public LogAccess {
 public:
  LocalLogAccess(Log* log, std::string dlq_suffix)
      : log_(log), dlq_suffix_(std::move(dlq_suffix)) {}

  Status create_topic(const TopicSpec& spec) override {
    if (is_internal_topic(spec.name)) return refuse_internal(spec.name, "creating");
    return log_->create_topic(spec);
  }
  Result<TopicChange> apply_topic(const TopicSpec& spec) override {
    // Tuning an internal topic's config stays allowed (api_log.cpp); creating one does not.
    if (is_internal_topic(spec.name) && log_->describe_topic(spec.name).status().is_not_found()) {
      return refuse_internal(spec.name, "creating");
    }
    return log_->apply_topic(spec);
  }
  Status delete_topic(std::string_view name) override {
    if (is_internal_topic(name)) return refuse_internal(name, "deleting");
    return log_->delete_topic(name);
  }
  Result<std::vector<std::string>> list_topics() override { return log_->list_topics(); }
  Result<TopicInfo> describe_topic(std::string_view name) override {
    return log_->describe_topic(name);
  }

  Result<std::vector<TopicInfo>> describe_topics() override {
    std::vector<TopicInfo> out;
    for (const std::string& name : log_->list_topics()) {
      auto info = log_->describe_topic(name);
      if (info.status().is_not_found()) continue;  // deleted since the listing
      if (!info.ok()) return info.status();
      out.push_back(std::move(*info));
    }
    return out;
  }

  Result<std::vector<RecordPosition>> append(std::string_view topic,
                                             std::span<const ProducerRecord> records,
                                             bool sync) override {
    if (is_internal_topic(topic)) return refuse_internal(topic, "producing to");
    AppendOptions options;
    options.sync = sync;
    return log_->append(topic, records, options);
  }

  Result<MultiFetch> fetch(std::string_view topic, std::span<const PartitionPosition> from,
                           const ReadOptions& options) override {
    if (from.empty()) return Status::invalid_argument("no partition to fetch from");
    if (from.size() == 1) {
      // One partition: the log's own long-poll, woken by appends to that partition.
      auto r = log_->read(topic, from[0].partition, from[0].offset, options);
      if (!r.ok()) return r.status();
      MultiFetch out;
      Offset next =
          r->records.empty() ? from[0].offset : Offset(r->records.back().offset.value() + 1);
      out.partitions.push_back({from[0].partition, next, r->log_start, r->log_end});
      out.records = std::move(r->records);
      return out;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.wait_ms);
    while (true) {
      // The sequence is taken before the reads: an append racing them ends the wait at once.
      uint64_t seq = log_->append_sequence();
      auto out = fetch_once(topic, from, options);
      if (!out.ok() || !out->records.empty()) return out;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return out;
      log_->wait_for_append(seq, left);
    }
  }

  Result<std::vector<PartitionPosition>> offsets_for_timestamp(std::string_view topic,
                                                               int64_t timestamp_ms) override {
    auto info = log_->describe_topic(topic);
    if (!info.ok()) return info.status();
    std::vector<PartitionPosition> out;
    for (const PartitionInfo& p : info->partitions) {
      auto o = log_->offset_for_timestamp(topic, p.partition, timestamp_ms);
      if (!o.ok()) return o.status();
      out.push_back({p.partition, *o});
    }
    return out;
  }

  Result<std::vector<std::string>> list_groups() override { return log_->list_groups(); }
  Result<GroupDescription> describe_group(std::string_view group) override {
    return log_->describe_group(group);
  }
  Result<std::vector<TopicPartitionOffset>> reset_offsets(std::string_view group,
                                                          std::string_view topic,
                                                          const OffsetResetSpec& spec,
                                                          bool execute) override {
    if (is_internal_topic(topic)) return refuse_internal(topic, "resetting offsets on");
    return log_->reset_offsets(group, topic, spec, execute);
  }

  Status commit_offsets(std::string_view group, std::span<const TopicPartitionOffset> offsets,
                        bool sync) override {
    if (group.empty()) return Status::invalid_argument("group name is empty; give a group id");
    auto desc = log_->describe_group(group);
    if (desc.ok() && desc->state == "Stable") {
      return Status::failed_precondition(
          "consumer group '" + std::string(group) +
          "' has active members in the daemon; they own its offsets, so a simple consumer "
          "cannot commit for it; use another group name");
    }
    std::map<std::string, TopicInfo, std::less<>> topics;
    for (const TopicPartitionOffset& o : offsets) {
      auto it = topics.find(o.topic);
      if (it == topics.end()) {
        auto info = log_->describe_topic(o.topic);
        if (!info.ok()) return info.status();
        it = topics.emplace(o.topic, std::move(*info)).first;
      }
      const TopicInfo& info = it->second;
      if (o.partition < 0 || o.partition >= info.spec.partitions) continue;  // the log names it
      Offset end = info.partitions[static_cast<size_t>(o.partition)].log_end;
      if (o.offset > end) {
        return Status::invalid_argument(
            "offset " + std::to_string(o.offset.value()) + " is beyond the log end " +
            std::to_string(end.value()) + " of topic '" + o.topic + "' partition " +
            std::to_string(o.partition) + "; commit the offset after the last record processed");
      }
    }
    return log_->commit_offsets(group, offsets, sync);
  }

  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view topic,
                                                    int64_t limit) override {
    std::vector<std::string> topics;
    if (!topic.empty()) {
      topics.emplace_back(topic);
    } else {
      for (const std::string& t : log_->list_topics()) {
        if (t.ends_with(dlq_suffix_)) topics.push_back(t);
      }
    }
    std::vector<DeadLetter> out;
    for (const std::string& t : topics) {
      Status s = read_all(t, limit, &out);
      if (!s.ok()) return s;
    }
    return out;
  }

  Result<std::vector<ReplayRow>> replay_dead_letters(std::string_view topic,
                                                     const ReplaySelector& selector,
                                                     bool execute) override {
    std::vector<DeadLetter> letters;
    Status s = read_all(std::string(topic), 0, &letters);
    if (!s.ok()) return s;
    std::map<std::string, std::vector<ProducerRecord>> by_source;
    int chosen = 0;
    for (const DeadLetter& d : letters) {
      if (!selector.all && (d.record.partition != selector.partition ||
                            d.record.offset.value() != selector.offset)) {
        continue;
      }
      ++chosen;
      std::string from = std::string(topic) + "/" + std::to_string(d.record.partition) + "/" +
                         std::to_string(d.record.offset.value());
      std::string source = d.header("factory.source.topic");
      // The header is whatever the letter's producer wrote: replaying into an internal topic
      // would be a produce to it. A dry run shows it (the API answers it with 403).
      if (execute && is_internal_topic(source)) {
        return refuse_internal(source, "replaying dead letter " + from + " into");
      }
      if (source.empty()) {
        return Status::invalid_argument(
            "dead letter " + from +
            " has no factory.source.topic header; it was not written by factoryd; produce it "
            "by hand instead");
      }
      ProducerRecord r;
      r.key = d.record.key;
      r.value = d.record.value;
      for (const Header& h : d.record.headers) {
        if (!h.key.starts_with("factory.")) r.headers.push_back(h);
      }
      if (!d.header("factory.dlq.by_reference").empty()) {
        // The letter was too big for its topic: the record to replay is at its source.
        auto original = read_source(d, from);
        if (!original.ok()) return original.status();
        r.key = original->key;
        r.value = original->value;
        r.headers.clear();
        for (const Header& h : original->headers) {
          if (!h.key.starts_with("factory.")) r.headers.push_back(h);
        }
      }
      r.headers.push_back({"factory.replayed_from", from});
      // One producer per dead letter: replays in any order, each at most once.
      r.producer_id = "dlq-replay/" + from;
      r.sequence = 0;
      by_source[source].push_back(std::move(r));
    }
    if (chosen == 0) {
      std::string what = selector.all
                             ? "in " + std::string(topic)
                             : std::to_string(selector.partition) + ":" +
                                   std::to_string(selector.offset) + " in " + std::string(topic);
      return Status::not_found("no dead letter " + what + "; list them with factoryd dlq list " +
                               std::string(topic));
    }
    std::vector<ReplayRow> rows;
    for (auto& [source, records] : by_source) {
      if (!execute) {
        auto replayed = replayed_into(source);
        if (!replayed.ok()) return replayed.status();
        for (const ProducerRecord& r : records) {
          const std::string& from = r.headers.back().value;
          rows.push_back({from,
                          source,
                          replayed->count(from) ? ReplayRow::Result::kAlreadyReplayed
                                                : ReplayRow::Result::kWouldReplay,
                          {}});
        }
        continue;
      }
      auto pos = log_->append(source, records);
      if (!pos.ok()) {
        const Status& e = pos.status();
        std::string message = "cannot replay into " + source + ": " + e.message();
        if (e.is_not_found()) return Status::not_found(message);
        if (e.is_invalid_argument()) return Status::invalid_argument(message);
        return Status::io_error(message);
      }
      for (size_t i = 0; i < records.size(); ++i) {
        const RecordPosition& p = (*pos)[i];
        rows.push_back(
            {records[i].headers.back().value, source,
             p.duplicate ? ReplayRow::Result::kAlreadyReplayed : ReplayRow::Result::kReplayed, p});
      }
    }
    return rows;
  }

 private:
  // The source record a by-reference dead letter names.
  Result<Record> read_source(const DeadLetter& d, const std::string& from) {
    const std::string topic = d.header("factory.source.topic");
    int32_t partition = 0;
    int64_t offset = 0;
    try {
      partition = std::stoi(d.header("factory.source.partition"));
      offset = std::stoll(d.header("factory.source.offset"));
    } catch (const std::exception&) {
      return Status::invalid_argument("dead letter " + from +
                                      " is stored by reference but its factory.source.partition "
                                      "or factory.source.offset header is not a number");
    }
    auto r = log_->read(topic, partition, Offset(offset), {.max_records = 1, .max_bytes = 1});
    if (!r.ok() || r->records.empty() || r->records[0].offset.value() != offset) {
      return Status::not_found("dead letter " + from + " is stored by reference (" +
                               d.header("factory.dlq.by_reference") +
                               ") and that record is no longer in the log" +
                               (r.ok() ? std::string() : " (" + r.status().message() + ")") +
                               "; it cannot be replayed — produce the event again by hand");
    }
    return std::move(r->records[0]);
  }

  // One pass over `from` without waiting.
  Result<MultiFetch> fetch_once(std::string_view topic, std::span<const PartitionPosition> from,
                                const ReadOptions& options) {
    MultiFetch out;
    int64_t bytes = 0;
    for (const PartitionPosition& pos : from) {
      int64_t left = options.max_records - static_cast<int64_t>(out.records.size());
      bool full = left <= 0 || (!out.records.empty() && bytes >= options.max_bytes);
      if (full) {
        auto pi = log_->partition_info(topic, pos.partition);
        if (!pi.ok()) return pi.status();
        out.partitions.push_back({pos.partition, pos.offset, pi->log_start, pi->log_end});
        continue;
      }
      ReadOptions ro;
      ro.max_records = static_cast<int32_t>(left);
      ro.max_bytes = std::max<int64_t>(1, options.max_bytes - bytes);
      auto r = log_->read(topic, pos.partition, pos.offset, ro);
      if (!r.ok()) return r.status();
      Offset next = pos.offset;
      for (Record& rec : r->records) {
        next = Offset(rec.offset.value() + 1);
        bytes += record_bytes(rec);
        out.records.push_back(std::move(rec));
      }
      out.partitions.push_back({pos.partition, next, r->log_start, r->log_end});
    }
    return out;
  }

  // The dead letters already replayed into `source`: the factory.replayed_from headers of its
  // records ("<dlq>/<p>/<o>"). A dry run's answer to what --execute would skip (the log's
  // producer memory, which decides it, cannot be asked without appending): one read of the
  // topic. A copy that retention already deleted is not seen (the dry run then says
  // would_replay; the replay itself still appends nothing). A missing topic: none.
  Result<std::set<std::string>> replayed_into(const std::string& source) {
    std::set<std::string> out;
    auto info = log_->describe_topic(source);
    if (!info.ok()) {
      if (info.status().is_not_found()) return out;
      return info.status();
    }
    for (const PartitionInfo& p : info->partitions) {
      int64_t next = p.log_start.value();
      while (next < p.log_end.value()) {
        auto r = log_->read(source, p.partition, Offset(next), {.max_records = 1000});
        if (!r.ok()) return r.status();
        if (r->records.empty()) break;
        for (const Record& rec : r->records) {
          next = rec.offset.value() + 1;
          for (const Header& h : rec.headers) {
            if (h.key == "factory.replayed_from") out.insert(h.value);
          }
        }
      }
    }
    return out;
  }

  // Every record of `topic` from its log start; stops once *out holds `limit` (0: no limit).
  Status read_all(const std::string& topic, int64_t limit, std::vector<DeadLetter>* out) {
    auto info = log_->describe_topic(topic);
    if (!info.ok()) return info.status();
    for (const PartitionInfo& p : info->partitions) {
      int64_t next = p.log_start.value();
      while (next < p.log_end.value()) {
        auto r = log_->read(topic, p.partition, Offset(next), {.max_records = 1000});
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

  Log* log_;
  std::string dlq_suffix_;
};

// ---------------------------------------------------------------------------------------------
// Remote: the daemon's /api/v1.

class RemoteLogAccess final : public LogAccess {
 public:
  explicit RemoteLogAccess(Client* client) : client_(client) {}

  Status create_topic(const TopicSpec& spec) override {
    return call("POST", "/api/v1/topics", topic_spec_json(spec, true)).status();
  }
  Result<TopicChange> apply_topic(const TopicSpec& spec) override {
    auto v = call("PUT", topic_path(spec.name), topic_spec_json(spec, false));
    if (!v.ok()) return v.status();
    return parse_topic_change(*v);
  }
  Status delete_topic(std::string_view name) override {
    return call("DELETE", topic_path(name), {}).status();
  }
  Result<std::vector<std::string>> list_topics() override {
    auto infos = describe_topics();
    if (!infos.ok()) return infos.status();
    std::vector<std::string> names;
    for (const TopicInfo& i : *infos) names.push_back(i.spec.name);
    return names;
  }
  Result<TopicInfo> describe_topic(std::string_view name) override {
    auto v = call("GET", topic_path(name), {});
    if (!v.ok()) return v.status();
    return parse_topic(*v);
  }
  Result<std::vector<TopicInfo>> describe_topics() override {
    auto v = call("GET", "/api/v1/topics", {});
    if (!v.ok()) return v.status();
    return parse_topics(*v);
  }

  Result<std::vector<RecordPosition>> append(std::string_view topic,
                                             std::span<const ProducerRecord> records,
                                             bool sync) override {
    auto v = call("POST", topic_path(topic) + "/records", produce_json(records, sync));
    if (!v.ok()) return v.status();
    return parse_positions(*v);
  }

  Result<MultiFetch> fetch(std::string_view topic, std::span<const PartitionPosition> from,
                           const ReadOptions& options) override {
    if (from.empty()) return Status::invalid_argument("no partition to fetch from");
    std::string target = topic_path(topic) + "/records?";
    if (from.size() == 1) {
      target += "partition=" + std::to_string(from[0].partition) +
                "&offset=" + std::to_string(from[0].offset.value());
    } else {
      target += "positions=";
      for (size_t i = 0; i < from.size(); ++i) {
        if (i) target += "%2C";
        target +=
            std::to_string(from[i].partition) + "%3A" + std::to_string(from[i].offset.value());
      }
    }
    target += "&max_records=" + std::to_string(options.max_records) +
              "&max_bytes=" + std::to_string(options.max_bytes) +
              "&wait_ms=" + std::to_string(options.wait_ms);
    auto v = call("GET", target, {});
    if (!v.ok()) return v.status();
    return parse_fetch(*v);
  }

  Result<std::vector<PartitionPosition>> offsets_for_timestamp(std::string_view topic,
                                                               int64_t timestamp_ms) override {
    auto v = call("GET",
                  topic_path(topic) + "/offsets?timestamp_ms=" + std::to_string(timestamp_ms), {});
    if (!v.ok()) return v.status();
    auto positions = parse_positions(*v);
    if (!positions.ok()) return positions.status();
    std::vector<PartitionPosition> out;
    for (const RecordPosition& p : *positions) out.push_back({p.partition, p.offset});
    return out;
  }

  Result<std::vector<std::string>> list_groups() override {
    auto v = call("GET", "/api/v1/groups", {});
    if (!v.ok()) return v.status();
    std::vector<std::string> names;
    const json::object* o = v->if_object();
    const json::value* groups = o ? o->if_contains("groups") : nullptr;
    if (!groups || !groups->is_array()) {
      return Status::invalid_argument("response.groups must be an array");
    }
    for (const json::value& g : groups->get_array()) {
      const json::object* go = g.if_object();
      const json::value* name = go ? go->if_contains("group") : nullptr;
      if (!name || !name->is_string()) {
        return Status::invalid_argument("response.groups[].group must be a string");
      }
      names.emplace_back(name->get_string());
    }
    return names;
  }
  Result<GroupDescription> describe_group(std::string_view group) override {
    auto v = call("GET", group_path(group), {});
    if (!v.ok()) return v.status();
    return parse_group(*v);
  }
  Result<std::vector<TopicPartitionOffset>> reset_offsets(std::string_view group,
                                                          std::string_view topic,
                                                          const OffsetResetSpec& spec,
                                                          bool execute) override {
    json::object body;
    body["topic"] = topic;
    switch (spec.kind) {
      case OffsetResetSpec::Kind::kEarliest:
        body["to"] = "earliest";
        break;
      case OffsetResetSpec::Kind::kLatest:
        body["to"] = "latest";
        break;
      case OffsetResetSpec::Kind::kOffset:
        body["to"] = "offset";
        body["offset"] = spec.value;
        break;
      case OffsetResetSpec::Kind::kTimestamp:
        body["to"] = "timestamp";
        body["timestamp_ms"] = spec.value;
        break;
    }
    body["execute"] = execute;
    auto v = call("POST", group_path(group) + "/reset-offsets", json::serialize(body));
    if (!v.ok()) return v.status();
    return parse_reset_plan(*v);
  }
  Status commit_offsets(std::string_view group, std::span<const TopicPartitionOffset> offsets,
                        bool sync) override {
    return call("POST", group_path(group) + "/offsets", commit_json(offsets, sync)).status();
  }

  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view topic,
                                                    int64_t limit) override {
    std::string target = "/api/v1/dead-letters?limit=" + std::to_string(limit);
    if (!topic.empty()) target += "&topic=" + url_encode(topic);
    auto v = call("GET", target, {});
    if (!v.ok()) return v.status();
    return parse_dead_letters(*v);
  }
  Result<std::vector<ReplayRow>> replay_dead_letters(std::string_view topic,
                                                     const ReplaySelector& selector,
                                                     bool execute) override {
    json::object body;
    body["topic"] = topic;
    if (selector.all) {
      body["all"] = true;
    } else {
      body["partition"] = selector.partition;
      body["offset"] = selector.offset;
    }
    body["execute"] = execute;
    auto v = call("POST", "/api/v1/dead-letters/replay", json::serialize(body));
    if (!v.ok()) return v.status();
    return parse_replay(*v);
  }

 private:
  static std::string topic_path(std::string_view topic) {
    return "/api/v1/topics/" + url_encode(topic);
  }
  static std::string group_path(std::string_view group) {
    return "/api/v1/groups/" + url_encode(group);
  }

  // One request. A 2xx body parsed as JSON (null when empty); else the error's Status.
  Result<json::value> call(std::string_view method, const std::string& target,
                           std::string_view body) {
    auto r = client_->request(method, target, body);
    const std::string& url = client_->options().url;
    if (!r.ok()) {
      const Status& s = r.status();
      std::string message = "cannot reach the daemon at " + url + ": " + s.message() +
                            "; check that `factoryd serve` runs there, or pass --server";
      if (s.is_timed_out()) return Status::timed_out(message);
      return Status::unavailable(message);
    }
    if (r->status < 200 || r->status >= 300) return status_from_error(r->status, r->body);
    if (r->body.empty()) return json::value();
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    if (ec) {
      return Status::internal("the daemon at " + url + " answered " + std::string(method) + " " +
                              target + " with invalid JSON: " + ec.message());
    }
    return v;
  }

  Client* client_;
};

}  // namespace

std::unique_ptr<LogAccess> local_log_access(Log* log, std::string dlq_suffix) {
  return std::make_unique<LocalLogAccess>(log, std::move(dlq_suffix));
}

std::unique_ptr<LogAccess> remote_log_access(Client* client) {
  return std::make_unique<RemoteLogAccess>(client);
}

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace factory::http
