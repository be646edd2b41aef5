// The DAG model: what a config/dags/*.yaml file says (docs/dags.md), plus an index the run
// state machine walks (topological order, upstream/downstream positions, the effective retry
// policy and priority of each task), and the names of task-instance and run states.
//
// A Dag is a plain value: dag_parser.h builds one from a file, tests and benchmarks may build one
// in code and call build_index(). Once indexed it is immutable by convention; a const Dag is
// safe to share between threads. Tasks are referred to by their position in `Dag::tasks`
// ("task position"), which the index uses everywhere; ids are for people and templates.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "factory/status.h"

namespace factory::scheduler {

// Airflow's trigger rules (airflow/utils/trigger_rule.py); semantics in trigger_rules.h.
enum class TriggerRule : uint8_t {
  kAllSuccess,
  kAllFailed,
  kAllDone,
  kAllDoneMinOneSuccess,
  kAllSkipped,
  kOneSuccess,
  kOneFailed,
  kOneDone,
  kNoneFailed,
  kNoneFailedMinOneSuccess,
  kNoneSkipped,
  kAlways,
};
inline constexpr std::array<TriggerRule, 12> kAllTriggerRules = {
    TriggerRule::kAllSuccess,  TriggerRule::kAllFailed,
    TriggerRule::kAllDone,     TriggerRule::kAllDoneMinOneSuccess,
    TriggerRule::kAllSkipped,  TriggerRule::kOneSuccess,
    TriggerRule::kOneFailed,   TriggerRule::kOneDone,
    TriggerRule::kNoneFailed,  TriggerRule::kNoneFailedMinOneSuccess,
    TriggerRule::kNoneSkipped, TriggerRule::kAlways};
// "all_success", ... (the YAML spelling).
std::string_view trigger_rule_name(TriggerRule rule);
std::optional<TriggerRule> parse_trigger_rule(std::string_view name);

// How a task's effective priority is computed (Airflow's weight_rule).
enum class WeightRule : uint8_t {
  kDownstream,  // its priority_weight plus that of every task downstream of it (the default)
  kUpstream,    // its priority_weight plus that of every task upstream of it
  kAbsolute,    // its priority_weight
};
std::string_view weight_rule_name(WeightRule rule);
std::optional<WeightRule> parse_weight_rule(std::string_view name);

// Task-instance states (Airflow's TaskInstanceState, plus awaiting_approval). kNone is a task
// instance that exists but has not been considered yet; kRemoved one whose task left the DAG
// file while a run was in flight. The names are stored in the database: never rename one.
enum class TaskState : uint8_t {
  kNone,
  kScheduled,
  kQueued,
  kRunning,
  kSuccess,
  kFailed,
  kUpForRetry,
  kUpstreamFailed,
  kSkipped,
  kAwaitingApproval,
  kRemoved,
};
std::string_view task_state_name(TaskState state);
std::optional<TaskState> parse_task_state(std::string_view name);
// Airflow's State.finished: success, failed, skipped, upstream_failed, removed. The trigger
// rules count only these; up_for_retry and awaiting_approval are not finished.
bool is_finished(TaskState state);

enum class RunState : uint8_t { kQueued, kRunning, kSuccess, kFailed, kCancelled };
std::string_view run_state_name(RunState state);
std::optional<RunState> parse_run_state(std::string_view name);
bool is_terminal(RunState state);  // success, failed, cancelled

// What starts a run.
struct Trigger {
  enum class Kind : uint8_t { kManual, kCron, kTopic };
  Kind kind = Kind::kManual;
  std::string cron;              // kCron: the expression as written ("0 * * * *", "@hourly")
  std::string timezone = "UTC";  // kCron: the IANA zone its fields are matched in
  bool catchup = false;  // kCron: run every fire time missed while stopped, not only the latest
  std::string topic;     // kTopic: every record on it starts one run, the record as its conf
};
std::string_view trigger_kind_name(Trigger::Kind kind);  // "manual", "cron", "topic"

// Airflow's default_args that factoryd honours; every task inherits them unless it overrides.
struct DefaultArgs {
  int retries = 0;                   // retries after the first try
  int64_t retry_delay_ms = 300'000;  // Airflow's default: 5 minutes
  bool retry_exponential_backoff = false;
  std::optional<int64_t> max_retry_delay_ms;    // cap on a backed-off delay; none: 24 h
  std::optional<int64_t> execution_timeout_ms;  // per try; none: no limit
};

// A task's retry behaviour once defaults and overrides are combined; retry_delay.h turns it
// into delays.
struct RetrySpec {
  int retries = 0;
  int64_t retry_delay_ms = 300'000;
  bool exponential_backoff = false;
  std::optional<int64_t> max_retry_delay_ms;
};

inline constexpr std::string_view kDefaultPool = "default_pool";
inline constexpr int kDefaultPoolSlots = 128;  // Airflow's default_pool size
inline constexpr std::string_view kApprovalStage = "approval";
// The stage an approval task with `notify` params dispatches its message to when it becomes
// pending (stages/approval): the POST runs on a stage worker, never on the scheduler loop.
inline constexpr std::string_view kApprovalNotifyStage = "approval_notify";

struct Task {
  std::string id;     // [A-Za-z0-9_-]{1,250}: no dots, so tasks.<id>.output parses
  std::string stage;  // a registered stage, or "approval" for an approval task
  std::string description;
  std::vector<std::string> upstream;  // ids, in file order, no repeats
  TriggerRule trigger_rule = TriggerRule::kAllSuccess;
  // Overrides of the DAG's default_args; unset: inherited.
  std::optional<int> retries;
  std::optional<int64_t> retry_delay_ms;
  std::optional<bool> retry_exponential_backoff;
  std::optional<int64_t> max_retry_delay_ms;
  std::optional<int64_t> execution_timeout_ms;
  std::string pool = std::string(kDefaultPool);
  int pool_slots = 1;
  int64_t priority_weight = 1;
  WeightRule weight_rule = WeightRule::kDownstream;
  std::string output_topic;   // where the task's output is appended; "" none
  std::string params = "{}";  // a JSON object; its strings may hold templates (templates.h)
  // Upstream ids whose output the params templates read, sorted, no repeats (set by the
  // parser and build_index): the outputs to load before rendering.
  std::vector<std::string> output_refs;
  // An approval task (stage "approval"; `approval: true` in a file means the same) runs no
  // stage: once its trigger rule is met it waits in awaiting_approval for a person's decision.
  bool approval = false;
  std::optional<int64_t> approval_timeout_ms;  // none: waits until decided
  std::optional<int64_t> deadline_ms;          // from the run's start; a miss is recorded
  int line = 0;                                // 1-based line of the task's id in its file
};

// A DAG's error budget (`error_budget:` in its file, docs/dags.md): every task instance of
// `stage` that succeeds is a sample whose output's boolean `field` is its verdict (false is a
// failure). When more than max_failure_ratio of the samples in the rolling window failed, with
// at least min_samples of them, the budget is breached: the scheduler triggers one run of
// postmortem_dag and, with pause_auto_approval, pauses auto-approval (error_budget.h).
struct ErrorBudgetSpec {
  std::string stage;  // a stage a task of this DAG runs
  std::string field;  // a top-level boolean of the task's output
  int64_t window_ms = 0;
  double max_failure_ratio = 0;  // in [0, 1): breached when failures / samples is above it
  int min_samples = 1;           // no verdict below this many samples in the window
  std::string postmortem_dag;    // "" none: the DAG triggered once per breach
  bool pause_auto_approval = false;
  int line = 0;  // 1-based line of `error_budget:` in its file
};

struct Dag;

// Transparent hashing, so a string_view finds a std::string key without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

// Positions, edges and per-task derived values of one Dag, built by build_index(). Immutable
// once built: safe to share between threads.
class DagIndex {
 public:
  // Positions of the tasks each task waits for / that wait for it, in file order.
  const std::vector<int>& upstream(int task) const { return upstream_[task]; }
  const std::vector<int>& downstream(int task) const { return downstream_[task]; }
  // Every task after all of its upstreams; deterministic: the roots in file order, then
  // breadth-first (Kahn's algorithm).
  const std::vector<int>& topological_order() const { return topo_; }
  // Tasks without upstreams: the ones a new run starts.
  const std::vector<int>& roots() const { return roots_; }
  // Position of the task with this id, or -1.
  int find(std::string_view task_id) const;
  const RetrySpec& retry(int task) const { return retry_[task]; }
  const std::optional<int64_t>& execution_timeout_ms(int task) const { return timeout_[task]; }
  // The task's effective priority under its weight_rule (higher runs first).
  int64_t priority(int task) const { return priority_[task]; }
  size_t size() const { return topo_.size(); }

 private:
  friend Status build_index(Dag* dag);
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> by_id_;
  std::vector<std::vector<int>> upstream_;
  std::vector<std::vector<int>> downstream_;
  std::vector<int> topo_;
  std::vector<int> roots_;
  std::vector<RetrySpec> retry_;
  std::vector<std::optional<int64_t>> timeout_;
  std::vector<int64_t> priority_;
};

struct Dag {
  std::string dag_id;  // [A-Za-z0-9_.-]{1,250}
  std::string description;
  std::string params_schema;           // JSON Schema text; "" accepts any conf
  std::string params_defaults = "{}";  // a JSON object: the conf a run starts from
  DefaultArgs default_args;
  int max_active_runs = 16;
  int max_active_tasks = 16;  // running task instances across all of this DAG's runs
  // Pools this file declares (name -> slots). Pools are process-wide: load_dags() checks that
  // files declaring the same pool agree. default_pool has 128 slots unless declared.
  std::map<std::string, int, std::less<>> pools;
  Trigger trigger;
  std::optional<int64_t> deadline_ms;  // from the run's start; a miss is recorded and published
  std::string deadline_trigger_dag;    // "" none: the DAG a missed run deadline triggers
  std::vector<Task> tasks;             // in file order
  std::string source;                  // the file, as given to the parser
  int line = 0;                        // 1-based line of dag_id
  DagIndex index;                      // valid after build_index(); the parser builds it

  std::optional<ErrorBudgetSpec> error_budget;  // none: no budget is kept for this DAG

  // The task with this id, or nullptr (uses the index once built).
  const Task* find_task(std::string_view id) const;
};

// Builds dag->index from dag->tasks and dag->default_args, and fills each task's output_refs
// from its params templates. InvalidArgument (no file position: the parser reports those
// itself) for a duplicate or malformed task id, an unknown upstream, a cycle (named as
// "a -> b -> a"), or bad params templates. Linear in tasks + edges, except the downstream and
// upstream weight rules, which visit each task's descendants (ancestors) unless it has a
// single downstream (upstream): a 100,000-task chain or fan-out indexes in milliseconds, a wide
// dense lattice in time quadratic in its size (weight_rule: absolute avoids that).
Status build_index(Dag* dag);

// The positions of one cycle among tasks whose upstream lists are `upstream`, in downstream
// order, the first repeated at the end ({a, b, a}); empty when there is none.
std::vector<int> find_cycle(const std::vector<std::vector<int>>& upstream);

// True for a valid task id / dag id.
bool valid_task_id(std::string_view id);
bool valid_dag_id(std::string_view id);

}  // namespace factory::scheduler
