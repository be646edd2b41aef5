#include "scheduler/templates.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "test_util.h"

using namespace factory;
using namespace factory::scheduler;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// A run of DAG "d" with conf and the outputs of tasks "a" and "b"; "skipped" has none.
struct Fixture {
  std::map<std::string, std::string, std::less<>> outputs = {
      {"a", R"({"spec": {"title": "Login", "points": 3}, "files": ["x.cpp", "y.cpp"]})"},
      {"b", R"("plain text")"},
      {"n", "42"},
      {"bad", "{not json"},
  };
  RenderContext ctx() const {
    RenderContext c;
    c.dag_id = "d";
    c.run_id = "manual__2026-01-01T00:00:00+00:00";
    c.logical_date = "2026-01-01T00:00:00+00:00";
    c.conf_json =
        R"({"ticket": "PROJ-1", "meta": {"labels": ["ai", "fast"], "n": 2}, "nothing": null})";
    c.task_id = "t";
    c.task_output = [this](std::string_view id) -> std::optional<std::string_view> {
      auto it = outputs.find(id);
      if (it == outputs.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    return c;
  }
};

// The rendered params as a JSON value (for comparison), or the error message as a string.
boost::json::value render(const std::string& params) {
  Fixture f;
  Result<std::string> r = render_params(params, f.ctx());
  if (!r.ok()) return boost::json::string(r.status().message());
  return boost::json::parse(*r);
}

std::string render_error(const std::string& params) {
  Fixture f;
  Result<std::string> r = render_params(params, f.ctx());
  return r.ok() ? "OK: " + *r : r.status().message();
}

boost::json::value json(const char* text) { return boost::json::parse(text); }

}  // namespace

TEST_CASE("a string that is exactly one template becomes the value itself", "[scheduler]") {
  CHECK(
      render(R"({"x": "{{ run.conf }}"})") ==
      json(
          R"({"x": {"ticket": "PROJ-1", "meta": {"labels": ["ai", "fast"], "n": 2}, "nothing": null}})"));
  CHECK(render(R"({"x": "{{ run.conf.meta.n }}"})") == json(R"({"x": 2})"));
  CHECK(render(R"({"x": "{{run.conf.meta.labels}}"})") == json(R"({"x": ["ai", "fast"]})"));
  CHECK(render(R"({"x": "{{ run.conf.meta.labels.1 }}"})") == json(R"({"x": "fast"})"));
  CHECK(render(R"({"x": "{{ run.conf.nothing }}"})") == json(R"({"x": null})"));
  CHECK(render(R"({"x": "{{ tasks.a.output }}"})") ==
        json(R"({"x": {"spec": {"title": "Login", "points": 3}, "files": ["x.cpp", "y.cpp"]}})"));
  CHECK(render(R"({"x": "{{ tasks.a.output.spec.points }}"})") == json(R"({"x": 3})"));
  CHECK(render(R"({"x": "{{ tasks.a.output.files.0 }}"})") == json(R"({"x": "x.cpp"})"));
  CHECK(render(R"({"x": "{{ tasks.n.output }}"})") == json(R"({"x": 42})"));
  CHECK(render(R"({"x": "{{ run.id }}"})") ==
        json(R"({"x": "manual__2026-01-01T00:00:00+00:00"})"));
  CHECK(render(R"({"x": "{{ run.dag_id }}"})") == json(R"({"x": "d"})"));
  CHECK(render(R"({"x": "{{ run.logical_date }}"})") ==
        json(R"({"x": "2026-01-01T00:00:00+00:00"})"));
  // Nested anywhere in the document; keys are left alone.
  CHECK(render(R"({"{{ run.id }}": [1, {"deep": "{{ run.conf.ticket }}"}], "n": 5, "b": true})") ==
        json(R"({"{{ run.id }}": [1, {"deep": "PROJ-1"}], "n": 5, "b": true})"));
}

TEST_CASE("templates inside text are interpolated", "[scheduler]") {
  CHECK(render(R"({"x": "ticket {{ run.conf.ticket }} of {{ run.dag_id }}"})") ==
        json(R"({"x": "ticket PROJ-1 of d"})"));
  // Non-strings as compact JSON; strings as their text.
  CHECK(render(R"({"x": "n={{ run.conf.meta.n }} labels={{ run.conf.meta.labels }}"})") ==
        json(R"({"x": "n=2 labels=[\"ai\",\"fast\"]"})"));
  CHECK(render(R"({"x": "said {{ tasks.b.output }}"})") == json(R"({"x": "said plain text"})"));
  CHECK(render(R"({"x": " {{ run.conf.ticket }}"})") == json(R"({"x": " PROJ-1"})"));
  // Quoted literals, braces that are not templates.
  CHECK(render(R"({"x": "{{ '{{' }} run.id }}"})") == json(R"({"x": "{{ run.id }}"})"));
  CHECK(render(R"({"x": "{{ '}}' }}"})") == json(R"({"x": "}}"})"));
  CHECK(render(R"({"x": "if (a) { b(); } }}"})") == json(R"({"x": "if (a) { b(); } }}"})"));
  CHECK(render(R"({"x": "{\"k\": 1}"})") == json(R"({"x": "{\"k\": 1}"})"));
}

TEST_CASE("params without templates are returned untouched", "[scheduler]") {
  Fixture f;
  // Not even parsed: the text comes back byte for byte.
  const std::string params = R"({ "b":1,  "a":[ true ] })";
  Result<std::string> r = render_params(params, f.ctx());
  REQUIRE_OK(r);
  CHECK(*r == params);
}

TEST_CASE("params with templates that are not an object are refused (fuzz: templates)",
          "[scheduler]") {
  CHECK(render_error(R"("{{ run.id }}")") == "task 't': params are not a JSON object");
  CHECK(render_error(R"(["{{ run.id }}"])") == "task 't': params are not a JSON object");
}

TEST_CASE("missing values are errors naming the task and the template", "[scheduler]") {
  CHECK(render_error(R"({"x": "{{ run.conf.owner }}"})") ==
        "task 't': template '{{ run.conf.owner }}': run.conf has no 'owner'");
  CHECK_THAT(render_error(R"({"x": "{{ run.conf.meta.labels.7 }}"})"),
             Contains("run.conf.meta.labels has 2 items; there is no item 7"));
  CHECK_THAT(render_error(R"({"x": "{{ run.conf.meta.labels.first }}"})"),
             Contains("run.conf.meta.labels is an array; index it with a number, not 'first'"));
  CHECK_THAT(render_error(R"({"x": "{{ run.conf.ticket.id }}"})"),
             Contains("run.conf.ticket is not an object or array; it has no 'id'"));
  CHECK_THAT(render_error(R"({"x": "{{ run.conf.nothing.id }}"})"),
             Contains("run.conf.nothing is null; it has no 'id'"));
  CHECK_THAT(render_error(R"({"x": "{{ tasks.skipped.output.id }}"})"),
             StartsWith("task 't': template '{{ tasks.skipped.output.id }}': "
                        "tasks.skipped.output is null"));
  CHECK_THAT(render_error(R"({"x": "{{ tasks.a.output.spec.owner }}"})"),
             Contains("tasks.a.output.spec has no 'owner'"));
  CHECK_THAT(render_error(R"({"x": "{{ tasks.bad.output }}"})"),
             Contains("the output of task 'bad' is not JSON"));
  CHECK_THAT(render_error(R"({"x": "{{ nope }}"})"), StartsWith("task 't': template '{{ nope }}'"));
  CHECK_THAT(render_error(R"({"x": "{{ run.id"})"), Contains("'{{' is not closed"));
  CHECK_THAT(render_error("not json {{"), Contains("params are not JSON"));

  Fixture f;
  RenderContext c = f.ctx();
  c.logical_date = "";
  c.conf_json = "[1";
  CHECK_THAT(render_params(R"({"x": "{{ run.logical_date }}"})", c).status().message(),
             Contains("run.logical_date is not set for this run"));
  CHECK_THAT(render_params(R"({"x": "{{ run.conf.a }}"})", c).status().message(),
             Contains("the run's conf is not JSON"));
  // A task without output (skipped, or it emitted nothing) reads as null, as Airflow's
  // xcom_pull gives None; a path into it is an error.
  c.task_output = nullptr;
  auto none =
      render_params(R"({"x": "{{ tasks.a.output }}", "y": "ran: {{ tasks.a.output }}"})", c);
  REQUIRE_OK(none);
  CHECK(*none == R"({"x":null,"y":"ran: null"})");
  CHECK_THAT(render_params(R"({"x": "{{ tasks.a.output.spec }}"})", c).status().message(),
             Contains("tasks.a.output is null"));
}

TEST_CASE("check_template: syntax, roots and scope", "[scheduler]") {
  TemplateScope scope;
  scope.task_id = "deploy";
  scope.task_exists = [](std::string_view id) {
    return id == "gate" || id == "codegen" || id == "other" || id == "deploy";
  };
  scope.is_upstream = [](std::string_view id) { return id == "gate" || id == "codegen"; };
  std::vector<std::string> refs;
  REQUIRE_OK(check_template("{{ tasks.gate.output }} and {{ tasks.codegen.output.files.0 }}", scope,
                            &refs));
  CHECK(refs == std::vector<std::string>{"gate", "codegen"});
  REQUIRE_OK(check_template("no templates at all { }", scope, nullptr));
  REQUIRE_OK(check_template("{{ run.run_id }}", scope, nullptr));  // Airflow's spelling works too

  auto msg = [&](std::string_view text) {
    Status s = check_template(text, scope, nullptr);
    return s.ok() ? std::string("OK") : s.message();
  };
  CHECK(msg("{{ tasks.other.output }}") ==
        "template '{{ tasks.other.output }}': task 'other' is not upstream of 'deploy', so its "
        "output may not exist when 'deploy' runs; add 'other' to upstream (directly or through "
        "another task)");
  CHECK_THAT(msg("{{ tasks.ghost.output }}"), Contains("there is no task 'ghost' in this DAG"));
  CHECK_THAT(msg("{{ tasks.deploy.output }}"), Contains("a task cannot read its own output"));
  CHECK_THAT(msg("{{ dag_run.conf.x }}"), Contains("unknown name 'dag_run'; write run instead"));
  CHECK_THAT(msg("{{ 'unterminated }}"), Contains("a quoted literal must be one quoted text"));
  CHECK_THAT(msg("{# comment #}"), Contains("not supported"));
  CHECK_THAT(msg("{{ run.conf.a b }}"), Contains("'run.conf.a b' is not a path"));
  CHECK_THAT(msg("ok {{ run.id }} then {{ run"), Contains("'{{' is not closed"));

  // check_params walks a whole document and names the value.
  CHECK_THAT(check_params(R"({"a": {"b": ["x", "{{ nope }}"]}})", scope, nullptr).message(),
             StartsWith("at /a/b/1: template '{{ nope }}'"));
  CHECK_THAT(check_params("[1]", scope, nullptr).message(), Contains("must be a JSON object"));
  CHECK_THAT(check_params("{", scope, nullptr).message(), Contains("params are not JSON"));
  // Without callbacks every task id is accepted.
  REQUIRE_OK(check_params(R"({"a": "{{ tasks.anything.output }}"})", TemplateScope{}, nullptr));
}
