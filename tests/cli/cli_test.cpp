// End-to-end tests of the factoryd command line: each runs the real binary
// (FACTORYD_BIN) as a subprocess against its own temp data dir.
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "cli/cli_checks.h"
#include "cli/run_process.h"
#include "factory/log.h"
#include "test_util.h"

namespace factory::test {
namespace {

namespace json = boost::json;

// A temp data dir and a way to run factoryd on it.
class Factoryd {
 public:
  ProcessResult run(std::vector<std::string> args, std::string stdin_text = {}) {
    args.push_back("--data-dir");
    args.push_back(dir_.str());
    return run_factoryd(std::move(args), std::move(stdin_text));
  }
  ChildProcess spawn(std::vector<std::string> args) {
    args.push_back("--data-dir");
    args.push_back(dir_.str());
    return spawn_factoryd(std::move(args));
  }
  // Runs and requires exit code 0, printing stderr otherwise.
  ProcessResult ok(std::vector<std::string> args, std::string stdin_text = {}) {
    return require_ok(args, run(args, std::move(stdin_text)));
  }
  json::value ok_json(std::vector<std::string> args) {
    args.push_back("-o");
    args.push_back("json");
    return stdout_json(ok(std::move(args)));
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string data_dir() const { return dir_.str(); }

 private:
  TempDir dir_;
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The usage-error contract: exit 2 and one "factoryd: error: what; how" line.
void require_usage_error(const ProcessResult& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.rfind("factoryd: error: ", 0) == 0);
}

int64_t total_lag(const json::value& group) {
  int64_t lag = 0;
  for (const auto& p : group.at("partitions").as_array()) lag += p.at("lag").as_int64();
  return lag;
}

TEST_CASE("topics apply on config/topics.yaml creates the article's topics", "[cli]") {
  Factoryd f;
  std::string file = std::string(FACTORY_SOURCE_DIR) + "/config/topics.yaml";
  ProcessResult r = f.ok({"topics", "apply", "-f", file});
  CHECK(r.out.find("feature-specs: created") != std::string::npos);
  CHECK(r.out.find("code-artifacts: created") != std::string::npos);

  json::value specs = f.ok_json({"topics", "describe", "feature-specs"});
  CHECK(specs.at("partition_count").as_int64() == 12);
  CHECK(specs.at("partitions").as_array().size() == 12);
  CHECK(specs.at("config").at("retention.ms").as_int64() == 604800000);
  json::value artifacts = f.ok_json({"topics", "describe", "code-artifacts"});
  CHECK(artifacts.at("partition_count").as_int64() == 24);
  CHECK(artifacts.at("config").at("retention.ms").as_int64() == 2592000000);

  SECTION("applying again changes nothing") {
    ProcessResult again = f.ok({"topics", "apply", "-f", file});
    CHECK(again.out.find("feature-specs: unchanged") != std::string::npos);
    CHECK(again.out.find("code-artifacts: unchanged") != std::string::npos);
  }
}

TEST_CASE("topics apply reports each topic with its notes and as JSON", "[cli]") {
  Factoryd f;
  std::string file = f.path("topics.yaml");
  write_file(file,
             "apiVersion: kafka.strimzi.io/v1beta2\n"
             "kind: KafkaTopic\n"
             "metadata:\n"
             "  name: feature-specs\n"
             "spec:\n"
             "  partitions: 3\n"
             "  replicas: 3\n"
             "  config:\n"
             "    retention.ms: 604800000\n");
  ProcessResult r = f.ok({"topics", "apply", "-f", file});
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].rfind("feature-specs: created (3 partitions)", 0) == 0);
  CHECK(lines[0].find("replicas") != std::string::npos);

  // Raising the partition count updates the topic.
  write_file(file,
             "topics:\n"
             "  - name: feature-specs\n"
             "    partitions: 4\n"
             "    config: {retention.ms: 604800000}\n"
             "  - name: jira-events\n"
             "    partitions: 2\n");
  json::value applied = f.ok_json({"topics", "apply", "-f", file});
  REQUIRE(applied.as_array().size() == 2);
  CHECK(applied.at(0).at("topic").as_string() == "feature-specs");
  CHECK(applied.at(0).at("action").as_string() == "updated");
  CHECK(applied.at(0).at("partitions").as_int64() == 4);
  CHECK(applied.at(1).at("action").as_string() == "created");

  json::value list = f.ok_json({"topics", "list"});
  CHECK(json::serialize(list) == R"(["feature-specs","jira-events"])");
  CHECK(f.ok({"topics", "list"}).out == "feature-specs\njira-events\n");

  // One partition is singular.
  write_file(file, "topics:\n  - name: one\n    partitions: 1\n");
  CHECK(f.ok({"topics", "apply", "-f", file}).out == "one: created (1 partition)\n");
}

TEST_CASE("dlq list names the binding that dead-lettered, replay dry run tells replayed ones",
          "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "src", "--partitions", "1"});
  f.ok({"topics", "create", "src.dlq", "--partitions", "1"});
  // Two dead letters as the runtime writes them, each an output of `ingest` (its factory.stage
  // inherited) that `codegen` dead-lettered (its own appended after).
  for (const char* offset : {"0", "1"}) {
    f.ok({"produce", "src.dlq", "-H", "factory.stage=ingest", "-H", "factory.source.event_id=e1",
          "-H", "factory.dlq.reason=boom", "-H", "factory.source.topic=src", "-H",
          "factory.source.partition=0", "-H", std::string("factory.source.offset=") + offset, "-H",
          "factory.stage=codegen", "-H", "factory.attempts=3"},
         std::string("v") + offset + "\n");
  }
  json::value listed = f.ok_json({"dlq", "list"});
  REQUIRE(listed.as_array().size() == 2);
  CHECK(listed.at(0).at("stage").as_string() == "codegen");
  ProcessResult table = f.ok({"dlq", "list", "src.dlq"});
  CHECK(table.out.find("codegen") != std::string::npos);
  CHECK(table.out.find("ingest") == std::string::npos);

  f.ok({"dlq", "replay", "src.dlq", "--offset", "0:0", "--execute"});
  for (std::vector<std::string> args :
       {std::vector<std::string>{"dlq", "replay", "src.dlq", "--all"},
        {"dlq", "replay", "src.dlq", "--all", "--dry-run"}}) {
    ProcessResult dry = f.ok(args);
    auto lines = lines_of(dry.out);
    REQUIRE(lines.size() == 4);  // header, two letters, the dry-run note
    CHECK(lines[1].find("src.dlq/0/0") != std::string::npos);
    CHECK(lines[1].find("already replayed; would skip") != std::string::npos);
    CHECK(lines[2].find("src.dlq/0/1") != std::string::npos);
    CHECK(lines[2].find("would replay") != std::string::npos);
    CHECK(lines[2].find("skip") == std::string::npos);
    CHECK(lines[3] == "Dry run: nothing was replayed; add --execute to replay.");
  }
  // -o json: the API's shape; the note on stderr.
  ProcessResult js = f.ok({"dlq", "replay", "src.dlq", "--all", "-o", "json"});
  json::value plan = json::parse(js.out);
  CHECK(plan.at("executed") == false);
  REQUIRE(plan.at("results").as_array().size() == 2);
  CHECK(plan.at("results").at(0).at("result") == "already_replayed");
  CHECK(plan.at("results").at(1).at("result") == "would_replay");
  CHECK(js.err.find("Dry run") != std::string::npos);
  // Nothing was appended by the dry runs: src holds the one replayed record.
  CHECK(f.ok_json({"topics", "describe", "src"}).at("partitions").at(0).at("log_end") == 1);
  json::value done = f.ok_json({"dlq", "replay", "src.dlq", "--all", "--execute"});
  CHECK(done.at("executed") == true);
  CHECK(done.at("results").at(0).at("result") == "already_replayed");
  CHECK(done.at("results").at(1).at("result") == "replayed");
  require_usage_error(f.run({"dlq", "replay", "src.dlq", "--all", "--dry-run", "--execute"}));
}

TEST_CASE("topics create then describe then delete", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "events", "--partitions", "3", "--topic-config", "retention.ms=1000",
        "--topic-config", "max.message.bytes=2048"});
  json::value d = f.ok_json({"topics", "describe", "events"});
  CHECK(d.at("topic").as_string() == "events");
  CHECK(d.at("partition_count").as_int64() == 3);
  CHECK(d.at("config").at("retention.ms").as_int64() == 1000);
  CHECK(d.at("config").at("max.message.bytes").as_int64() == 2048);

  f.ok({"produce", "events", "-p", "1"}, "a\nb\n");
  d = f.ok_json({"topics", "describe", "events"});
  const auto& p1 = d.at("partitions").at(1);
  CHECK(p1.at("log_start").as_int64() == 0);
  CHECK(p1.at("log_end").as_int64() == 2);
  CHECK(p1.at("size_bytes").as_int64() > 0);

  ProcessResult table = f.ok({"topics", "describe", "events"});
  CHECK(table.out.find("retention.ms=1000") != std::string::npos);
  CHECK(table.out.find("PARTITION") != std::string::npos);

  ProcessResult dup = f.run({"topics", "create", "events", "--partitions", "3"});
  CHECK(dup.exit_code == 1);
  CHECK(dup.err.find("'events' already exists") != std::string::npos);

  f.ok({"topics", "delete", "events"});
  CHECK(f.ok({"topics", "list"}).out.empty());
}

TEST_CASE("produce --acks prints one line per record in input order", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "1"});
  ProcessResult r = f.ok({"produce", "t", "--acks"}, "a\nb\n\nlast without newline");
  CHECK(r.out == "0 0\n0 1\n0 2\n0 3\n");
  // The empty line is an empty value, and order is kept.
  CHECK(f.ok({"consume", "t", "-e"}).out == "a\nb\n\nlast without newline\n");

  SECTION("more lines than one batch") {
    std::string input;
    for (int i = 0; i < 2500; ++i) input += "v" + std::to_string(i) + "\n";
    ProcessResult big = f.ok({"produce", "t", "--acks"}, input);
    auto acks = lines_of(big.out);
    REQUIRE(acks.size() == 2500);
    for (int i = 0; i < 2500; ++i) REQUIRE(acks[i] == "0 " + std::to_string(4 + i));
  }
  SECTION("acks as JSON") {
    ProcessResult j = f.ok({"produce", "t", "--acks", "-o", "json"}, "x\n");
    CHECK(j.out == "{\"partition\":0,\"offset\":4}\n");
  }
  SECTION("without --acks nothing is printed") {
    CHECK(f.ok({"produce", "t"}, "x\ny\n").out.empty());
  }
}

TEST_CASE("produce acks each line of a slow writer without waiting for EOF", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "2"});
  ChildProcess p = f.spawn({"produce", "t", "--acks", "-p", "1"});
  for (int i = 0; i < 3; ++i) {
    REQUIRE(p.write_stdin("line" + std::to_string(i) + "\n"));
    auto ack = p.read_stdout_line(30000);
    REQUIRE(ack.has_value());
    CHECK(*ack == "1 " + std::to_string(i));
  }
  ProcessResult r = p.wait();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
}

TEST_CASE("produce -k and -K keys land on Kafka's murmur2 partition", "[cli]") {
  Factoryd f;
  constexpr int32_t kPartitions = 8;
  f.ok({"topics", "create", "t", "--partitions", std::to_string(kPartitions)});

  SECTION("-k: one key for every line") {
    ProcessResult r = f.ok({"produce", "t", "-k", "PROJ-1", "--acks"}, "a\nb\nc\n");
    int32_t want = partition_for_key("PROJ-1", kPartitions);
    auto acks = lines_of(r.out);
    REQUIRE(acks.size() == 3);
    for (int i = 0; i < 3; ++i) CHECK(acks[i] == std::to_string(want) + " " + std::to_string(i));
    CHECK(f.ok({"consume", "t", "-e", "-f", "%k:%s\\n"}).out == "PROJ-1:a\nPROJ-1:b\nPROJ-1:c\n");
  }
  SECTION("-K: key and value split per line at the first separator") {
    std::vector<std::string> keys;
    std::string input;
    for (int i = 0; i < 20; ++i) {
      keys.push_back("key-" + std::to_string(i));
      input += keys.back() + "::value:" + std::to_string(i) + "\n";
    }
    ProcessResult r = f.ok({"produce", "t", "-K", "::", "--acks"}, input);
    auto acks = lines_of(r.out);
    REQUIRE(acks.size() == keys.size());
    std::set<int32_t> used;
    for (size_t i = 0; i < keys.size(); ++i) {
      int32_t want = partition_for_key(keys[i], kPartitions);
      used.insert(want);
      CHECK(acks[i].rfind(std::to_string(want) + " ", 0) == 0);
    }
    CHECK(used.size() > 1);  // the keys do spread
    // Each record's key and value round-trip.
    auto out = lines_of(f.ok({"consume", "t", "-e", "-f", "%k|%s\\n"}).out);
    std::set<std::string> got(out.begin(), out.end());
    for (int i = 0; i < 20; ++i) {
      CHECK(got.count("key-" + std::to_string(i) + "|value:" + std::to_string(i)) == 1);
    }
  }
  SECTION("-K: a line without the separator has no key") {
    f.ok({"produce", "t", "-K", ":", "-p", "0"}, "no-separator\n");
    CHECK(f.ok({"consume", "t", "-e", "-f", "[%k][%K][%s]\\n"}).out == "[][-1][no-separator]\n");
  }
  SECTION("-K '\\t' is a tab, as in kcat (a shell passes backslash-t)") {
    f.ok({"produce", "t", "-K", "\\t", "-p", "0"}, "k1\tv\\t1\n");
    CHECK(f.ok({"consume", "t", "-e", "-f", "[%k][%s]\\n"}).out == "[k1][v\\t1]\n");
  }
}

TEST_CASE("consume -e prints kcat formats and JSON", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "2"});
  f.ok({"produce", "t", "-p", "1", "-k", "K1", "-H", "trace=abc", "-H", "type=spec"}, "v0\nv1\n");

  ProcessResult r = f.ok({"consume", "t", "-e", "-f", "%t|%p|%o|%k|%s|%h\\t%%\\n"});
  CHECK(r.out ==
        "t|1|0|K1|v0|trace=abc,type=spec\t%\nt|1|1|K1|v1|trace=abc,type=spec\t%"
        "\n");

  ProcessResult ts = f.ok({"consume", "t", "-e", "-p", "1", "-n", "1", "-f", "%T"});
  CHECK(std::stoll(ts.out) > 1'600'000'000'000LL);

  ProcessResult j = f.ok({"consume", "t", "-e", "--output", "json"});
  auto lines = lines_of(j.out);
  REQUIRE(lines.size() == 2);
  json::value rec = json::parse(lines[1]);
  CHECK(rec.at("topic").as_string() == "t");
  CHECK(rec.at("partition").as_int64() == 1);
  CHECK(rec.at("offset").as_int64() == 1);
  CHECK(rec.at("key").as_string() == "K1");
  CHECK(rec.at("value").as_string() == "v1");
  CHECK(rec.at("timestamp").as_int64() > 0);
  CHECK(rec.at("headers").at(1).at("name").as_string() == "type");
  CHECK(rec.at("headers").at(1).at("value").as_string() == "spec");
}

TEST_CASE("consume -o picks where to start and -n how many", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "1"});
  f.ok({"produce", "t"}, "a\nb\nc\nd\ne\n");
  CHECK(f.ok({"consume", "t", "-e", "-o", "beginning"}).out == "a\nb\nc\nd\ne\n");
  CHECK(f.ok({"consume", "t", "-e", "-o", "end"}).out.empty());
  CHECK(f.ok({"consume", "t", "-e", "-o", "3"}).out == "d\ne\n");
  CHECK(f.ok({"consume", "t", "-e", "-o", "-2"}).out == "d\ne\n");
  CHECK(f.ok({"consume", "t", "-e", "-o", "-100"}).out == "a\nb\nc\nd\ne\n");
  CHECK(f.ok({"consume", "t", "-e", "-n", "2"}).out == "a\nb\n");
  CHECK(f.ok({"consume", "t", "-o", "1", "-n", "2"}).out == "b\nc\n");  // -n ends a follow
  CHECK(f.ok({"consume", "t", "-e", "-o", "@0"}).out == "a\nb\nc\nd\ne\n");
  CHECK(f.ok({"consume", "t", "-e", "-o", "@99999999999999"}).out.empty());

  ProcessResult beyond = f.run({"consume", "t", "-e", "-o", "6"});
  CHECK(beyond.exit_code == 1);
  CHECK(beyond.err.find("offset 6") != std::string::npos);
}

TEST_CASE("consume -g commits, groups describe shows the lag", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "2"});
  std::string input;
  for (int i = 0; i < 10; ++i) input += "k" + std::to_string(i) + ":v" + std::to_string(i) + "\n";
  f.ok({"produce", "t", "-K", ":"}, input);

  ProcessResult first = f.ok({"consume", "t", "-g", "g1", "-e"});
  CHECK(lines_of(first.out).size() == 10);

  json::value g = f.ok_json({"groups", "describe", "g1"});
  CHECK(g.at("group").as_string() == "g1");
  REQUIRE(g.at("partitions").as_array().size() == 2);
  CHECK(total_lag(g) == 0);
  for (const auto& p : g.at("partitions").as_array()) {
    CHECK(p.at("current_offset").as_int64() == p.at("log_end_offset").as_int64());
  }
  CHECK(f.ok({"groups", "list"}).out == "g1\n");

  f.ok({"produce", "t"}, "n1\nn2\nn3\n");
  CHECK(total_lag(f.ok_json({"groups", "describe", "g1"})) == 3);

  ProcessResult table = f.ok({"groups", "describe", "g1"});
  auto rows = lines_of(table.out);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].rfind("GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET "
                      " LAG  CONSUMER-ID",
                      0) == 0);
  CHECK(rows[1].rfind("g1     t      0  ", 0) == 0);

  // The group resumes where it committed: only the new records.
  ProcessResult second = f.ok({"consume", "t", "-g", "g1", "-e"});
  auto got = lines_of(second.out);
  std::multiset<std::string> values(got.begin(), got.end());
  CHECK(values == std::multiset<std::string>{"n1", "n2", "n3"});
  CHECK(total_lag(f.ok_json({"groups", "describe", "g1"})) == 0);

  SECTION("-n commits only what it printed") {
    f.ok({"produce", "t", "-p", "0"}, "x\ny\nz\n");
    CHECK(f.ok({"consume", "t", "-g", "g1", "-n", "1"}).out == "x\n");
    CHECK(total_lag(f.ok_json({"groups", "describe", "g1"})) == 2);
  }
  SECTION("-o with -g seeks the assigned partitions") {
    ProcessResult again = f.ok({"consume", "t", "-g", "g1", "-e", "-o", "beginning"});
    CHECK(lines_of(again.out).size() == 13);
  }
}

TEST_CASE("consume following the log stops cleanly on SIGTERM and commits", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "1"});
  f.ok({"produce", "t"}, "a\nb\n");
  ChildProcess p = f.spawn({"consume", "t", "-g", "follower"});
  REQUIRE(p.read_stdout_line(30000) == std::optional<std::string>("a"));
  REQUIRE(p.read_stdout_line(30000) == std::optional<std::string>("b"));
  p.kill(SIGTERM);
  ProcessResult r = p.wait();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(total_lag(f.ok_json({"groups", "describe", "follower"})) == 0);
}

TEST_CASE("groups reset-offsets is a dry run unless --execute", "[cli]") {
  Factoryd f;
  f.ok({"topics", "create", "t", "--partitions", "2"});
  f.ok({"produce", "t", "-p", "0"}, "a\nb\nc\n");
  f.ok({"produce", "t", "-p", "1"}, "d\ne\n");
  f.ok({"consume", "t", "-g", "g", "-e"});
  REQUIRE(total_lag(f.ok_json({"groups", "describe", "g"})) == 0);

  ProcessResult dry = f.ok({"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest"});
  auto lines = lines_of(dry.out);
  REQUIRE(lines.size() >= 3);
  CHECK(lines[0].rfind("GROUP  TOPIC  PARTITION  NEW-OFFSET", 0) == 0);
  CHECK(lines[1] == "g      t      0          0");
  CHECK(dry.out.find("nothing was changed") != std::string::npos);
  CHECK(total_lag(f.ok_json({"groups", "describe", "g"})) == 0);

  f.ok({"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--execute"});
  CHECK(total_lag(f.ok_json({"groups", "describe", "g"})) == 5);

  json::value plan =
      f.ok_json({"groups", "reset-offsets", "g", "--topic", "t", "--to-offset", "1", "--execute"});
  CHECK(plan.at("executed").as_bool());
  CHECK(plan.at("offsets").at(0).at("new_offset").as_int64() == 1);
  CHECK(total_lag(f.ok_json({"groups", "describe", "g"})) == 3);

  f.ok({"groups", "reset-offsets", "g", "--topic", "t", "--to-latest", "--execute"});
  CHECK(total_lag(f.ok_json({"groups", "describe", "g"})) == 0);

  // Every record was appended before 2100, after 2000.
  f.ok({"groups", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2000-01-01T00:00:00.000",
        "--execute"});
  CHECK(total_lag(f.ok_json({"groups", "describe", "g"})) == 5);
  f.ok({"groups", "reset-offsets", "g", "--topic", "t", "--to-datetime",
        "2100-01-01T00:00:00+01:00", "--execute"});
  CHECK(total_lag(f.ok_json({"groups", "describe", "g"})) == 0);
}

TEST_CASE("usage errors exit 2", "[cli]") {
  Factoryd f;
  // (A bare `factoryd` is `factoryd serve`: tests/http/daemon_test.cpp.)
  require_usage_error(f.run({"frobnicate"}));
  require_usage_error(f.run({"topics"}));
  require_usage_error(f.run({"topics", "create"}));
  require_usage_error(f.run({"topics", "create", "t", "--partitions", "0"}));
  require_usage_error(f.run({"topics", "create", "t", "--topic-config", "retention.ms"}));
  require_usage_error(f.run({"topics", "create", "t", "--topic-config", "no.such.key=1"}));
  require_usage_error(f.run({"topics", "create", "bad/name"}));
  require_usage_error(f.run({"topics", "list", "-o", "xml"}));
  require_usage_error(f.run({"topics", "apply"}));
  require_usage_error(f.run({"produce", "t", "-H", "no-equals"}));
  require_usage_error(f.run({"produce", "t", "-k", "a", "-K", ":"}));
  require_usage_error(f.run({"consume", "t", "-o", "yesterday"}));
  require_usage_error(f.run({"consume", "t", "-f", "%x"}));
  require_usage_error(f.run({"consume", "t", "-n", "-1"}));
  require_usage_error(f.run({"consume", "t", "-g", "g", "-p", "0"}));
  require_usage_error(f.run({"groups", "reset-offsets", "g", "--topic", "t"}));
  require_usage_error(
      f.run({"groups", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"}));
  ProcessResult date =
      f.run({"groups", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"});
  require_usage_error(date);
  CHECK(date.err.find("2026-11-28T09:00:00.000") != std::string::npos);

  ProcessResult help = f.run({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("topics") != std::string::npos);
  CHECK(f.run({"consume", "--help"}).out.find("--output") != std::string::npos);
}

TEST_CASE("a bad topics file exits 1 naming file:line", "[cli]") {
  Factoryd f;
  std::string file = f.path("bad.yaml");
  write_file(file,
             "topics:\n"
             "  - name: fine\n"
             "    partitions: 3\n"
             "  - name: broken\n"
             "    partitions: many\n");
  ProcessResult r = f.run({"topics", "apply", "-f", file});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.rfind("factoryd: error: ", 0) == 0);
  CHECK(r.err.find(file + ":5") != std::string::npos);
  CHECK(f.ok({"topics", "list"}).out.empty());  // nothing applied from a bad file

  ProcessResult missing = f.run({"topics", "apply", "-f", f.path("nope.yaml")});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("nope.yaml") != std::string::npos);
}

TEST_CASE("a missing topic or group exits 1 naming it", "[cli]") {
  Factoryd f;
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"topics", "describe", "ghost-topic"},
           {"topics", "delete", "ghost-topic"},
           {"produce", "ghost-topic"},
           {"consume", "ghost-topic", "-e"},
           {"consume", "ghost-topic", "-g", "g", "-e"},
       }) {
    ProcessResult r = f.run(args, "x\n");
    INFO(args[0] << " " << args[1] << ": " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.rfind("factoryd: error: ", 0) == 0);
    CHECK(r.err.find("'ghost-topic'") != std::string::npos);
  }
  ProcessResult g = f.run({"groups", "describe", "ghost-group"});
  CHECK(g.exit_code == 1);
  CHECK(g.err.find("'ghost-group'") != std::string::npos);

  f.ok({"topics", "create", "t", "--partitions", "2"});
  ProcessResult p = f.run({"produce", "t", "-p", "2"}, "x\n");
  CHECK(p.exit_code == 1);
  CHECK(p.err.find("partition 2") != std::string::npos);
}

TEST_CASE("the data dir defaults to $FACTORY_DATA_DIR", "[cli]") {
  TempDir dir;
  ChildProcess p =
      spawn_process({FACTORYD_BIN, "topics", "create", "t"}, {"FACTORY_DATA_DIR=" + dir.str()});
  ProcessResult r = p.wait();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(std::filesystem::exists(dir.path() / "log"));
  ProcessResult list = run_factoryd({"--data-dir", dir.str(), "topics", "list"});
  CHECK(list.out == "t\n");
}

}  // namespace
}  // namespace factory::test
