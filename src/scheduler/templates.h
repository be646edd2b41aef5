// Params templates: how a task's `params` read the run's conf and its upstreams' outputs (the
// XCom analogue). A template is `{{ path }}` inside a JSON string of the params document:
//
//   {{ run.id }}  {{ run.dag_id }}  {{ run.logical_date }}   the run's id, DAG, logical date
//   {{ run.conf }}  {{ run.conf.x.y }}                        the run's conf, or a value in it
//   {{ tasks.<id>.output }}  {{ tasks.<id>.output.x.0.y }}    an upstream task's output (JSON),
//                                                             or a value in it; a numeric step
//                                                             indexes an array
//   {{ '{{' }}                                                a quoted literal: text as written
//
// A string that is exactly one template becomes the referenced JSON value itself (an object,
// a number, ...): "{{ tasks.a.output }}" hands the whole output on. Anywhere else a template is
// interpolated: strings as their text, other values as compact JSON. Only `{{ }}` exists: no
// filters, no `{% %}` blocks; object keys are never rendered.
//
// check_template() is the load-time check (dag_parser.h runs it on every params string):
// syntax, roots, and that `tasks.<id>` names a task upstream of this one, directly or
// transitively, so its output exists by the time this task runs. render_params() runs when a
// task instance is dispatched.
//
// All functions are pure and thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"

namespace factory::scheduler {

// What the templates of one task's params may reference.
struct TemplateScope {
  std::string_view task_id;  // the task whose params these are
  // True when `id` is a task of the DAG. Null: every id is.
  std::function<bool(std::string_view id)> task_exists;
  // True when `id` is upstream of task_id, directly or transitively. Null: every id is.
  std::function<bool(std::string_view id)> is_upstream;
};

// Checks the templates in `text` (one string value, unescaped). OK when every template is
// valid; otherwise InvalidArgument "template '{{ ... }}': what is wrong; how to fix it" for an
// unclosed '{{', an empty template, `{%`/`{#`, a filter, an unknown root or run field, or a
// `tasks.<id>` that is unknown, this task itself, or not upstream of it. Appends each task id
// read through `tasks.<id>.output` to *output_refs (when non-null; may repeat).
Status check_template(std::string_view text, const TemplateScope& scope,
                      std::vector<std::string>* output_refs);

// check_template() on every string value of `params_json`, which must be a JSON object.
// InvalidArgument for JSON that is not an object, or the first bad template (prefixed with
// the value's JSON pointer, e.g. "at /spec: template ...").
Status check_params(std::string_view params_json, const TemplateScope& scope,
                    std::vector<std::string>* output_refs);

// Everything a task instance's templates can read. Views must stay valid during the call.
struct RenderContext {
  std::string_view dag_id;
  std::string_view run_id;
  std::string_view logical_date;  // as the run stores it (ISO 8601 UTC)
  std::string_view conf_json = "{}";
  std::string_view task_id;  // the task being rendered, for messages
  // The output JSON of task `id`; nullopt when it has none (it was skipped, failed, or emitted
  // nothing). The view must stay valid until render_params returns. Null: no outputs.
  std::function<std::optional<std::string_view>(std::string_view id)> task_output;
};

// `params_json` with every template replaced, as compact JSON (returned unchanged, without
// parsing, when it holds no "{{"). InvalidArgument "task 'x': template '{{ ... }}': ..." for a
// value that does not exist (a conf key the run lacks, an upstream without output, a path
// step into a missing key or a non-container), output or conf that is not JSON, params with a
// template that are not a JSON object, or a template check_template() rejects.
Result<std::string> render_params(std::string_view params_json, const RenderContext& ctx);

// The params' top-level entries that hold no template, as a compact JSON object: what the DAG
// file itself says, which no upstream output, run conf or ticket can change. The scheduler
// puts it in the authenticated dispatch and the task worker hands it to the stage as its
// config (StageContext::config(), task_stage.h), so a stage takes what must not come from data
// (a command's argv, an endpoint, a secret's name) from there. An entry with "{{" anywhere
// (even a quoted literal) is left out. "{}" when params_json is not a JSON object.
std::string literal_params(std::string_view params_json);

}  // namespace factory::scheduler
