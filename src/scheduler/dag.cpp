// The DAG model (dag.h): state names and the index.
#include "scheduler/dag.h"

#include <algorithm>
#include <deque>
#include <string>
#include <utility>

#include "scheduler/templates.h"

namespace factory::scheduler {
namespace {

std::string quoted(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

// Names in enum order, so name lookups and parsing share one table.
constexpr std::array<std::string_view, 12> kTriggerRuleNames = {
    "all_success",  "all_failed",
    "all_done",     "all_done_min_one_success",
    "all_skipped",  "one_success",
    "one_failed",   "one_done",
    "none_failed",  "none_failed_min_one_success",
    "none_skipped", "always"};
constexpr std::array<std::string_view, 3> kWeightRuleNames = {"downstream", "upstream", "absolute"};
constexpr std::array<std::string_view, 11> kTaskStateNames = {
    "none",         "scheduled",       "queued",  "running",           "success", "failed",
    "up_for_retry", "upstream_failed", "skipped", "awaiting_approval", "removed"};
constexpr std::array<std::string_view, 5> kRunStateNames = {"queued", "running", "success",
                                                            "failed", "cancelled"};

template <typename E, size_t N>
std::optional<E> parse_name(const std::array<std::string_view, N>& names, std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

template <typename E, size_t N>
std::string_view name_of(const std::array<std::string_view, N>& names, E e) {
  size_t i = static_cast<size_t>(e);
  return i < N ? names[i] : std::string_view("unknown");
}

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Sum of priority weights over each task and its descendants along `next` (downstream edges for
// the downstream rule, upstream edges for the upstream rule), each descendant counted once, as
// Airflow does. `order` lists tasks so that every task comes after all tasks `next` leads to.
// A task with a single `next` reuses that task's sum (its descendants are exactly that task
// and its descendants), which makes chains and fan-outs linear; others walk their
// descendants with a generation-stamped visited array.
void weight_sums(const Dag& dag, const std::vector<std::vector<int>>& next,
                 const std::vector<int>& order, std::vector<int64_t>* sums) {
  const size_t n = dag.tasks.size();
  sums->assign(n, 0);
  std::vector<uint32_t> seen(n, 0);
  uint32_t stamp = 0;
  std::vector<int> stack;
  for (int t : order) {
    int64_t total = dag.tasks[t].priority_weight;
    if (next[t].size() == 1) {
      total += (*sums)[next[t][0]];
    } else if (!next[t].empty()) {
      ++stamp;
      stack.assign(next[t].begin(), next[t].end());
      for (int x : stack) seen[x] = stamp;
      while (!stack.empty()) {
        int x = stack.back();
        stack.pop_back();
        total += dag.tasks[x].priority_weight;
        for (int y : next[x]) {
          if (seen[y] != stamp) {
            seen[y] = stamp;
            stack.push_back(y);
          }
        }
      }
    }
    (*sums)[t] = total;
  }
}

}  // namespace

std::string_view trigger_rule_name(TriggerRule rule) { return name_of(kTriggerRuleNames, rule); }
std::optional<TriggerRule> parse_trigger_rule(std::string_view name) {
  return parse_name<TriggerRule>(kTriggerRuleNames, name);
}
std::string_view weight_rule_name(WeightRule rule) { return name_of(kWeightRuleNames, rule); }
std::optional<WeightRule> parse_weight_rule(std::string_view name) {
  return parse_name<WeightRule>(kWeightRuleNames, name);
}
std::string_view task_state_name(TaskState state) { return name_of(kTaskStateNames, state); }
std::optional<TaskState> parse_task_state(std::string_view name) {
  return parse_name<TaskState>(kTaskStateNames, name);
}
std::string_view run_state_name(RunState state) { return name_of(kRunStateNames, state); }
std::optional<RunState> parse_run_state(std::string_view name) {
  return parse_name<RunState>(kRunStateNames, name);
}

bool is_finished(TaskState state) {
  return state == TaskState::kSuccess || state == TaskState::kFailed ||
         state == TaskState::kSkipped || state == TaskState::kUpstreamFailed ||
         state == TaskState::kRemoved;
}

bool is_terminal(RunState state) {
  return state == RunState::kSuccess || state == RunState::kFailed || state == RunState::kCancelled;
}

std::string_view trigger_kind_name(Trigger::Kind kind) {
  switch (kind) {
    case Trigger::Kind::kManual:
      return "manual";
    case Trigger::Kind::kCron:
      return "cron";
    case Trigger::Kind::kTopic:
      return "topic";
  }
  return "unknown";
}

bool valid_task_id(std::string_view id) {
  return !id.empty() && id.size() <= 250 && std::all_of(id.begin(), id.end(), id_char);
}

bool valid_dag_id(std::string_view id) {
  return !id.empty() && id.size() <= 250 && id != "." && id != ".." &&
         std::all_of(id.begin(), id.end(), [](char c) { return id_char(c) || c == '.'; });
}

int DagIndex::find(std::string_view task_id) const {
  auto it = by_id_.find(task_id);
  return it == by_id_.end() ? -1 : it->second;
}

const Task* Dag::find_task(std::string_view id) const {
  if (index.size() == tasks.size() && !tasks.empty()) {
    int i = index.find(id);
    return i < 0 ? nullptr : &tasks[i];
  }
  for (const Task& t : tasks) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

std::vector<int> find_cycle(const std::vector<std::vector<int>>& upstream) {
  const size_t n = upstream.size();
  // Kahn's algorithm over upstream -> downstream edges: what it cannot remove lies on or
  // below a cycle, and every such task has an upstream that is also left over.
  std::vector<int> pending(n);
  std::vector<std::vector<int>> downstream(n);
  for (size_t t = 0; t < n; ++t) {
    pending[t] = static_cast<int>(upstream[t].size());
    for (int u : upstream[t]) downstream[u].push_back(static_cast<int>(t));
  }
  std::vector<int> ready;
  for (size_t t = 0; t < n; ++t) {
    if (pending[t] == 0) ready.push_back(static_cast<int>(t));
  }
  size_t removed = 0;
  while (!ready.empty()) {
    int t = ready.back();
    ready.pop_back();
    ++removed;
    for (int d : downstream[t]) {
      if (--pending[d] == 0) ready.push_back(d);
    }
  }
  if (removed == n) return {};
  // Walk upstream through left-over tasks until one repeats: that stretch is a cycle.
  int start = 0;
  while (pending[start] == 0) ++start;
  std::vector<int> pos(n, -1);
  std::vector<int> walk;
  int t = start;
  while (pos[t] < 0) {
    pos[t] = static_cast<int>(walk.size());
    walk.push_back(t);
    for (int u : upstream[t]) {
      if (pending[u] > 0) {
        t = u;
        break;
      }
    }
  }
  // walk[pos[t]..] goes upstream from t back to t; reverse it into downstream order.
  std::vector<int> cycle(walk.begin() + pos[t], walk.end());
  std::reverse(cycle.begin(), cycle.end());
  // Start at the task listed first in the file, so messages are stable.
  auto first = std::min_element(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), first, cycle.end());
  cycle.push_back(cycle.front());
  return cycle;
}

Status build_index(Dag* dag) {
  DagIndex index;
  const size_t n = dag->tasks.size();
  index.by_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const Task& t = dag->tasks[i];
    if (!valid_task_id(t.id)) {
      return Status::invalid_argument("task id " + quoted(t.id) +
                                      " is not valid; use 1 to 250 letters, digits, '_' or '-'");
    }
    if (!index.by_id_.emplace(t.id, static_cast<int>(i)).second) {
      return Status::invalid_argument("task id " + quoted(t.id) + " is used twice");
    }
  }
  index.upstream_.resize(n);
  index.downstream_.resize(n);
  // last_listed[j] == i + 1: task i already listed j (a fan-in of 100,000 stays linear).
  std::vector<size_t> last_listed(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const Task& t = dag->tasks[i];
    for (const std::string& u : t.upstream) {
      int j = index.find(u);
      if (j < 0) {
        return Status::invalid_argument("task " + quoted(t.id) + " has unknown upstream " +
                                        quoted(u));
      }
      if (last_listed[j] == i + 1) {
        return Status::invalid_argument("task " + quoted(t.id) + " lists upstream " + quoted(u) +
                                        " twice");
      }
      last_listed[j] = i + 1;
      index.upstream_[i].push_back(j);
      index.downstream_[j].push_back(static_cast<int>(i));
    }
  }
  std::vector<int> cycle = find_cycle(index.upstream_);
  if (!cycle.empty()) {
    std::string path;
    for (int t : cycle) {
      if (!path.empty()) path += " -> ";
      path += dag->tasks[t].id;
    }
    return Status::invalid_argument("tasks form a cycle: " + path);
  }

  // Topological order by Kahn's algorithm with a FIFO seeded with the roots in file order:
  // deterministic and linear (a min-heap would give file order among ready tasks at log cost,
  // which nothing needs).
  std::vector<int> pending(n);
  std::deque<int> ready;
  for (size_t i = 0; i < n; ++i) {
    pending[i] = static_cast<int>(index.upstream_[i].size());
    if (pending[i] == 0) {
      ready.push_back(static_cast<int>(i));
      index.roots_.push_back(static_cast<int>(i));
    }
  }
  index.topo_.reserve(n);
  while (!ready.empty()) {
    int t = ready.front();
    ready.pop_front();
    index.topo_.push_back(t);
    for (int d : index.downstream_[t]) {
      if (--pending[d] == 0) ready.push_back(d);
    }
  }

  // Templates: `tasks.<id>` must name an upstream, direct or transitive. Most references are
  // to a direct upstream; only the others pay for a walk over the task's ancestors.
  std::vector<uint32_t> seen(n, 0);
  uint32_t stamp = 0;
  for (size_t i = 0; i < n; ++i) {
    Task& t = dag->tasks[i];
    if (t.params.find("{{") == std::string::npos) {
      t.output_refs.clear();
      continue;
    }
    bool ancestors_marked = false;
    TemplateScope scope;
    scope.task_id = t.id;
    scope.task_exists = [&](std::string_view id) { return index.find(id) >= 0; };
    scope.is_upstream = [&](std::string_view id) {
      int target = index.find(id);
      for (int u : index.upstream_[i]) {
        if (u == target) return true;
      }
      if (!ancestors_marked) {
        ++stamp;
        std::vector<int> stack(index.upstream_[i].begin(), index.upstream_[i].end());
        while (!stack.empty()) {
          int x = stack.back();
          stack.pop_back();
          if (seen[x] == stamp) continue;
          seen[x] = stamp;
          for (int u : index.upstream_[x]) stack.push_back(u);
        }
        ancestors_marked = true;
      }
      return seen[target] == stamp;
    };
    std::vector<std::string> refs;
    Status s = check_params(t.params, scope, &refs);
    if (!s.ok()) {
      return Status::invalid_argument("task " + quoted(t.id) + " params " + s.message());
    }
    std::sort(refs.begin(), refs.end());
    refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
    t.output_refs = std::move(refs);
  }

  index.retry_.resize(n);
  index.timeout_.resize(n);
  const DefaultArgs& d = dag->default_args;
  for (size_t i = 0; i < n; ++i) {
    const Task& t = dag->tasks[i];
    RetrySpec& r = index.retry_[i];
    r.retries = t.retries.value_or(d.retries);
    r.retry_delay_ms = t.retry_delay_ms.value_or(d.retry_delay_ms);
    r.exponential_backoff = t.retry_exponential_backoff.value_or(d.retry_exponential_backoff);
    r.max_retry_delay_ms = t.max_retry_delay_ms ? t.max_retry_delay_ms : d.max_retry_delay_ms;
    index.timeout_[i] = t.execution_timeout_ms ? t.execution_timeout_ms : d.execution_timeout_ms;
  }

  // Priorities. Downstream sums need every downstream task first: reverse topological order.
  std::vector<int> reverse_topo(index.topo_.rbegin(), index.topo_.rend());
  bool any_downstream = false;
  bool any_upstream = false;
  for (const Task& t : dag->tasks) {
    any_downstream |= t.weight_rule == WeightRule::kDownstream;
    any_upstream |= t.weight_rule == WeightRule::kUpstream;
  }
  std::vector<int64_t> down_sums;
  std::vector<int64_t> up_sums;
  if (any_downstream) weight_sums(*dag, index.downstream_, reverse_topo, &down_sums);
  if (any_upstream) weight_sums(*dag, index.upstream_, index.topo_, &up_sums);
  index.priority_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (dag->tasks[i].weight_rule) {
      case WeightRule::kDownstream:
        index.priority_[i] = down_sums[i];
        break;
      case WeightRule::kUpstream:
        index.priority_[i] = up_sums[i];
        break;
      case WeightRule::kAbsolute:
        index.priority_[i] = dag->tasks[i].priority_weight;
        break;
    }
  }
  dag->index = std::move(index);
  return Status::ok_status();
}

}  // namespace factory::scheduler
