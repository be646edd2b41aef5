// Task group references (dag_groups.h): the load-time rewrite of this/prev/next/group and
// <group>.* references into ordinary task ids and `tasks.<id>` templates.
#include "scheduler/dag_groups.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

namespace factory::scheduler {
namespace {

namespace json = boost::json;

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (const std::string& x : v) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 6 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A resolved load-time reference.
struct Ref {
  enum class Kind { kNumber, kTask, kEach } kind = Kind::kNumber;
  int64_t number = 0;
  const TaskGroup* group = nullptr;
  std::string task;               // the local name in `group`
  int round = 0;                  // kTask
  std::vector<std::string> rest;  // the path after the task ("output", "report"), or "id"
};

const TaskGroup* find_group(const GroupScope& scope, std::string_view name) {
  if (scope.groups == nullptr) return nullptr;
  for (const TaskGroup& g : *scope.groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

Status check_task(const TaskGroup& g, std::string_view expr, std::string_view task) {
  if (std::find(g.tasks.begin(), g.tasks.end(), task) != g.tasks.end()) {
    return Status::ok_status();
  }
  return Status::invalid_argument(quoted(expr) + " names no task of group " + quoted(g.name) +
                                  " (its tasks: " + join(g.tasks, ", ") +
                                  "); a reference reads a task of the same group");
}

// Resolves `expr` (a dotted path, no braces). *is_ref is false for anything that is not a
// load-time reference (run.*, tasks.*, a plain id): the caller leaves it as written.
Status resolve(std::string_view expr, const GroupScope& scope, bool* is_ref, Ref* ref) {
  std::vector<std::string_view> parts = split_dots(expr);
  std::string_view root = parts[0];
  *is_ref = false;
  if (root == "this" || root == "prev" || root == "next" || root == "group") {
    *is_ref = true;
    if (scope.group == nullptr) {
      return Status::invalid_argument(
          quoted(expr) + " refers to a round, but this task is not in a task group; " +
          std::string(root) + ". works only in the tasks of a group with repeat:");
    }
    const TaskGroup& g = *scope.group;
    if (root == "group") {
      if (parts.size() == 2 && (parts[1] == "round" || parts[1] == "repeat")) {
        ref->kind = Ref::Kind::kNumber;
        ref->number = parts[1] == "round" ? scope.round : g.repeat;
        return Status::ok_status();
      }
      return Status::invalid_argument("unknown " + quoted(expr) +
                                      "; a group gives group.round (this round's number) and "
                                      "group.repeat (the number of rounds)");
    }
    if (parts.size() < 2 || parts[1].empty()) {
      return Status::invalid_argument(quoted(expr) + " names no task; write " + std::string(root) +
                                      ".<task>, e.g. " + std::string(root) + "." + g.tasks.front());
    }
    // Messages name the reference without the path after it: 'prev.gate', not
    // 'prev.gate.output.report'.
    const std::string name = std::string(root) + "." + std::string(parts[1]);
    FACTORY_RETURN_IF_ERROR(check_task(g, name, parts[1]));
    int round = scope.round + (root == "prev" ? -1 : root == "next" ? 1 : 0);
    if (round < 1) {
      return Status::invalid_argument(
          quoted(name) + " in round 1 of group " + quoted(g.name) +
          ": the first round has no previous round; say what round 1 uses instead under "
          "first_round: (e.g. first_round: {upstream: [ingest]})");
    }
    if (round > g.repeat) {
      return Status::invalid_argument(
          quoted(name) + " in round " + std::to_string(scope.round) + ", the last of group " +
          quoted(g.name) +
          ": the last round has no next round; say where the last round goes under "
          "last_round: (e.g. last_round: {params: {branch: {failed: [human_review]}}})");
    }
    ref->kind = Ref::Kind::kTask;
    ref->group = &g;
    ref->task = std::string(parts[1]);
    ref->round = round;
    for (size_t i = 2; i < parts.size(); ++i) ref->rest.emplace_back(parts[i]);
    return Status::ok_status();
  }
  const TaskGroup* g = find_group(scope, root);
  if (g == nullptr) return Status::ok_status();
  *is_ref = true;
  const std::string how = "; write " + g->name + ".<n>.<task>, " + g->name + ".last.<task>, " +
                          g->name + ".each.<task> or " + g->name + ".repeat";
  if (parts.size() == 2 && parts[1] == "repeat") {
    ref->kind = Ref::Kind::kNumber;
    ref->number = g->repeat;
    return Status::ok_status();
  }
  if (parts.size() < 3) {
    return Status::invalid_argument(quoted(expr) + " names no task of group " + quoted(g->name) +
                                    how);
  }
  if (parts[1] == "each") {
    ref->kind = Ref::Kind::kEach;
  } else if (parts[1] == "last") {
    ref->kind = Ref::Kind::kTask;
    ref->round = g->repeat;
  } else if (all_digits(parts[1])) {
    ref->kind = Ref::Kind::kTask;
    ref->round = std::stoi(std::string(parts[1]));
    if (ref->round < 1 || ref->round > g->repeat) {
      return Status::invalid_argument(quoted(expr) + ": group " + quoted(g->name) +
                                      " has rounds 1 to " + std::to_string(g->repeat));
    }
  } else {
    return Status::invalid_argument("unknown " + quoted(expr) + how);
  }
  FACTORY_RETURN_IF_ERROR(check_task(
      *g, g->name + "." + std::string(parts[1]) + "." + std::string(parts[2]), parts[2]));
  ref->group = g;
  ref->task = std::string(parts[2]);
  for (size_t i = 3; i < parts.size(); ++i) ref->rest.emplace_back(parts[i]);
  return Status::ok_status();
}

// A task reference inside `{{ }}` at round `round`: its id as text, or a tasks.<id> template.
Status render_task(std::string_view expr, const Ref& ref, int round, std::string* out) {
  std::string id = task_round_id(ref.task, round);
  if (ref.rest.size() == 1 && ref.rest[0] == "id") {
    *out += id;
    return Status::ok_status();
  }
  if (ref.rest.empty()) {
    return Status::invalid_argument("template '{{ " + std::string(expr) +
                                    " }}' names a task but no value; write " + std::string(expr) +
                                    ".output (its output) or " + std::string(expr) +
                                    ".id (its id as text)");
  }
  *out += "{{ tasks." + id + "." + join(ref.rest, ".") + " }}";
  return Status::ok_status();
}

// One piece of a string: text as written, or a reference.
struct Piece {
  std::string text;  // literal text, or the reference's expression
  bool is_ref = false;
  Ref ref;
};

}  // namespace

std::string task_round_id(std::string_view task, int round) {
  return std::string(task) + "_" + std::to_string(round);
}

bool is_reserved_group_name(std::string_view name) {
  return name == "run" || name == "tasks" || name == "this" || name == "prev" || name == "next" ||
         name == "group" || name == "params";
}

Status expand_group_refs(std::string_view text, const GroupScope& scope, bool in_list,
                         std::vector<std::string>* out, bool* is_number) {
  out->clear();
  *is_number = false;
  if (text.find("{{") == std::string_view::npos) {
    out->emplace_back(text);
    return Status::ok_status();
  }
  std::vector<Piece> pieces;
  const TaskGroup* each = nullptr;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    size_t close = open == std::string_view::npos ? open : text.find("}}", open + 2);
    if (close == std::string_view::npos) {  // no more templates (or an unclosed one: the
      pieces.push_back({std::string(text.substr(pos))});  // template check reports it)
      break;
    }
    if (open > pos) pieces.push_back({std::string(text.substr(pos, open - pos))});
    std::string_view whole = text.substr(open, close + 2 - open);
    std::string_view expr = trim(text.substr(open + 2, close - open - 2));
    pos = close + 2;
    Piece p{std::string(expr)};
    if (!expr.empty() && expr.front() != '\'' && expr.find_first_of(" |(") == std::string::npos) {
      FACTORY_RETURN_IF_ERROR(resolve(expr, scope, &p.is_ref, &p.ref));
    }
    if (!p.is_ref) {
      p.text = std::string(whole);
    } else if (p.ref.kind == Ref::Kind::kEach) {
      if (each != nullptr && each != p.ref.group) {
        return Status::invalid_argument("one string may spread over the rounds of one group, not " +
                                        quoted(each->name) + " and " + quoted(p.ref.group->name));
      }
      each = p.ref.group;
    }
    pieces.push_back(std::move(p));
  }
  if (each != nullptr && !in_list) {
    return Status::invalid_argument("'" + each->name +
                                    ".each.' gives one value per round: use it as an item of a "
                                    "list, e.g. [\"{{ " +
                                    each->name + ".each.<task>.output }}\"]");
  }
  *is_number = pieces.size() == 1 && pieces[0].is_ref && pieces[0].ref.kind == Ref::Kind::kNumber;
  const int copies = each != nullptr ? each->repeat : 1;
  for (int k = 1; k <= copies; ++k) {
    std::string s;
    for (const Piece& p : pieces) {
      if (!p.is_ref) {
        s += p.text;
      } else if (p.ref.kind == Ref::Kind::kNumber) {
        s += std::to_string(p.ref.number);
      } else {
        FACTORY_RETURN_IF_ERROR(
            render_task(p.text, p.ref, p.ref.kind == Ref::Kind::kEach ? k : p.ref.round, &s));
      }
    }
    out->push_back(std::move(s));
  }
  return Status::ok_status();
}

Status expand_upstream_ref(std::string_view id, const GroupScope& scope,
                           std::vector<std::string>* out) {
  out->clear();
  bool is_ref = false;
  Ref ref;
  if (id.find('.') != std::string_view::npos) {
    FACTORY_RETURN_IF_ERROR(resolve(id, scope, &is_ref, &ref));
  }
  if (!is_ref) {
    out->emplace_back(id);  // an ordinary id; the graph check says if it is unknown
    return Status::ok_status();
  }
  if (ref.kind == Ref::Kind::kNumber) {
    return Status::invalid_argument(quoted(id) + " is a number, not a task; upstream names tasks");
  }
  if (!ref.rest.empty()) {
    return Status::invalid_argument(
        quoted(id) + ": upstream names a task, not a value in it; drop ." + join(ref.rest, "."));
  }
  if (ref.kind == Ref::Kind::kEach) {
    for (int k = 1; k <= ref.group->repeat; ++k) out->push_back(task_round_id(ref.task, k));
  } else {
    out->push_back(task_round_id(ref.task, ref.round));
  }
  return Status::ok_status();
}

namespace {

// Expands every string under `v`; `path` names it in messages. *changed when anything did.
Status expand_value(json::value* v, const std::string& path, const GroupScope& scope,
                    bool* changed) {
  std::vector<std::string> out;
  bool is_number = false;
  if (v->is_string()) {
    const json::string& s = v->get_string();
    if (s.find("{{") == json::string::npos) return Status::ok_status();
    Status st =
        expand_group_refs(std::string_view(s.data(), s.size()), scope, false, &out, &is_number);
    if (!st.ok()) return Status::invalid_argument(path + ": " + st.message());
    if (is_number) {
      *v = std::stoll(out[0]);
    } else if (out[0] != std::string_view(s.data(), s.size())) {
      *v = out[0];
    } else {
      return Status::ok_status();
    }
    *changed = true;
    return Status::ok_status();
  }
  if (v->is_object()) {
    for (auto& [key, item] : v->get_object()) {
      FACTORY_RETURN_IF_ERROR(expand_value(&item, path + "." + std::string(key), scope, changed));
    }
    return Status::ok_status();
  }
  if (!v->is_array()) return Status::ok_status();
  json::array expanded;
  size_t i = 0;
  for (json::value& item : v->get_array()) {
    const std::string at = path + "[" + std::to_string(i++) + "]";
    if (!item.is_string() || item.get_string().find("{{") == json::string::npos) {
      FACTORY_RETURN_IF_ERROR(expand_value(&item, at, scope, changed));
      expanded.push_back(std::move(item));
      continue;
    }
    const json::string& s = item.get_string();
    Status st =
        expand_group_refs(std::string_view(s.data(), s.size()), scope, true, &out, &is_number);
    if (!st.ok()) return Status::invalid_argument(at + ": " + st.message());
    if (is_number) {
      expanded.push_back(std::stoll(out[0]));
      *changed = true;
      continue;
    }
    if (out.size() != 1 || out[0] != std::string_view(s.data(), s.size())) *changed = true;
    for (std::string& x : out) expanded.push_back(json::string(x));
  }
  *v = std::move(expanded);
  return Status::ok_status();
}

}  // namespace

Status expand_group_params(std::string* params_json, const GroupScope& scope) {
  if (params_json->find("{{") == std::string::npos) return Status::ok_status();
  boost::system::error_code ec;
  json::value v = json::parse(*params_json, ec);
  if (ec) return Status::ok_status();  // not ours to report: the params check does
  bool changed = false;
  FACTORY_RETURN_IF_ERROR(expand_value(&v, "params", scope, &changed));
  if (changed) *params_json = json::serialize(v);
  return Status::ok_status();
}

}  // namespace factory::scheduler
