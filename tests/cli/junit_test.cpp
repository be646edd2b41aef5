// The JUnit writer of `dags test --junit` (src/cli/junit.h) and the --fail-on checks of `run`
// (src/cli/run_checks.h), as pure functions. The real binaries are exercised by
// run_fail_on_test.cpp and tests/docs/run_ci_script.sh.
#include "cli/junit.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "base/coding.h"
#include "cli/run_checks.h"
#include "test_util.h"

namespace factory::cli {
namespace {

// A strict little reader for the XML junit_report writes: elements balance, attribute values
// are quoted, '&' starts one of the five entities or a numeric reference, no character XML 1.0
// forbids appears, and the text is valid UTF-8. Returns "" when well-formed, else what is wrong.
// Also collects each element's name and attributes, in document order.
struct Element {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attrs;  // values with entities decoded
  std::string text;                                        // decoded character data
  std::string attr(std::string_view key) const {
    for (const auto& [k, v] : attrs) {
      if (k == key) return v;
    }
    return "<missing>";
  }
};

std::string decode(std::string_view s, std::string* error) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') *error = "raw '<' in text";
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      *error = "'&' without ';'";
      return out;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (ent.size() > 1 && ent[0] == '#')
      out += static_cast<char>(std::stoi(std::string(ent.substr(1))));
    else
      *error = "unknown entity &" + std::string(ent) + ";";
    i = semi;
  }
  return out;
}

std::string check_xml(const std::string& doc, std::vector<Element>* elements) {
  std::string error;
  for (size_t i = 0; i < doc.size();) {
    size_t n = base::utf8_sequence_length(doc, i);
    if (n == 0) return "invalid UTF-8 at byte " + std::to_string(i);
    auto c = static_cast<unsigned char>(doc[i]);
    if (n == 1 && c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
      return "forbidden character " + std::to_string(c) + " at byte " + std::to_string(i);
    }
    i += n;
  }
  if (doc.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 0) != 0)
    return "no XML declaration";
  std::vector<size_t> open;  // indexes into *elements
  size_t i = doc.find('\n') + 1;
  while (i < doc.size()) {
    size_t lt = doc.find('<', i);
    if (lt == std::string::npos) break;
    std::string text = decode(std::string_view(doc).substr(i, lt - i), &error);
    if (!error.empty()) return error;
    if (!open.empty()) (*elements)[open.back()].text += text;
    size_t gt = lt + 1;
    char quote = 0;
    for (; gt < doc.size(); ++gt) {
      if (quote) {
        if (doc[gt] == quote) quote = 0;
        if (doc[gt] == '<') return "raw '<' in an attribute value";
      } else if (doc[gt] == '"' || doc[gt] == '\'') {
        quote = doc[gt];
      } else if (doc[gt] == '>') {
        break;
      }
    }
    if (gt >= doc.size()) return "unterminated tag";
    std::string tag = doc.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag[0] == '/') {
      if (open.empty() || (*elements)[open.back()].name != tag.substr(1)) {
        return "mismatched </" + tag.substr(1) + ">";
      }
      open.pop_back();
      continue;
    }
    bool empty = tag.back() == '/';
    if (empty) tag.pop_back();
    Element e;
    size_t p = tag.find_first_of(" \n");
    e.name = tag.substr(0, p);
    while (p != std::string::npos && p < tag.size()) {
      size_t eq = tag.find('=', p);
      if (eq == std::string::npos) break;
      std::string key = tag.substr(p + 1, eq - p - 1);
      if (tag[eq + 1] != '"') return "unquoted attribute " + key;
      size_t end = tag.find('"', eq + 2);
      e.attrs.emplace_back(key, decode(std::string_view(tag).substr(eq + 2, end - eq - 2), &error));
      if (!error.empty()) return error;
      p = end + 1;
    }
    elements->push_back(std::move(e));
    if (!empty) open.push_back(elements->size() - 1);
  }
  if (!open.empty()) return "unclosed <" + (*elements)[open.back()].name + ">";
  return "";
}

scheduler::TaskView task(std::string id, std::string state, std::string error = "") {
  scheduler::TaskView t;
  t.row.task_id = std::move(id);
  t.row.state = std::move(state);
  t.row.error = std::move(error);
  t.row.try_number = 1;
  t.row.started_ms = 1'000;
  t.row.ended_ms = 1'250;
  t.stage = "noop";
  return t;
}

TEST_CASE("xml_escape: markup as entities, forbidden characters dropped, bad UTF-8 replaced",
          "[cli][junit]") {
  CHECK(xml_escape("a & b < c > d \" e ' f") == "a &amp; b &lt; c &gt; d &quot; e &apos; f");
  CHECK(xml_escape("tab\tnl\ncr\r") == "tab&#9;nl&#10;cr&#13;");
  CHECK(xml_escape(std::string("nul\0bel\x07"
                               "esc\x1b"
                               "end",
                               15)) == "nulbelescend");
  CHECK(xml_escape("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");  // UTF-8 kept
  CHECK(xml_escape("bad \xff\xfe byte") == "bad \xEF\xBF\xBD\xEF\xBF\xBD byte");
  CHECK(xml_escape("trunc \xe2\x82") == "trunc \xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(xml_escape("nonchar \xef\xbf\xbe\xef\xbf\xbf.") == "nonchar .");  // U+FFFE, U+FFFF
  CHECK(xml_escape("]]> <!-- -->") == "]]&gt; &lt;!-- --&gt;");
}

TEST_CASE("junit_report: a test case per task with failures, skips and errors counted",
          "[cli][junit]") {
  scheduler::RunView v;
  v.run.run_id = "test__1";
  v.run.state = "failed";
  v.run.started_ms = 1'000;
  v.run.ended_ms = 3'500;
  const std::string hostile =
      std::string("boom </failure><injected a=\"1\"/> & ' \x01\x02 \xff ]]> \n line 2");
  v.tasks = {task("ok", "success"), task("boom", "failed", hostile),
             task("after", "upstream_failed"), task("skip", "skipped"),
             task("wait", "awaiting_approval")};
  v.tasks[0].row.output_json = "{\"x\":\"<y>\"}";
  v.tasks[4].row.ended_ms = 0;  // still waiting: its time runs to now
  std::string xml = junit_report(v, "my<dag>", "{\"evil\":\"\\\"/><x>&\"}", "host", 9'000);

  std::vector<Element> els;
  INFO(xml);
  REQUIRE(check_xml(xml, &els) == "");
  REQUIRE(els.size() >= 2);
  CHECK(els[0].name == "testsuites");
  CHECK(els[0].attr("tests") == "5");
  CHECK(els[0].attr("failures") == "1");
  CHECK(els[0].attr("skipped") == "2");
  CHECK(els[0].attr("errors") == "1");
  CHECK(els[0].attr("time") == "2.500");
  CHECK(els[1].name == "testsuite");
  CHECK(els[1].attr("name") == "my<dag>");
  CHECK(els[1].attr("tests") == "5");
  CHECK(els[1].attr("timestamp") == "1970-01-01T00:00:01");
  CHECK(els[1].attr("hostname") == "host");

  std::vector<const Element*> cases;
  const Element* failure = nullptr;
  int skipped = 0, errors = 0;
  std::string conf;
  for (const Element& e : els) {
    if (e.name == "testcase") cases.push_back(&e);
    if (e.name == "failure") failure = &e;
    if (e.name == "skipped") ++skipped;
    if (e.name == "error") ++errors;
    if (e.name == "property" && e.attr("name") == "conf") conf = e.attr("value");
    CHECK(e.name != "injected");
    CHECK(e.name != "x");
  }
  REQUIRE(cases.size() == 5);
  CHECK(cases[0]->attr("classname") == "my<dag>");
  CHECK(cases[0]->attr("name") == "ok");
  CHECK(cases[0]->attr("time") == "0.250");
  CHECK(cases[1]->attr("name") == "boom");
  CHECK(cases[4]->attr("time") == "8.000");
  REQUIRE(failure != nullptr);
  // Forbidden characters are gone, the invalid byte is U+FFFD, the rest is exactly the error.
  const std::string cleaned = "boom </failure><injected a=\"1\"/> & '  \xEF\xBF\xBD ]]> \n line 2";
  CHECK(failure->attr("message") == cleaned);
  CHECK(failure->text == cleaned + "\nstage noop, try 1");
  CHECK(skipped == 2);
  CHECK(errors == 1);
  CHECK(conf == "{\"evil\":\"\\\"/><x>&\"}");

  // A timed-out run has no end: its time runs to now too.
  v.run.ended_ms = 0;
  els.clear();
  REQUIRE(check_xml(junit_report(v, "d", "", "", 9'000), &els) == "");
  CHECK(els[0].attr("time") == "8.000");
  CHECK(els[1].attr("hostname") == "<missing>");
}

TEST_CASE("write_file_atomically replaces the file whole, or reports the path", "[cli][junit]") {
  test::TempDir dir;
  std::string path = (dir.path() / "report.xml").string();
  std::ofstream(path) << "old";
  REQUIRE_OK(write_file_atomically(path, "new content"));
  std::stringstream got;
  got << std::ifstream(path).rdbuf();
  CHECK(got.str() == "new content");
  // Nothing else is left in the directory (the temporary file was renamed).
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  CHECK(files == 1);

  Status s = write_file_atomically((dir.path() / "missing" / "r.xml").string(), "x");
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(s.message().find("missing/r.xml") != std::string::npos);
}

TEST_CASE("parse_fail_on takes dlq and failed-run, comma-separated or repeated", "[cli][run]") {
  auto both = parse_fail_on({"dlq,failed-run"});
  REQUIRE_OK(both.status());
  CHECK(both->dlq);
  CHECK(both->failed_run);
  auto one = parse_fail_on({"failed-run"});
  REQUIRE_OK(one.status());
  CHECK_FALSE(one->dlq);
  CHECK(one->failed_run);
  auto none = parse_fail_on({});
  REQUIRE_OK(none.status());
  CHECK_FALSE(none->any());
  auto bad = parse_fail_on({"dlq,failed-runs"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "--fail-on: unknown check 'failed-runs'; did you mean 'failed-run'? (checks: dlq, "
        "failed-run)");
}

TEST_CASE("fail_on_errors names each dead-letter topic and failed run it checks", "[cli][run]") {
  std::vector<DeadLetters> letters = {{.topic = "tickets.dlq", .count = 2, .bindings = {"a", "b"}},
                                      {.topic = "x.dlq", .count = 1, .bindings = {"c"}}};
  std::vector<FailedRun> runs = {
      {.dag_id = "d", .run_id = "r1", .task_id = "t", .error = "went\nwrong"},
      {.dag_id = "d", .run_id = "r2"}};
  CHECK(fail_on_errors({}, letters, runs).empty());
  CHECK(fail_on_errors({.dlq = true, .failed_run = true}, {}, {}).empty());
  auto dlq = fail_on_errors({.dlq = true}, letters, runs);
  REQUIRE(dlq.size() == 2);
  CHECK(dlq[0] ==
        "--fail-on dlq: 2 dead letters on 'tickets.dlq' (binding 'a', 'b'); see them with "
        "'factoryd dlq list tickets.dlq'");
  CHECK(dlq[1].find("1 dead letter on 'x.dlq'") != std::string::npos);
  auto failed = fail_on_errors({.failed_run = true}, letters, runs);
  REQUIRE(failed.size() == 2);
  CHECK(failed[0] ==
        "--fail-on failed-run: run 'r1' of DAG 'd' failed (task 't': went wrong); see it with "
        "'factoryd runs show r1'");
  CHECK(failed[1] ==
        "--fail-on failed-run: run 'r2' of DAG 'd' failed; see it with "
        "'factoryd runs show r2'");
}

}  // namespace
}  // namespace factory::cli
