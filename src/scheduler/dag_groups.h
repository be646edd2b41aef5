// Task groups in DAG files: a block of tasks that repeats, expanded when the file is loaded
// (in the spirit of Airflow's TaskGroup, docs/dags.md "Task groups"). Everything after loading
// (`dags show`, the grid, trigger rules, branching, the store) sees ordinary tasks.
//
//   tasks:
//     round:                      # the group's name
//       repeat: 3                 # rounds 1..3
//       tasks:
//         codegen:
//           stage: codegen
//           upstream: [prev.gate]                 # the previous round's gate
//           params: {attempt: "{{ group.round }}", report: "{{ prev.gate.output.report }}"}
//           first_round: {upstream: [ingest], params: {report: ""}}
//         gate:
//           ...
//           params: {branch: {failed: ["{{ next.codegen.id }}"]}}
//           last_round: {params: {branch: {failed: [human_review]}}}
//     candidate:
//       upstream: [round.each.release]              # release_1, release_2, release_3
//
// Round r of group task `gate` has the id `gate_r` (task_round_id): the id alphabet stays
// [A-Za-z0-9_-] (a '.' would make `tasks.<id>.output` ambiguous in templates), and the ids
// are the ones a file of copied rounds used, so stored runs and scripts keep matching.
//
// References, rewritten at load time (every other template is left for the run):
//   inside a group:  this.<t>, prev.<t>, next.<t>  (this, the previous, the next round's task)
//                    group.round, group.repeat      (the round number, the number of rounds)
//   anywhere:        <g>.<n>.<t>, <g>.last.<t>     (round n's / the last round's task of group g)
//                    <g>.each.<t>                    (every round's: one list item per round)
//                    <g>.repeat                      (group g's number of rounds)
// In `upstream:` a reference is written bare (`prev.gate`); in params inside a template:
// `{{ prev.gate.output }}` reads that task's output, `{{ prev.gate.id }}` is its id as text.
// A string that is exactly `{{ group.round }}` (or a repeat) becomes a number.
//
// Pure functions over strings; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::scheduler {

// One group of a DAG file, as read from its header.
struct TaskGroup {
  std::string name;
  int repeat = 1;
  std::vector<std::string> tasks;  // the local names, in file order
  int line = 0;                    // 1-based line of the group's name
};

// Where a string being expanded sits: in round `round` of group `group`, or (group null)
// outside every group. `groups` (all the file's groups, borrowed) resolve <g>.* references.
struct GroupScope {
  const TaskGroup* group = nullptr;
  int round = 0;
  const std::vector<TaskGroup>* groups = nullptr;
};

// The id of round `round` of group task `task`: "gate", 2 -> "gate_2".
std::string task_round_id(std::string_view task, int round);

// True for names a group may not take: the roots templates and references start with.
bool is_reserved_group_name(std::string_view name);

// Expands the load-time references in one string. Usually *out gets one string; a string
// with `<g>.each.` gets one per round of g, which only a list item may do (`in_list`).
// *is_number is set when the string was exactly one number-valued reference (group.round,
// a repeat), so a params value becomes a JSON number. InvalidArgument (no position; the
// caller adds it) for an unknown group field, a task not in the group, prev in round 1, next
// in the last round, a round out of range, an `each` outside a list, or this/prev/next/group
// outside a group.
Status expand_group_refs(std::string_view text, const GroupScope& scope, bool in_list,
                         std::vector<std::string>* out, bool* is_number);

// Expands one `upstream:` entry: a bare reference (`prev.gate`, `round.each.release`) becomes
// the task ids it names; any other id is kept as written. Errors as expand_group_refs.
Status expand_upstream_ref(std::string_view id, const GroupScope& scope,
                           std::vector<std::string>* out);

// Every string of `*params_json` (a JSON object) expanded, list items spread per round, whole
// number references made numbers; unchanged when nothing needs it. Errors as
// expand_group_refs, prefixed with the value's path ("params.branch.failed[0]: ...").
Status expand_group_params(std::string* params_json, const GroupScope& scope);

}  // namespace factory::scheduler
