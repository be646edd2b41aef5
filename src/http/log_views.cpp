#include "http/log_views.h"

#include <algorithm>
#include <tuple>

#include "base/coding.h"
#include "http/json_input.h"

namespace factory::http {

namespace json = boost::json;

namespace {

// Appends compact JSON: the caller writes keys and values in order; commas are automatic.
// Not thread-safe; a short-lived value.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  Writer& begin_object() {
    sep();
    out_->push_back('{');
    first_ = true;
    return *this;
  }
  Writer& end_object() {
    out_->push_back('}');
    first_ = false;
    return *this;
  }
  Writer& begin_array() {
    sep();
    out_->push_back('[');
    first_ = true;
    return *this;
  }
  Writer& end_array() {
    out_->push_back(']');
    first_ = false;
    return *this;
  }
  Writer& key(std::string_view k) {
    sep();
    base::append_json_string(out_, k);
    out_->push_back(':');
    first_ = true;  // the value follows without a comma
    return *this;
  }
  Writer& str(std::string_view v) {
    sep();
    base::append_json_string(out_, v);
    return *this;
  }
  Writer& num(int64_t v) {
    sep();
    out_->append(std::to_string(v));
    return *this;
  }
  Writer& boolean(bool v) {
    sep();
    out_->append(v ? "true" : "false");
    return *this;
  }
  Writer& null() {
    sep();
    out_->append("null");
    return *this;
  }
  Writer& raw(std::string_view v) {
    sep();
    out_->append(v);
    return *this;
  }
  // "name":"text" when valid UTF-8, else "name_b64":"..."; "name":null for nullopt.
  Writer& bytes(std::string_view name, const std::optional<std::string>& v) {
    if (!v) return key(name).null();
    return bytes(name, std::string_view(*v));
  }
  Writer& bytes(std::string_view name, std::string_view v) {
    if (is_valid_utf8(v)) return key(name).str(v);
    sep();
    out_->push_back('"');
    out_->append(name);
    out_->append("_b64\":\"");
    out_->append(base64_encode(v));
    out_->push_back('"');
    return *this;
  }

 private:
  void sep() {
    if (!first_) out_->push_back(',');
    first_ = false;
  }
  std::string* out_;
  bool first_ = true;
};

// A number when the text is a plain base-10 int64 (how topic config values print).
void write_config_value(Writer* w, std::string_view text) {
  int64_t n;
  if (base::parse_int64(text, &n)) {
    w->num(n);
  } else {
    w->str(text);
  }
}

void write_config(Writer* w, const TopicConfig& config) {
  w->begin_object();
  for (const auto& [k, v] : topic_config_entries(config)) {
    w->key(k);
    write_config_value(w, v);
  }
  w->end_object();
}

// The record's members, inside an object the caller opened.
void write_record_fields(Writer* w, const Record& r) {
  w->key("partition")
      .num(r.partition)
      .key("offset")
      .num(r.offset.value())
      .key("timestamp")
      .num(r.timestamp_ms)
      .bytes("key", r.key)
      .bytes("value", r.value)
      .key("headers")
      .begin_array();
  for (const Header& h : r.headers) {
    w->begin_object().bytes("name", std::string_view(h.key));
    w->bytes("value", std::string_view(h.value)).end_object();
  }
  w->end_array();
}

void write_record(Writer* w, const Record& r) {
  w->begin_object();
  write_record_fields(w, r);
  w->end_object();
}

Status shape_error(std::string_view where, std::string_view what) {
  return Status::invalid_argument(std::string(where) + " " + std::string(what));
}

const json::object* as_object(const json::value& v) { return v.if_object(); }

// A required array member `name` of `v`; sets *s on error.
const json::array* required_array(const json::value& v, std::string_view name,
                                  std::string_view where, Status* s) {
  const json::object* o = as_object(v);
  if (!o) {
    *s = shape_error(where, "must be an object");
    return nullptr;
  }
  FieldReader r(*o, std::string(where), {});
  r.require(name);
  const json::array* a = r.array(name);
  if (!r.status().ok()) *s = r.status();
  return a;
}

// The required array of objects `name` of the response `v`, one T per element:
// `each(reader, element, where)` reads the element's fields through `reader`, which names the
// element ("response.<name>[i]") in its errors. The first error, a field's before the row's, ends
// the read.
template <typename T, typename Each>
Result<std::vector<T>> parse_rows(const json::value& v, std::string_view name, Each each) {
  Status s;
  const json::array* a = required_array(v, name, "response", &s);
  if (!s.ok()) return s;
  std::vector<T> out;
  out.reserve(a->size());
  for (size_t i = 0; i < a->size(); ++i) {
    std::string where = "response." + std::string(name) + "[" + std::to_string(i) + "]";
    const json::object* o = (*a)[i].if_object();
    if (!o) return shape_error(where, "must be an object");
    FieldReader r(*o, where, {});
    Result<T> row = each(r, (*a)[i], where);
    if (!r.status().ok()) return r.status();
    if (!row.ok()) return row.status();
    out.push_back(std::move(*row));
  }
  return out;
}

}  // namespace

// --- Writers ---

std::string_view replay_result_name(ReplayRow::Result r) {
  switch (r) {
    case ReplayRow::Result::kWouldReplay:
      return "would_replay";
    case ReplayRow::Result::kReplayed:
      return "replayed";
    case ReplayRow::Result::kAlreadyReplayed:
      return "already_replayed";
  }
  return "would_replay";
}

std::string_view topic_change_name(TopicChange change) {
  switch (change) {
    case TopicChange::kCreated:
      return "created";
    case TopicChange::kUpdated:
      return "updated";
    case TopicChange::kUnchanged:
      return "unchanged";
  }
  return "unchanged";
}

std::string DeadLetter::header(std::string_view name) const {
  return last_header(record.headers, name);
}

namespace {

void write_topic(Writer* w, const TopicInfo& info) {
  w->begin_object()
      .key("topic")
      .str(info.spec.name)
      .key("partition_count")
      .num(info.spec.partitions)
      .key("config");
  write_config(w, info.spec.config);
  w->key("partitions").begin_array();
  for (const PartitionInfo& p : info.partitions) {
    w->begin_object()
        .key("partition")
        .num(p.partition)
        .key("log_start")
        .num(p.log_start.value())
        .key("log_end")
        .num(p.log_end.value())
        .key("records")
        .num(p.log_end.value() - p.log_start.value())
        .key("size_bytes")
        .num(p.size_bytes)
        .end_object();
  }
  w->end_array().end_object();
}

}  // namespace

std::string topic_json(const TopicInfo& info) {
  std::string out;
  Writer w(&out);
  write_topic(&w, info);
  return out;
}

std::string topics_json(const std::vector<TopicInfo>& infos) {
  std::string out;
  Writer w(&out);
  w.begin_object().key("topics").begin_array();
  for (const TopicInfo& info : infos) write_topic(&w, info);
  w.end_array().end_object();
  return out;
}

std::string topic_change_json(const TopicSpec& spec, TopicChange change) {
  std::string out;
  Writer(&out)
      .begin_object()
      .key("topic")
      .str(spec.name)
      .key("action")
      .str(topic_change_name(change))
      .key("partitions")
      .num(spec.partitions)
      .end_object();
  return out;
}

void append_record_json(std::string* out, const Record& r) {
  Writer w(out);
  write_record(&w, r);
}

std::string fetch_json(std::string_view topic, const MultiFetch& fetch) {
  std::string out;
  size_t guess = 64 + fetch.partitions.size() * 80;
  for (const Record& r : fetch.records) guess += 96 + (r.value ? r.value->size() : 0);
  out.reserve(guess);
  Writer w(&out);
  w.begin_object().key("topic").str(topic);
  if (fetch.partitions.size() == 1) {
    const PartitionFetch& p = fetch.partitions[0];
    w.key("partition")
        .num(p.partition)
        .key("next_offset")
        .num(p.next_offset.value())
        .key("log_start")
        .num(p.log_start.value())
        .key("log_end")
        .num(p.log_end.value());
  }
  w.key("records").begin_array();
  for (const Record& r : fetch.records) write_record(&w, r);
  w.end_array().key("partitions").begin_array();
  for (const PartitionFetch& p : fetch.partitions) {
    w.begin_object()
        .key("partition")
        .num(p.partition)
        .key("next_offset")
        .num(p.next_offset.value())
        .key("log_start")
        .num(p.log_start.value())
        .key("log_end")
        .num(p.log_end.value())
        .end_object();
  }
  w.end_array().end_object();
  return out;
}

std::string positions_json(const std::vector<RecordPosition>& positions) {
  std::string out;
  out.reserve(16 + positions.size() * 32);
  out.append("{\"offsets\":[");
  for (size_t i = 0; i < positions.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"partition\":");
    out.append(std::to_string(positions[i].partition));
    out.append(",\"offset\":");
    out.append(std::to_string(positions[i].offset.value()));
    out.push_back('}');
  }
  out.append("]}");
  return out;
}

std::string group_json(const GroupDescription& desc) {
  std::vector<GroupPartitionLag> rows = desc.partitions;
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
  std::string out;
  Writer w(&out);
  w.begin_object()
      .key("group")
      .str(desc.group)
      .key("state")
      .str(desc.state)
      .key("partitions")
      .begin_array();
  for (const GroupPartitionLag& r : rows) {
    w.begin_object().key("topic").str(r.topic).key("partition").num(r.partition);
    w.key("current_offset");
    if (r.committed) {
      w.num(r.committed->value());
    } else {
      w.null();
    }
    w.key("log_end_offset")
        .num(r.log_end.value())
        .key("lag")
        .num(r.lag)
        .key("consumer_id")
        .str(r.member)
        .end_object();
  }
  w.end_array().end_object();
  return out;
}

std::string reset_plan_json(std::string_view group, bool executed,
                            const std::vector<TopicPartitionOffset>& plan) {
  std::string out;
  Writer w(&out);
  w.begin_object()
      .key("group")
      .str(group)
      .key("executed")
      .boolean(executed)
      .key("offsets")
      .begin_array();
  for (const TopicPartitionOffset& o : plan) {
    w.begin_object()
        .key("topic")
        .str(o.topic)
        .key("partition")
        .num(o.partition)
        .key("new_offset")
        .num(o.offset.value())
        .end_object();
  }
  w.end_array().end_object();
  return out;
}

std::string dead_letters_json(const std::vector<DeadLetter>& letters) {
  std::string out;
  Writer w(&out);
  w.begin_object().key("dead_letters").begin_array();
  for (const DeadLetter& d : letters) {
    // The record's own fields, then the topic and what the factory.* headers say.
    w.begin_object();
    write_record_fields(&w, d.record);
    w.key("topic").str(d.topic);
    static constexpr std::pair<std::string_view, std::string_view> kFields[] = {
        {"source_topic", "factory.source.topic"},
        {"source_partition", "factory.source.partition"},
        {"source_offset", "factory.source.offset"},
        {"stage", "factory.stage"},
        {"attempts", "factory.attempts"},
        {"reason", "factory.dlq.reason"},
    };
    for (const auto& [name, header] : kFields) w.key(name).str(d.header(header));
    w.end_object();
  }
  w.end_array().end_object();
  return out;
}

std::string replay_json(bool executed, const std::vector<ReplayRow>& rows) {
  std::string out;
  Writer w(&out);
  w.begin_object().key("executed").boolean(executed).key("results").begin_array();
  for (const ReplayRow& r : rows) {
    w.begin_object()
        .key("dead_letter")
        .str(r.dead_letter)
        .key("source_topic")
        .str(r.source_topic)
        .key("result")
        .str(replay_result_name(r.result));
    if (r.result == ReplayRow::Result::kReplayed) {
      w.key("partition").num(r.position.partition).key("offset").num(r.position.offset.value());
    }
    w.end_object();
  }
  w.end_array().end_object();
  return out;
}

std::string topic_spec_json(const TopicSpec& spec, bool with_name) {
  std::string out;
  Writer w(&out);
  w.begin_object();
  if (with_name) w.key("name").str(spec.name);
  w.key("partitions").num(spec.partitions).key("config");
  write_config(&w, spec.config);
  w.end_object();
  return out;
}

std::string produce_json(std::span<const ProducerRecord> records, bool sync) {
  std::string out;
  size_t guess = 32;
  for (const ProducerRecord& r : records) guess += 48 + (r.value ? r.value->size() : 0);
  out.reserve(guess);
  Writer w(&out);
  w.begin_object().key("records").begin_array();
  for (const ProducerRecord& r : records) {
    w.begin_object().bytes("key", r.key).bytes("value", r.value);
    if (!r.headers.empty()) {
      // The array form keeps order and repeated names.
      w.key("headers").begin_array();
      for (const Header& h : r.headers) {
        w.begin_object().bytes("name", std::string_view(h.key));
        w.bytes("value", std::string_view(h.value)).end_object();
      }
      w.end_array();
    }
    if (r.partition) w.key("partition").num(*r.partition);
    if (r.timestamp_ms) w.key("timestamp").num(*r.timestamp_ms);
    w.end_object();
  }
  w.end_array();
  if (!sync) w.key("sync").boolean(false);
  w.end_object();
  return out;
}

std::string commit_json(std::span<const TopicPartitionOffset> offsets, bool sync) {
  std::string out;
  Writer w(&out);
  w.begin_object().key("offsets").begin_array();
  for (const TopicPartitionOffset& o : offsets) {
    w.begin_object()
        .key("topic")
        .str(o.topic)
        .key("partition")
        .num(o.partition)
        .key("offset")
        .num(o.offset.value())
        .end_object();
  }
  w.end_array();
  if (!sync) w.key("sync").boolean(false);
  w.end_object();
  return out;
}

// --- Readers ---

Status set_topic_config_json(TopicConfig* config, std::string_view key, const json::value& v,
                             std::string_view where) {
  std::string text;
  if (v.is_int64()) {
    text = std::to_string(v.get_int64());
  } else if (v.is_uint64()) {
    text = std::to_string(v.get_uint64());
  } else if (v.is_string()) {
    text = std::string(v.get_string());
  } else {
    return Status::invalid_argument(std::string(where) + "." + std::string(key) +
                                    " must be an integer or a string");
  }
  Status s = set_topic_config(config, key, text);
  if (!s.ok()) {
    return Status::invalid_argument(std::string(where) + "." + std::string(key) + ": " +
                                    s.message());
  }
  return s;
}

Result<TopicInfo> parse_topic(const json::value& v) {
  const json::object* o = as_object(v);
  if (!o) return shape_error("topic", "must be an object");
  FieldReader r(*o, "topic", {});
  r.require("topic");
  r.require("partition_count");
  r.require("partitions");
  TopicInfo info;
  info.spec.name = r.string("topic").value_or("");
  info.spec.partitions = static_cast<int32_t>(r.int64("partition_count").value_or(0));
  const json::object* config = r.object("config");
  const json::array* parts = r.array("partitions");
  if (!r.status().ok()) return r.status();
  if (config) {
    for (const auto& [k, val] : *config) {
      Status s = set_topic_config_json(&info.spec.config, k, val, "topic.config");
      if (!s.ok()) return s;
    }
  }
  for (size_t i = 0; i < parts->size(); ++i) {
    std::string where = "topic.partitions[" + std::to_string(i) + "]";
    const json::object* po = (*parts)[i].if_object();
    if (!po) return shape_error(where, "must be an object");
    FieldReader pr(*po, where, {});
    pr.require("partition");
    pr.require("log_start");
    pr.require("log_end");
    PartitionInfo p;
    p.partition = static_cast<int32_t>(pr.int64("partition").value_or(0));
    p.log_start = Offset(pr.int64("log_start").value_or(0));
    p.log_end = Offset(pr.int64("log_end").value_or(0));
    p.size_bytes = pr.int64("size_bytes").value_or(0);
    if (!pr.status().ok()) return pr.status();
    info.partitions.push_back(p);
  }
  return info;
}

Result<std::vector<TopicInfo>> parse_topics(const json::value& v) {
  return parse_rows<TopicInfo>(
      v, "topics",
      [](FieldReader&, const json::value& t, const std::string&) { return parse_topic(t); });
}

Result<TopicChange> parse_topic_change(const json::value& v) {
  const json::object* o = as_object(v);
  if (!o) return shape_error("response", "must be an object");
  FieldReader r(*o, "response", {});
  r.require("action");
  std::string action = r.string("action").value_or("");
  if (!r.status().ok()) return r.status();
  for (TopicChange c : {TopicChange::kCreated, TopicChange::kUpdated, TopicChange::kUnchanged}) {
    if (topic_change_name(c) == action) return c;
  }
  return shape_error("response.action", "is not created, updated or unchanged");
}

Result<Record> parse_record(const json::value& v, std::string_view where) {
  const json::object* o = as_object(v);
  if (!o) return shape_error(where, "must be an object");
  FieldReader r(*o, std::string(where), {});
  r.require("partition");
  r.require("offset");
  Record rec;
  rec.partition = static_cast<int32_t>(r.int64("partition").value_or(0));
  rec.offset = Offset(r.int64("offset").value_or(0));
  rec.timestamp_ms = r.int64("timestamp").value_or(0);
  const json::array* headers = r.array("headers");
  if (!r.status().ok()) return r.status();
  Status s = read_bytes(*o, "key", where, true, &rec.key);
  if (s.ok()) s = read_bytes(*o, "value", where, true, &rec.value);
  if (!s.ok()) return s;
  if (headers) {
    for (size_t i = 0; i < headers->size(); ++i) {
      std::string hw = std::string(where) + ".headers[" + std::to_string(i) + "]";
      const json::object* ho = (*headers)[i].if_object();
      if (!ho) return shape_error(hw, "must be an object");
      std::optional<std::string> name, value;
      Status hs = read_bytes(*ho, "name", hw, false, &name);
      if (hs.ok()) hs = read_bytes(*ho, "value", hw, false, &value);
      if (!hs.ok()) return hs;
      rec.headers.push_back({name.value_or(""), value.value_or("")});
    }
  }
  return rec;
}

Result<MultiFetch> parse_fetch(const json::value& v) {
  auto records = parse_rows<Record>(
      v, "records", [](FieldReader&, const json::value& e, const std::string& where) {
        return parse_record(e, where);
      });
  if (!records.ok()) return records.status();
  auto partitions = parse_rows<PartitionFetch>(
      v, "partitions",
      [](FieldReader& r, const json::value&, const std::string&) -> Result<PartitionFetch> {
        r.require("partition");
        r.require("next_offset");
        r.require("log_end");
        PartitionFetch p;
        p.partition = static_cast<int32_t>(r.int64("partition").value_or(0));
        p.next_offset = Offset(r.int64("next_offset").value_or(0));
        p.log_start = Offset(r.int64("log_start").value_or(0));
        p.log_end = Offset(r.int64("log_end").value_or(0));
        return p;
      });
  if (!partitions.ok()) return partitions.status();
  MultiFetch out;
  out.records = std::move(*records);
  out.partitions = std::move(*partitions);
  return out;
}

Result<std::vector<RecordPosition>> parse_positions(const json::value& v) {
  return parse_rows<RecordPosition>(
      v, "offsets",
      [](FieldReader& r, const json::value&, const std::string&) -> Result<RecordPosition> {
        r.require("partition");
        r.require("offset");
        RecordPosition p;
        p.partition = static_cast<int32_t>(r.int64("partition").value_or(0));
        p.offset = Offset(r.int64("offset").value_or(0));
        return p;
      });
}

Result<GroupDescription> parse_group(const json::value& v) {
  auto partitions = parse_rows<GroupPartitionLag>(
      v, "partitions",
      [](FieldReader& r, const json::value&, const std::string&) -> Result<GroupPartitionLag> {
        r.require("topic");
        r.require("partition");
        r.require("log_end_offset");
        GroupPartitionLag row;
        row.topic = r.string("topic").value_or("");
        row.partition = static_cast<int32_t>(r.int64("partition").value_or(0));
        const json::value* current = r.any("current_offset");
        if (current && !current->is_null()) {
          auto c = r.int64("current_offset");
          if (c) row.committed = Offset(*c);
        }
        row.log_end = Offset(r.int64("log_end_offset").value_or(0));
        row.lag = r.int64("lag").value_or(0);
        row.member = r.string("consumer_id").value_or("");
        return row;
      });
  if (!partitions.ok()) return partitions.status();
  FieldReader top(v.get_object(), "response", {});
  GroupDescription d;
  d.group = top.string("group").value_or("");
  d.state = top.string("state").value_or("");
  if (!top.status().ok()) return top.status();
  d.partitions = std::move(*partitions);
  return d;
}

Result<std::vector<TopicPartitionOffset>> parse_reset_plan(const json::value& v) {
  return parse_rows<TopicPartitionOffset>(
      v, "offsets",
      [](FieldReader& r, const json::value&, const std::string&) -> Result<TopicPartitionOffset> {
        r.require("topic");
        r.require("partition");
        r.require("new_offset");
        TopicPartitionOffset tpo;
        tpo.topic = r.string("topic").value_or("");
        tpo.partition = static_cast<int32_t>(r.int64("partition").value_or(0));
        tpo.offset = Offset(r.int64("new_offset").value_or(0));
        return tpo;
      });
}

Result<std::vector<DeadLetter>> parse_dead_letters(const json::value& v) {
  return parse_rows<DeadLetter>(
      v, "dead_letters",
      [](FieldReader& r, const json::value& e, const std::string& where) -> Result<DeadLetter> {
        auto rec = parse_record(e, where);
        if (!rec.ok()) return rec.status();
        r.require("topic");
        return DeadLetter{r.string("topic").value_or(""), std::move(*rec)};
      });
}

Result<std::vector<ReplayRow>> parse_replay(const json::value& v) {
  return parse_rows<ReplayRow>(
      v, "results",
      [](FieldReader& r, const json::value&, const std::string& where) -> Result<ReplayRow> {
        r.require("dead_letter");
        r.require("source_topic");
        r.require("result");
        ReplayRow row;
        row.dead_letter = r.string("dead_letter").value_or("");
        row.source_topic = r.string("source_topic").value_or("");
        std::string result = r.string("result").value_or("");
        row.position.partition = static_cast<int32_t>(r.int64("partition").value_or(-1));
        row.position.offset = Offset(r.int64("offset").value_or(-1));
        for (auto k : {ReplayRow::Result::kWouldReplay, ReplayRow::Result::kReplayed,
                       ReplayRow::Result::kAlreadyReplayed}) {
          if (replay_result_name(k) == result) {
            row.result = k;
            return row;
          }
        }
        return shape_error(where + ".result", "is not a known replay result");
      });
}

}  // namespace factory::http
