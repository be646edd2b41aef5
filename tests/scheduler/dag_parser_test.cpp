#include "scheduler/dag_parser.h"

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "test_util.h"

using namespace factory;
using namespace factory::scheduler;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// The stages the bundled DAGs name (this test does not link the built-in stages).
const std::set<std::string> kStages = {"ingest",   "codegen",  "testsynth",
                                       "gate",     "deploy",   "noop",
                                       "coalesce", "approval", "approval_notify"};

DagParseOptions options() {
  DagParseOptions o;
  o.stage_exists = [](const std::string& s) { return kStages.count(s) > 0; };
  return o;
}

Result<Dag> parse(const std::string& yaml, const DagParseOptions& o = options()) {
  return parse_dag_yaml(yaml, "t.yaml", o);
}

// The error message for `yaml`, or "OK".
std::string error_of(const std::string& yaml, const DagParseOptions& o = options()) {
  Result<Dag> d = parse(yaml, o);
  return d.ok() ? "OK" : d.status().message();
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

std::vector<std::string> ids_in(const Dag& dag, const std::vector<int>& positions) {
  std::vector<std::string> ids;
  for (int i : positions) ids.push_back(dag.tasks[i].id);
  return ids;
}

// The example from docs/dags.md and the scheduler issue.
const char* kFullExample = R"(dag_id: software_factory_pipeline
description: Ticket to deployment
schedule: null
catchup: false
max_active_runs: 16
max_active_tasks: 32
pools: {llm: 2}
params:
  schema: {type: object, properties: {ticket: {type: string}}}
  defaults: {ticket: "PROJ-1"}
default_args: {retries: 2, retry_delay: 5m, retry_exponential_backoff: true, max_retry_delay: 1h, execution_timeout: 30m}
deadline: {after: 1h, trigger_dag: postmortem}
tasks:
  ingest_spec: {stage: ingest, output_topic: feature-specs}
  generate_code: {stage: codegen, upstream: [ingest_spec], pool: llm, priority_weight: 10, params: {spec: "{{ tasks.ingest_spec.output }}", ticket: "{{ run.conf.ticket }}"}}
  quality_gate: {stage: gate, upstream: [generate_code], trigger_rule: all_success}
  approve: {stage: approval, upstream: [quality_gate], approval_timeout: 24h}
  deploy: {stage: deploy, upstream: [approve]}
)";

}  // namespace

TEST_CASE("the bundled software_factory_pipeline DAG parses", "[scheduler]") {
  const std::string path =
      std::string(FACTORY_SOURCE_DIR) + "/config/dags/software_factory_pipeline.yaml";
  Result<Dag> r = load_dag_file(path, options());
  REQUIRE_OK(r);
  const Dag& d = *r;
  CHECK(d.dag_id == "software_factory_pipeline");
  CHECK(d.source == path);
  CHECK(d.trigger.kind == Trigger::Kind::kManual);  // jira-events triggers software_factory
  CHECK(d.default_args.retries == 2);
  CHECK(d.default_args.retry_delay_ms == 5 * 60 * 1000);
  REQUIRE(d.tasks.size() == 5);
  CHECK(ids_in(d, d.index.topological_order()) ==
        std::vector<std::string>{"ingest_spec", "generate_code", "quality_gate", "approve_deploy",
                                 "deploy"});
  // noop stands in for the agents until they exist (see the file's comment).
  const std::vector<std::string> stages = {"noop", "noop", "noop", "approval", "noop"};
  const std::vector<std::string> topics = {"feature-specs", "code-artifacts", "quality-gates", "",
                                           "deployment-triggers"};
  for (size_t i = 0; i < 5; ++i) {
    INFO(d.tasks[i].id);
    CHECK(d.tasks[i].stage == stages[i]);
    CHECK(d.tasks[i].output_topic == topics[i]);
    CHECK(d.index.upstream(static_cast<int>(i)).size() == (i == 0 ? 0u : 1u));
    if (i == 3) continue;  // retries do not apply to approval tasks
    CHECK(d.index.retry(static_cast<int>(i)).retries == 2);
    CHECK(d.index.retry(static_cast<int>(i)).retry_delay_ms == 300'000);
    CHECK_FALSE(d.index.retry(static_cast<int>(i)).exponential_backoff);
  }
  CHECK(d.tasks[3].approval_timeout_ms == 24 * 3600 * 1000);
  CHECK(ids_in(d, d.index.roots()) == std::vector<std::string>{"ingest_spec"});
  CHECK(d.tasks[1].output_refs == std::vector<std::string>{"ingest_spec"});
  CHECK(d.tasks[4].output_refs == std::vector<std::string>{"quality_gate"});
  // Default weight rule (downstream): each task weighs itself plus everything after it.
  CHECK(d.index.priority(0) == 5);
  CHECK(d.index.priority(4) == 1);

  Result<std::vector<Dag>> all =
      load_dags(std::string(FACTORY_SOURCE_DIR) + "/config/dags", options());
  REQUIRE_OK(all);
  CHECK(all->size() >= 1);
}

TEST_CASE("the full example parses every key", "[scheduler]") {
  // postmortem does not exist in a single-file parse: only load_dags checks it.
  Result<Dag> r = parse(kFullExample);
  REQUIRE_OK(r);
  const Dag& d = *r;
  CHECK(d.description == "Ticket to deployment");
  CHECK(d.line == 1);
  CHECK(d.trigger.kind == Trigger::Kind::kManual);
  CHECK(d.max_active_runs == 16);
  CHECK(d.max_active_tasks == 32);
  CHECK(d.pools.at("llm") == 2);
  CHECK(boost::json::parse(d.params_defaults) == boost::json::parse(R"({"ticket":"PROJ-1"})"));
  CHECK_THAT(d.params_schema, Contains("\"properties\""));
  CHECK(d.default_args.retry_exponential_backoff);
  CHECK(d.default_args.max_retry_delay_ms == 3'600'000);
  CHECK(d.default_args.execution_timeout_ms == 1'800'000);
  CHECK(d.deadline_ms == 3'600'000);
  CHECK(d.deadline_trigger_dag == "postmortem");

  const Task* gen = d.find_task("generate_code");
  REQUIRE(gen != nullptr);
  CHECK(gen->pool == "llm");
  CHECK(gen->priority_weight == 10);
  CHECK(gen->line == 15);
  CHECK(boost::json::parse(gen->params) ==
        boost::json::parse(
            R"({"spec":"{{ tasks.ingest_spec.output }}","ticket":"{{ run.conf.ticket }}"})"));
  const Task* approve = d.find_task("approve");
  REQUIRE(approve != nullptr);
  CHECK(approve->approval);
  CHECK(approve->approval_timeout_ms == 24LL * 3600 * 1000);
  CHECK(d.find_task("ingest_spec")->pool == "default_pool");
  CHECK_FALSE(d.find_task("deploy")->approval);
  CHECK(d.find_task("nope") == nullptr);
  Result<Dag> bare = parse("dag_id: d\ntasks: {ok: {approval: true, approval_timeout: 1d}}\n");
  REQUIRE_OK(bare);
  CHECK(bare->tasks[0].stage == "approval");
  CHECK(bare->tasks[0].approval);
  CHECK(bare->tasks[0].approval_timeout_ms == 86'400'000);

  const int g = d.index.find("generate_code");
  REQUIRE(g == 1);
  const RetrySpec& rs = d.index.retry(g);
  CHECK(rs.retries == 2);
  CHECK(rs.exponential_backoff);
  CHECK(rs.max_retry_delay_ms == 3'600'000);
  CHECK(d.index.execution_timeout_ms(g) == 1'800'000);
  // Downstream weights: generate_code (10) + quality_gate + approve + deploy (1 each).
  CHECK(d.index.priority(g) == 13);
  CHECK(d.index.priority(0) == 14);
}

TEST_CASE("tasks override default_args and choose their weight rule", "[scheduler]") {
  Result<Dag> r = parse(R"(dag_id: d
default_args: {retries: 1, retry_delay: 10s}
tasks:
  a: {stage: noop, retries: 5, retry_delay: 0, retry_exponential_backoff: true, max_retry_delay: 2m, execution_timeout: 1m, weight_rule: absolute, priority_weight: 7}
  b: {stage: noop, upstream: a, weight_rule: upstream, priority_weight: 2}
  c: {stage: noop, upstream: [a], priority_weight: -1}
  d: {stage: noop, upstream: [b, c]}
)");
  REQUIRE_OK(r);
  const Dag& d = *r;
  const RetrySpec& a = d.index.retry(0);
  CHECK(a.retries == 5);
  CHECK(a.retry_delay_ms == 0);
  CHECK(a.exponential_backoff);
  CHECK(a.max_retry_delay_ms == 120'000);
  CHECK(d.index.execution_timeout_ms(0) == 60'000);
  const RetrySpec& b = d.index.retry(1);
  CHECK(b.retries == 1);
  CHECK(b.retry_delay_ms == 10'000);
  CHECK_FALSE(b.exponential_backoff);
  CHECK_FALSE(d.index.execution_timeout_ms(1).has_value());
  CHECK(d.index.priority(0) == 7);  // absolute
  CHECK(d.index.priority(1) == 9);  // upstream: itself + a
  CHECK(d.index.priority(2) == 0);  // downstream: -1 + d's 1
  CHECK(d.index.priority(3) == 1);  // downstream: no descendants
  CHECK(ids_in(d, d.index.downstream(0)) == std::vector<std::string>{"b", "c"});
  CHECK(ids_in(d, d.index.upstream(3)) == std::vector<std::string>{"b", "c"});
}

TEST_CASE("schedules: manual, cron presets and expressions, topics", "[scheduler]") {
  SECTION("absent is manual") {
    Result<Dag> r = parse("dag_id: d\ntasks: {a: {stage: noop}}\n");
    REQUIRE_OK(r);
    CHECK(r->trigger.kind == Trigger::Kind::kManual);
  }
  SECTION("a string is a cron expression, checked by the injected parser") {
    DagParseOptions o = options();
    std::vector<std::string> seen;
    o.check_cron = [&](const std::string& e) {
      seen.push_back(e);
      return e == "bad" ? Status::invalid_argument("minute field 'bad' is not a number") : Status();
    };
    Result<Dag> r =
        parse("dag_id: d\nschedule: '@hourly'\ncatchup: true\ntasks: {a: {stage: noop}}\n", o);
    REQUIRE_OK(r);
    CHECK(r->trigger.kind == Trigger::Kind::kCron);
    CHECK(r->trigger.cron == "@hourly");
    CHECK(r->trigger.catchup);
    CHECK(r->trigger.timezone == "UTC");
    CHECK(seen == std::vector<std::string>{"@hourly"});

    CHECK_THAT(error_of("dag_id: d\nschedule: bad\ntasks: {a: {stage: noop}}\n", o),
               Contains("t.yaml:2:11: schedule: 'bad': minute field 'bad' is not a number"));
  }
  SECTION("cron with a time zone") {
    DagParseOptions o = options();
    o.check_timezone = [](const std::string& tz) {
      return tz == "Mars/Olympus" ? Status::invalid_argument("no such zone") : Status();
    };
    Result<Dag> r = parse(
        "dag_id: d\nschedule: {cron: '30 2 * * *', timezone: Europe/Berlin}\ntasks: {a: {stage: "
        "noop}}\n",
        o);
    REQUIRE_OK(r);
    CHECK(r->trigger.cron == "30 2 * * *");
    CHECK(r->trigger.timezone == "Europe/Berlin");
    CHECK_THAT(error_of("dag_id: d\nschedule: {cron: '@daily', timezone: Mars/Olympus}\n"
                        "tasks: {a: {stage: noop}}\n",
                        o),
               StartsWith("t.yaml:2:38: schedule.timezone 'Mars/Olympus': no such zone"));
  }
  SECTION("without a check every non-empty expression is accepted") {
    DagParseOptions o = options();
    REQUIRE_OK(parse("dag_id: d\nschedule: '0 * * * *'\ntasks: {a: {stage: noop}}\n", o));
    CHECK_THAT(error_of("dag_id: d\nschedule: ''\ntasks: {a: {stage: noop}}\n"),
               StartsWith("t.yaml:2:11: schedule is empty"));
  }
  SECTION("a topic") {
    Result<Dag> r = parse("dag_id: d\nschedule: {topic: jira-events}\ntasks: {a: {stage: noop}}\n");
    REQUIRE_OK(r);
    CHECK(r->trigger.kind == Trigger::Kind::kTopic);
    CHECK(r->trigger.topic == "jira-events");
    CHECK_THAT(error_of("dag_id: d\nschedule: {topic: 'no spaces'}\ntasks: {a: {stage: noop}}\n"),
               StartsWith("t.yaml:2:19: schedule.topic: "));
    CHECK_THAT(
        error_of("dag_id: d\nschedule: {topic: t, cron: '@daily'}\ntasks: {a: {stage: noop}}\n"),
        Contains("schedule takes one of cron: or topic:, not both"));
    CHECK_THAT(
        error_of("dag_id: d\nschedule: {topic: t}\ncatchup: true\ntasks: {a: {stage: noop}}\n"),
        StartsWith("t.yaml:3:10: catchup: true needs a cron schedule"));
  }
}

TEST_CASE("durations: milliseconds, units and clock form", "[scheduler]") {
  struct Case {
    const char* text;
    int64_t ms;
  };
  const Case ok[] = {
      {"0", 0},
      {"300000", 300'000},
      {"300ms", 300},
      {"5s", 5'000},
      {"5m", 300'000},
      {"1h", 3'600'000},
      {"1d", 86'400'000},
      {"1h30m", 5'400'000},
      {"1h 30m", 5'400'000},
      {"1.5h", 5'400'000},
      {"0.5s", 500},
      {"00:05:00", 300'000},
      {"1:00:00", 3'600'000},
      {"00:00:01.250", 1'250},
      {"2:01:00:00", 2 * 86'400'000LL + 3'600'000},
      {" 5m ", 300'000},
      {"366d", 366LL * 86'400'000},
  };
  for (const Case& c : ok) {
    INFO(c.text);
    Result<int64_t> r = parse_duration_ms(c.text);
    REQUIRE_OK(r);
    CHECK(*r == c.ms);
  }
  const char* bad[] = {"",         "5x",       "m",   "-5m",  "5 m m",
                       "00:60:00", "00:00:60", "1:2", "367d", "99999999999999999999",
                       "5mm",      "1e3s",     ".",   "h1"};
  for (const char* b : bad) {
    INFO(b);
    CHECK_FALSE(parse_duration_ms(b).ok());
  }
  CHECK_THAT(parse_duration_ms("5x").status().message(),
             Contains("is not a duration; write milliseconds (300000), a number with a unit"));

  // In a file: the position of the value and the field name.
  CHECK_THAT(
      error_of("dag_id: d\ndefault_args: {retry_delay: 5 minutes}\ntasks: {a: {stage: noop}}\n"),
      StartsWith("t.yaml:2:29: default_args.retry_delay: '5 minutes' is not a duration"));
  CHECK_THAT(error_of("dag_id: d\ntasks: {a: {stage: noop, execution_timeout: 0}}\n"),
             StartsWith("t.yaml:2:45: execution_timeout: '0' is too short; use more than 0"));
}

TEST_CASE("every validation error names the file, line and reason", "[scheduler]") {
  struct Case {
    const char* name;
    const char* yaml;
    const char* prefix;  // "t.yaml:LINE:COLUMN"
    const char* reason;
  };
  const Case cases[] = {
      {"empty file", "", "t.yaml: this DAG file is empty", "needs dag_id: and tasks:"},
      {"not a mapping", "- a\n", "t.yaml:1:1", "a DAG file is a mapping"},
      {"syntax", "dag_id: d\ntasks: {a: [\n", "t.yaml:", "YAML syntax error"},
      {"no dag_id", "tasks: {a: {stage: noop}}\n", "t.yaml:1:1", "has no dag_id"},
      {"bad dag_id", "dag_id: 'a b'\ntasks: {a: {stage: noop}}\n", "t.yaml:1:9",
       "dag_id 'a b' is not valid"},
      {"no tasks", "dag_id: d\n", "t.yaml:1:1", "DAG 'd' has no tasks"},
      {"empty tasks", "dag_id: d\ntasks: {}\n", "t.yaml:2:8", "tasks is empty"},
      {"tasks as a list", "dag_id: d\ntasks:\n  - a\n", "t.yaml:3:3", "not a list"},
      {"unknown key with did-you-mean",
       "dag_id: d\nschedule_interval: null\ntasks: {a: {stage: noop}}\n", "t.yaml:2:1",
       "unknown key 'schedule_interval' in a DAG file; did you mean 'schedule'?"},
      {"unknown task key",
       "dag_id: d\ntasks:\n  a: {stage: noop, depends_on: [b]}\n  b: {stage: noop}\n",
       "t.yaml:3:20", "unknown key 'depends_on' in task 'a'; did you mean 'upstream'?"},
      {"duplicate task ids", "dag_id: d\ntasks:\n  a: {stage: noop}\n  a: {stage: noop}\n",
       "t.yaml:4:3", "'a' appears twice in tasks (first at line 3)"},
      {"task id with a dot", "dag_id: d\ntasks:\n  a.b: {stage: noop}\n", "t.yaml:3:3",
       "task id 'a.b' is not valid"},
      {"task without stage", "dag_id: d\ntasks:\n  a: {upstream: []}\n", "t.yaml:3:3",
       "task 'a' has no stage"},
      {"empty task", "dag_id: d\ntasks:\n  a:\n", "t.yaml:3:3", "task 'a' is empty"},
      {"unknown stage", "dag_id: d\ntasks:\n  a: {stage: codegn}\n", "t.yaml:3:14",
       "unknown stage 'codegn'"},
      {"unknown upstream with did-you-mean",
       "dag_id: d\ntasks:\n  ingest: {stage: noop}\n  b: {stage: noop, upstream: [ingset]}\n",
       "t.yaml:4:31", "task 'b' has unknown upstream 'ingset'; did you mean 'ingest'?"},
      {"unknown upstream", "dag_id: d\ntasks:\n  a: {stage: noop, upstream: zzz}\n", "t.yaml:3:30",
       "task 'a' has unknown upstream 'zzz'; it must be the id of a task"},
      {"upstream twice",
       "dag_id: d\ntasks:\n  a: {stage: noop}\n  b: {stage: noop, upstream: [a, a]}\n",
       "t.yaml:4:34", "upstream lists 'a' twice"},
      {"self upstream", "dag_id: d\ntasks:\n  a: {stage: noop, upstream: [a]}\n", "t.yaml:3:31",
       "task 'a' lists itself as upstream"},
      {"cycle",
       "dag_id: d\ntasks:\n  a: {stage: noop, upstream: [c]}\n  b: {stage: noop, upstream: [a]}\n"
       "  c: {stage: noop, upstream: [b]}\n  e: {stage: noop}\n",
       "t.yaml:3:31", "tasks form a cycle: a -> b -> c -> a; a task cannot wait for itself"},
      {"bad trigger rule with did-you-mean",
       "dag_id: d\ntasks:\n  a: {stage: noop, trigger_rule: all_sucess}\n", "t.yaml:3:34",
       "unknown trigger_rule 'all_sucess'; did you mean 'all_success'?"},
      {"Airflow 1 trigger rule name",
       "dag_id: d\ntasks:\n  a: {stage: noop, trigger_rule: dummy}\n", "t.yaml:3:34",
       "unknown trigger_rule 'dummy'; did you mean 'always'?"},
      {"unrecognisable trigger rule",
       "dag_id: d\ntasks:\n  a: {stage: noop, trigger_rule: whenever}\n", "t.yaml:3:34",
       "use one of all_success, all_failed, all_done, all_done_min_one_success"},
      {"bad weight rule", "dag_id: d\ntasks:\n  a: {stage: noop, weight_rule: sideways}\n",
       "t.yaml:3:33", "weight_rule 'sideways' is not one of downstream, upstream, absolute"},
      {"unknown pool", "dag_id: d\npools: {llm: 2}\ntasks:\n  a: {stage: noop, pool: lmm}\n",
       "t.yaml:4:26", "task 'a' uses unknown pool 'lmm'; did you mean 'llm'?"},
      {"undeclared pool", "dag_id: d\ntasks:\n  a: {stage: noop, pool: gpu}\n", "t.yaml:3:26",
       "declare it under pools: (e.g. pools: {gpu: 2})"},
      {"pool too small",
       "dag_id: d\npools: {llm: 2}\ntasks:\n  a: {stage: noop, pool: llm, pool_slots: 3}\n",
       "t.yaml:4:43", "needs 3 slots but pool 'llm' has 2"},
      {"bad pool size", "dag_id: d\npools: {llm: 0}\ntasks: {a: {stage: noop}}\n", "t.yaml:2:14",
       "pools.llm: 0 is out of range"},
      {"bad output topic", "dag_id: d\ntasks:\n  a: {stage: noop, output_topic: 'a b'}\n",
       "t.yaml:3:34", "output_topic: "},
      {"approval_timeout without approval",
       "dag_id: d\ntasks:\n  a: {stage: noop, approval_timeout: 1h}\n", "t.yaml:3:38",
       "approval_timeout applies only to approval tasks"},
      {"approval stage with approval false",
       "dag_id: d\ntasks:\n  a: {stage: approval, approval: false}\n", "t.yaml:3:34",
       "stage approval is always an approval task"},
      {"approval with a stage", "dag_id: d\ntasks:\n  a: {stage: deploy, approval: true}\n",
       "t.yaml:3:14", "an approval task runs no stage, it waits for a person"},
      {"negative retries", "dag_id: d\ntasks:\n  a: {stage: noop, retries: -1}\n", "t.yaml:3:29",
       "retries: -1 is out of range; use 0 to 1000"},
      {"bad bool", "dag_id: d\ncatchup: no\ntasks: {a: {stage: noop}}\n", "t.yaml:2:10",
       "catchup: 'no' is not true or false"},
      {"params not a mapping", "dag_id: d\ntasks:\n  a: {stage: noop, params: [1]}\n",
       "t.yaml:3:28", "params must be a mapping"},
      {"deadline without after",
       "dag_id: d\ndeadline: {trigger_dag: x}\ntasks: {a: {stage: noop}}\n", "t.yaml:2:11",
       "deadline has no after:"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::string msg = error_of(c.yaml);
    CHECK_THAT(msg, StartsWith(c.prefix));
    CHECK_THAT(msg, Contains(c.reason));
  }
}

TEST_CASE("bad templates are load errors at the string's line", "[scheduler]") {
  auto dag = [](const std::string& b_params) {
    return "dag_id: d\ntasks:\n  a: {stage: noop}\n  x: {stage: noop}\n  c: {stage: noop, "
           "upstream: [a]}\n"
           "  b:\n    stage: noop\n    upstream: [c]\n    params:\n      p: " +
           b_params + "\n";
  };
  // Line 10 column 10 is the value of p.
  CHECK(error_of(dag("'{{ tasks.c.output }}'")) == "OK");
  CHECK(error_of(dag("'{{ tasks.a.output.spec.0 }}'")) == "OK");  // transitive upstream
  CHECK(error_of(dag("'{{ run.conf.ticket }} and {{ run.id }}'")) == "OK");
  CHECK(error_of(dag("'{{ \"{{\" }} literal'")) == "OK");
  CHECK(error_of(dag("'text with }} only'")) == "OK");

  struct Case {
    const char* params;
    const char* reason;
  };
  const Case cases[] = {
      {"'{{ params.ticket }}'", "unknown name 'params'; write run.conf.<name>"},
      {"'{{ ti.xcom_pull }}'", "write tasks.<id>.output"},
      {"'{{ ds }}'", "write run.logical_date"},
      {"'{{ run.conf.ticket'", "'{{' is not closed; add '}}'"},
      {"'{{ }}'", "the template is empty"},
      {"'{{ run.owner }}'", "run has no 'owner'; it has id, dag_id, logical_date and conf"},
      {"'{{ run.id.x }}'", "run.id is text; nothing can follow it"},
      {"'{{ tasks.x.output }}'", "task 'x' is not upstream of 'b'"},
      {"'{{ tasks.zz.output }}'", "there is no task 'zz' in this DAG"},
      {"'{{ tasks.b.output }}'", "a task cannot read its own output"},
      {"'{{ tasks.c }}'", "write tasks.c.output"},
      {"'{{ tasks.c.output | tojson }}'", "filters ('|') are not supported"},
      {"'{{ tasks.c.output[0] }}'", "not [0]"},
      {"'{{ run..id }}'", "empty step"},
      {"'{% if x %}'", "Jinja blocks ({% %}) and comments ({# #}) are not supported"},
  };
  for (const Case& c : cases) {
    INFO(c.params);
    std::string msg = error_of(dag(c.params));
    CHECK_THAT(msg, StartsWith("t.yaml:10:10: task 'b' params.p: template '"));
    CHECK_THAT(msg, Contains(c.reason));
  }
  // Deeper: the path names the list item.
  CHECK_THAT(error_of(dag("{list: [ok, '{{ nope }}']}")),
             StartsWith("t.yaml:10:22: task 'b' params.p.list[1]: template '{{ nope }}'"));
  // Unquoted, YAML reads {{ ... }} as a mapping.
  CHECK_THAT(error_of(dag("{{ run.id }}")),
             StartsWith("t.yaml:10:11: params.p: a template must be quoted"));
}

TEST_CASE("params defaults must match the params schema", "[scheduler]") {
  const std::string head = "dag_id: d\nparams:\n";
  const std::string tail = "tasks: {a: {stage: noop}}\n";
  REQUIRE_OK(parse(
      head + "  schema: {type: object, properties: {n: {type: integer}}}\n  defaults: {n: 3}\n" +
      tail));
  // Required keys may be left for the run's conf.
  REQUIRE_OK(
      parse(head +
            "  schema: {type: object, required: [ticket], properties: {ticket: {type: string}}}\n" +
            tail));
  CHECK_THAT(
      error_of(
          head +
          "  schema: {type: object, properties: {n: {type: integer}}}\n  defaults: {n: three}\n" +
          tail),
      StartsWith("t.yaml:4:13: params.defaults do not match params.schema: at /n: "));
  CHECK_THAT(error_of(head + "  schema: {type: 5}\n" + tail),
             StartsWith("t.yaml:3:11: params.schema is not a valid JSON Schema"));
  CHECK_THAT(error_of(head + "  defaults: [1]\n" + tail),
             StartsWith("t.yaml:3:13: params.defaults must be a mapping"));
}

TEST_CASE("a run's conf is the defaults overlaid with the trigger's conf", "[scheduler]") {
  Result<Dag> d = parse(R"(dag_id: d
params:
  schema: {type: object, required: [ticket], properties: {ticket: {type: string}, n: {type: integer}}}
  defaults: {n: 1}
tasks: {a: {stage: noop}}
)");
  REQUIRE_OK(d);
  Result<std::string> c = resolve_run_conf(*d, R"({"ticket": "PROJ-7"})");
  REQUIRE_OK(c);
  CHECK(boost::json::parse(*c) == boost::json::parse(R"({"n":1,"ticket":"PROJ-7"})"));
  c = resolve_run_conf(*d, R"({"ticket": "PROJ-7", "n": 5})");
  REQUIRE_OK(c);
  CHECK(boost::json::parse(*c) == boost::json::parse(R"({"n":5,"ticket":"PROJ-7"})"));
  CHECK_THAT(resolve_run_conf(*d, "").status().message(),
             Contains("does not match its params schema"));
  CHECK_THAT(resolve_run_conf(*d, R"({"ticket": 5})").status().message(), Contains("at /ticket"));
  CHECK_THAT(resolve_run_conf(*d, "[1]").status().message(), Contains("must be a JSON object"));
  Result<Dag> free = parse("dag_id: e\ntasks: {a: {stage: noop}}\n");
  REQUIRE_OK(free);
  CHECK(*resolve_run_conf(*free, "null") == "{}");
  CHECK(*resolve_run_conf(*free, R"({"x":[1]})") == R"({"x":[1]})");
}

TEST_CASE("load_dags: every file, unique dag_ids, shared pools, deadline targets", "[scheduler]") {
  test::TempDir dir;
  const std::string a = "dag_id: alpha\npools: {llm: 2}\ntasks: {t: {stage: noop}}\n";
  write_file(dir.path() / "a.yaml", a);
  write_file(dir.path() / "b.yml",
             "dag_id: beta\npools: {llm: 2}\ndeadline: {after: 1h, trigger_dag: alpha}\n"
             "tasks: {t: {stage: noop}}\n");
  write_file(dir.path() / "notes.txt", "not a DAG");
  Result<std::vector<Dag>> r = load_dags(dir.str(), options());
  REQUIRE_OK(r);
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].dag_id == "alpha");
  CHECK((*r)[1].dag_id == "beta");

  SECTION("a dag_id used twice names both files") {
    write_file(dir.path() / "c.yaml", "\n" + a);
    std::string msg = load_dags(dir.str(), options()).status().message();
    CHECK_THAT(msg, StartsWith((dir.path() / "c.yaml").string() + ":2: dag_id 'alpha'"));
    CHECK_THAT(msg, Contains("already defined in " + (dir.path() / "a.yaml").string() + ":1"));
  }
  SECTION("a pool declared with other slots names both files") {
    write_file(dir.path() / "c.yaml",
               "dag_id: gamma\npools: {llm: 3}\ntasks: {t: {stage: noop}}\n");
    std::string msg = load_dags(dir.str(), options()).status().message();
    CHECK_THAT(
        msg, Contains("pool 'llm' has 3 slots here but 2 in " + (dir.path() / "a.yaml").string()));
  }
  SECTION("a deadline trigger_dag that no file defines") {
    write_file(dir.path() / "c.yaml",
               "dag_id: gamma\ndeadline: {after: 1h, trigger_dag: postmortem}\ntasks: {t: {stage: "
               "noop}}\n");
    CHECK_THAT(load_dags(dir.str(), options()).status().message(),
               Contains("deadline.trigger_dag 'postmortem' is not the dag_id of any DAG file"));
  }
  SECTION("a bad file fails the load with its own position") {
    write_file(dir.path() / "c.yaml", "dag_id: gamma\ntasks: {t: {stage: nope}}\n");
    CHECK_THAT(load_dags(dir.str(), options()).status().message(),
               StartsWith((dir.path() / "c.yaml").string() + ":2:20: unknown stage 'nope'"));
  }
  SECTION("a missing directory holds no DAGs") {
    Result<std::vector<Dag>> none = load_dags((dir.path() / "missing").string(), options());
    REQUIRE_OK(none);
    CHECK(none->empty());
  }
}

TEST_CASE("build_index indexes DAGs built in code", "[scheduler]") {
  SECTION("errors without a file") {
    Dag d;
    d.dag_id = "code";
    d.tasks.resize(2);
    d.tasks[0].id = "a";
    d.tasks[1].id = "b";
    d.tasks[0].upstream = {"b"};
    d.tasks[1].upstream = {"a"};
    CHECK(build_index(&d).message() == "tasks form a cycle: a -> b -> a");
    d.tasks[0].upstream = {"zz"};
    CHECK(build_index(&d).message() == "task 'a' has unknown upstream 'zz'");
    d.tasks[0].upstream.clear();
    d.tasks[1].id = "a";
    CHECK(build_index(&d).message() == "task id 'a' is used twice");
    d.tasks[1].id = "b";
    d.tasks[1].params = R"({"x": "{{ tasks.b.output }}"})";
    CHECK_THAT(build_index(&d).message(),
               StartsWith("task 'b' params at /x: template '{{ tasks.b.output }}'"));
    d.tasks[1].params = R"({"x": "{{ tasks.a.output }}"})";
    d.tasks[1].upstream.clear();
    CHECK_THAT(build_index(&d).message(), Contains("task 'a' is not upstream of 'b'"));
    d.tasks[1].upstream = {"a"};
    REQUIRE_OK(build_index(&d));
    CHECK(d.tasks[1].output_refs == std::vector<std::string>{"a"});
  }
  SECTION("find_cycle returns one cycle in downstream order") {
    // 0 <- 1 <- 2 <- 0 plus a tail 3 <- 2.
    std::vector<std::vector<int>> up = {{2}, {0}, {1}, {2}};
    CHECK(find_cycle(up) == std::vector<int>{0, 1, 2, 0});
    CHECK(find_cycle({{}, {0}, {0, 1}}).empty());
    CHECK(find_cycle({{0}}) == std::vector<int>{0, 0});
  }
  SECTION("100,000-task chain and fan-out/fan-in index in linear time") {
    const int n = 100'000;
    for (int shape = 0; shape < 2; ++shape) {
      Dag d;
      d.dag_id = "big";
      d.tasks.resize(n);
      for (int i = 0; i < n; ++i) {
        d.tasks[i].id = "t" + std::to_string(i);
        if (shape == 0 && i > 0) d.tasks[i].upstream = {d.tasks[i - 1].id};
        if (shape == 1 && i > 0 && i < n - 1) d.tasks[i].upstream = {"t0"};
      }
      if (shape == 1) {
        for (int i = 1; i < n - 1; ++i) d.tasks[n - 1].upstream.push_back(d.tasks[i].id);
      }
      auto start = std::chrono::steady_clock::now();
      REQUIRE_OK(build_index(&d));
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start)
                    .count();
      INFO("shape " << shape << " indexed in " << ms << " ms");
      CHECK(ms < 5000);  // quadratic would be minutes
      CHECK(d.index.topological_order().front() == 0);
      CHECK(d.index.topological_order().back() == n - 1);
      CHECK(d.index.priority(0) == n);  // every task is downstream of t0
      CHECK(d.index.priority(n - 1) == 1);
    }
  }
}

TEST_CASE("state names round-trip", "[scheduler]") {
  for (TriggerRule r : kAllTriggerRules) CHECK(parse_trigger_rule(trigger_rule_name(r)) == r);
  CHECK_FALSE(parse_trigger_rule("dummy").has_value());
  for (int i = 0; i <= static_cast<int>(TaskState::kRemoved); ++i) {
    auto s = static_cast<TaskState>(i);
    CHECK(parse_task_state(task_state_name(s)) == s);
  }
  CHECK(task_state_name(TaskState::kAwaitingApproval) == "awaiting_approval");
  CHECK(task_state_name(TaskState::kUpForRetry) == "up_for_retry");
  for (int i = 0; i <= static_cast<int>(RunState::kCancelled); ++i) {
    auto s = static_cast<RunState>(i);
    CHECK(parse_run_state(run_state_name(s)) == s);
  }
  CHECK(is_finished(TaskState::kUpstreamFailed));
  CHECK_FALSE(is_finished(TaskState::kUpForRetry));
  CHECK_FALSE(is_finished(TaskState::kAwaitingApproval));
  CHECK(is_terminal(RunState::kCancelled));
  CHECK_FALSE(is_terminal(RunState::kRunning));
}

TEST_CASE("a 100,000-task DAG file loads in linear time", "[scheduler]") {
  // A fan-out/fan-in: root -> 99,998 workers reading root's output -> one join.
  const int n = 100'000;
  std::string yaml = "dag_id: big\ntasks:\n  t0: {stage: noop}\n";
  std::string join = "  t" + std::to_string(n - 1) + ":\n    stage: noop\n    upstream:\n";
  for (int i = 1; i < n - 1; ++i) {
    yaml += "  t" + std::to_string(i) +
            ": {stage: noop, upstream: [t0], params: {spec: \"{{ tasks.t0.output.x }}\"}}\n";
    join += "      - t" + std::to_string(i) + "\n";
  }
  yaml += join;
  auto start = std::chrono::steady_clock::now();
  Result<Dag> d = parse(yaml);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  REQUIRE_OK(d);
  INFO("parsed " << yaml.size() << " bytes in " << ms << " ms");
  CHECK(d->tasks.size() == static_cast<size_t>(n));
  CHECK(d->index.upstream(n - 1).size() == static_cast<size_t>(n - 2));
  CHECK(d->tasks[5].output_refs == std::vector<std::string>{"t0"});
  CHECK(ms < 120'000);  // quadratic checks would take hours; this is seconds even in Debug
  WARN("a 100,000-task DAG file parsed in " << ms << " ms");
}
