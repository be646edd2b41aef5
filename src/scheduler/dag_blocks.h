// DagBlocks: reads the blocks of a DAG file that stand on their own — schedule, pools, params,
// default_args, the DAG's and a task's deadline, the error budget — and the durations and topic
// names the rest of the file uses. Internal to the scheduler's DAG files (dag_parser.cpp,
// dag_groups.cpp); exposes yaml-cpp types through config/yaml_reader.h.
//
// Every error is the reader's InvalidArgument "FILE:LINE:COLUMN: what; how to fix".
// Not thread-safe; one per parse, like the YamlReader it borrows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_reader.h"
#include "factory/status.h"
#include "scheduler/dag.h"
#include "scheduler/dag_groups.h"
#include "scheduler/dag_parser.h"

namespace factory::scheduler {

constexpr int kMaxRetries = 1000;
constexpr int kMaxActiveRuns = 100'000;
constexpr int kMaxActiveTasks = 1'000'000;
constexpr int kMaxPoolSlots = 1'000'000;
// Airflow keeps priority weights in a 32-bit column; sums over a DAG still fit in 64 bits.
constexpr int64_t kMaxPriorityWeight = std::numeric_limits<int32_t>::max();

constexpr int kMaxRepeat = 100;

class DagBlocks {
 public:
  // `yaml` (borrowed) must outlive this reader.
  explicit DagBlocks(const config::YamlReader& yaml) : yaml_(yaml) {}

  // A duration (parse_duration_ms) of at least `min_ms`.
  Status duration(const config::YamlEntry& e, std::string_view field, int64_t min_ms,
                  int64_t* out) const;
  Status optional_duration(const config::YamlEntry& e, std::string_view field, int64_t min_ms,
                           std::optional<int64_t>* out) const;
  // A valid topic name.
  Status topic(const config::YamlEntry& e, std::string_view field, std::string* out) const;

  // schedule: (null, a cron expression, {cron:, timezone:} or {topic:}), checked with the
  // options' cron and time zone callbacks.
  Status schedule(const config::YamlEntry& e, const DagParseOptions& options, Dag* dag) const;

  // The top-level blocks, into *dag. error_budget() reads dag->tasks (its stage must be one of
  // theirs), so it runs after the tasks are read.
  Status pools(const config::YamlEntry& e, Dag* dag) const;
  Status params(const config::YamlEntry& e, Dag* dag) const;
  Status default_args(const config::YamlEntry& e, Dag* dag) const;
  Status dag_deadline(const config::YamlEntry& e, Dag* dag) const;
  Status error_budget(const config::YamlEntry& e, Dag* dag) const;
  // A task's `deadline:` (a duration or {after: ...}).
  Status task_deadline(const config::YamlEntry& e, Task* t) const;

  // True when an entry under tasks: is a task group (a mapping with repeat: or tasks:).
  static bool is_task_group(const YAML::Node& value);
  // A group's header: its name, `repeat` (1 to kMaxRepeat) and its tasks, in file order (not
  // yet read: each is read once per round). Errors: a reserved or invalid name, an unknown
  // key, a missing or bad repeat, no tasks, a task id that is not valid or repeats.
  Status task_group(const config::YamlEntry& e, TaskGroup* g,
                    std::vector<config::YamlEntry>* tasks) const;
  // A group task's fields for round scope.round: first_round: (round 1) and last_round: (the
  // last round) replace the keys they set, except that their params replace the task's params
  // key by key. `task_keys` are the keys they may set.
  Status round_fields(const GroupScope& scope, std::string_view what,
                      const config::YamlKeys& task_keys,
                      std::vector<config::YamlEntry>* fields) const;

 private:
  using YamlEntry = config::YamlEntry;
  Status check_cron(const YamlEntry& e, std::string_view field, const DagParseOptions& options,
                    const std::string& expr) const;
  static YAML::Mark where(const YamlEntry& e) { return config::YamlReader::where(e); }
  static const YamlEntry* find(const std::vector<YamlEntry>& entries, std::string_view key) {
    return config::YamlReader::find(entries, key);
  }

  const config::YamlReader& yaml_;
};

}  // namespace factory::scheduler
