// The DAG file's self-contained blocks (dag_blocks.h): pools, params, default_args, deadlines,
// the error budget, and the durations and topics every part of the file uses.
#include "scheduler/dag_blocks.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "config/contract.h"
#include "factory/topic.h"
#include "scheduler/dag_parser.h"

namespace factory::scheduler {
namespace {

namespace json = boost::json;
using config::in_quotes;
using config::YamlKeys;

const YamlKeys kScheduleKeys = {"cron", "topic", "timezone"};

const YamlKeys kDefaultArgsKeys = {"retries", "retry_delay", "retry_exponential_backoff",
                                   "max_retry_delay", "execution_timeout"};
const YamlKeys kParamsKeys = {"schema", "defaults"};
const YamlKeys kDagDeadlineKeys = {"after", "trigger_dag"};
const YamlKeys kTaskDeadlineKeys = {"after"};
const YamlKeys kErrorBudgetKeys = {"stage",
                                   "field",
                                   "window",
                                   "max_failure_ratio",
                                   "min_samples",
                                   "postmortem_dag",
                                   "pause_auto_approval"};
constexpr int kMaxMinSamples = 1'000'000;
constexpr int64_t kMinBudgetWindowMs = 1000;

// A JSON Schema without its top-level "required": defaults may leave required keys to the
// conf a run is triggered with, so only the keys they do set are checked at load time.
std::string without_required(const std::string& schema_json) {
  boost::system::error_code ec;
  json::value v = json::parse(schema_json, ec);
  if (ec || !v.is_object()) return schema_json;
  v.get_object().erase("required");
  return json::serialize(v);
}

}  // namespace

// A duration of at least `min_ms`.
Status DagBlocks::duration(const YamlEntry& e, std::string_view field, int64_t min_ms,
                           int64_t* out) const {
  std::string s;
  FACTORY_RETURN_IF_ERROR(yaml_.text(e, field, &s));
  Result<int64_t> ms = parse_duration_ms(s);
  if (!ms.ok()) return yaml_.error(where(e), std::string(field) + ": " + ms.status().message());
  if (*ms < min_ms) {
    return yaml_.error(
        where(e), std::string(field) + ": " + in_quotes(s) + " is too short; use " +
                      (min_ms == 1 ? "more than 0" : "at least " + std::to_string(min_ms) + "ms"));
  }
  *out = *ms;
  return Status::ok_status();
}

Status DagBlocks::optional_duration(const YamlEntry& e, std::string_view field, int64_t min_ms,
                                    std::optional<int64_t>* out) const {
  int64_t v = 0;
  FACTORY_RETURN_IF_ERROR(duration(e, field, min_ms, &v));
  *out = v;
  return Status::ok_status();
}

Status DagBlocks::topic(const YamlEntry& e, std::string_view field, std::string* out) const {
  FACTORY_RETURN_IF_ERROR(yaml_.text(e, field, out));
  TopicSpec spec;
  spec.name = *out;
  Status s = validate_topic_spec(spec);
  if (!s.ok()) return yaml_.error(where(e), std::string(field) + ": " + s.message());
  return Status::ok_status();
}

Status DagBlocks::pools(const YamlEntry& e, Dag* dag) const {
  if (e.value.IsNull()) return Status::ok_status();
  std::vector<YamlEntry> pools;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "pools", nullptr, &pools));
  for (const YamlEntry& p : pools) {
    if (!valid_dag_id(p.key)) {
      return yaml_.error(
          p.key_node.Mark(),
          "pool name " + in_quotes(p.key) + " is not valid; use letters, digits, '_', '-' or '.'");
    }
    int slots = 0;
    FACTORY_RETURN_IF_ERROR(yaml_.integer(p, "pools." + p.key, 1, kMaxPoolSlots, &slots));
    dag->pools[p.key] = slots;
  }
  return Status::ok_status();
}

Status DagBlocks::params(const YamlEntry& e, Dag* dag) const {
  if (e.value.IsNull()) return Status::ok_status();
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "params", &kParamsKeys, &fields));
  const YamlEntry* schema = find(fields, "schema");
  const YamlEntry* defaults = find(fields, "defaults");
  if (schema != nullptr && !schema->value.IsNull()) {
    if (!schema->value.IsMap()) {
      return yaml_.error(where(*schema),
                         "params.schema must be a JSON Schema written as a mapping, "
                         "e.g. {type: object, properties: {ticket: {type: string}}}");
    }
    FACTORY_RETURN_IF_ERROR(yaml_.to_json(schema->value, "params.schema", &dag->params_schema));
    auto compiled = config::Contract::compile(dag->params_schema, "params.schema");
    if (!compiled.ok()) return yaml_.error(where(*schema), compiled.status().message());
  }
  if (defaults != nullptr && !defaults->value.IsNull()) {
    if (!defaults->value.IsMap()) {
      return yaml_.error(where(*defaults),
                         "params.defaults must be a mapping of names to values, "
                         "e.g. {ticket: PROJ-1}");
    }
    FACTORY_RETURN_IF_ERROR(
        yaml_.to_json(defaults->value, "params.defaults", &dag->params_defaults));
  }
  if (!dag->params_schema.empty()) {
    auto partial = config::Contract::compile(without_required(dag->params_schema), "params.schema");
    if (!partial.ok()) return yaml_.error(where(*schema), partial.status().message());
    Status s = (*partial)->validate(dag->params_defaults);
    if (!s.ok()) {
      std::string msg = s.message();
      const std::string prefix = "payload violates the schema: ";
      if (msg.starts_with(prefix)) msg.erase(0, prefix.size());
      return yaml_.error(
          defaults != nullptr ? where(*defaults) : where(*schema),
          "params.defaults do not match params.schema: " + msg + "; fix the default or the schema");
    }
  }
  return Status::ok_status();
}

Status DagBlocks::default_args(const YamlEntry& e, Dag* dag) const {
  if (e.value.IsNull()) return Status::ok_status();
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "default_args", &kDefaultArgsKeys, &fields));
  DefaultArgs& d = dag->default_args;
  for (const YamlEntry& f : fields) {
    if (f.key == "retries") {
      FACTORY_RETURN_IF_ERROR(yaml_.integer(f, "default_args.retries", 0, kMaxRetries, &d.retries));
    } else if (f.key == "retry_delay") {
      FACTORY_RETURN_IF_ERROR(duration(f, "default_args.retry_delay", 0, &d.retry_delay_ms));
    } else if (f.key == "retry_exponential_backoff") {
      FACTORY_RETURN_IF_ERROR(
          yaml_.boolean(f, "default_args.retry_exponential_backoff", &d.retry_exponential_backoff));
    } else if (f.key == "max_retry_delay") {
      FACTORY_RETURN_IF_ERROR(
          optional_duration(f, "default_args.max_retry_delay", 1, &d.max_retry_delay_ms));
    } else if (f.key == "execution_timeout") {
      FACTORY_RETURN_IF_ERROR(
          optional_duration(f, "default_args.execution_timeout", 1, &d.execution_timeout_ms));
    }
  }
  return Status::ok_status();
}

Status DagBlocks::dag_deadline(const YamlEntry& e, Dag* dag) const {
  if (e.value.IsNull()) return Status::ok_status();
  if (e.value.IsScalar()) return optional_duration(e, "deadline", 1, &dag->deadline_ms);
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "deadline", &kDagDeadlineKeys, &fields));
  const YamlEntry* after = find(fields, "after");
  if (after == nullptr) {
    return yaml_.error(where(e),
                       "deadline has no after:; write deadline: {after: 1h} (the time "
                       "from the run's start)");
  }
  FACTORY_RETURN_IF_ERROR(optional_duration(*after, "deadline.after", 1, &dag->deadline_ms));
  if (const YamlEntry* trigger = find(fields, "trigger_dag")) {
    FACTORY_RETURN_IF_ERROR(
        yaml_.text(*trigger, "deadline.trigger_dag", &dag->deadline_trigger_dag));
    if (!valid_dag_id(dag->deadline_trigger_dag)) {
      return yaml_.error(where(*trigger), "deadline.trigger_dag " +
                                              in_quotes(dag->deadline_trigger_dag) +
                                              " is not a valid dag_id");
    }
  }
  return Status::ok_status();
}

Status DagBlocks::error_budget(const YamlEntry& e, Dag* dag) const {
  if (e.value.IsNull()) return Status::ok_status();
  if (!e.value.IsMap()) {
    return yaml_.error(where(e),
                       "error_budget must be a mapping, e.g. error_budget: {stage: gate, field: "
                       "gate_passed, window: 1h, max_failure_ratio: 0.02, min_samples: 20}");
  }
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "error_budget", &kErrorBudgetKeys, &fields));
  ErrorBudgetSpec b;
  b.line = e.key_node.Mark().line + 1;
  for (const char* key : {"stage", "field", "window", "max_failure_ratio"}) {
    if (find(fields, key) == nullptr) {
      return yaml_.error(where(e), std::string("error_budget has no ") + key +
                                       ":; it needs stage:, field:, window: and max_failure_ratio: "
                                       "(e.g. {stage: gate, field: gate_passed, window: 1h, "
                                       "max_failure_ratio: 0.02})");
    }
  }
  for (const YamlEntry& f : fields) {
    const std::string& k = f.key;
    if (k == "stage") {
      FACTORY_RETURN_IF_ERROR(yaml_.text(f, "error_budget.stage", &b.stage));
      std::vector<std::string_view> stages;
      for (const Task& t : dag->tasks) {
        if (!t.approval && std::find(stages.begin(), stages.end(), t.stage) == stages.end()) {
          stages.push_back(t.stage);
        }
      }
      if (std::find(stages.begin(), stages.end(), b.stage) == stages.end()) {
        std::string msg = "error_budget.stage " + in_quotes(b.stage) +
                          " is not the stage of any task of DAG " + in_quotes(dag->dag_id);
        std::string_view guess = yaml_.suggest(b.stage, stages);
        msg += guess.empty() ? "; the samples are the task instances of that stage: name the "
                               "stage of the tasks whose verdict counts (e.g. gate)"
                             : "; did you mean " + in_quotes(guess) + "?";
        return yaml_.error(where(f), msg);
      }
    } else if (k == "field") {
      FACTORY_RETURN_IF_ERROR(yaml_.text(f, "error_budget.field", &b.field));
      bool ok = !b.field.empty() && b.field.size() <= 250;
      for (char c : b.field) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') ok = false;
      }
      if (!ok) {
        return yaml_.error(where(f), "error_budget.field " + in_quotes(b.field) +
                                         " is not a field name; name a top-level boolean of the "
                                         "task's output (letters, digits, '_' or '-'), e.g. "
                                         "gate_passed");
      }
    } else if (k == "window") {
      FACTORY_RETURN_IF_ERROR(duration(f, "error_budget.window", kMinBudgetWindowMs, &b.window_ms));
    } else if (k == "max_failure_ratio") {
      std::string text;
      FACTORY_RETURN_IF_ERROR(yaml_.text(f, "error_budget.max_failure_ratio", &text));
      if (!text.empty() && text.back() == '%') {
        return yaml_.error(where(f), "error_budget.max_failure_ratio " + in_quotes(text) +
                                         " is a percentage; write it as a fraction (2% is 0.02)");
      }
      FACTORY_RETURN_IF_ERROR(
          yaml_.number(f, "error_budget.max_failure_ratio", &b.max_failure_ratio));
      if (!(b.max_failure_ratio >= 0 && b.max_failure_ratio < 1)) {
        return yaml_.error(where(f), "error_budget.max_failure_ratio " + in_quotes(text) +
                                         " is out of range; use a fraction from 0 (no failure "
                                         "allowed) to below 1, e.g. 0.02 for 2%");
      }
    } else if (k == "min_samples") {
      FACTORY_RETURN_IF_ERROR(
          yaml_.integer(f, "error_budget.min_samples", 1, kMaxMinSamples, &b.min_samples));
    } else if (k == "postmortem_dag") {
      if (f.value.IsNull()) continue;
      FACTORY_RETURN_IF_ERROR(yaml_.text(f, "error_budget.postmortem_dag", &b.postmortem_dag));
      if (!valid_dag_id(b.postmortem_dag)) {
        return yaml_.error(where(f),
                           "error_budget.postmortem_dag " + in_quotes(b.postmortem_dag) +
                               " is not a valid dag_id; use 1 to 250 letters, digits, '_', "
                               "'-' or '.'");
      }
    } else if (k == "pause_auto_approval") {
      FACTORY_RETURN_IF_ERROR(
          yaml_.boolean(f, "error_budget.pause_auto_approval", &b.pause_auto_approval));
    }
  }
  dag->error_budget = std::move(b);
  return Status::ok_status();
}

Status DagBlocks::task_deadline(const YamlEntry& f, Task* t) const {
  if (f.value.IsNull()) return Status::ok_status();
  if (f.value.IsScalar()) return optional_duration(f, "deadline", 1, &t->deadline_ms);
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(f.value, "deadline", &kTaskDeadlineKeys, &fields));
  const YamlEntry* after = find(fields, "after");
  if (after == nullptr) {
    return yaml_.error(where(f), "deadline has no after:; write deadline: 30m or {after: 30m}");
  }
  return optional_duration(*after, "deadline.after", 1, &t->deadline_ms);
}

namespace {

// A mapping whose keys are all plain text (anything else is reported by the params reader).
bool plain_keys(const YAML::Node& map) {
  if (!map.IsMap()) return false;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) return false;
  }
  return true;
}

}  // namespace

Status DagBlocks::schedule(const YamlEntry& e, const DagParseOptions& options, Dag* dag) const {
  Trigger& t = dag->trigger;
  if (e.value.IsNull()) {
    t.kind = Trigger::Kind::kManual;
    return Status::ok_status();
  }
  if (e.value.IsScalar()) {
    t.kind = Trigger::Kind::kCron;
    FACTORY_RETURN_IF_ERROR(yaml_.text(e, "schedule", &t.cron));
    return check_cron(e, "schedule", options, t.cron);
  }
  if (!e.value.IsMap()) {
    return yaml_.error(where(e),
                       "schedule must be null (manual runs only), a cron expression such "
                       "as \"0 * * * *\" or \"@hourly\", or {topic: <name>}");
  }
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, "schedule", &kScheduleKeys, &fields));
  const YamlEntry* cron = find(fields, "cron");
  const YamlEntry* topic_entry = find(fields, "topic");
  const YamlEntry* timezone = find(fields, "timezone");
  if ((cron == nullptr) == (topic_entry == nullptr)) {
    return yaml_.error(where(e), std::string("schedule takes one of cron: or topic:, not ") +
                                     (cron == nullptr ? "neither" : "both"));
  }
  if (topic_entry != nullptr) {
    if (timezone != nullptr) {
      return yaml_.error(where(*timezone),
                         "schedule.timezone applies to cron schedules only; "
                         "remove it");
    }
    t.kind = Trigger::Kind::kTopic;
    return topic(*topic_entry, "schedule.topic", &t.topic);
  }
  t.kind = Trigger::Kind::kCron;
  FACTORY_RETURN_IF_ERROR(yaml_.text(*cron, "schedule.cron", &t.cron));
  FACTORY_RETURN_IF_ERROR(check_cron(*cron, "schedule.cron", options, t.cron));
  if (timezone != nullptr) {
    FACTORY_RETURN_IF_ERROR(yaml_.text(*timezone, "schedule.timezone", &t.timezone));
    if (t.timezone.empty()) {
      return yaml_.error(where(*timezone),
                         "schedule.timezone is empty; name a zone such as UTC or "
                         "Europe/Berlin, or remove it for UTC");
    }
    if (options.check_timezone) {
      Status s = options.check_timezone(t.timezone);
      if (!s.ok()) {
        return yaml_.error(where(*timezone),
                           "schedule.timezone " + in_quotes(t.timezone) + ": " + s.message());
      }
    }
  }
  return Status::ok_status();
}

Status DagBlocks::check_cron(const YamlEntry& e, std::string_view field,
                             const DagParseOptions& options, const std::string& expr) const {
  if (expr.find_first_not_of(" \t") == std::string::npos) {
    return yaml_.error(where(e), std::string(field) +
                                     " is empty; write a cron expression such as "
                                     "\"0 * * * *\", or null for manual runs");
  }
  if (!options.check_cron) return Status::ok_status();
  Status s = options.check_cron(expr);
  if (!s.ok()) {
    return yaml_.error(where(e), std::string(field) + ": " + in_quotes(expr) + ": " + s.message());
  }
  return Status::ok_status();
}

bool DagBlocks::is_task_group(const YAML::Node& value) {
  if (!value.IsMap()) return false;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (it->first.IsScalar() && (it->first.Scalar() == "repeat" || it->first.Scalar() == "tasks")) {
      return true;
    }
  }
  return false;
}

Status DagBlocks::task_group(const YamlEntry& e, TaskGroup* g,
                             std::vector<YamlEntry>* tasks) const {
  static const config::YamlKeys kGroupKeys = {"repeat", "tasks", "description"};
  g->name = e.key;
  g->line = e.key_node.Mark().line + 1;
  const std::string what = "group " + in_quotes(g->name);
  if (!valid_task_id(g->name)) {
    return yaml_.error(e.key_node.Mark(),
                       "group name " + in_quotes(g->name) +
                           " is not valid; use 1 to 250 letters, digits, '_' or '-'");
  }
  if (is_reserved_group_name(g->name)) {
    return yaml_.error(e.key_node.Mark(),
                       "group name " + in_quotes(g->name) +
                           " is reserved (templates and references start with it); rename the "
                           "group, e.g. round");
  }
  std::vector<YamlEntry> fields;
  FACTORY_RETURN_IF_ERROR(yaml_.entries(e.value, what, &kGroupKeys, &fields));
  const YamlEntry* repeat = find(fields, "repeat");
  if (repeat == nullptr) {
    return yaml_.error(e.key_node.Mark(), what + " has no repeat:; add repeat: <rounds> (1 to " +
                                              std::to_string(kMaxRepeat) + ")");
  }
  FACTORY_RETURN_IF_ERROR(yaml_.integer(*repeat, g->name + ".repeat", 1, kMaxRepeat, &g->repeat));
  const YamlEntry* list = find(fields, "tasks");
  if (list == nullptr || list->value.IsNull() || (list->value.IsMap() && list->value.size() == 0)) {
    return yaml_.error(list == nullptr ? e.key_node.Mark() : where(*list),
                       what +
                           " has no tasks; add tasks: with the `<id>: {stage: ...}` entries "
                           "of one round");
  }
  FACTORY_RETURN_IF_ERROR(yaml_.entries(list->value, what + " tasks", nullptr, tasks));
  for (const YamlEntry& t : *tasks) {
    g->tasks.push_back(t.key);
    if (!valid_task_id(t.key)) {
      return yaml_.error(t.key_node.Mark(),
                         "task id " + in_quotes(t.key) +
                             " is not valid; use 1 to 250 letters, digits, '_' or '-' (no dots: "
                             "templates read tasks.<id>.output)");
    }
    if (is_task_group(t.value)) {
      return yaml_.error(t.key_node.Mark(), what + ": groups do not nest; move group " +
                                                in_quotes(t.key) + " under tasks: at the top");
    }
  }
  return Status::ok_status();
}

Status DagBlocks::round_fields(const GroupScope& scope, std::string_view what,
                               const config::YamlKeys& task_keys,
                               std::vector<YamlEntry>* fields) const {
  // Entries are only ever copy-constructed here: assigning a YAML::Node writes through to the
  // node it refers to, which the other rounds read too.
  std::vector<YamlEntry> set;
  for (const YamlEntry& f : *fields) {
    const bool applies = (f.key == "first_round" && scope.round == 1) ||
                         (f.key == "last_round" && scope.round == scope.group->repeat);
    if (!applies || f.value.IsNull()) continue;
    std::vector<YamlEntry> more;
    FACTORY_RETURN_IF_ERROR(
        yaml_.entries(f.value, std::string(what) + " " + f.key, &task_keys, &more));
    for (const YamlEntry& m : more) {
      auto same =
          std::find_if(set.begin(), set.end(), [&](const YamlEntry& x) { return x.key == m.key; });
      if (same != set.end()) set.erase(same);  // last_round wins over first_round
      set.push_back(m);
    }
  }
  std::vector<YamlEntry> out;
  for (const YamlEntry& f : *fields) {
    if (f.key == "first_round" || f.key == "last_round") continue;
    const YamlEntry* o = find(set, f.key);
    if (o == nullptr) {
      out.push_back(f);
    } else if (f.key == "params" && plain_keys(f.value) && plain_keys(o->value)) {
      // Key by key: the round's params replace only what they name. The values are the
      // file's own nodes, so errors inside them still point at their lines.
      YAML::Node merged(YAML::NodeType::Map);
      for (auto p = f.value.begin(); p != f.value.end(); ++p) {
        const YAML::Node& own = o->value[p->first.Scalar()];
        merged[p->first.Scalar()] = own.IsDefined() ? own : p->second;
      }
      for (auto p = o->value.begin(); p != o->value.end(); ++p) {
        if (!f.value[p->first.Scalar()].IsDefined()) merged[p->first.Scalar()] = p->second;
      }
      out.push_back(YamlEntry{f.key, f.key_node, merged});
    } else {
      out.push_back(*o);
    }
  }
  for (const YamlEntry& o : set) {
    if (find(*fields, o.key) == nullptr) out.push_back(o);
  }
  fields->swap(out);
  return Status::ok_status();
}

}  // namespace factory::scheduler
