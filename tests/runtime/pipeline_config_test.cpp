#include "runtime/pipeline_config.h"

#include <cstdio>
#include <filesystem>
#include <string>

#include <boost/json.hpp>

#include "test_util.h"

using namespace factory;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using runtime::Binding;
using runtime::load_pipelines;
using runtime::parse_pipeline_yaml;
using runtime::PipelineConfig;

namespace {

// The message of a parse that must fail, after checking it is InvalidArgument.
std::string parse_error(const std::string& yaml, const std::string& source = "p.yaml") {
  Result<PipelineConfig> r = parse_pipeline_yaml(yaml, source);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  return r.status().message();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

}  // namespace

TEST_CASE("a full pipeline file parses with every field", "[runtime]") {
  const std::string yaml = R"(pipeline: demo
plugins: [plugins/, /opt/factory/plugins]
bindings:
  - stage: exec
    name: shout
    input: tickets
    output: shouted
    group: shouters
    dead_letter: tickets.failed
    concurrency: 2
    max_poll_records: 50
    timeout_ms: 1500
    retry: {attempts: 5, initial_delay_ms: 200, multiplier: 3, max_delay_ms: 9000, jitter: 0.25}
    backpressure: {high: 800, low: 100}
    breakers:
      - {name: llm, window: 30, min_calls: 5, failure_rate: 0.75, open_ms: 2000,
         half_open_probes: 2, fallback: human-review}
      - name: deploy
    config:
      command: ["tr", "a-z", "A-Z"]
      timeout_ms: 100
      ratio: 0.5
      verbose: true
      nothing: ~
      zip: 01234
      version: "1.0"
      big: -12
      nested: {list: [1, two, {three: 3}]}
)";
  Result<PipelineConfig> r = parse_pipeline_yaml(yaml, "/etc/factory/pipelines/demo.yaml");
  REQUIRE_OK(r);
  REQUIRE(r->plugin_dirs.size() == 2);
  CHECK(r->plugin_dirs[0] == "/etc/factory/pipelines/plugins/");
  CHECK(r->plugin_dirs[1] == "/opt/factory/plugins");
  REQUIRE(r->bindings.size() == 1);
  const Binding& b = r->bindings[0];
  CHECK(b.stage == "exec");
  CHECK(b.name == "shout");
  CHECK(b.input_topic == "tickets");
  CHECK(b.output_topic == "shouted");
  CHECK(b.group == "shouters");
  CHECK(b.dead_letter_topic == "tickets.failed");
  CHECK(b.concurrency == 2);
  CHECK(b.max_poll_records == 50);
  CHECK(b.timeout_ms == 1500);
  CHECK(b.retry.max_attempts == 5);
  CHECK(b.retry.initial_delay_ms == 200);
  CHECK(b.retry.multiplier == 3.0);
  CHECK(b.retry.max_delay_ms == 9000);
  CHECK(b.retry.jitter == 0.25);
  CHECK(b.backpressure_enabled);
  CHECK(b.backpressure.high == 800);
  CHECK(b.backpressure.low == 100);
  REQUIRE(b.breakers.size() == 2);
  CHECK(b.breakers[0].name == "llm");
  CHECK(b.breakers[0].config.window == 30);
  CHECK(b.breakers[0].config.min_calls == 5);
  CHECK(b.breakers[0].config.failure_rate_threshold == 0.75);
  CHECK(b.breakers[0].config.open_ms == 2000);
  CHECK(b.breakers[0].config.half_open_probes == 2);
  CHECK(b.breakers[0].fallback_topic == "human-review");
  CHECK(b.breakers[1].name == "deploy");
  CHECK(b.breakers[1].config.window == runtime::CircuitBreakerConfig{}.window);
  CHECK(b.breakers[1].fallback_topic.empty());
  CHECK(b.source == "/etc/factory/pipelines/demo.yaml");
  CHECK(b.line == 4);

  boost::json::value config = boost::json::parse(b.config_json);
  CHECK(config == boost::json::parse(R"({
    "command": ["tr", "a-z", "A-Z"], "timeout_ms": 100, "ratio": 0.5, "verbose": true,
    "nothing": null, "zip": "01234", "version": "1.0", "big": -12,
    "nested": {"list": [1, "two", {"three": 3}]}})"));
  CHECK(config.at("timeout_ms").is_int64());
}

TEST_CASE("defaults fill what a binding leaves out", "[runtime]") {
  Result<PipelineConfig> r = parse_pipeline_yaml(R"(bindings:
  - stage: noop
    input: tickets
  - {stage: fail, name: flaky, input: tickets, backpressure: {high: 100}}
)",
                                                 "p.yaml");
  REQUIRE_OK(r);
  CHECK(r->plugin_dirs.empty());
  REQUIRE(r->bindings.size() == 2);
  const Binding& b = r->bindings[0];
  CHECK(b.name == "noop");
  CHECK(b.group == "noop");
  CHECK(b.output_topic.empty());
  CHECK(b.dead_letter_topic == "tickets.dlq");
  CHECK(b.concurrency == 0);
  CHECK(b.max_poll_records == 0);
  CHECK(b.timeout_ms == 60'000);
  CHECK(b.retry.max_attempts == runtime::RetryPolicy{}.max_attempts);
  CHECK(b.retry.initial_delay_ms == runtime::RetryPolicy{}.initial_delay_ms);
  CHECK_FALSE(b.backpressure_enabled);
  CHECK(b.breakers.empty());
  CHECK(b.config_json == "{}");
  CHECK(b.line == 2);

  const Binding& flaky = r->bindings[1];
  CHECK(flaky.name == "flaky");
  CHECK(flaky.group == "flaky");
  CHECK(flaky.backpressure_enabled);
  CHECK(flaky.backpressure.high == 100);
  CHECK(flaky.backpressure.low == 50);  // half of high when only high is given

  SECTION("an empty file is an empty pipeline") {
    Result<PipelineConfig> empty = parse_pipeline_yaml("# nothing yet\n", "p.yaml");
    REQUIRE_OK(empty);
    CHECK(empty->bindings.empty());
  }
}

TEST_CASE("pipeline errors point at SOURCE:LINE:COLUMN and say how to fix", "[runtime]") {
  SECTION("missing stage") {
    std::string msg = parse_error("bindings:\n  - input: tickets\n    output: out\n");
    CHECK_THAT(msg, StartsWith("p.yaml:2:5: "));
    CHECK_THAT(msg, Contains("no stage"));
    CHECK_THAT(msg, Contains("add stage:"));
  }
  SECTION("missing input") {
    std::string msg = parse_error("bindings:\n  - stage: noop\n");
    CHECK_THAT(msg, StartsWith("p.yaml:2:5: "));
    CHECK_THAT(msg, Contains("no input"));
  }
  SECTION("unknown key with a did-you-mean") {
    std::string msg =
        parse_error("bindings:\n  - stage: noop\n    input: tickets\n    concurency: 2\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:5: "));
    CHECK_THAT(msg, Contains("unknown key 'concurency'"));
    CHECK_THAT(msg, Contains("did you mean 'concurrency'?"));
  }
  SECTION("unknown key known by another name") {
    std::string msg = parse_error(
        "bindings:\n  - stage: noop\n    input: tickets\n    retry: {max_attempts: 2}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:13: "));
    CHECK_THAT(msg, Contains("did you mean 'attempts'?"));
  }
  SECTION("unknown key far from any") {
    std::string msg = parse_error("bindings: []\ncolour: blue\n");
    CHECK_THAT(msg, StartsWith("p.yaml:2:1: "));
    CHECK_THAT(msg, Contains("pipeline, plugins, bindings"));
  }
  SECTION("bad type: text for a number") {
    std::string msg =
        parse_error("bindings:\n  - stage: noop\n    input: tickets\n    timeout_ms: soon\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:17: "));
    CHECK_THAT(msg, Contains("'soon' is not a whole number"));
  }
  SECTION("bad type: a list for a topic") {
    std::string msg = parse_error("bindings:\n  - stage: noop\n    input: [a, b]\n");
    CHECK_THAT(msg, StartsWith("p.yaml:3:12: "));
    CHECK_THAT(msg, Contains("must be a single value"));
  }
  SECTION("out of range") {
    std::string msg =
        parse_error("bindings:\n  - stage: noop\n    input: tickets\n    concurrency: 0\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:18: "));
    CHECK_THAT(msg, Contains("use 1 to 256"));
    msg = parse_error("bindings:\n  - stage: noop\n    input: t\n    max_poll_records: 100001\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:23: "));
    msg = parse_error("bindings:\n  - stage: noop\n    input: t\n    timeout_ms: 0\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:17: "));
  }
  SECTION("bad retry: validated by the retry policy, pointed at the field") {
    std::string msg = parse_error(
        "bindings:\n  - stage: noop\n    input: t\n"
        "    retry:\n      initial_delay_ms: 5000\n      max_delay_ms: 100\n");
    CHECK_THAT(msg, StartsWith("p.yaml:6:21: "));
    CHECK_THAT(msg, Contains("retry.max_delay_ms"));
    CHECK_THAT(msg, Contains("must be >= initial_delay_ms"));
    msg = parse_error("bindings:\n  - stage: noop\n    input: t\n    retry: {jitter: 1.5}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:21: "));
    CHECK_THAT(msg, Contains("jitter must be in [0, 1]"));
    msg = parse_error("bindings:\n  - stage: noop\n    input: t\n    retry: {multiplier: 0.5}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:25: "));
  }
  SECTION("bad breaker: validated by the breaker config, in the file's spelling") {
    std::string msg = parse_error(
        "bindings:\n  - stage: noop\n    input: t\n"
        "    breakers:\n      - {name: llm, failure_rate: 0}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:5:35: "));
    CHECK_THAT(msg, Contains("failure_rate must be in (0, 1]"));
    CHECK_THAT(msg, !Contains("threshold"));
    msg = parse_error(
        "bindings:\n  - stage: noop\n    input: t\n"
        "    breakers:\n      - {name: llm, window: 5, min_calls: 10}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:5:43: "));
    CHECK_THAT(msg, Contains("min_calls"));
  }
  SECTION("backpressure low >= high") {
    std::string msg = parse_error(
        "bindings:\n  - stage: noop\n    input: t\n    backpressure: {high: 100, low: 100}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:36: "));
    CHECK_THAT(msg, Contains("must be below high"));
  }
  SECTION("invalid topic names") {
    std::string msg = parse_error("bindings:\n  - stage: noop\n    input: tick ets\n");
    CHECK_THAT(msg, StartsWith("p.yaml:3:12: "));
    CHECK_THAT(msg, Contains("input: topic name 'tick ets'"));
    msg = parse_error("bindings:\n  - stage: noop\n    input: t\n    output: t\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:13: "));
    CHECK_THAT(msg, Contains("same topic as input"));
  }
  SECTION("duplicate names in one file") {
    std::string msg =
        parse_error("bindings:\n  - {stage: noop, input: a}\n  - {stage: noop, input: b}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:3:13: "));
    CHECK_THAT(msg, Contains("first at p.yaml:2"));
  }
  SECTION("duplicate keys") {
    std::string msg = parse_error("bindings:\n  - stage: noop\n    input: a\n    input: b\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:5: "));
    CHECK_THAT(msg, Contains("appears twice"));
  }
  SECTION("config values JSON cannot hold") {
    std::string msg =
        parse_error("bindings:\n  - stage: noop\n    input: a\n    config: {x: .inf}\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:17: "));
    CHECK_THAT(msg, Contains("quote it"));
    msg = parse_error("bindings:\n  - stage: noop\n    input: a\n    config: [1, 2]\n");
    CHECK_THAT(msg, StartsWith("p.yaml:4:13: "));
  }
  SECTION("YAML syntax error") {
    std::string msg = parse_error("bindings:\n  - {stage: noop, input: a\n");
    CHECK_THAT(msg, StartsWith("p.yaml:"));
    CHECK_THAT(msg, Contains("YAML syntax error"));
  }
}

TEST_CASE("load_pipelines reads every file in name order and rejects a name used twice",
          "[runtime]") {
  test::TempDir dir;
  const std::filesystem::path pipelines = dir.path() / "pipelines";

  SECTION("no pipelines directory: an empty config") {
    auto r = load_pipelines(dir.str());
    REQUIRE_OK(r);
    CHECK(r->bindings.empty());
  }
  SECTION("two files, merged in name order") {
    write_file(pipelines / "b.yaml",
               "plugins: [plugins]\nbindings:\n  - {stage: noop, input: b}\n");
    write_file(pipelines / "a.yml", "plugins: [plugins]\nbindings:\n  - {stage: fail, input: a}\n");
    write_file(pipelines / "notes.txt", "not a pipeline");
    auto r = load_pipelines(dir.str());
    REQUIRE_OK(r);
    REQUIRE(r->bindings.size() == 2);
    CHECK(r->bindings[0].name == "fail");
    CHECK(r->bindings[1].name == "noop");
    REQUIRE(r->plugin_dirs.size() == 1);  // the same directory, listed by both files
    CHECK(r->plugin_dirs[0] == (pipelines / "plugins").string());
  }
  SECTION("the same binding name in two files names both places") {
    write_file(pipelines / "a.yaml", "bindings:\n  - {stage: noop, input: a}\n");
    write_file(pipelines / "b.yaml",
               "# second\nbindings:\n  - {stage: fail, input: b}\n  - {stage: noop, input: c}\n");
    auto r = load_pipelines(dir.str());
    REQUIRE_FALSE(r.ok());
    const std::string& msg = r.status().message();
    CHECK(r.status().is_invalid_argument());
    CHECK_THAT(msg, StartsWith((pipelines / "b.yaml").string() + ":4: "));
    CHECK_THAT(msg, Contains((pipelines / "a.yaml").string() + ":2"));
    CHECK_THAT(msg, Contains("binding name 'noop'"));
  }
  SECTION("an error in a file names that file") {
    write_file(pipelines / "bad.yaml", "bindings:\n  - {stage: noop}\n");
    auto r = load_pipelines(dir.str());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), StartsWith((pipelines / "bad.yaml").string() + ":2:5: "));
  }
}

TEST_CASE("config/pipelines/example.yaml parses", "[runtime]") {
  const std::string path = std::string(FACTORY_SOURCE_DIR) + "/config/pipelines/example.yaml";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string text;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  auto r = parse_pipeline_yaml(text, path);
  REQUIRE_OK(r);
  REQUIRE(r->bindings.size() == 3);
  CHECK(r->bindings[0].stage == "noop");
  CHECK(r->bindings[1].stage == "exec");
  CHECK(r->bindings[2].output_topic.empty());
}
