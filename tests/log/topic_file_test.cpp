// Topic files (Strimzi manifests and the short form) and topic config parsing.
#include "log/topic_file.h"

#include <fstream>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "factory/topic.h"
#include "test_util.h"

namespace factory::log {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// The article's kafka-topics.yaml, with the indentation its page renders (the plain-text copy
// in the seed lost it; see "the article's manifests pasted without indentation" below).
constexpr std::string_view kArticleManifests = R"(apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata:
  name: feature-specs
spec:
  partitions: 12
  replicas: 3
  config:
    retention.ms: 604800000 # 7 days
---
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata:
  name: code-artifacts
spec:
  partitions: 24
  replicas: 3
  config:
    retention.ms: 2592000000 # 30 days
)";

// Parses text that must fail and returns the message, after checking the code.
std::string error_of(std::string_view text, std::string_view source = "bad.yaml") {
  auto r = parse_topic_yaml(text, source);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  return r.status().message();
}

// yaml-cpp 0.7's LoadAll looped forever on a stray ',' (jbeder/yaml-cpp#1040; found by
// tests/fuzz/yaml_config_fuzz.cpp). Before the fix this test never returned.
TEST_CASE("a stray ',' in a topics file is a syntax error, not an endless loop", "[log]") {
  CHECK(error_of(",").starts_with("bad.yaml:1:1:"));
  CHECK(error_of("topics:\n  - name: a\n,\n").starts_with("bad.yaml:3:"));
}

TEST_CASE("the article's KafkaTopic manifests parse into specs", "[log]") {
  auto r = parse_topic_yaml(kArticleManifests, "kafka-topics.yaml");
  REQUIRE_OK(r);
  REQUIRE(r->size() == 2);

  const TopicFileEntry& specs = (*r)[0];
  CHECK(specs.spec.name == "feature-specs");
  CHECK(specs.spec.partitions == 12);
  CHECK(specs.spec.config.retention_ms == 604'800'000);
  CHECK(specs.spec.config.retention_bytes == -1);  // untouched keys keep Kafka's defaults
  CHECK(specs.spec.config.max_message_bytes == 1'048'588);
  CHECK(specs.spec.config.cleanup_policy == "delete");
  CHECK(specs.line == 1);
  REQUIRE(specs.notes.size() == 1);
  CHECK(specs.notes[0] == "replicas: 3 ignored: factoryd runs on one node");

  const TopicFileEntry& artifacts = (*r)[1];
  CHECK(artifacts.spec.name == "code-artifacts");
  CHECK(artifacts.spec.partitions == 24);
  CHECK(artifacts.spec.config.retention_ms == 2'592'000'000);  // 30 days: past int32
  CHECK(artifacts.line == 11);
  REQUIRE(artifacts.notes.size() == 1);
  CHECK(artifacts.notes[0] == "replicas: 3 ignored: factoryd runs on one node");
}

TEST_CASE("the article's manifests pasted without indentation get an indentation hint", "[log]") {
  // As the article's plain text shows them: every key at column 1.
  std::string msg = error_of(
      "apiVersion: kafka.strimzi.io/v1beta2\n"
      "kind: KafkaTopic\n"
      "metadata:\n"
      "name: feature-specs\n"
      "spec:\n"
      "partitions: 12\n",
      "article.yaml");
  CHECK_THAT(msg, StartsWith("article.yaml:4:1: "));
  CHECK_THAT(msg, Contains("unknown key 'name'"));
  CHECK_THAT(msg, Contains("belongs under metadata"));
}

TEST_CASE("the short form parses alone and mixed with manifests", "[log]") {
  constexpr std::string_view text = R"(topics:
  - name: jira-events
    partitions: 3
    config: {retention.ms: 604800000}
  - name: human-review
    config:
      retention.ms: "86400000"
      retention.bytes: -1
      max.message.bytes: '2097152'
      cleanup.policy: delete
  - name: defaults
---
apiVersion: kafka.strimzi.io/v1beta1
kind: KafkaTopic
metadata:
  name: k8s-name
  namespace: factory
  labels:
    strimzi.io/cluster: my-cluster
spec:
  topicName: Real_Topic.Name
  partitions: 6
)";
  auto r = parse_topic_yaml(text, "topics.yaml");
  REQUIRE_OK(r);
  REQUIRE(r->size() == 4);

  CHECK((*r)[0].spec.name == "jira-events");
  CHECK((*r)[0].spec.partitions == 3);
  CHECK((*r)[0].spec.config.retention_ms == 604'800'000);
  CHECK((*r)[0].line == 2);
  CHECK((*r)[0].notes.empty());

  // Config values may be strings, as Strimzi's examples often quote them.
  CHECK((*r)[1].spec.name == "human-review");
  CHECK((*r)[1].spec.partitions == 1);
  CHECK((*r)[1].spec.config.retention_ms == 86'400'000);
  CHECK((*r)[1].spec.config.retention_bytes == -1);
  CHECK((*r)[1].spec.config.max_message_bytes == 2'097'152);
  CHECK((*r)[1].line == 5);

  CHECK((*r)[2].spec.name == "defaults");
  CHECK((*r)[2].spec.partitions == 1);
  CHECK((*r)[2].spec.config == TopicConfig{});

  // Strimzi's spec.topicName names the Kafka topic when metadata.name cannot.
  CHECK((*r)[3].spec.name == "Real_Topic.Name");
  CHECK((*r)[3].spec.partitions == 6);
  CHECK((*r)[3].line == 13);
}

TEST_CASE("empty documents and an empty file yield no topics", "[log]") {
  auto r = parse_topic_yaml("# nothing yet\n---\n---\n", "empty.yaml");
  REQUIRE_OK(r);
  CHECK(r->empty());
  auto e = parse_topic_yaml("", "empty.yaml");
  REQUIRE_OK(e);
  CHECK(e->empty());
}

TEST_CASE("config/topics.yaml holds the factory's topics", "[log]") {
  auto r = parse_topic_file(std::string(FACTORY_SOURCE_DIR) + "/config/topics.yaml");
  REQUIRE_OK(r);
  struct Want {
    const char* name;
    int32_t partitions;
    int64_t retention_ms;
  };
  const Want want[] = {
      {"feature-specs", 12, 604'800'000}, {"code-artifacts", 24, 2'592'000'000},
      {"jira-events", 3, 604'800'000},    {"test-results", 12, 604'800'000},
      {"quality-gates", 12, 604'800'000}, {"deployment-triggers", 6, 604'800'000},
      {"human-review", 3, 604'800'000},   {"postmortems", 1, 7'776'000'000},
      {"tickets", 3, 604'800'000},
  };
  REQUIRE(r->size() == std::size(want));
  for (size_t i = 0; i < std::size(want); ++i) {
    INFO("topic " << want[i].name);
    const TopicFileEntry& e = (*r)[i];
    CHECK(e.spec.name == want[i].name);
    CHECK(e.spec.partitions == want[i].partitions);
    CHECK(e.spec.config.retention_ms == want[i].retention_ms);
    CHECK(e.line > 0);
    REQUIRE_OK(validate_topic_spec(e.spec));
  }
}

TEST_CASE("parse_topic_file names the path when it cannot read it", "[log]") {
  test::TempDir dir;
  SECTION("missing file") {
    auto r = parse_topic_file(dir.str() + "/nope.yaml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_not_found());
    CHECK_THAT(r.status().message(), Contains(dir.str() + "/nope.yaml"));
  }
  SECTION("a directory") {
    auto r = parse_topic_file(dir.str());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kIOError);
    CHECK_THAT(r.status().message(), Contains(dir.str()));
  }
  SECTION("errors inside the file are prefixed with its path") {
    std::string path = dir.str() + "/t.yaml";
    std::ofstream(path) << "topics:\n  - name: a\n    partitions: many\n";
    auto r = parse_topic_file(path);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), StartsWith(path + ":3:17: "));
  }
}

TEST_CASE("bad topic files report SOURCE:LINE:COLUMN and the reason", "[log]") {
  SECTION("a kind other than KafkaTopic") {
    std::string msg = error_of(
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: web\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:2:7: "));
    CHECK_THAT(msg, Contains("kind 'Deployment' is not a topic"));
  }
  SECTION("a manifest without kind") {
    std::string msg = error_of("apiVersion: kafka.strimzi.io/v1beta2\nmetadata: {name: a}\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:1:1: "));
    CHECK_THAT(msg, Contains("kind is missing"));
  }
  SECTION("an apiVersion that is not Strimzi's") {
    std::string msg = error_of("apiVersion: v1\nkind: KafkaTopic\nmetadata: {name: a}\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:1:13: "));
    CHECK_THAT(msg, Contains("kafka.strimzi.io/v1beta2"));
  }
  SECTION("missing metadata.name") {
    std::string msg = error_of(
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        "  labels: {strimzi.io/cluster: c}\n"
        "spec:\n"
        "  partitions: 3\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:1: "));
    CHECK_THAT(msg, Contains("metadata.name is missing"));
  }
  SECTION("an empty metadata.name") {
    std::string msg = error_of(
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        "  name:\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:4:3: "));
    CHECK_THAT(msg, Contains("metadata.name is missing"));
  }
  SECTION("a non-integer partition count") {
    std::string msg = error_of(
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        "  name: a\n"
        "spec:\n"
        "  partitions: twelve\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:6:15: "));
    CHECK_THAT(msg, Contains("spec.partitions: 'twelve' is not a whole number"));
  }
  SECTION("a fractional partition count") {
    std::string msg = error_of("topics:\n  - name: a\n    partitions: 1.5\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:17: "));
    CHECK_THAT(msg, Contains("'1.5' is not a whole number"));
  }
  SECTION("partition counts out of range") {
    std::string zero = error_of("topics:\n  - name: a\n    partitions: 0\n");
    CHECK_THAT(zero, StartsWith("bad.yaml:3:17: "));
    CHECK_THAT(zero, Contains("partition count 0 is out of range; use 1 to 10000"));
    std::string big = error_of("topics:\n  - name: a\n    partitions: 10001\n");
    CHECK_THAT(big, StartsWith("bad.yaml:3:17: "));
    CHECK_THAT(big, Contains("10001 is out of range"));
    std::string huge = error_of("topics:\n  - name: a\n    partitions: 99999999999\n");
    CHECK_THAT(huge, StartsWith("bad.yaml:3:17: "));
    CHECK_THAT(huge, Contains("99999999999 is out of range"));
  }
  SECTION("an unknown config key") {
    std::string msg = error_of(
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        "  name: a\n"
        "spec:\n"
        "  config:\n"
        "    retention.hours: 168\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:7:5: "));
    CHECK_THAT(msg, Contains("unknown topic config key 'retention.hours'"));
    CHECK_THAT(msg, Contains("retention.ms, retention.bytes, max.message.bytes, cleanup.policy"));
  }
  SECTION("a bad config value points at the value") {
    std::string msg = error_of("topics:\n  - name: a\n    config: {retention.ms: 7d}\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:28: "));
    CHECK_THAT(msg, Contains("retention.ms: '7d' is not a whole number"));
  }
  SECTION("cleanup.policy compact") {
    std::string msg =
        error_of("topics:\n  - name: a\n    config:\n      cleanup.policy: compact\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:4:23: "));
    CHECK_THAT(msg, Contains("'compact' is not supported yet"));
  }
  SECTION("a config value that is not a single value") {
    std::string msg = error_of("topics:\n  - name: a\n    config:\n      retention.ms: [1, 2]\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:4:21: "));
    CHECK_THAT(msg, Contains("config.retention.ms must be a single value"));
  }
  SECTION("a topic defined twice") {
    std::string msg = error_of(
        "topics:\n"
        "  - name: a\n"
        "  - name: b\n"
        "---\n"
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        "  name: a\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:8:9: "));
    CHECK_THAT(msg, Contains("topic 'a' is defined twice (first at bad.yaml:2)"));
  }
  SECTION("a key given twice in one mapping") {
    std::string msg = error_of("topics:\n  - name: a\n    partitions: 3\n    partitions: 4\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:4:5: "));
    CHECK_THAT(msg, Contains("'partitions' appears twice"));
    CHECK_THAT(msg, Contains("first at line 3"));
  }
  SECTION("an illegal topic name") {
    std::string msg = error_of("topics:\n  - name: feature specs\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:2:11: "));
    CHECK_THAT(msg, Contains("contains a space at position 8"));
  }
  SECTION("a misspelled spec key") {
    std::string msg = error_of(
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata: {name: a}\n"
        "spec:\n"
        "  partition: 3\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:5:3: "));
    CHECK_THAT(msg, Contains("unknown key 'partition' in spec"));
    CHECK_THAT(msg, Contains("did you mean 'partitions'?"));  // config::YamlReader::suggest
  }
  SECTION("a short-form topic without a name") {
    std::string msg = error_of("topics:\n  - name: a\n  - partitions: 3\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:5: "));
    CHECK_THAT(msg, Contains("this topic has no name"));
  }
  SECTION("a document in neither form") {
    std::string msg = error_of("topics:\n  - name: a\n---\nname: b\npartitions: 3\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:4:1: "));
    CHECK_THAT(msg, Contains("neither a KafkaTopic manifest"));
  }
  SECTION("replicas that are not a count") {
    std::string msg = error_of("topics:\n  - name: a\n    replicas: three\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:15: "));
    CHECK_THAT(msg, Contains("'three' is not a replica count"));
  }
  SECTION("a YAML syntax error") {
    std::string msg = error_of("topics:\n  - name: a\n    config: {retention.ms: 1\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:4:1: "));
    CHECK_THAT(msg, Contains("YAML syntax error: end of map flow not found"));
  }
  SECTION("a YAML syntax error from a bad indent") {
    std::string msg = error_of("topics:\n  - name: a\n   partitions: 3\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:"));
    CHECK_THAT(msg, Contains("YAML syntax error: "));
    CHECK_THAT(msg, Contains("check the indentation"));
  }
  SECTION("tabs for indentation") {
    std::string msg = error_of("topics:\n  - name: a\n\tpartitions: 3\n");
    CHECK_THAT(msg, StartsWith("bad.yaml:3:"));
    CHECK_THAT(msg, Contains("not tabs"));
  }
}

// --- Topic config (factory/topic.h) ---

TEST_CASE("set_topic_config accepts Kafka's keys and values", "[log]") {
  TopicConfig c;
  REQUIRE_OK(set_topic_config(&c, "retention.ms", "2592000000"));
  REQUIRE_OK(set_topic_config(&c, "retention.bytes", "1073741824"));
  REQUIRE_OK(set_topic_config(&c, "max.message.bytes", "1"));
  REQUIRE_OK(set_topic_config(&c, "cleanup.policy", "delete"));
  CHECK(c.retention_ms == 2'592'000'000);
  CHECK(c.retention_bytes == 1'073'741'824);
  CHECK(c.max_message_bytes == 1);
  CHECK(c.cleanup_policy == "delete");

  // -1 is Kafka's "unlimited" for both retention limits; 0 is a (strict) limit.
  REQUIRE_OK(set_topic_config(&c, "retention.ms", "-1"));
  REQUIRE_OK(set_topic_config(&c, "retention.bytes", "-1"));
  CHECK(c.retention_ms == -1);
  CHECK(c.retention_bytes == -1);
  REQUIRE_OK(set_topic_config(&c, "retention.ms", "0"));
  CHECK(c.retention_ms == 0);
}

TEST_CASE("set_topic_config rejects bad keys and values and leaves the config alone", "[log]") {
  TopicConfig c;
  const TopicConfig before = c;
  auto expect_error = [&](std::string_view key, std::string_view value, std::string_view reason) {
    INFO(key << " = " << value);
    Status s = set_topic_config(&c, key, value);
    REQUIRE_FALSE(s.ok());
    CHECK(s.is_invalid_argument());
    CHECK_THAT(s.message(), Contains(std::string(reason)));
    CHECK(c == before);
  };
  expect_error("retention.hours", "1", "unknown topic config key 'retention.hours'");
  expect_error("min.insync.replicas", "2",
               "supported keys are retention.ms, retention.bytes, max.message.bytes, "
               "cleanup.policy");
  expect_error("retention.ms", "", "'' is not a whole number");
  expect_error("retention.ms", "7d", "'7d' is not a whole number");
  expect_error("retention.ms", " 5", "is not a whole number");
  expect_error("retention.ms", "1e3", "is not a whole number");
  expect_error("retention.ms", "99999999999999999999", "is not a whole number");
  expect_error("retention.ms", "-2", "retention.ms: -2 is out of range");
  expect_error("retention.bytes", "-5", "or -1 for unlimited");
  expect_error("max.message.bytes", "0", "max.message.bytes: 0 is out of range");
  expect_error("max.message.bytes", "-1", "use a positive number of bytes");
  expect_error("cleanup.policy", "compact", "cleanup.policy: 'compact' is not supported yet");
  expect_error("cleanup.policy", "compact,delete", "is not supported yet");
  expect_error("cleanup.policy", "purge", "use cleanup.policy: delete");
}

TEST_CASE("topic_config_entries lists every key in a fixed order and round-trips", "[log]") {
  TopicConfig c;
  c.retention_ms = 2'592'000'000;
  c.retention_bytes = 42;
  c.max_message_bytes = 2'097'152;
  auto entries = topic_config_entries(c);
  REQUIRE(entries.size() == 4);
  CHECK(entries[0] == std::pair<std::string, std::string>{"cleanup.policy", "delete"});
  CHECK(entries[1] == std::pair<std::string, std::string>{"max.message.bytes", "2097152"});
  CHECK(entries[2] == std::pair<std::string, std::string>{"retention.bytes", "42"});
  CHECK(entries[3] == std::pair<std::string, std::string>{"retention.ms", "2592000000"});

  TopicConfig copy;
  for (const auto& [key, value] : entries) REQUIRE_OK(set_topic_config(&copy, key, value));
  CHECK(copy == c);
}

TEST_CASE("validate_topic_spec applies Kafka's name rule and the partition range", "[log]") {
  auto spec = [](std::string name, int32_t partitions = 1) {
    TopicSpec s;
    s.name = std::move(name);
    s.partitions = partitions;
    return s;
  };
  REQUIRE_OK(validate_topic_spec(spec("jira-events", 3)));
  REQUIRE_OK(validate_topic_spec(spec("Real_Topic.Name-2", 10000)));
  REQUIRE_OK(validate_topic_spec(spec(std::string(249, 'a'))));
  REQUIRE_OK(validate_topic_spec(spec("...")));

  auto expect_error = [](const TopicSpec& s, std::string_view reason) {
    INFO("name '" << s.name << "' partitions " << s.partitions);
    Status st = validate_topic_spec(s);
    REQUIRE_FALSE(st.ok());
    CHECK(st.is_invalid_argument());
    CHECK_THAT(st.message(), Contains(std::string(reason)));
  };
  expect_error(spec(""), "topic name is empty");
  expect_error(spec(std::string(250, 'a')), "is 250 characters long; shorten it to at most 249");
  expect_error(spec("."), "is reserved");
  expect_error(spec(".."), "is reserved");
  expect_error(spec("a/b"), "contains '/' at position 2");
  expect_error(spec("tab\there"), "contains byte 0x09 at position 4");
  expect_error(spec("a", 0), "partition count 0 is out of range; use 1 to 10000");
  expect_error(spec("a", -1), "partition count -1 is out of range");
  expect_error(spec("a", 10001), "partition count 10001 is out of range");

  TopicSpec bad_config = spec("a");
  bad_config.config.max_message_bytes = 0;
  expect_error(bad_config, "max.message.bytes 0 must be positive");
  bad_config = spec("a");
  bad_config.config.retention_ms = -7;
  expect_error(bad_config, "retention.ms and retention.bytes must be >= 0, or -1");
  bad_config = spec("a");
  bad_config.config.cleanup_policy = "compact";
  expect_error(bad_config, "cleanup.policy 'compact' is not supported");
}

}  // namespace
}  // namespace factory::log
