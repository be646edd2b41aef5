#include "scheduler/dag_groups.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "scheduler/dag_parser.h"
#include "test_util.h"

using namespace factory;
using namespace factory::scheduler;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const std::set<std::string> kStages = {"ingest", "codegen", "testsynth", "gate",
                                       "deploy", "noop",    "coalesce",  "approval"};

DagParseOptions options() {
  DagParseOptions o;
  o.stage_exists = [](const std::string& s) { return kStages.count(s) > 0; };
  return o;
}

Result<Dag> parse(const std::string& yaml) { return parse_dag_yaml(yaml, "g.yaml", options()); }

std::string error_of(const std::string& yaml) {
  Result<Dag> d = parse(yaml);
  return d.ok() ? "OK" : d.status().message();
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> ids_of(const Dag& d) {
  std::vector<std::string> ids;
  for (const Task& t : d.tasks) ids.push_back(t.id);
  return ids;
}

// A group of two tasks, a -> b, round after round; `a_extra` is appended to task a (it says
// what round 1's a waits for), `tail` to the file.
std::string two_step(int repeat, const std::string& a_extra = "", const std::string& tail = "") {
  return "dag_id: g\n"
         "tasks:\n"
         "  start: {stage: noop}\n"
         "  round:\n"
         "    repeat: " +
         std::to_string(repeat) +
         "\n"
         "    tasks:\n"
         "      a:\n"
         "        stage: noop\n"
         "        upstream: [prev.b]\n" +
         a_extra +
         "      b:\n"
         "        stage: noop\n"
         "        upstream: [this.a]\n" +
         tail;
}

}  // namespace

TEST_CASE("a task group expands to ordinary tasks, round by round", "[scheduler]") {
  auto d = parse(
      two_step(3,
               "        params: {n: \"{{ group.round }}\", of: \"{{ group.repeat }}\",\n"
               "                 note: \"round {{ group.round }}\",\n"
               "                 before: \"{{ prev.b.output.x }}\", me: \"{{ this.a.id }}\"}\n"
               "        first_round: {upstream: [start], params: {before: none}}\n",
               "  end:\n"
               "    stage: noop\n"
               "    upstream: [round.each.b]\n"
               "    trigger_rule: none_failed_min_one_success\n"
               "    params: {all: [\"{{ round.each.b.output }}\"], "
               "last: \"{{ round.last.b.output }}\", "
               "second: \"{{ round.2.b.id }}\", rounds: \"{{ round.repeat }}\"}\n"));
  REQUIRE_OK(d.status());
  CHECK(ids_of(*d) ==
        std::vector<std::string>{"start", "a_1", "b_1", "a_2", "b_2", "a_3", "b_3", "end"});
  const Task* a1 = d->find_task("a_1");
  const Task* a2 = d->find_task("a_2");
  const Task* a3 = d->find_task("a_3");
  REQUIRE(a1 != nullptr);
  REQUIRE(a2 != nullptr);
  REQUIRE(a3 != nullptr);
  CHECK(a1->upstream == std::vector<std::string>{"start"});
  CHECK(a2->upstream == std::vector<std::string>{"b_1"});
  CHECK(d->find_task("b_2")->upstream == std::vector<std::string>{"a_2"});
  // first_round replaced one params key and kept the others; numbers stay numbers.
  CHECK(boost::json::parse(a1->params) ==
        boost::json::parse(R"({"n":1,"of":3,"note":"round 1","before":"none","me":"a_1"})"));
  CHECK(boost::json::parse(a3->params) == boost::json::parse(R"({"n":3,"of":3,"note":"round 3",
                               "before":"{{ tasks.b_2.output.x }}","me":"a_3"})"));
  const Task* end = d->find_task("end");
  CHECK(end->upstream == std::vector<std::string>{"b_1", "b_2", "b_3"});
  CHECK(boost::json::parse(end->params) == boost::json::parse(R"({
      "all": ["{{ tasks.b_1.output }}", "{{ tasks.b_2.output }}", "{{ tasks.b_3.output }}"],
      "last": "{{ tasks.b_3.output }}", "second": "b_2", "rounds": 3})"));
}

TEST_CASE("the software factory DAG with a task group is the DAG of copied rounds", "[scheduler]") {
  const std::string dir = std::string(FACTORY_SOURCE_DIR);
  auto grouped = load_dag_file(dir + "/config/dags/software_factory.yaml", options());
  REQUIRE_OK(grouped.status());
  auto copied =
      parse_dag_yaml(read(dir + "/tests/scheduler/data/software_factory_copied_rounds.yaml"),
                     "copied.yaml", options());
  REQUIRE_OK(copied.status());
  // The same tasks in the same order (`dags show`, the grid and priorities see no change).
  CHECK(ids_of(*grouped) == ids_of(*copied));
  for (const Task& c : copied->tasks) {
    INFO("task " << c.id);
    const Task* g = grouped->find_task(c.id);
    REQUIRE(g != nullptr);
    CHECK(g->stage == c.stage);
    CHECK(g->upstream == c.upstream);
    CHECK(g->output_topic == c.output_topic);
    CHECK(g->trigger_rule == c.trigger_rule);
    CHECK(boost::json::parse(g->params) == boost::json::parse(c.params));
  }
}

TEST_CASE("task group errors name the file and line", "[scheduler]") {
  SECTION("an unknown key in the group, with a did-you-mean") {
    std::string msg =
        error_of("dag_id: g\ntasks:\n  round:\n    repeats: 2\n    tasks: {a: {stage: noop}}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:4:5: "));
    CHECK_THAT(msg, Contains("unknown key 'repeats' in group 'round'; did you mean 'repeat'?"));
  }
  SECTION("an unknown key in a group task") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks:\n      a: {stage: noop, "
        "first_rnd: {}}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:6:"));
    CHECK_THAT(msg, Contains("did you mean 'first_round'?"));
  }
  SECTION("a missing or bad repeat") {
    CHECK_THAT(error_of("dag_id: g\ntasks:\n  round:\n    tasks: {a: {stage: noop}}\n"),
               StartsWith("g.yaml:3:3: group 'round' has no repeat:"));
    std::string msg =
        error_of("dag_id: g\ntasks:\n  round:\n    repeat: 0\n    tasks: {a: {stage: noop}}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:4:13: "));
    CHECK_THAT(msg, Contains("round.repeat: 0 is out of range; use 1 to 100"));
    CHECK_THAT(
        error_of("dag_id: g\ntasks:\n  round:\n    repeat: two\n    tasks: {a: {stage: noop}}\n"),
        Contains("is not a whole number"));
  }
  SECTION("a group without tasks, a reserved name, a nested group") {
    CHECK_THAT(error_of("dag_id: g\ntasks:\n  round:\n    repeat: 2\n"),
               Contains("group 'round' has no tasks"));
    CHECK_THAT(
        error_of("dag_id: g\ntasks:\n  prev:\n    repeat: 2\n    tasks: {a: {stage: noop}}\n"),
        Contains("group name 'prev' is reserved"));
    CHECK_THAT(error_of("dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks:\n      inner: "
                        "{repeat: 2, tasks: {a: {stage: noop}}}\n"),
               Contains("groups do not nest"));
  }
  SECTION("the previous round in round 1") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks:\n      a:\n        stage: noop\n"
        "        upstream: [prev.a]\n");
    CHECK_THAT(msg, StartsWith("g.yaml:8:20: "));
    CHECK_THAT(msg, Contains("'prev.a' in round 1 of group 'round': the first round has no "
                             "previous round"));
    CHECK_THAT(msg, Contains("first_round:"));
  }
  SECTION("the previous round in a template of round 1") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks:\n      a:\n        stage: noop\n"
        "        params: {r: \"{{ prev.a.output }}\"}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:8:17: "));
    CHECK_THAT(msg, Contains("task 'a_1' params.r: 'prev.a' in round 1"));
  }
  SECTION("the next round in the last round") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks:\n      a:\n        stage: noop\n"
        "        params: {go: [\"{{ next.a.id }}\"]}\n");
    CHECK_THAT(msg, Contains("task 'a_2' params.go[0]: 'next.a' in round 2, the last of group "
                             "'round': the last round has no next round"));
  }
  SECTION("a reference to a task outside the group") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  start: {stage: noop}\n  round:\n    repeat: 2\n    tasks:\n"
        "      a: {stage: noop, upstream: [this.start]}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:7:"));
    CHECK_THAT(msg, Contains("'this.start' names no task of group 'round' (its tasks: a)"));
    msg = error_of(
        "dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks: {a: {stage: noop}}\n"
        "  end: {stage: noop, upstream: [round.each.z]}\n");
    CHECK_THAT(msg, Contains("'round.each.z' names no task of group 'round'"));
  }
  SECTION("round references outside a group, each outside a list, a round out of range") {
    // In a file with a group; without one, the template check reports the unknown root.
    CHECK_THAT(
        error_of("dag_id: g\ntasks:\n  a: {stage: noop, params: {r: \"{{ group.round }}\"}}\n"
                 "  round: {repeat: 2, tasks: {b: {stage: noop}}}\n"),
        Contains("'group.round' refers to a round, but this task is not in a task group"));
    CHECK_THAT(
        error_of("dag_id: g\ntasks:\n  a: {stage: noop, params: {r: \"{{ group.round }}\"}}\n"),
        Contains("unknown name 'group'"));
    CHECK_THAT(
        error_of("dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks: {a: {stage: noop}}\n"
                 "  end: {stage: noop, upstream: [round.each.a], params: {x: \"{{ "
                 "round.each.a.output }}\"}}\n"),
        Contains("gives one value per round: use it as an item of a list"));
    CHECK_THAT(
        error_of("dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks: {a: {stage: noop}}\n"
                 "  end: {stage: noop, upstream: [round.3.a]}\n"),
        Contains("group 'round' has rounds 1 to 2"));
  }
  SECTION("an expanded id that collides with another task") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  a_2: {stage: noop}\n  round:\n    repeat: 2\n    tasks:\n"
        "      a: {stage: noop}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:7:7: "));
    CHECK_THAT(msg, Contains("task id 'a_2' (round 2 of task 'a' in group 'round') is also the "
                             "id of a task at line 3"));
  }
  SECTION("a template that is not upstream, after expansion") {
    std::string msg = error_of(
        "dag_id: g\ntasks:\n  round:\n    repeat: 2\n    tasks:\n      a: {stage: noop}\n"
        "      b: {stage: noop, params: {x: \"{{ this.a.output }}\"}}\n");
    CHECK_THAT(msg, StartsWith("g.yaml:7:"));
    CHECK_THAT(msg, Contains("task 'b_1'"));
    CHECK_THAT(msg, Contains("not upstream"));
  }
}

TEST_CASE("expand_group_refs leaves run-time templates alone", "[scheduler]") {
  TaskGroup g{"round", 2, {"a", "b"}, 1};
  std::vector<TaskGroup> groups{g};
  GroupScope in{&groups[0], 2, &groups};
  std::vector<std::string> out;
  bool is_number = false;
  REQUIRE_OK(expand_group_refs("{{ run.conf.x }} and {{ tasks.z.output }} {{ '{{' }}", in, false,
                               &out, &is_number));
  CHECK(out == std::vector<std::string>{"{{ run.conf.x }} and {{ tasks.z.output }} {{ '{{' }}"});
  REQUIRE_OK(expand_group_refs("{{prev.b.output.files.0}}", in, false, &out, &is_number));
  CHECK(out == std::vector<std::string>{"{{ tasks.b_1.output.files.0 }}"});
  CHECK_FALSE(is_number);
  REQUIRE_OK(expand_group_refs("{{ group.round }}", in, false, &out, &is_number));
  CHECK(out == std::vector<std::string>{"2"});
  CHECK(is_number);
  CHECK_THAT(expand_group_refs("{{ this.a }}", in, false, &out, &is_number).message(),
             Contains("names a task but no value; write this.a.output"));
  CHECK(task_round_id("gate", 12) == "gate_12");
}
