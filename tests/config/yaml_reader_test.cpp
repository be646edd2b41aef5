#include "config/yaml_reader.h"

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "test_util.h"

using namespace factory;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;
using config::YamlAliases;
using config::YamlEntry;
using config::YamlKeys;
using config::YamlReader;

namespace {

// The JSON of the document's `v:` value, or the error message.
std::string json_of(const std::string& yaml) {
  YamlReader reader("t.yaml", nullptr);
  YAML::Node doc;
  Status s = reader.load(yaml, &doc);
  std::string out;
  if (s.ok()) s = reader.to_json(doc["v"], "v", &out);
  return s.ok() ? out : s.message();
}

}  // namespace

TEST_CASE("YAML scalars become the JSON types YAML 1.2 gives them", "[runtime]") {
  CHECK(json_of("v: 12") == "12");
  CHECK(json_of("v: -3") == "-3");
  CHECK(json_of("v: +5") == "5");
  CHECK(json_of("v: 18446744073709551615") == "18446744073709551615");
  CHECK(boost::json::parse(json_of("v: 0.5")) == boost::json::value(0.5));
  CHECK(boost::json::parse(json_of("v: .5")) == boost::json::value(0.5));
  CHECK(boost::json::parse(json_of("v: 1e3")) == boost::json::value(1000.0));
  CHECK(json_of("v: true") == "true");
  CHECK(json_of("v: FALSE") == "false");
  CHECK(json_of("v: ~") == "null");
  CHECK(json_of("v:") == "null");
  // Strings: quoted, block, tagged, YAML 1.1 booleans, leading zeros, hex, plain text.
  CHECK(json_of("v: '12'") == R"("12")");
  CHECK(json_of("v: \"true\"") == R"("true")");
  CHECK(json_of("v: !!str 12") == R"("12")");
  CHECK(json_of("v: |\n  two\n  lines\n") == R"("two\nlines\n")");
  CHECK(json_of("v: yes") == R"("yes")");
  CHECK(json_of("v: NO") == R"("NO")");
  CHECK(json_of("v: 01234") == R"("01234")");
  CHECK(json_of("v: 0x1F") == R"("0x1F")");
  CHECK(json_of("v: 1.2.3") == R"("1.2.3")");
  CHECK(json_of("v: héllo \"x\"") == R"("héllo \"x\"")");
  // Structure and order are kept.
  CHECK(json_of("v: {b: [1, x, {c: null}], a: {}}") == R"({"b":[1,"x",{"c":null}],"a":{}})");
}

TEST_CASE("YAML values JSON cannot hold are errors at their position", "[runtime]") {
  CHECK_THAT(json_of("v: .inf"), StartsWith("t.yaml:1:4: v: .inf"));
  CHECK_THAT(json_of("v: [1, -.nan]"), StartsWith("t.yaml:1:8: v[1]: -.nan"));
  CHECK_THAT(json_of("v: 1e999"), Contains("out of range"));
  CHECK_THAT(json_of("v: 99999999999999999999"), Contains("too large"));
  CHECK_THAT(json_of("v: {a: 1, a: 2}"), StartsWith("t.yaml:1:11: 'a' appears twice"));
  CHECK_THAT(json_of("v: &x [1, *x]"), Contains("nested too deeply"));
}

TEST_CASE("unknown keys get a did-you-mean for typos and aliases", "[runtime]") {
  const YamlAliases aliases = {{"input_topic", "input"}};
  YamlReader reader("t.yaml", &aliases);
  const YamlKeys allowed = {"input", "output", "concurrency", "timeout_ms"};
  CHECK(reader.suggest("inptu", allowed) == "input");
  CHECK(reader.suggest("Concurency", allowed) == "concurrency");
  CHECK(reader.suggest("timeout-ms", allowed) == "timeout_ms");
  CHECK(reader.suggest("input_topic", allowed) == "input");
  CHECK(reader.suggest("colour", allowed).empty());
  CHECK(reader.suggest("in", allowed).empty());  // too short to guess from

  YAML::Node doc;
  REQUIRE_OK(reader.load("a: 1\noutptu: 2\n", &doc));
  std::vector<YamlEntry> entries;
  const YamlKeys keys = {"a", "output"};
  Status s = reader.entries(doc, "the test", &keys, &entries);
  CHECK_THAT(s.message(), StartsWith("t.yaml:2:1: unknown key 'outptu' in the test; did you "
                                     "mean 'output'?"));
}

TEST_CASE("typed scalars check their type and range", "[runtime]") {
  YamlReader reader("t.yaml", nullptr);
  YAML::Node doc;
  REQUIRE_OK(reader.load("n: 42\nbig: 99999999999999999999\nf: 2.5\nb: True\nl: [1]\n", &doc));
  std::vector<YamlEntry> e;
  REQUIRE_OK(reader.entries(doc, "the test", nullptr, &e));
  int64_t i = 0;
  REQUIRE_OK(reader.integer(e[0], "n", int64_t{1}, int64_t{100}, &i));
  CHECK(i == 42);
  CHECK_THAT(reader.integer(e[0], "n", int64_t{1}, int64_t{10}, &i).message(),
             Equals("t.yaml:1:4: n: 42 is out of range; use 1 to 10"));
  CHECK_THAT(reader.integer(e[1], "big", int64_t{1}, int64_t{10}, &i).message(),
             Contains("out of range"));
  CHECK_THAT(reader.integer(e[2], "f", int64_t{1}, int64_t{10}, &i).message(),
             Contains("'2.5' is not a whole number"));
  double d = 0;
  REQUIRE_OK(reader.number(e[2], "f", &d));
  CHECK(d == 2.5);
  bool b = false;
  REQUIRE_OK(reader.boolean(e[3], "b", &b));
  CHECK(b);
  std::string text;
  CHECK_THAT(reader.text(e[4], "l", &text).message(),
             Equals("t.yaml:5:4: l must be a single value, not a list, e.g. l: value"));
}

TEST_CASE("load reports syntax errors and extra documents", "[runtime]") {
  YamlReader reader("t.yaml", nullptr);
  YAML::Node doc;
  CHECK_THAT(reader.load("a:\n\t- b\n", &doc).message(), Contains("not tabs"));
  CHECK_THAT(reader.load("a: [1,\n", &doc).message(), StartsWith("t.yaml:"));
  CHECK_THAT(reader.load("a: 1\n---\nb: 2\n", &doc).message(),
             StartsWith("t.yaml:3:1: this file holds more than one YAML document"));
  REQUIRE_OK(reader.load("# nothing\n", &doc));
  CHECK(doc.IsNull());
}

// Found by tests/fuzz/yaml_config_fuzz.cpp (corpus: regress-dag-stray-comma): yaml-cpp 0.7's
// LoadAll looped forever, allocating, on a stray ',' (jbeder/yaml-cpp#1040). Before the fix
// this test never returned.
TEST_CASE("load refuses a stray ',' instead of looping forever", "[runtime]") {
  YamlReader reader("t.yaml", nullptr);
  YAML::Node doc;
  for (const char* text : {",", " ,", "a: 1\n,\n", "dag_id: x\n  , tasks: []\n"}) {
    INFO(text);
    Status s = reader.load(text, &doc);
    CHECK(s.code() == Status::Code::kInvalidArgument);
    CHECK_THAT(s.message(), StartsWith("t.yaml:"));
  }
  // Documents and flow collections are read as before.
  REQUIRE_OK(reader.load("a: [1, 2]\nb: {c: 3, d: 4}\n", &doc));
  CHECK(doc["b"]["d"].as<int>() == 4);
  CHECK_THAT(reader.load("---\na: 1\n---\n", &doc).message(),
             Contains("more than one YAML document"));
}
