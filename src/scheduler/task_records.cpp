#include "scheduler/task_records.h"

#include <cstdint>
#include <optional>

#include <boost/json.hpp>

#include "base/coding.h"

namespace factory::scheduler {
namespace json = boost::json;
namespace {

// A JSON string literal for s (quoted and escaped; invalid UTF-8 becomes U+FFFD, so the record
// is always JSON a parser accepts).
void append_quoted(std::string* out, std::string_view s) { base::append_json_string(out, s); }

void member(std::string* out, std::string_view name, std::string_view value, bool first = false) {
  if (!first) out->push_back(',');
  out->push_back('"');
  out->append(name);
  out->append("\":");
  append_quoted(out, value);
}

void member_raw(std::string* out, std::string_view name, std::string_view json_text) {
  out->append(",\"");
  out->append(name);
  out->append("\":");
  out->append(json_text);
}

void member_int(std::string* out, std::string_view name, int64_t v) {
  member_raw(out, name, std::to_string(v));
}

// Reads a JSON object, or InvalidArgument naming `what`.
Result<json::object> parse_object(std::string_view payload, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec) {
    return Status::invalid_argument(std::string(what) + " is not JSON (" + ec.message() + ")");
  }
  if (!v.is_object()) return Status::invalid_argument(std::string(what) + " is not a JSON object");
  return std::move(v.as_object());
}

std::string string_of(const json::object& o, std::string_view k) {
  auto* p = o.if_contains(k);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

// The integer at k, or nullopt when absent or not an integer.
std::optional<int64_t> int_of(const json::object& o, std::string_view k) {
  auto* p = o.if_contains(k);
  if (p && p->is_int64()) return p->as_int64();
  if (p && p->is_uint64() && p->as_uint64() <= INT64_MAX)
    return static_cast<int64_t>(p->as_uint64());
  return std::nullopt;
}

}  // namespace

std::string encode_dispatch(const DispatchRecord& d) {
  std::string out = "{";
  member(&out, "run_id", d.run_id, true);
  member(&out, "dag_id", d.dag_id);
  member(&out, "task_id", d.task_id);
  member_int(&out, "try", d.try_number);
  if (d.notify) member(&out, "kind", "notify");
  member_raw(&out, "params", d.params.empty() ? "{}" : d.params);
  if (!d.config.empty()) member_raw(&out, "config", d.config);
  if (d.has_approved || !d.approved.empty()) {
    json::array a;
    for (const std::string& c : d.approved) a.emplace_back(c);
    member_raw(&out, "approved", json::serialize(a));
  }
  member(&out, "output_topic", d.output_topic);
  member(&out, "results_topic", d.results_topic);
  out.push_back('}');
  return out;
}

Result<DispatchRecord> decode_dispatch(std::string_view payload) {
  auto o = parse_object(payload, "dispatch record");
  if (!o.ok()) return o.status();
  DispatchRecord d;
  d.run_id = string_of(*o, "run_id");
  d.dag_id = string_of(*o, "dag_id");
  d.task_id = string_of(*o, "task_id");
  d.output_topic = string_of(*o, "output_topic");
  d.results_topic = string_of(*o, "results_topic");
  d.try_number = int_of(*o, "try").value_or(0);
  if (auto* p = o->if_contains("params")) d.params = json::serialize(*p);
  if (auto* p = o->if_contains("config"); p && p->is_object()) d.config = json::serialize(*p);
  if (auto* p = o->if_contains("approved"); p && p->is_array()) {
    d.has_approved = true;
    for (const json::value& c : p->as_array()) {
      if (c.is_string()) d.approved.emplace_back(c.as_string());
    }
  }
  d.notify = string_of(*o, "kind") == "notify";
  if (d.run_id.empty() || d.task_id.empty() || d.results_topic.empty() || d.try_number < 1) {
    return Status::invalid_argument("dispatch record lacks run_id, task_id, try or results_topic");
  }
  return d;
}

std::string encode_result(const ResultRecord& r) {
  json::object o;
  o["run_id"] = r.run_id;
  o["task_id"] = r.task_id;
  o["try"] = r.try_number;
  o["state"] = r.success ? "success" : "failed";
  if (!r.output.empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(r.output, ec);
    o["output"] = ec ? json::value(base::valid_utf8(r.output)) : std::move(v);
  } else {
    o["output"] = nullptr;
  }
  // A stage's error is outside text (a command's stderr): Boost.JSON would write its bytes as they
  // are, and a record that is not UTF-8 is refused where it goes, leaving the try running.
  if (!r.error.empty()) o["error"] = base::valid_utf8(r.error);
  o["retryable"] = r.retryable;
  return json::serialize(o);
}

Result<ResultRecord> decode_result(std::string_view payload) {
  auto o = parse_object(payload, "result record");
  if (!o.ok()) return o.status();
  ResultRecord r;
  r.run_id = string_of(*o, "run_id");
  r.task_id = string_of(*o, "task_id");
  if (r.run_id.empty() || r.task_id.empty()) {
    return Status::invalid_argument("result record lacks run_id or task_id (non-empty strings)");
  }
  auto tr = int_of(*o, "try");
  if (!tr || *tr < 1) return Status::invalid_argument("result record lacks try (an integer >= 1)");
  r.try_number = *tr;
  std::string state = string_of(*o, "state");
  if (state != "success" && state != "failed") {
    return Status::invalid_argument("result record's state is '" + state +
                                    "', not \"success\" or \"failed\"");
  }
  r.success = state == "success";
  if (auto* out = o->if_contains("output"); out && !out->is_null()) {
    r.output = json::serialize(*out);
  }
  r.error = string_of(*o, "error");
  if (auto* rt = o->if_contains("retryable"); rt && rt->is_bool()) r.retryable = rt->as_bool();
  return r;
}

std::string encode_task_event(const TaskEvent& e) {
  std::string out = "{";
  member(&out, "run_id", e.run_id, true);
  member(&out, "dag_id", e.dag_id);
  member(&out, "task_id", e.task_id);
  member(&out, "state", task_state_name(e.state));
  member_int(&out, "try", e.try_number);
  member_int(&out, "at_ms", e.at_ms);
  out.push_back('}');
  return out;
}

Result<TaskEvent> decode_task_event(std::string_view payload) {
  auto o = parse_object(payload, "task event");
  if (!o.ok()) return o.status();
  TaskEvent e;
  e.run_id = string_of(*o, "run_id");
  e.dag_id = string_of(*o, "dag_id");
  e.task_id = string_of(*o, "task_id");
  auto state = parse_task_state(string_of(*o, "state"));
  auto tr = int_of(*o, "try");
  if (e.run_id.empty() || e.task_id.empty() || !state || !tr) {
    return Status::invalid_argument("not a task event (run_id, task_id, state and try)");
  }
  e.state = *state;
  e.try_number = *tr;
  e.at_ms = int_of(*o, "at_ms").value_or(0);
  return e;
}

std::string encode_run_event(const RunEvent& e) {
  std::string out = "{";
  member(&out, "run_id", e.run_id, true);
  member(&out, "dag_id", e.dag_id);
  member(&out, "run_state", run_state_name(e.state));
  member_int(&out, "at_ms", e.at_ms);
  out.push_back('}');
  return out;
}

Result<RunEvent> decode_run_event(std::string_view payload) {
  auto o = parse_object(payload, "run event");
  if (!o.ok()) return o.status();
  RunEvent e;
  e.run_id = string_of(*o, "run_id");
  e.dag_id = string_of(*o, "dag_id");
  auto state = parse_run_state(string_of(*o, "run_state"));
  if (e.run_id.empty() || !state) {
    return Status::invalid_argument("not a run event (run_id and run_state)");
  }
  e.state = *state;
  e.at_ms = int_of(*o, "at_ms").value_or(0);
  return e;
}

}  // namespace factory::scheduler
