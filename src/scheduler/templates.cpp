// Params templates (templates.h). Parsing is shared by the load-time check and rendering, so
// a template the parser accepted renders, and one it rejected never reaches a run.
#include "scheduler/templates.h"

#include <cctype>
#include <charconv>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

namespace factory::scheduler {
namespace {

namespace json = boost::json;

// A template longer than this is shown cut in messages.
constexpr size_t kMaxShown = 80;

std::string quoted(std::string_view s) {
  std::string q = "'";
  q += s;
  q += "'";
  return q;
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string shown(std::string_view s) {
  if (s.size() <= kMaxShown) return std::string(s);
  return std::string(s.substr(0, kMaxShown)) + "...";
}

// One part of a string: literal text or a template.
struct Piece {
  bool is_template = false;
  std::string_view text;  // the literal text, or the whole "{{ ... }}"
  std::string_view expr;  // a template's trimmed inside
};

Status template_error(std::string_view whole, std::string_view what) {
  return Status::invalid_argument("template " + quoted(shown(whole)) + ": " + std::string(what));
}

// Splits `s` into literal text and templates. InvalidArgument for an unclosed '{{', `{%` or
// `{#`. A '}}' outside a template is literal text (it is common in code).
Status split(std::string_view s, std::vector<Piece>* out) {
  out->clear();
  size_t pos = 0;
  while (pos < s.size()) {
    size_t open = s.find('{', pos);
    while (open != std::string_view::npos && open + 1 < s.size() && s[open + 1] != '{' &&
           s[open + 1] != '%' && s[open + 1] != '#') {
      open = s.find('{', open + 1);
    }
    if (open == std::string_view::npos || open + 1 >= s.size()) {
      out->push_back({false, s.substr(pos), {}});
      break;
    }
    if (s[open + 1] == '%' || s[open + 1] == '#') {
      return template_error(s.substr(open, 20),
                            "Jinja blocks ({% %}) and comments ({# #}) are not supported, only "
                            "{{ path }}; for the literal text write {{ '" +
                                std::string(s.substr(open, 2)) + "' }}");
    }
    if (open > pos) out->push_back({false, s.substr(pos, open - pos), {}});
    // A quoted literal may itself hold "}}": find its closing quote first.
    size_t inner = s.find_first_not_of(" \t\r\n", open + 2);
    size_t search_from = open + 2;
    if (inner != std::string_view::npos && (s[inner] == '\'' || s[inner] == '"')) {
      size_t close_quote = s.find(s[inner], inner + 1);
      if (close_quote != std::string_view::npos) search_from = close_quote + 1;
    }
    size_t close = s.find("}}", search_from);
    if (close == std::string_view::npos) {
      return template_error(s.substr(open), "'{{' is not closed; add '}}' after the path");
    }
    std::string_view whole = s.substr(open, close + 2 - open);
    out->push_back({true, whole, trim(s.substr(open + 2, close - open - 2))});
    pos = close + 2;
  }
  return Status::ok_status();
}

// A parsed template.
struct Expr {
  enum class Kind { kLiteral, kRunId, kRunDagId, kRunLogicalDate, kRunConf, kTaskOutput };
  Kind kind = Kind::kLiteral;
  std::string_view literal;
  std::string_view task;               // kTaskOutput
  std::vector<std::string_view> path;  // the steps after run.conf / tasks.<id>.output
};

bool path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// What to write instead of a root people bring from Airflow's Jinja context.
std::string root_hint(std::string_view root) {
  if (root == "params" || root == "conf") {
    return "write run.conf.<name>: a run's conf starts from the DAG's params defaults";
  }
  if (root == "dag_run") return "write run instead, e.g. run.conf.<name> or run.id";
  if (root == "run_id") return "write run.id";
  if (root == "dag" || root == "dag_id") return "write run.dag_id";
  if (root == "ti" || root == "task_instance" || root == "task" || root == "xcom") {
    return "write tasks.<id>.output to read an upstream task's output";
  }
  if (root == "ds" || root == "ts" || root == "logical_date" || root == "execution_date" ||
      root == "data_interval_start" || root == "ds_nodash") {
    return "write run.logical_date";
  }
  return "templates start with run. (run.conf.<name>, run.id, run.dag_id, run.logical_date) or "
         "tasks.<id>.output";
}

Status parse_expr(const Piece& p, Expr* out) {
  std::string_view e = p.expr;
  if (e.empty()) {
    return template_error(p.text, "the template is empty; write a path such as run.conf.ticket");
  }
  if (e.front() == '\'' || e.front() == '"') {
    if (e.size() < 2 || e.back() != e.front() ||
        e.substr(1, e.size() - 2).find(e.front()) != std::string_view::npos) {
      return template_error(p.text, "a quoted literal must be one quoted text, e.g. {{ '{{' }}");
    }
    out->kind = Expr::Kind::kLiteral;
    out->literal = e.substr(1, e.size() - 2);
    return Status::ok_status();
  }
  if (e.find('|') != std::string_view::npos) {
    return template_error(p.text,
                          "filters ('|') are not supported; write a plain path such as "
                          "run.conf.ticket");
  }
  if (e.find('(') != std::string_view::npos) {
    return template_error(p.text,
                          "calls are not supported; write a plain path such as "
                          "tasks.<id>.output");
  }
  std::vector<std::string_view> steps;
  size_t start = 0;
  while (true) {
    size_t dot = e.find('.', start);
    std::string_view step = e.substr(start, dot == std::string_view::npos ? e.npos : dot - start);
    for (char c : step) {
      if (path_char(c)) continue;
      if (c == '[') {
        return template_error(p.text, "write an array index as a path step (.0), not [0]");
      }
      return template_error(p.text, quoted(e) +
                                        " is not a path: only letters, digits, '_' and '-' "
                                        "between dots; write e.g. run.conf.ticket");
    }
    if (step.empty()) {
      return template_error(p.text, "empty step in " + quoted(e) +
                                        " (two dots, or a dot at an end); write e.g. "
                                        "run.conf.ticket");
    }
    steps.push_back(step);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  std::string_view root = steps[0];
  if (root == "run") {
    if (steps.size() == 1) {
      return template_error(p.text,
                            "run alone is not a value; write run.id, run.dag_id, "
                            "run.logical_date, run.conf or run.conf.<name>");
    }
    std::string_view field = steps[1];
    if (field == "conf") {
      out->kind = Expr::Kind::kRunConf;
      out->path.assign(steps.begin() + 2, steps.end());
      return Status::ok_status();
    }
    if (field == "id" || field == "run_id") {
      out->kind = Expr::Kind::kRunId;
    } else if (field == "dag_id") {
      out->kind = Expr::Kind::kRunDagId;
    } else if (field == "logical_date") {
      out->kind = Expr::Kind::kRunLogicalDate;
    } else {
      return template_error(
          p.text, "run has no " + quoted(field) + "; it has id, dag_id, logical_date and conf");
    }
    if (steps.size() > 2) {
      return template_error(p.text,
                            "run." + std::string(field) + " is text; nothing can follow it");
    }
    return Status::ok_status();
  }
  if (root == "tasks") {
    if (steps.size() < 3 || steps[2] != "output") {
      std::string id = steps.size() > 1 ? std::string(steps[1]) : "<id>";
      return template_error(p.text, "write tasks." + id + ".output (or tasks." + id +
                                        ".output.<path>) to read an upstream task's output");
    }
    out->kind = Expr::Kind::kTaskOutput;
    out->task = steps[1];
    out->path.assign(steps.begin() + 3, steps.end());
    return Status::ok_status();
  }
  return template_error(p.text, "unknown name " + quoted(root) + "; " + root_hint(root));
}

Status check_scope(const Piece& p, const Expr& x, const TemplateScope& scope) {
  if (x.kind != Expr::Kind::kTaskOutput) return Status::ok_status();
  if (x.task == scope.task_id) {
    return template_error(p.text, "a task cannot read its own output; read an upstream task's");
  }
  if (scope.task_exists && !scope.task_exists(x.task)) {
    return template_error(p.text,
                          "there is no task " + quoted(x.task) + " in this DAG; check the task id");
  }
  if (scope.is_upstream && !scope.is_upstream(x.task)) {
    return template_error(p.text, "task " + quoted(x.task) + " is not upstream of " +
                                      quoted(scope.task_id) +
                                      ", so its output may not exist when " +
                                      quoted(scope.task_id) + " runs; add " + quoted(x.task) +
                                      " to upstream (directly or through "
                                      "another task)");
  }
  return Status::ok_status();
}

// "/a/0/b": the JSON pointer of a value, for messages.
std::string pointer_step(std::string_view key) {
  std::string s = "/";
  for (char c : key) {
    if (c == '~') {
      s += "~0";
    } else if (c == '/') {
      s += "~1";
    } else {
      s += c;
    }
  }
  return s;
}

Status check_value(const json::value& v, const std::string& at, const TemplateScope& scope,
                   std::vector<std::string>* refs) {
  if (v.is_string()) {
    const json::string& s = v.get_string();
    Status st = check_template(std::string_view(s.data(), s.size()), scope, refs);
    if (!st.ok()) return Status::invalid_argument("at " + at + ": " + st.message());
  } else if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      FACTORY_RETURN_IF_ERROR(check_value(kv.value(), at + pointer_step(kv.key()), scope, refs));
    }
  } else if (v.is_array()) {
    size_t i = 0;
    for (const json::value& item : v.get_array()) {
      FACTORY_RETURN_IF_ERROR(check_value(item, at + "/" + std::to_string(i++), scope, refs));
    }
  }
  return Status::ok_status();
}

// Renders templates for one task instance. Not thread-safe; one per render_params call.
class Renderer {
 public:
  explicit Renderer(const RenderContext& ctx) : ctx_(ctx) {}

  Status render(json::value* v) {
    if (v->is_string()) return render_string(v);
    if (v->is_object()) {
      for (auto& kv : v->get_object()) FACTORY_RETURN_IF_ERROR(render(&kv.value()));
    } else if (v->is_array()) {
      for (json::value& item : v->get_array()) FACTORY_RETURN_IF_ERROR(render(&item));
    }
    return Status::ok_status();
  }

 private:
  Status fail(const Piece& p, std::string_view what) const {
    return Status::invalid_argument("task " + quoted(ctx_.task_id) + ": template " +
                                    quoted(shown(p.text)) + ": " + std::string(what));
  }

  Status render_string(json::value* v) {
    const json::string& s = v->get_string();
    std::string_view text(s.data(), s.size());
    if (text.find("{{") == std::string_view::npos) return Status::ok_status();
    std::vector<Piece> pieces;
    Status st = split(text, &pieces);
    if (!st.ok()) {
      return Status::invalid_argument("task " + quoted(ctx_.task_id) + ": " + st.message());
    }
    if (pieces.size() == 1 && pieces[0].is_template) {  // the whole string: the value itself
      json::value out;
      FACTORY_RETURN_IF_ERROR(resolve(pieces[0], &out));
      *v = std::move(out);
      return Status::ok_status();
    }
    std::string out;
    for (const Piece& p : pieces) {
      if (!p.is_template) {
        out += p.text;
        continue;
      }
      json::value r;
      FACTORY_RETURN_IF_ERROR(resolve(p, &r));
      if (r.is_string()) {
        out.append(r.get_string().data(), r.get_string().size());
      } else {
        out += json::serialize(r);
      }
    }
    *v = json::string(out);
    return Status::ok_status();
  }

  Status resolve(const Piece& p, json::value* out) {
    Expr x;
    Status st = parse_expr(p, &x);
    if (!st.ok()) {
      return Status::invalid_argument("task " + quoted(ctx_.task_id) + ": " + st.message());
    }
    switch (x.kind) {
      case Expr::Kind::kLiteral:
        *out = json::string(x.literal);
        return Status::ok_status();
      case Expr::Kind::kRunId:
        return text_value(p, "run.id", ctx_.run_id, out);
      case Expr::Kind::kRunDagId:
        return text_value(p, "run.dag_id", ctx_.dag_id, out);
      case Expr::Kind::kRunLogicalDate:
        return text_value(p, "run.logical_date", ctx_.logical_date, out);
      case Expr::Kind::kRunConf: {
        if (!conf_parsed_) {
          FACTORY_RETURN_IF_ERROR(parse_json(p, "the run's conf", ctx_.conf_json, &conf_));
          conf_parsed_ = true;
        }
        return walk(p, "run.conf", conf_, x.path, out);
      }
      case Expr::Kind::kTaskOutput: {
        std::string id(x.task);
        auto it = outputs_.find(id);
        if (it == outputs_.end()) {
          std::optional<std::string_view> text;
          if (ctx_.task_output) text = ctx_.task_output(x.task);
          // No output (the task was skipped, e.g. a branch not taken, or emitted nothing) is
          // null, as Airflow's xcom_pull gives None: the join after alternative branches reads
          // every branch and keeps the one that ran (the coalesce stage). A path into it fails.
          json::value parsed;
          if (text) {
            FACTORY_RETURN_IF_ERROR(
                parse_json(p, "the output of task " + quoted(x.task), *text, &parsed));
          }
          it = outputs_.emplace(id, std::move(parsed)).first;
        }
        return walk(p, "tasks." + id + ".output", it->second, x.path, out);
      }
    }
    return fail(p, "unknown template kind");
  }

  Status text_value(const Piece& p, std::string_view name, std::string_view value,
                    json::value* out) const {
    if (value.empty()) return fail(p, std::string(name) + " is not set for this run");
    *out = json::string(value);
    return Status::ok_status();
  }

  Status parse_json(const Piece& p, const std::string& what, std::string_view text,
                    json::value* out) const {
    boost::system::error_code ec;
    *out = json::parse(text, ec);
    if (ec) return fail(p, what + " is not JSON: " + ec.message());
    return Status::ok_status();
  }

  // Follows `path` from `root`; `name` is the path so far, for messages.
  Status walk(const Piece& p, std::string name, const json::value& root,
              const std::vector<std::string_view>& path, json::value* out) const {
    const json::value* v = &root;
    for (std::string_view step : path) {
      if (v->is_object()) {
        const json::value* next = v->get_object().if_contains(step);
        if (next == nullptr) return fail(p, name + " has no " + quoted(step));
        v = next;
      } else if (v->is_array()) {
        size_t i = 0;
        auto [end, ec] = std::from_chars(step.data(), step.data() + step.size(), i);
        if (ec != std::errc() || end != step.data() + step.size()) {
          return fail(p, name + " is an array; index it with a number, not " + quoted(step));
        }
        if (i >= v->get_array().size()) {
          return fail(p, name + " has " + std::to_string(v->get_array().size()) +
                             " items; there is no item " + std::string(step));
        }
        v = &v->get_array()[i];
      } else {
        return fail(p, name + " is " + (v->is_null() ? "null" : "not an object or array") +
                           "; it has no " + quoted(step));
      }
      name += ".";
      name += step;
    }
    *out = *v;
    return Status::ok_status();
  }

  const RenderContext& ctx_;
  bool conf_parsed_ = false;
  json::value conf_;
  std::map<std::string, json::value, std::less<>> outputs_;  // parsed once per call
};

}  // namespace

Status check_template(std::string_view text, const TemplateScope& scope,
                      std::vector<std::string>* output_refs) {
  if (text.find('{') == std::string_view::npos) return Status::ok_status();
  std::vector<Piece> pieces;
  FACTORY_RETURN_IF_ERROR(split(text, &pieces));
  for (const Piece& p : pieces) {
    if (!p.is_template) continue;
    Expr x;
    FACTORY_RETURN_IF_ERROR(parse_expr(p, &x));
    FACTORY_RETURN_IF_ERROR(check_scope(p, x, scope));
    if (x.kind == Expr::Kind::kTaskOutput && output_refs != nullptr) {
      output_refs->emplace_back(x.task);
    }
  }
  return Status::ok_status();
}

Status check_params(std::string_view params_json, const TemplateScope& scope,
                    std::vector<std::string>* output_refs) {
  boost::system::error_code ec;
  json::value v = json::parse(params_json, ec);
  if (ec) return Status::invalid_argument("params are not JSON: " + ec.message());
  if (!v.is_object()) {
    return Status::invalid_argument("params must be a JSON object (a mapping of names to values)");
  }
  return check_value(v, "", scope, output_refs);
}

Result<std::string> render_params(std::string_view params_json, const RenderContext& ctx) {
  // The common case, params without templates, costs no parse.
  if (params_json.find("{{") == std::string_view::npos) return std::string(params_json);
  boost::system::error_code ec;
  json::value v = json::parse(params_json, ec);
  if (ec) {
    return Status::invalid_argument("task " + quoted(ctx.task_id) +
                                    ": params are not JSON: " + ec.message());
  }
  if (!v.is_object()) {  // the DAG parser sees to it; a stage's input is always an object
    return Status::invalid_argument("task " + quoted(ctx.task_id) +
                                    ": params are not a JSON object");
  }
  try {
    Renderer r(ctx);
    FACTORY_RETURN_IF_ERROR(r.render(&v));
    return json::serialize(v);
  } catch (const std::exception& e) {  // bad_alloc, or a throwing task_output callback
    return Status::internal("task " + quoted(ctx.task_id) + ": cannot render params: " + e.what());
  }
}

std::string literal_params(std::string_view params_json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(params_json, ec);
  if (ec || !v.is_object()) return "{}";
  boost::json::object out;
  for (const auto& [k, value] : v.as_object()) {
    if (boost::json::serialize(value).find("{{") == std::string::npos) out[k] = value;
  }
  return boost::json::serialize(out);
}

}  // namespace factory::scheduler
