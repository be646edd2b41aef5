// DAG files (dag_parser.h): the schema, on top of config::YamlReader (config/yaml_reader.h),
// which gives every error its "SOURCE:LINE:COLUMN: what; how to fix" form, rejects repeated and
// unknown keys with a did-you-mean, reads typed scalars and turns `params` blocks into JSON.
// This file reads the document and the tasks; the self-contained blocks (schedule, pools,
// params, deadlines, error_budget) are DagBlocks' (dag_blocks.h), and task groups are expanded
// here as the tasks are read, with dag_groups.h rewriting their references.
//
// Checks that need the whole file (upstream names, cycles, pools, templates) run after every
// task is read, with the YAML marks kept so each error still points at its line. The graph
// itself is built by build_index() (dag.h), which re-checks what it relies on for DAGs built
// in code. Durations, directories and run confs are in dag_loader.cpp.
#include "scheduler/dag_parser.h"

#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/yaml_reader.h"
#include "factory/topic.h"
#include "scheduler/approval_params.h"
#include "scheduler/dag_blocks.h"
#include "scheduler/dag_groups.h"
#include "scheduler/templates.h"

namespace factory::scheduler {
namespace {

using config::in_quotes;
using config::YamlAliases;
using config::YamlEntry;
using config::YamlKeys;
using config::YamlReader;

// Bounds on walking a params block before it is converted to JSON (which enforces its own):
// enough for any real block, and a recursive alias stops here.
constexpr int kMaxWalkDepth = 64;
constexpr int kMaxWalkNodes = 100'000;

const YamlKeys kRootKeys = {"dag_id",          "description",      "schedule",     "catchup",
                            "max_active_runs", "max_active_tasks", "pools",        "params",
                            "default_args",    "deadline",         "error_budget", "tasks"};
const YamlKeys kTaskKeys = {"stage",
                            "description",
                            "upstream",
                            "trigger_rule",
                            "retries",
                            "retry_delay",
                            "retry_exponential_backoff",
                            "max_retry_delay",
                            "execution_timeout",
                            "pool",
                            "pool_slots",
                            "priority_weight",
                            "weight_rule",
                            "output_topic",
                            "params",
                            "approval",
                            "approval_timeout",
                            "deadline"};
// A task inside a group: the task keys, plus what replaces them in the first and last round.
const YamlKeys kGroupTaskKeys = [] {
  YamlKeys keys = kTaskKeys;
  keys.insert(keys.end(), {"first_round", "last_round"});
  return keys;
}();

// Names people bring from Airflow, Kubernetes or CI files, spelled differently here.
// clang-format off
const YamlAliases kAliases = {
    {"schedule_interval", "schedule"},  {"timetable", "schedule"},
    {"cron", "schedule"},               {"trigger", "schedule"},
    {"concurrency", "max_active_tasks"}, {"max_active_tis_per_dag", "max_active_tasks"},
    {"id", "dag_id"},                   {"name", "dag_id"},
    {"dag", "dag_id"},                  {"doc_md", "description"},
    {"doc", "description"},             {"steps", "tasks"},
    {"operators", "tasks"},             {"jobs", "tasks"},
    {"default_params", "params"},       {"sla", "deadline"},
    {"operator", "stage"},              {"agent", "stage"},
    {"depends_on", "upstream"},         {"dependencies", "upstream"},
    {"upstream_task_ids", "upstream"},  {"after", "upstream"},
    {"needs", "upstream"},              {"output", "output_topic"},
    {"topic", "output_topic"},          {"outputs", "output_topic"},
    {"timeout", "execution_timeout"},   {"op_kwargs", "params"},
    {"kwargs", "params"},               {"config", "params"},
    {"retry_backoff", "retry_exponential_backoff"},
    {"exponential_backoff", "retry_exponential_backoff"},
    {"max_retries", "retries"},         {"priority", "priority_weight"},
    {"approve", "approval"},            {"requires_approval", "approval"},
    {"default", "defaults"},            {"json_schema", "schema"},
    {"timeout_after", "after"},         {"dag_to_trigger", "trigger_dag"},
    {"budget", "error_budget"},         {"slo", "error_budget"},
    {"max_ratio", "max_failure_ratio"}, {"failure_ratio", "max_failure_ratio"},
    {"threshold", "max_failure_ratio"}, {"min_count", "min_samples"},
    {"postmortem", "postmortem_dag"},   {"trigger_dag", "postmortem_dag"},
    {"pause_auto_approve", "pause_auto_approval"},
};
// Old or neighbouring spellings of trigger rules.
const YamlAliases kTriggerRuleAliases = {
    {"dummy", "always"},
    {"none_failed_or_skipped", "none_failed_min_one_success"},
    {"all_succeeded", "all_success"},
    {"one_succeeded", "one_success"},
};
// clang-format on

std::vector<std::string_view> trigger_rule_names() {
  std::vector<std::string_view> names;
  for (TriggerRule r : kAllTriggerRules) names.push_back(trigger_rule_name(r));
  return names;
}

// Per-task marks kept for the checks that run after every task is read.
struct TaskMarks {
  YAML::Mark id;
  YAML::Mark pool;
  YAML::Mark pool_slots;
  std::vector<YAML::Mark> upstream;  // one per Task::upstream entry
  YAML::Node params;                 // the params block, or a null node
  int group = -1;                    // index into the file's groups; -1 outside every group
  int round = 0;                     // the round, in a group
};

// A task as listed under tasks:, before it is read: its id and, in a group, the round.
struct TaskItem {
  YamlEntry entry;
  std::string id;
  int group = -1;
  int round = 0;
};

// Parses one file. Not thread-safe; one per parse call.
class DagParser {
 public:
  DagParser(std::string_view source, const DagParseOptions& options)
      : yaml_(std::string(source), &kAliases),
        rules_(std::string(source), &kTriggerRuleAliases),
        blocks_(yaml_),
        options_(options) {}

  Result<Dag> parse(std::string_view text) {
    YAML::Node doc;
    FACTORY_RETURN_IF_ERROR(yaml_.load(text, &doc));
    // No yaml-cpp, Boost.JSON or callback exception may escape this module, whatever the input.
    try {
      FACTORY_RETURN_IF_ERROR(parse_document(doc));
    } catch (const YAML::Exception& e) {
      return yaml_.error(e.mark, "cannot read this YAML: " + e.msg);
    } catch (const std::exception& e) {
      return Status::internal(yaml_.source() + ": cannot read this DAG file: " + e.what());
    }
    return std::move(dag_);
  }

 private:
  Status error(const YAML::Mark& mark, std::string_view what) const {
    return yaml_.error(mark, what);
  }
  static YAML::Mark where(const YamlEntry& e) { return YamlReader::where(e); }
  static const YamlEntry* find(const std::vector<YamlEntry>& entries, std::string_view key) {
    return YamlReader::find(entries, key);
  }

  Status parse_document(const YAML::Node& doc) {
    if (doc.IsNull()) {
      return error(doc.Mark(),
                   "this DAG file is empty; a DAG file needs dag_id: and tasks:, "
                   "see docs/dags.md");
    }
    if (!doc.IsMap()) {
      return error(doc.Mark(),
                   "a DAG file is a mapping with dag_id: and tasks:; see "
                   "docs/dags.md or config/dags/software_factory_pipeline.yaml");
    }
    std::vector<YamlEntry> root;
    FACTORY_RETURN_IF_ERROR(yaml_.entries(doc, "a DAG file", &kRootKeys, &root));
    dag_.source = yaml_.source();
    const YamlEntry* dag_id = find(root, "dag_id");
    if (dag_id == nullptr) {
      return error(doc.Mark(),
                   "this DAG file has no dag_id; add dag_id: <name> (letters, "
                   "digits, '_', '-' or '.')");
    }
    FACTORY_RETURN_IF_ERROR(yaml_.text(*dag_id, "dag_id", &dag_.dag_id));
    if (!valid_dag_id(dag_.dag_id)) {
      return error(where(*dag_id), "dag_id " + in_quotes(dag_.dag_id) +
                                       " is not valid; use 1 to 250 letters, digits, '_', '-' "
                                       "or '.'");
    }
    dag_.line = dag_id->key_node.Mark().line + 1;

    const YamlEntry* tasks = nullptr;
    const YamlEntry* catchup = nullptr;
    const YamlEntry* budget = nullptr;
    for (const YamlEntry& e : root) {
      const std::string& k = e.key;
      if (k == "description") {
        if (!e.value.IsNull())
          FACTORY_RETURN_IF_ERROR(yaml_.text(e, "description", &dag_.description));
      } else if (k == "schedule") {
        FACTORY_RETURN_IF_ERROR(blocks_.schedule(e, options_, &dag_));
      } else if (k == "catchup") {
        FACTORY_RETURN_IF_ERROR(yaml_.boolean(e, "catchup", &dag_.trigger.catchup));
        catchup = &e;
      } else if (k == "max_active_runs") {
        FACTORY_RETURN_IF_ERROR(
            yaml_.integer(e, "max_active_runs", 1, kMaxActiveRuns, &dag_.max_active_runs));
      } else if (k == "max_active_tasks") {
        FACTORY_RETURN_IF_ERROR(
            yaml_.integer(e, "max_active_tasks", 1, kMaxActiveTasks, &dag_.max_active_tasks));
      } else if (k == "pools") {
        FACTORY_RETURN_IF_ERROR(blocks_.pools(e, &dag_));
      } else if (k == "params") {
        FACTORY_RETURN_IF_ERROR(blocks_.params(e, &dag_));
      } else if (k == "default_args") {
        FACTORY_RETURN_IF_ERROR(blocks_.default_args(e, &dag_));
      } else if (k == "deadline") {
        FACTORY_RETURN_IF_ERROR(blocks_.dag_deadline(e, &dag_));
      } else if (k == "error_budget") {
        budget = &e;  // read once the tasks are: its stage must be one of theirs
      } else if (k == "tasks") {
        tasks = &e;
      }
    }
    if (catchup != nullptr && dag_.trigger.catchup && dag_.trigger.kind != Trigger::Kind::kCron) {
      return error(where(*catchup),
                   "catchup: true needs a cron schedule (it runs the fire "
                   "times missed while factoryd was stopped); remove it or set "
                   "schedule: to a cron expression");
    }
    if (tasks == nullptr) {
      return error(doc.Mark(), "DAG " + in_quotes(dag_.dag_id) +
                                   " has no tasks; add tasks: with one `<id>: {stage: ...}` "
                                   "entry per task");
    }
    FACTORY_RETURN_IF_ERROR(parse_tasks(*tasks));
    if (budget != nullptr) FACTORY_RETURN_IF_ERROR(blocks_.error_budget(*budget, &dag_));
    FACTORY_RETURN_IF_ERROR(check_graph());
    FACTORY_RETURN_IF_ERROR(check_templates());
    Status s = build_index(&dag_);
    if (!s.ok()) return Status::invalid_argument(yaml_.source() + ": " + s.message());
    return Status::ok_status();
  }

  Status parse_tasks(const YamlEntry& e) {
    if (e.value.IsSequence()) {
      return error(where(e),
                   "tasks is a mapping from task id to task, not a list; write "
                   "tasks: {ingest_spec: {stage: ingest}, ...}");
    }
    if (e.value.IsNull() || (e.value.IsMap() && e.value.size() == 0)) {
      return error(where(e), "tasks is empty; add at least one `<id>: {stage: ...}` entry");
    }
    if (!e.value.IsMap()) {
      return error(where(e),
                   "tasks must be a mapping from task id to task, e.g. "
                   "tasks: {ingest_spec: {stage: ingest}}");
    }
    // Groups first, so a task may refer to a group listed after it (`round.each.release`).
    std::vector<YamlEntry> entries;
    entries.reserve(e.value.size());
    std::vector<std::vector<YamlEntry>> group_tasks;  // parallel to groups_
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
      if (!it->first.IsScalar()) {
        return error(it->first.Mark(), "a task id is not plain text; write <id>: {stage: ...}");
      }
      entries.push_back({it->first.Scalar(), it->first, it->second});
      if (DagBlocks::is_task_group(entries.back().value)) {
        TaskGroup g;
        std::vector<YamlEntry> local;
        FACTORY_RETURN_IF_ERROR(blocks_.task_group(entries.back(), &g, &local));
        groups_.push_back(std::move(g));
        group_tasks.push_back(std::move(local));
      }
    }
    // Every task in file order, a group's as round 1's tasks, then round 2's, ...
    std::vector<TaskItem> items;
    items.reserve(entries.size());
    size_t next_group = 0;
    for (YamlEntry& item : entries) {
      if (!DagBlocks::is_task_group(item.value)) {
        items.push_back({item, item.key});
        continue;
      }
      const int g = static_cast<int>(next_group++);
      for (int r = 1; r <= groups_[g].repeat; ++r) {
        for (const YamlEntry& local : group_tasks[g]) {
          items.push_back({local, task_round_id(local.key, r), g, r});
        }
      }
    }
    // YamlReader::entries() finds repeats by a linear scan; a 100,000-task file needs a map.
    std::unordered_map<std::string, const TaskItem*> first;
    for (const TaskItem& item : items) {
      auto [at, fresh] = first.emplace(item.id, &item);
      if (fresh) continue;
      const TaskItem& other = *at->second;
      const std::string line = std::to_string(other.entry.key_node.Mark().line + 1);
      if (item.group < 0 && other.group < 0) {
        return error(item.entry.key_node.Mark(), in_quotes(item.id) +
                                                     " appears twice in tasks (first at line " +
                                                     line + "); keep one of them");
      }
      return error(item.entry.key_node.Mark(),
                   "task id " + in_quotes(item.id) + " (" + origin(item) + ") is also the id of " +
                       origin(other) + " at line " + line +
                       "; rename one of them (round r of group task t has the id t_r)");
    }
    dag_.tasks.reserve(items.size());
    marks_.reserve(items.size());
    for (const TaskItem& item : items) {
      Task t;
      TaskMarks m;
      m.group = item.group;
      m.round = item.round;
      FACTORY_RETURN_IF_ERROR(parse_task(item, &t, &m));
      dag_.tasks.push_back(std::move(t));
      marks_.push_back(std::move(m));
    }
    return Status::ok_status();
  }

  // "round 2 of group 'round'" or "a task", for messages about an id.
  std::string origin(const TaskItem& item) const {
    if (item.group < 0) return "a task";
    return "round " + std::to_string(item.round) + " of task " + in_quotes(item.entry.key) +
           " in group " + in_quotes(groups_[item.group].name);
  }

  GroupScope scope_of(const TaskMarks& m) const {
    return {m.group < 0 ? nullptr : &groups_[m.group], m.round, &groups_};
  }

  Status parse_task(const TaskItem& task, Task* t, TaskMarks* m) {
    const YamlEntry& item = task.entry;
    t->id = task.id;
    t->line = item.key_node.Mark().line + 1;
    m->id = item.key_node.Mark();
    if (!valid_task_id(t->id)) {
      return error(m->id, "task id " + in_quotes(t->id) +
                              " is not valid; use 1 to 250 letters, digits, '_' or '-' (no dots: "
                              "templates read tasks.<id>.output)");
    }
    const std::string what =
        "task " + in_quotes(item.key) +
        (task.group < 0 ? "" : " in group " + in_quotes(groups_[task.group].name));
    if (item.value.IsNull()) {
      return error(m->id, what + " is empty; give it a stage, e.g. " + t->id + ": {stage: noop}");
    }
    if (!item.value.IsMap()) {
      return error(where(item), what + " must be a mapping, e.g. " + t->id +
                                    ": {stage: codegen, upstream: [ingest_spec]}");
    }
    std::vector<YamlEntry> fields;
    FACTORY_RETURN_IF_ERROR(
        yaml_.entries(item.value, what, task.group < 0 ? &kTaskKeys : &kGroupTaskKeys, &fields));
    if (task.group >= 0) {
      FACTORY_RETURN_IF_ERROR(blocks_.round_fields(scope_of(*m), what, kTaskKeys, &fields));
    }
    const YamlEntry* approval = find(fields, "approval");
    if (approval != nullptr)
      FACTORY_RETURN_IF_ERROR(yaml_.boolean(*approval, "approval", &t->approval));
    const YamlEntry* stage = find(fields, "stage");
    if (stage == nullptr) {
      if (!t->approval) {
        return error(m->id, what +
                                " has no stage; add stage: <name> (a registered stage, or "
                                "approval for a human approval)");
      }
      t->stage = std::string(kApprovalStage);
    } else {
      FACTORY_RETURN_IF_ERROR(yaml_.text(*stage, "stage", &t->stage));
      if (t->stage.empty()) {
        return error(where(*stage), "stage is empty; name a registered stage");
      }
      if (t->stage == kApprovalStage) {
        if (approval != nullptr && !t->approval) {
          return error(where(*approval),
                       "stage approval is always an approval task; remove "
                       "approval: false");
        }
        t->approval = true;
      } else if (t->approval) {
        // An approval task dispatches nothing: a stage here would silently never run.
        return error(where(*stage),
                     "an approval task runs no stage, it waits for a person; "
                     "remove stage: " +
                         t->stage +
                         " (or use stage: approval), "
                         "and put the work in a task of its own before or after it");
      } else if (options_.stage_exists && !options_.stage_exists(t->stage)) {
        return error(where(*stage), "unknown stage " + in_quotes(t->stage) +
                                        "; use a built-in stage or one a plugin registers "
                                        "(check the spelling, and that the plugin is loaded)");
      }
    }

    const YamlEntry* approval_timeout = nullptr;
    for (const YamlEntry& f : fields) {
      const std::string& k = f.key;
      if (k == "description") {
        if (!f.value.IsNull()) FACTORY_RETURN_IF_ERROR(parse_description(f, t, *m));
      } else if (k == "upstream") {
        FACTORY_RETURN_IF_ERROR(parse_upstream(f, t, m));
      } else if (k == "trigger_rule") {
        FACTORY_RETURN_IF_ERROR(parse_rule(f, t));
      } else if (k == "retries") {
        int v = 0;
        FACTORY_RETURN_IF_ERROR(yaml_.integer(f, "retries", 0, kMaxRetries, &v));
        t->retries = v;
      } else if (k == "retry_delay") {
        FACTORY_RETURN_IF_ERROR(blocks_.optional_duration(f, "retry_delay", 0, &t->retry_delay_ms));
      } else if (k == "retry_exponential_backoff") {
        bool v = false;
        FACTORY_RETURN_IF_ERROR(yaml_.boolean(f, "retry_exponential_backoff", &v));
        t->retry_exponential_backoff = v;
      } else if (k == "max_retry_delay") {
        FACTORY_RETURN_IF_ERROR(
            blocks_.optional_duration(f, "max_retry_delay", 1, &t->max_retry_delay_ms));
      } else if (k == "execution_timeout") {
        FACTORY_RETURN_IF_ERROR(
            blocks_.optional_duration(f, "execution_timeout", 1, &t->execution_timeout_ms));
      } else if (k == "pool") {
        FACTORY_RETURN_IF_ERROR(yaml_.text(f, "pool", &t->pool));
        m->pool = where(f);
      } else if (k == "pool_slots") {
        FACTORY_RETURN_IF_ERROR(yaml_.integer(f, "pool_slots", 1, kMaxPoolSlots, &t->pool_slots));
        m->pool_slots = where(f);
      } else if (k == "priority_weight") {
        FACTORY_RETURN_IF_ERROR(yaml_.integer(f, "priority_weight", -kMaxPriorityWeight,
                                              kMaxPriorityWeight, &t->priority_weight));
      } else if (k == "weight_rule") {
        std::string name;
        FACTORY_RETURN_IF_ERROR(yaml_.text(f, "weight_rule", &name));
        auto rule = parse_weight_rule(name);
        if (!rule) {
          return error(where(f), "weight_rule " + in_quotes(name) +
                                     " is not one of downstream, upstream, absolute");
        }
        t->weight_rule = *rule;
      } else if (k == "output_topic") {
        if (!f.value.IsNull())
          FACTORY_RETURN_IF_ERROR(blocks_.topic(f, "output_topic", &t->output_topic));
      } else if (k == "params") {
        FACTORY_RETURN_IF_ERROR(parse_task_params(f, t, m));
      } else if (k == "approval_timeout") {
        FACTORY_RETURN_IF_ERROR(
            blocks_.optional_duration(f, "approval_timeout", 1, &t->approval_timeout_ms));
        approval_timeout = &f;
      } else if (k == "deadline") {
        FACTORY_RETURN_IF_ERROR(blocks_.task_deadline(f, t));
      }
    }
    if (approval_timeout != nullptr && !t->approval) {
      return error(where(*approval_timeout),
                   "approval_timeout applies only to approval tasks; add approval: true (or use "
                   "stage: approval), or remove it");
    }
    if (t->approval) {
      // Approval tasks read their params themselves (approval_params.h): check the keys now.
      const YamlEntry* params = find(fields, "params");
      if (params != nullptr) {
        Status s = check_approval_params(t->params);
        if (!s.ok()) return error(where(*params), s.message());
      }
    }
    return Status::ok_status();
  }

  Status parse_upstream(const YamlEntry& f, Task* t, TaskMarks* m) const {
    if (f.value.IsNull()) return Status::ok_status();
    std::vector<YamlEntry> items;
    if (f.value.IsScalar()) {
      items.push_back(f);
    } else if (f.value.IsSequence()) {
      for (const YAML::Node& n : f.value) items.push_back({"upstream", f.key_node, n});
    } else {
      return error(where(f),
                   "upstream must be a task id or a list of them, e.g. "
                   "upstream: [ingest_spec]");
    }
    std::unordered_set<std::string> listed;  // a fan-in may list 100,000 upstreams
    std::vector<std::string> ids;
    for (const YamlEntry& item : items) {
      std::string written;
      FACTORY_RETURN_IF_ERROR(yaml_.text(item, "upstream", &written));
      Status s = expand_upstream_ref(written, scope_of(*m), &ids);
      if (!s.ok())
        return error(where(item), "task " + in_quotes(t->id) + " upstream: " + s.message());
      for (std::string& id : ids) {
        if (!listed.insert(id).second) {
          return error(where(item), "upstream lists " + in_quotes(id) + " twice; keep one");
        }
        t->upstream.push_back(std::move(id));
        m->upstream.push_back(where(item));
      }
    }
    return Status::ok_status();
  }

  Status parse_rule(const YamlEntry& f, Task* t) const {
    std::string name;
    FACTORY_RETURN_IF_ERROR(yaml_.text(f, "trigger_rule", &name));
    if (auto rule = parse_trigger_rule(name)) {
      t->trigger_rule = *rule;
      return Status::ok_status();
    }
    const std::vector<std::string_view> names = trigger_rule_names();
    std::string msg = "unknown trigger_rule " + in_quotes(name);
    std::string_view guess = rules_.suggest(name, names);
    if (!guess.empty()) {
      msg += "; did you mean " + in_quotes(guess) + "?";
    } else {
      msg += "; use one of ";
      for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) msg += ", ";
        msg += names[i];
      }
    }
    return error(where(f), msg);
  }

  // An unquoted `{{ x }}` is a YAML flow mapping whose key is another mapping: say so before
  // the JSON conversion reports a puzzling "key is not plain text".
  Status find_unquoted_template(const YAML::Node& n, const std::string& path, int depth,
                                int* nodes) const {
    if (depth > kMaxWalkDepth || ++*nodes > kMaxWalkNodes) return Status::ok_status();
    if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) {
        if (it->first.IsMap()) {
          return error(it->first.Mark(), path +
                                             ": a template must be quoted (unquoted, YAML "
                                             "reads {{ ... }} as a mapping); write "
                                             "name: \"{{ run.conf.ticket }}\"");
        }
        std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
        FACTORY_RETURN_IF_ERROR(
            find_unquoted_template(it->second, path + "." + key, depth + 1, nodes));
      }
    } else if (n.IsSequence()) {
      size_t i = 0;
      for (const YAML::Node& item : n) {
        if (item.IsMap() && item.size() == 1 && item.begin()->first.IsMap()) {
          return error(item.Mark(), path + "[" + std::to_string(i) +
                                        "]: a template must be quoted (unquoted, YAML reads "
                                        "{{ ... }} as a mapping); write \"{{ ... }}\"");
        }
        FACTORY_RETURN_IF_ERROR(
            find_unquoted_template(item, path + "[" + std::to_string(i++) + "]", depth + 1, nodes));
      }
    }
    return Status::ok_status();
  }

  // In a group the text may use {{ group.round }} and the other references (dag_groups.h).
  Status parse_description(const YamlEntry& f, Task* t, const TaskMarks& m) const {
    FACTORY_RETURN_IF_ERROR(yaml_.text(f, "description", &t->description));
    if (groups_.empty()) return Status::ok_status();
    std::vector<std::string> out;
    bool is_number = false;
    Status s = expand_group_refs(t->description, scope_of(m), false, &out, &is_number);
    if (!s.ok())
      return error(where(f), "task " + in_quotes(t->id) + " description: " + s.message());
    t->description = out[0];
    return Status::ok_status();
  }

  Status parse_task_params(const YamlEntry& f, Task* t, TaskMarks* m) const {
    if (f.value.IsNull()) return Status::ok_status();
    if (!f.value.IsMap()) {
      return error(where(f),
                   "params must be a mapping of names to values, e.g. "
                   "params: {ticket: \"{{ run.conf.ticket }}\"}");
    }
    int nodes = 0;
    FACTORY_RETURN_IF_ERROR(find_unquoted_template(f.value, "params", 0, &nodes));
    FACTORY_RETURN_IF_ERROR(yaml_.to_json(f.value, "params", &t->params));
    if (!groups_.empty()) {
      Status s = expand_group_params(&t->params, scope_of(*m));
      if (!s.ok()) return error(where(f), "task " + in_quotes(t->id) + " " + s.message());
    }
    m->params = f.value;
    return Status::ok_status();
  }

  // Upstream names, cycles and pools: the checks that need every task.
  Status check_graph() {
    const size_t n = dag_.tasks.size();
    std::vector<std::string_view> ids;
    position_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      position_.emplace(dag_.tasks[i].id, static_cast<int>(i));
      ids.push_back(dag_.tasks[i].id);
    }
    upstream_.assign(n, {});
    for (size_t i = 0; i < n; ++i) {
      const Task& t = dag_.tasks[i];
      for (size_t j = 0; j < t.upstream.size(); ++j) {
        const std::string& u = t.upstream[j];
        if (u == t.id) {
          return error(marks_[i].upstream[j],
                       "task " + in_quotes(t.id) + " lists itself as upstream; remove it");
        }
        auto it = position_.find(u);
        if (it == position_.end()) {
          std::string msg = "task " + in_quotes(t.id) + " has unknown upstream " + in_quotes(u);
          std::string_view guess = yaml_.suggest(u, ids);
          msg += guess.empty() ? "; it must be the id of a task in this file"
                               : "; did you mean " + in_quotes(guess) + "?";
          return error(marks_[i].upstream[j], msg);
        }
        upstream_[i].push_back(it->second);
      }
    }
    std::vector<int> cycle = find_cycle(upstream_);
    if (!cycle.empty()) {
      std::string path;
      for (int t : cycle) {
        if (!path.empty()) path += " -> ";
        path += dag_.tasks[t].id;
      }
      // Point at the upstream entry of the cycle's first task that closes the loop.
      const int first = cycle.front();
      const int before = cycle[cycle.size() - 2];
      YAML::Mark at = marks_[first].id;
      const Task& t = dag_.tasks[first];
      for (size_t j = 0; j < t.upstream.size(); ++j) {
        if (t.upstream[j] == dag_.tasks[before].id) at = marks_[first].upstream[j];
      }
      return error(at, "tasks form a cycle: " + path +
                           "; a task cannot wait for itself, remove one of these upstream links");
    }

    std::vector<std::string_view> pool_names;
    for (const auto& [name, slots] : dag_.pools) pool_names.push_back(name);
    if (dag_.pools.find(kDefaultPool) == dag_.pools.end()) pool_names.push_back(kDefaultPool);
    for (size_t i = 0; i < n; ++i) {
      const Task& t = dag_.tasks[i];
      int slots = kDefaultPoolSlots;
      auto it = dag_.pools.find(t.pool);
      if (it != dag_.pools.end()) {
        slots = it->second;
      } else if (t.pool != kDefaultPool) {
        std::string msg = "task " + in_quotes(t.id) + " uses unknown pool " + in_quotes(t.pool);
        std::string_view guess = yaml_.suggest(t.pool, pool_names);
        msg += guess.empty() ? "; declare it under pools: (e.g. pools: {" + t.pool + ": 2})"
                             : "; did you mean " + in_quotes(guess) + "?";
        return error(marks_[i].pool, msg);
      }
      if (t.pool_slots > slots) {
        return error(marks_[i].pool_slots, "task " + in_quotes(t.id) + " needs " +
                                               std::to_string(t.pool_slots) + " slots but pool " +
                                               in_quotes(t.pool) + " has " + std::to_string(slots) +
                                               "; it could never run: lower pool_slots or "
                                               "enlarge the pool");
      }
    }
    return Status::ok_status();
  }

  // Every params string of every task, with the line of the string that is wrong.
  Status check_templates() {
    std::vector<uint32_t> seen(dag_.tasks.size(), 0);
    uint32_t stamp = 0;
    for (size_t i = 0; i < dag_.tasks.size(); ++i) {
      const Task& t = dag_.tasks[i];
      if (t.params.find('{') == std::string::npos || marks_[i].params.IsNull()) continue;
      bool marked = false;
      TemplateScope scope;
      scope.task_id = t.id;
      scope.task_exists = [&](std::string_view id) { return find_position(id) >= 0; };
      scope.is_upstream = [&](std::string_view id) {
        const int target = find_position(id);
        if (target < 0) return false;
        // Most templates read a direct upstream; only the others pay for the ancestor walk.
        for (int u : upstream_[i]) {
          if (u == target) return true;
        }
        if (!marked) {  // mark every ancestor of task i once
          ++stamp;
          std::vector<int> stack(upstream_[i].begin(), upstream_[i].end());
          while (!stack.empty()) {
            int x = stack.back();
            stack.pop_back();
            if (seen[x] == stamp) continue;
            seen[x] = stamp;
            stack.insert(stack.end(), upstream_[x].begin(), upstream_[x].end());
          }
          marked = true;
        }
        return seen[target] == stamp;
      };
      FACTORY_RETURN_IF_ERROR(
          walk_templates(marks_[i].params, "params", t, scope, scope_of(marks_[i]), false));
    }
    return Status::ok_status();
  }

  int find_position(std::string_view id) const {
    auto it = position_.find(id);
    return it == position_.end() ? -1 : it->second;
  }

  // The params block converted to JSON already, so it is finite and acyclic here.
  Status walk_templates(const YAML::Node& n, const std::string& path, const Task& t,
                        const TemplateScope& scope, const GroupScope& group, bool in_list) const {
    if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) {
        FACTORY_RETURN_IF_ERROR(
            walk_templates(it->second, path + "." + it->first.Scalar(), t, scope, group, false));
      }
    } else if (n.IsSequence()) {
      size_t i = 0;
      for (const YAML::Node& item : n) {
        FACTORY_RETURN_IF_ERROR(
            walk_templates(item, path + "[" + std::to_string(i++) + "]", t, scope, group, true));
      }
    } else if (n.IsScalar()) {
      // The group references were checked when the params were read; what they expand to is
      // checked here like any template.
      std::vector<std::string> texts{n.Scalar()};
      bool is_number = false;
      if (!groups_.empty() &&
          !expand_group_refs(n.Scalar(), group, in_list, &texts, &is_number).ok()) {
        return Status::ok_status();
      }
      for (const std::string& text : texts) {
        Status s = check_template(text, scope, nullptr);
        if (!s.ok()) {
          return error(n.Mark(), "task " + in_quotes(t.id) + " " + path + ": " + s.message());
        }
      }
    }
    return Status::ok_status();
  }

  YamlReader yaml_;
  YamlReader rules_;  // the same file; its aliases are old trigger rule names
  DagBlocks blocks_;  // reads with yaml_
  const DagParseOptions& options_;
  Dag dag_;
  std::vector<TaskMarks> marks_;            // parallel to dag_.tasks
  std::vector<TaskGroup> groups_;           // the file's task groups; fixed once tasks are read
  std::vector<std::vector<int>> upstream_;  // positions, parallel to dag_.tasks
  // Task id -> position; views into dag_.tasks, which no longer changes once it is filled.
  std::unordered_map<std::string_view, int> position_;
};

}  // namespace

Result<Dag> parse_dag_yaml(std::string_view text, std::string_view source,
                           const DagParseOptions& options) {
  DagParser parser(source, options);
  return parser.parse(text);
}

}  // namespace factory::scheduler
