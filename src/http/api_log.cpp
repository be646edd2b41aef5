// /api/v1/topics, records, groups and dead-letters: the log half of the API.
//
// Every answer is one of the shapes in log_views.h, and everything that is more than one Log
// call goes through LogAccess (log_access.h), the same code the CLI runs on its own log, so a
// command prints the same whether it opened the log or asked the daemon.
//
// Records: POST .../records takes
//   {"records":[{"key":string|null, "key_b64":..., "value":<any JSON>, "value_b64":...,
//                "headers":{"name":"value",...} | [{"name","value"|"value_b64"}],
//                "partition":int, "timestamp":ms}], "sync":bool}
// A string value is stored as its text; any other JSON value (object, number, ...) as its
// compact serialization; null (or no value) as a null value. The whole batch is one append (the
// log's group commit), acknowledged once synced (unless "sync": false). GET .../records answers
// with the record shape of log_views.h: "value" as a string when the bytes are UTF-8, else
// "value_b64".
//
// Audit: write routes are `audited`; the server writes the rows, handlers do not.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "factory/topic.h"
#include "http/api.h"
#include "http/json_input.h"
#include "http/log_access.h"
#include "http/log_views.h"
#include "http/produce_body.h"
#include "http/router.h"

namespace factory::http {

namespace json = boost::json;

namespace {

constexpr size_t kProduceBodyLimit = 8 << 20;
constexpr size_t kSmallBodyLimit = 64 << 10;
constexpr int64_t kMaxWaitMs = 30'000;
constexpr int64_t kWaitSliceMs = 250;  // how soon a long-poll notices the daemon stopping
constexpr int64_t kMaxFetchRecords = 10'000;
constexpr int64_t kMaxFetchBytes = 16 << 20;
constexpr int32_t kMaxPartition = std::numeric_limits<int32_t>::max();

std::string details(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  json::object o;
  for (const auto& [k, v] : kv) o[k] = v;
  return json::serialize(o);
}

Response topic_error(const Status& s, std::string_view topic) {
  return status_response(s, details({{"topic", topic}}));
}

// 403 internal_topic (factory/topic.h): the topic is the daemon's. `what` names the action.
Response internal_topic_error(std::string_view topic, std::string_view what) {
  return error_response(403, "internal_topic", internal_topic_refusal(topic, what),
                        details({{"topic", topic}}));
}

Response group_error(const Status& s, std::string_view group) {
  return status_response(s, details({{"group", group}}));
}

// Refuses query parameters the route does not take (a typo would otherwise be ignored).
Status check_query(const Request& req, std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : req.query) {
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string list;
    for (std::string_view a : allowed) {
      if (!list.empty()) list += ", ";
      list += a;
    }
    return Status::invalid_argument("unknown query parameter '" + k +
                                    "'; allowed: " + (list.empty() ? std::string("none") : list));
  }
  return Status();
}

// Reads a body object's fields through a FieldReader that refuses unknown ones.
// Returns the reader's first error (unknown field, wrong type, missing required field).
Status read_status(const FieldReader& r) {
  Status s = r.check_unknown();
  if (!s.ok()) return s;
  return r.status();
}

// {name, partitions, config} (name only when `named`). The spec is validated.
Result<TopicSpec> read_topic_spec(const json::object& body, bool named, std::string_view name) {
  TopicSpec spec;
  FieldReader r(body, "body", {"name", "partitions", "config"});
  if (!named && body.contains("name")) {
    return Status::invalid_argument(
        "body.name is not allowed here: the topic is named by the path");
  }
  if (named) r.require("name");
  if (named) spec.name = r.string("name").value_or("");
  if (!named) spec.name = std::string(name);
  auto partitions = r.int64("partitions");
  const json::object* config = r.object("config");
  if (Status s = read_status(r); !s.ok()) return s;
  if (partitions) {
    if (*partitions < 1 || *partitions > 10'000) {
      return Status::invalid_argument("body.partitions must be from 1 to 10000, got " +
                                      std::to_string(*partitions));
    }
    spec.partitions = static_cast<int32_t>(*partitions);
  }
  if (config) {
    for (const auto& [k, v] : *config) {
      Status s = set_topic_config_json(&spec.config, k, v, "body.config");
      if (!s.ok()) return s;
    }
  }
  Status valid = validate_topic_spec(spec);
  if (!valid.ok()) return Status::invalid_argument("body: " + valid.message());
  return spec;
}

// "0:12,1:5" → positions. InvalidArgument naming `positions`.
Result<std::vector<PartitionPosition>> parse_positions_query(std::string_view text) {
  std::vector<PartitionPosition> out;
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("query parameter positions=" + std::string(text) + " " +
                                    std::string(why) +
                                    "; write PARTITION:OFFSET pairs separated by commas, e.g. "
                                    "positions=0:12,1:5");
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    size_t colon = item.find(':');
    if (colon == std::string_view::npos) return bad("has an item without ':'");
    int64_t p = -1, o = -1;
    auto r1 = std::from_chars(item.data(), item.data() + colon, p);
    auto r2 = std::from_chars(item.data() + colon + 1, item.data() + item.size(), o);
    if (r1.ec != std::errc() || r1.ptr != item.data() + colon || r2.ec != std::errc() ||
        r2.ptr != item.data() + item.size() || p < 0 || p > kMaxPartition || o < 0) {
      return bad("has an item that is not PARTITION:OFFSET (non-negative integers)");
    }
    for (const PartitionPosition& seen : out) {
      if (seen.partition == p) return bad("names partition " + std::to_string(p) + " twice");
    }
    out.push_back({static_cast<int32_t>(p), Offset(o)});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

// --- Topics ---

Response list_topics(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return status_response(s);
  auto infos = local_log_access(ctx->log)->describe_topics();
  if (!infos.ok()) return status_response(infos.status());
  return json_response(topics_json(*infos));
}

Response create_topic(ApiContext* ctx, const Request& req) {
  auto body = parse_body(req);
  if (!body.ok()) return status_response(body.status());
  auto spec = read_topic_spec(*body, true, {});
  if (!spec.ok()) return status_response(spec.status());
  if (is_internal_topic(spec->name)) return internal_topic_error(spec->name, "creating");
  Status s = ctx->log->create_topic(*spec);
  if (s.is_already_exists()) {
    return error_response(409, "already_exists",
                          "topic '" + spec->name +
                              "' already exists; change it with PUT /api/v1/topics/" + spec->name +
                              " (or 'factoryd topics apply -f FILE'), or pick another name",
                          details({{"topic", spec->name}}));
  }
  if (!s.ok()) return topic_error(s, spec->name);
  auto info = ctx->log->describe_topic(spec->name);
  if (!info.ok()) return topic_error(info.status(), spec->name);
  return json_response(topic_json(*info), 201);
}

Response apply_topic(ApiContext* ctx, const Request& req) {
  std::string_view name = req.param("topic");
  auto body = parse_body(req);
  if (!body.ok()) return status_response(body.status());
  auto spec = read_topic_spec(*body, false, name);
  if (!spec.ok()) return status_response(spec.status());
  // An internal topic's config (retention, max.message.bytes) stays the operator's to tune, as
  // the scheduler's size refusals advise; creating one is the daemon's alone.
  if (is_internal_topic(name) && ctx->log->describe_topic(name).status().is_not_found()) {
    return internal_topic_error(name, "creating");
  }
  auto change = ctx->log->apply_topic(*spec);
  if (!change.ok()) return topic_error(change.status(), name);
  return json_response(topic_change_json(*spec, *change),
                       *change == TopicChange::kCreated ? 201 : 200);
}

Response describe_topic(ApiContext* ctx, const Request& req) {
  std::string_view name = req.param("topic");
  if (Status s = check_query(req, {}); !s.ok()) return status_response(s);
  auto info = ctx->log->describe_topic(name);
  if (!info.ok()) return topic_error(info.status(), name);
  return json_response(topic_json(*info));
}

Response delete_topic(ApiContext* ctx, const Request& req) {
  std::string_view name = req.param("topic");
  if (Status s = check_query(req, {}); !s.ok()) return status_response(s);
  if (is_internal_topic(name)) return internal_topic_error(name, "deleting");
  Status s = ctx->log->delete_topic(name);
  if (!s.ok()) return topic_error(s, name);
  json::object out;
  out["topic"] = name;
  out["action"] = "deleted";
  return json_response(json::serialize(out));
}

Response topic_offsets(ApiContext* ctx, const Request& req) {
  std::string_view name = req.param("topic");
  if (Status s = check_query(req, {"timestamp_ms"}); !s.ok()) return status_response(s);
  if (!req.query_value("timestamp_ms")) {
    return error_response(400, "invalid_argument",
                          "query parameter timestamp_ms is required (ms since the epoch)",
                          details({{"field", "timestamp_ms"}}));
  }
  auto ts = query_int(req, "timestamp_ms", 0, 0, std::numeric_limits<int64_t>::max());
  if (!ts.ok()) return status_response(ts.status(), details({{"field", "timestamp_ms"}}));
  auto offsets = local_log_access(ctx->log)->offsets_for_timestamp(name, *ts);
  if (!offsets.ok()) return topic_error(offsets.status(), name);
  std::vector<RecordPosition> positions;
  for (const PartitionPosition& p : *offsets) positions.push_back({p.partition, p.offset});
  return json_response(positions_json(positions));
}

// --- Records ---

Response produce(ApiContext* ctx, const Request& req) {
  std::string_view topic = req.param("topic");
  if (Status s = check_query(req, {}); !s.ok()) return status_response(s);
  if (is_internal_topic(topic)) return internal_topic_error(topic, "producing to");
  // simdjson reads the usual body; anything else, and every refusal, is Boost.JSON's.
  ProduceBody body;
  std::optional<size_t> failed;
  if (Status s = read_produce_body_fast(req, &body, &failed); !s.ok()) {
    if (!failed) return status_response(s);
    return status_response(s, details({{"field", "records[" + std::to_string(*failed) + "]"}}));
  }
  std::vector<ProducerRecord>& records = body.records;
  bool sync = body.sync;
  if (records.empty()) return json_response(R"({"offsets":[]})");
  AppendOptions options;
  options.sync = sync;
  auto positions = ctx->log->append(topic, records, options);
  if (!positions.ok()) return topic_error(positions.status(), topic);
  return json_response(positions_json(*positions));
}

Response fetch(ApiContext* ctx, const Request& req) {
  std::string_view topic = req.param("topic");
  if (Status s = check_query(
          req, {"partition", "offset", "positions", "max_records", "max_bytes", "wait_ms"});
      !s.ok()) {
    return status_response(s);
  }
  ReadOptions options;
  auto max_records = query_int(req, "max_records", 500, 1, kMaxFetchRecords);
  if (!max_records.ok()) return status_response(max_records.status());
  auto max_bytes = query_int(req, "max_bytes", 1 << 20, 1, kMaxFetchBytes);
  if (!max_bytes.ok()) return status_response(max_bytes.status());
  auto wait_ms = query_int(req, "wait_ms", 0, 0, std::numeric_limits<int64_t>::max());
  if (!wait_ms.ok()) return status_response(wait_ms.status());
  options.max_records = static_cast<int32_t>(*max_records);
  options.max_bytes = *max_bytes;
  options.wait_ms = std::min(*wait_ms, kMaxWaitMs);  // capped, not refused

  std::vector<PartitionPosition> from;
  if (auto positions = req.query_value("positions")) {
    if (req.query_value("partition") || req.query_value("offset")) {
      return error_response(400, "invalid_argument",
                            "positions cannot be combined with partition or offset; pass one "
                            "partition (partition=&offset=) or several (positions=P:O,...)",
                            details({{"field", "positions"}}));
    }
    auto parsed = parse_positions_query(*positions);
    if (!parsed.ok()) return status_response(parsed.status(), details({{"field", "positions"}}));
    from = std::move(*parsed);
  } else {
    auto partition = query_int(req, "partition", 0, 0, kMaxPartition);
    if (!partition.ok())
      return status_response(partition.status(), details({{"field", "partition"}}));
    PartitionPosition pos{static_cast<int32_t>(*partition), Offset(0)};
    if (req.query_value("offset")) {
      auto offset = query_int(req, "offset", 0, 0, std::numeric_limits<int64_t>::max());
      if (!offset.ok()) return status_response(offset.status(), details({{"field", "offset"}}));
      pos.offset = Offset(*offset);
    } else {
      auto pi = ctx->log->partition_info(topic, pos.partition);  // default: the log start
      if (!pi.ok()) return topic_error(pi.status(), topic);
      pos.offset = pi->log_start;
    }
    from.push_back(pos);
  }
  // The long-poll waits in slices and stops early once the daemon is shutting down (not
  // ready), so a waiting fetch never holds up the drain: it answers with what there is.
  auto access = local_log_access(ctx->log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.wait_ms);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    ReadOptions slice = options;
    slice.wait_ms = std::clamp<int64_t>(left, 0, kWaitSliceMs);
    auto fetched = access->fetch(topic, from, slice);
    if (!fetched.ok()) return topic_error(fetched.status(), topic);
    if (!fetched->records.empty() || left <= kWaitSliceMs || !ctx->ready.load()) {
      return json_response(fetch_json(topic, *fetched));
    }
  }
}

// --- Groups ---

Response list_groups(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {}); !s.ok()) return status_response(s);
  std::vector<std::string> names = ctx->log->list_groups();
  std::sort(names.begin(), names.end());
  json::array groups;
  for (const std::string& g : names) {
    auto desc = ctx->log->describe_group(g);
    if (!desc.ok()) continue;  // gone since the listing
    int64_t lag = 0;
    for (const GroupPartitionLag& p : desc->partitions) lag += p.lag;
    json::object o;
    o["group"] = g;
    o["state"] = desc->state;
    o["lag"] = lag;
    groups.push_back(std::move(o));
  }
  json::object out;
  out["groups"] = std::move(groups);
  return json_response(json::serialize(out));
}

Response describe_group(ApiContext* ctx, const Request& req) {
  std::string_view group = req.param("group");
  if (Status s = check_query(req, {}); !s.ok()) return status_response(s);
  auto desc = ctx->log->describe_group(group);
  if (!desc.ok()) return group_error(desc.status(), group);
  return json_response(group_json(*desc));
}

Response reset_offsets(ApiContext* ctx, const Request& req) {
  std::string_view group = req.param("group");
  auto body = parse_body(req);
  if (!body.ok()) return status_response(body.status());
  FieldReader r(*body, "body", {"topic", "to", "offset", "timestamp_ms", "execute"});
  r.require("topic");
  r.require("to");
  auto topic = r.string("topic");
  auto to = r.string("to");
  auto offset = r.int64("offset");
  auto timestamp = r.int64("timestamp_ms");
  bool execute = r.boolean("execute").value_or(false);
  if (Status s = read_status(r); !s.ok()) return status_response(s);
  // Moving the task workers' or the scheduler's offsets replays or skips orders.
  if (is_internal_topic(*topic)) return internal_topic_error(*topic, "resetting offsets on");
  OffsetResetSpec spec;
  auto invalid = [](std::string message, std::string_view field) {
    return error_response(400, "invalid_argument", message, details({{"field", field}}));
  };
  if (*to == "earliest") {
    spec.kind = OffsetResetSpec::Kind::kEarliest;
  } else if (*to == "latest") {
    spec.kind = OffsetResetSpec::Kind::kLatest;
  } else if (*to == "offset") {
    if (!offset) return invalid("body.offset is required with \"to\": \"offset\"", "offset");
    if (*offset < 0) return invalid("body.offset must be >= 0", "offset");
    spec.kind = OffsetResetSpec::Kind::kOffset;
    spec.value = *offset;
  } else if (*to == "timestamp") {
    if (!timestamp) {
      return invalid("body.timestamp_ms is required with \"to\": \"timestamp\"", "timestamp_ms");
    }
    if (*timestamp < 0) return invalid("body.timestamp_ms must be >= 0", "timestamp_ms");
    spec.kind = OffsetResetSpec::Kind::kTimestamp;
    spec.value = *timestamp;
  } else {
    return invalid("body.to must be one of earliest, latest, offset, timestamp; got '" + *to + "'",
                   "to");
  }
  if (offset && spec.kind != OffsetResetSpec::Kind::kOffset) {
    return invalid("body.offset is only allowed with \"to\": \"offset\"", "offset");
  }
  if (timestamp && spec.kind != OffsetResetSpec::Kind::kTimestamp) {
    return invalid("body.timestamp_ms is only allowed with \"to\": \"timestamp\"", "timestamp_ms");
  }
  auto plan = ctx->log->reset_offsets(group, *topic, spec, execute);
  if (!plan.ok()) {
    return status_response(plan.status(), details({{"group", group}, {"topic", *topic}}));
  }
  return json_response(reset_plan_json(group, execute, *plan));
}

Response commit_offsets(ApiContext* ctx, const Request& req) {
  std::string_view group = req.param("group");
  auto body = parse_body(req);
  if (!body.ok()) return status_response(body.status());
  FieldReader r(*body, "body", {"offsets", "sync"});
  r.require("offsets");
  const json::array* items = r.array("offsets");
  bool sync = r.boolean("sync").value_or(true);
  if (Status s = read_status(r); !s.ok()) return status_response(s);
  std::vector<TopicPartitionOffset> offsets;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string where = "body.offsets[" + std::to_string(i) + "]";
    const json::object* o = (*items)[i].if_object();
    if (!o) {
      return error_response(400, "invalid_argument",
                            where + " must be an object {topic, partition, offset}",
                            details({{"field", where}}));
    }
    FieldReader ir(*o, where, {"topic", "partition", "offset"});
    ir.require("topic");
    ir.require("partition");
    ir.require("offset");
    auto topic = ir.string("topic");
    auto partition = ir.int64("partition");
    auto offset = ir.int64("offset");
    if (Status s = read_status(ir); !s.ok()) return status_response(s, details({{"field", where}}));
    // The daemon's own readers of internal topics: the scheduler ("factory.scheduler") and the
    // task workers ("task.<stage>", scheduler.cpp). A commit for them skips or replays orders;
    // a reader's own group (a `consume -g` of factory.task-events) may commit.
    if (is_internal_topic(*topic) && (is_internal_topic(group) || group.starts_with("task."))) {
      return internal_topic_error(*topic,
                                  "committing offsets of group '" + std::string(group) + "' on");
    }
    if (*partition < 0 || *partition > kMaxPartition || *offset < 0) {
      return error_response(400, "invalid_argument", where + ": partition and offset must be >= 0",
                            details({{"field", where}}));
    }
    offsets.push_back({std::move(*topic), static_cast<int32_t>(*partition), Offset(*offset)});
  }
  Status s = local_log_access(ctx->log)->commit_offsets(group, offsets, sync);
  if (!s.ok()) return group_error(s, group);
  json::object out;
  out["group"] = group;
  out["committed"] = offsets.size();
  return json_response(json::serialize(out));
}

// --- Dead letters ---

Response list_dead_letters(ApiContext* ctx, const Request& req) {
  if (Status s = check_query(req, {"topic", "limit"}); !s.ok()) return status_response(s);
  auto limit = query_int(req, "limit", 0, 0, std::numeric_limits<int64_t>::max());
  if (!limit.ok()) return status_response(limit.status(), details({{"field", "limit"}}));
  std::string topic(req.query_value("topic").value_or(""));
  auto letters =
      local_log_access(ctx->log, ctx->dead_letter_suffix)->list_dead_letters(topic, *limit);
  if (!letters.ok()) return topic_error(letters.status(), topic);
  return json_response(dead_letters_json(*letters));
}

Response replay_dead_letters(ApiContext* ctx, const Request& req) {
  auto body = parse_body(req);
  if (!body.ok()) return status_response(body.status());
  FieldReader r(*body, "body", {"topic", "all", "partition", "offset", "execute"});
  r.require("topic");
  auto topic = r.string("topic");
  bool all = r.boolean("all").value_or(false);
  auto partition = r.int64("partition");
  auto offset = r.int64("offset");
  bool execute = r.boolean("execute").value_or(false);
  if (Status s = read_status(r); !s.ok()) return status_response(s);
  ReplaySelector selector;
  selector.all = all;
  bool one = partition.has_value() || offset.has_value();
  if (all == one || (one && !(partition && offset))) {
    return error_response(400, "invalid_argument",
                          "give exactly one of \"all\": true or both \"partition\" and \"offset\" "
                          "(one dead letter); list them with GET /api/v1/dead-letters",
                          details({{"field", all ? "all" : "partition"}}));
  }
  if (one) {
    if (*partition < 0 || *partition > kMaxPartition || *offset < 0) {
      return error_response(400, "invalid_argument", "body.partition and body.offset must be >= 0",
                            details({{"field", *partition < 0 ? "partition" : "offset"}}));
    }
    selector.partition = static_cast<int32_t>(*partition);
    selector.offset = *offset;
  }
  // A dead letter names its source topic in a header anyone who produces it can write: a
  // replay into an internal topic would be a produce to it. Planned first, to answer 403.
  auto access = local_log_access(ctx->log, ctx->dead_letter_suffix);
  auto plan = access->replay_dead_letters(*topic, selector, false);
  if (!plan.ok()) return topic_error(plan.status(), *topic);
  for (const ReplayRow& row : *plan) {
    if (is_internal_topic(row.source_topic)) {
      return internal_topic_error(row.source_topic,
                                  "replaying dead letters of " + *topic + " into");
    }
  }
  if (!execute) return json_response(replay_json(false, *plan));
  auto rows = access->replay_dead_letters(*topic, selector, true);
  if (!rows.ok()) return topic_error(rows.status(), *topic);
  return json_response(replay_json(execute, *rows));
}

}  // namespace

void add_log_routes(Router* router, ApiContext* ctx) {
  auto bind = [ctx](Response (*fn)(ApiContext*, const Request&)) {
    return [ctx, fn](const Request& req) { return fn(ctx, req); };
  };
  // Literal segments before {param} routes of the same length.
  router->add({.method = "GET",
               .pattern = "/api/v1/topics",
               .role = Role::kViewer,
               .handler = bind(list_topics)});
  router->add({.method = "POST",
               .pattern = "/api/v1/topics",
               .role = Role::kAdmin,
               .handler = bind(create_topic),
               .body_limit = kSmallBodyLimit,
               .audited = true,
               .action = "topic.create"});
  router->add({.method = "GET",
               .pattern = "/api/v1/topics/{topic}",
               .role = Role::kViewer,
               .handler = bind(describe_topic)});
  router->add({.method = "PUT",
               .pattern = "/api/v1/topics/{topic}",
               .role = Role::kAdmin,
               .handler = bind(apply_topic),
               .body_limit = kSmallBodyLimit,
               .audited = true,
               .action = "topic.apply"});
  router->add({.method = "DELETE",
               .pattern = "/api/v1/topics/{topic}",
               .role = Role::kAdmin,
               .handler = bind(delete_topic),
               .audited = true,
               .action = "topic.delete"});
  router->add({.method = "GET",
               .pattern = "/api/v1/topics/{topic}/offsets",
               .role = Role::kViewer,
               .handler = bind(topic_offsets)});
  router->add({.method = "POST",
               .pattern = "/api/v1/topics/{topic}/records",
               .role = Role::kOperator,
               .handler = bind(produce),
               .body_limit = kProduceBodyLimit,
               .audited = true,
               .action = "records.produce"});
  router->add({.method = "GET",
               .pattern = "/api/v1/topics/{topic}/records",
               .role = Role::kViewer,
               .handler = bind(fetch),
               .long_poll = true});  // wait_ms: the server's long-poll pool
  router->add({.method = "GET",
               .pattern = "/api/v1/groups",
               .role = Role::kViewer,
               .handler = bind(list_groups)});
  router->add({.method = "GET",
               .pattern = "/api/v1/groups/{group}",
               .role = Role::kViewer,
               .handler = bind(describe_group)});
  router->add({.method = "POST",
               .pattern = "/api/v1/groups/{group}/reset-offsets",
               .role = Role::kAdmin,
               .handler = bind(reset_offsets),
               .body_limit = kSmallBodyLimit,
               .audited = true,
               .action = "group.reset_offsets"});
  router->add({.method = "POST",
               .pattern = "/api/v1/groups/{group}/offsets",
               .role = Role::kOperator,
               .handler = bind(commit_offsets),
               .body_limit = kSmallBodyLimit,
               .audited = true,
               .action = "group.commit_offsets"});
  router->add({.method = "GET",
               .pattern = "/api/v1/dead-letters",
               .role = Role::kViewer,
               .handler = bind(list_dead_letters)});
  router->add({.method = "POST",
               .pattern = "/api/v1/dead-letters/replay",
               .role = Role::kOperator,
               .handler = bind(replay_dead_letters),
               .body_limit = kSmallBodyLimit,
               .audited = true,
               .action = "dead_letters.replay"});
}

}  // namespace factory::http
