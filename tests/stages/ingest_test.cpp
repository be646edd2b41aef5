// The ingest stage (stages/ingest/): the bundled sample tickets, the three markup parsers, the
// acceptance-criteria rules, routing, failures, and the feature_spec contract.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "common/schemas.h"
#include "config/contract.h"
#include "ingest/adf.h"
#include "ingest/criteria.h"
#include "ingest/document.h"
#include "ingest/jira_wiki.h"
#include "ingest/markdown.h"
#include "ingest/ticket.h"
#include "runtime/fake_stage_context.h"
#include "runtime/stage_registry.h"
#include "scheduler/task_stage.h"
#include "test_util.h"

using namespace factory;
using namespace factory::stages::ingest;
namespace json = boost::json;
using Kind = StageResult::Kind;
using Strings = std::vector<std::string>;

namespace {

const std::filesystem::path kSamples =
    std::filesystem::path(FACTORY_SOURCE_DIR) / "config" / "samples" / "tickets";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  INFO(path.string());
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const config::Contract& feature_spec_contract() {
  static const std::unique_ptr<config::Contract> contract = [] {
    auto c = config::Contract::compile(stages::schema("feature_spec"), "feature_spec.json");
    REQUIRE_OK(c);
    return std::move(*c);
  }();
  return *contract;
}

const config::Contract& input_contract() {
  static const std::unique_ptr<config::Contract> contract = [] {
    auto c = config::Contract::compile(stages::schema("ingest_input"), "ingest_input.json");
    REQUIRE_OK(c);
    return std::move(*c);
  }();
  return *contract;
}

// The params of an ingest task for `ticket` with the bundled project mapping.
std::string params_for(const json::value& ticket, json::object extra = {}) {
  json::object p{{"ticket", ticket},
                 {"projects", json::object{{"INV", "invoices"}, {"acme/invoices", "invoices"}}}};
  for (auto& [k, v] : extra) p[k] = v;
  return json::serialize(p);
}

struct Outcome {
  Kind kind = Kind::kSuccess;
  std::string reason;
  std::string route_topic;
  json::object spec;  // the emitted feature_spec, when kind == kSuccess
};

// Runs the registered "ingest" stage on `params` (JSON text). Checks what must hold for every
// input: valid params pass the input schema, a success emits exactly one output that
// validates against feature_spec.json, anything else emits nothing.
Outcome ingest(const std::string& params) {
  auto stage = runtime::create_stage("ingest");
  REQUIRE_OK(stage);
  test::FakeStageContext ctx;
  StageResult r = (*stage)->process(test::make_event(params), ctx);
  Outcome o{r.kind(), r.reason(), r.route_topic(), {}};
  if (r.kind() != Kind::kSuccess) {
    REQUIRE(ctx.outputs().empty());
    return o;
  }
  REQUIRE(ctx.outputs().size() == 1);
  const std::string payload = ctx.outputs()[0].payload;
  INFO(payload);
  REQUIRE_OK(feature_spec_contract().validate(payload));
  o.spec = json::parse(payload).as_object();
  return o;
}

Outcome ingest_ticket(const std::string& ticket_json, json::object extra = {}) {
  return ingest(params_for(json::parse(ticket_json), std::move(extra)));
}

Strings strings(const json::value& v) {
  Strings out;
  for (const json::value& s : v.as_array()) out.emplace_back(s.as_string());
  return out;
}

std::string str(const json::object& o, const char* key) {
  return std::string(o.at(key).as_string());
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Strings criteria_of_wiki(std::string_view wiki) { return extract_criteria(parse_jira_wiki(wiki)); }
Strings criteria_of_markdown(std::string_view md) { return extract_criteria(parse_markdown(md)); }

struct Expected {
  std::string file;
  std::string id, source, link, title;
  Strings criteria;
  Strings labels;
  std::string priority, component;
};

const std::vector<Expected>& expected_samples() {
  static const std::vector<Expected> samples = {
      {"01-inv-101-jira-wiki.json",
       "INV-101",
       "jira",
       "https://acme.atlassian.net/browse/INV-101",
       "Export invoices as CSV",
       {"export_csv(invoices) returns a string: the header line "
        "number,customer,issued,due,total_cents, then one line per invoice in the given order",
        "total_cents is the invoice's subtotal in cents (subtotal_cents(invoice))",
        "A value containing a comma, a double quote or a line break is quoted as in RFC 4180",
        "An empty list gives just the header line", "Every line ends with a newline"},
       {"export", "csv"},
       "High",
       "reporting"},
      {"02-inv-102-jira-adf.json",
       "INV-102",
       "jira",
       "https://acme.atlassian.net/browse/INV-102",
       "Compute the invoice total with tax",
       {"Given an invoice with two lines of 5000 cents When total_with_tax(invoice, 0.2) is called "
        "Then it returns 12000",
        "Given an invoice with no lines When total_with_tax(invoice, 0.2) is called Then it "
        "returns 0",
        "Given an invoice with a subtotal of 999 cents When total_with_tax(invoice, 0.075) is "
        "called Then it returns 1074 And half a cent is rounded up",
        "Given any invoice When total_with_tax is called with a negative rate Then it raises "
        "ValueError"},
       {"billing", "tax"},
       "Medium",
       "billing"},
      {"03-acme-invoices-103-github.json",
       "acme/invoices#103",
       "github",
       "https://github.com/acme/invoices/issues/103",
       "Validate customer email addresses",
       {"is_valid_email(\"ada@example.com\") returns True",
        "an address without @, or without a dot in the domain, returns False",
        "an address with a space anywhere (leading and trailing ones too) returns False",
        "a value that is not a string (e.g. None) returns False instead of raising"},
       {"enhancement", "priority: medium", "component: validation"},
       "medium",
       "validation"},
      {"04-inv-104-ticket.json",
       "INV-104",
       "ticket",
       "",
       "Format amounts as currency",
       {"format_amount(123456, \"EUR\") returns \"1,234.56 EUR\"",
        "format_amount(5, \"USD\") returns \"0.05 USD\"",
        "a negative amount keeps its sign: format_amount(-250, \"EUR\") returns \"-2.50 EUR\"",
        "a currency that is not three capital letters raises ValueError"},
       {"formatting"},
       "Low",
       "presentation"},
      {"05-inv-105-jira-wiki-updated.json",
       "INV-105",
       "jira",
       "https://acme.atlassian.net/browse/INV-105",
       "Apply discount codes",
       {"apply_discount(total_cents, code) returns the total after the discount, in cents",
        "Code WELCOME10 takes 10% off, rounded down to whole cents",
        "Code FLAT500 takes 500 cents off, never going below 0",
        "An unknown code raises ValueError naming the code",
        "No credentials in the code: the partner API key is read from the DISCOUNT_API_KEY "
        "environment variable"},
       {"pricing"},
       "High",
       "billing"},
      {"06-acme-invoices-106-github-edited.json",
       "acme/invoices#106",
       "github",
       "https://github.com/acme/invoices/issues/106",
       "Detect overdue invoices",
       {"Given an unpaid invoice due 2024-03-31 When is_overdue(invoice, \"2024-04-01\") is called "
        "Then it returns True",
        "Given an unpaid invoice due 2024-03-31 When is_overdue(invoice, \"2024-03-31\") is called "
        "Then it returns False (the due date itself is not overdue)",
        "Given a paid invoice due 2024-03-31 When is_overdue(invoice, \"2024-05-01\") is called "
        "Then it returns False"},
       {"enhancement", "priority/high", "area/reminders"},
       "high",
       "reminders"},
      {"07-inv-107-jira-adf-tasklist.json",
       "INV-107",
       "jira",
       "https://acme.atlassian.net/browse/INV-107",
       "Sort invoices by due date",
       {"sort_by_due_date(invoices) returns a new list sorted by due date, earliest first",
        "invoices with the same due date keep their original order (a stable sort)",
        "invoices without a due date come last", "the list passed in is not modified"},
       {"dashboard"},
       "Medium",
       "dashboard"},
      {"09-inv-109-ticket.json",
       "INV-109",
       "ticket",
       "https://tickets.acme.example/INV-109",
       "Generate invoice numbers",
       {"next_invoice_number(\"INV-0041\") returns \"INV-0042\"",
        "next_invoice_number(None) returns \"INV-0001\" (the first invoice)",
        "numbers grow past four digits: next_invoice_number(\"INV-9999\") returns \"INV-10000\"",
        "a malformed number such as \"0042\" raises ValueError"},
       {"numbering"},
       "Medium",
       "billing"},
  };
  return samples;
}

}  // namespace

TEST_CASE("every sample ticket becomes its expected feature_spec", "[ingest]") {
  for (const Expected& e : expected_samples()) {
    INFO(e.file);
    std::string ticket = read_file(kSamples / e.file);
    REQUIRE_OK(input_contract().validate(params_for(json::parse(ticket))));
    Outcome o = ingest_ticket(ticket);
    INFO(o.reason);
    REQUIRE(o.kind == Kind::kSuccess);
    CHECK(str(o.spec, "id") == e.id);
    CHECK(str(o.spec, "source") == e.source);
    CHECK(str(o.spec, "link") == e.link);
    CHECK(str(o.spec, "title") == e.title);
    CHECK(strings(o.spec.at("acceptance_criteria")) == e.criteria);
    CHECK(strings(o.spec.at("labels")) == e.labels);
    CHECK(str(o.spec, "priority") == e.priority);
    CHECK(str(o.spec, "component") == e.component);
    CHECK(str(o.spec, "project") == "invoices");
    CHECK(!str(o.spec, "description").empty());
  }
}

TEST_CASE("the sample without acceptance criteria is routed to human-review", "[ingest]") {
  Outcome o = ingest_ticket(read_file(kSamples / "08-acme-invoices-108-github-no-criteria.json"));
  REQUIRE(o.kind == Kind::kRoute);
  CHECK(o.route_topic == "human-review");
  CHECK(o.reason ==
        "ticket acme/invoices#108 has no acceptance criteria; add an 'Acceptance criteria' "
        "section, AC: lines, Given/When/Then or a checklist");
}

TEST_CASE("the samples README lists every sample ticket", "[ingest]") {
  std::string readme = read_file(kSamples / "README.md");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kSamples)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    INFO(entry.path().filename().string());
    CHECK(has(readme, entry.path().filename().string()));
  }
  CHECK(files == 9);
}

TEST_CASE("a sample's description is flattened to plain text", "[ingest]") {
  Outcome wiki = ingest_ticket(read_file(kSamples / "01-inv-101-jira-wiki.json"));
  REQUIRE(wiki.kind == Kind::kSuccess);
  CHECK(str(wiki.spec, "description") ==
        "As a bookkeeper I want to export invoices as CSV so that I can import them into the "
        "accounting tool.\n"
        "\n"
        "Context\n"
        "The accounting tool reads comma-separated files with a header row. Put the new function "
        "in invoices/export_csv.py.\n"
        "\n"
        "Acceptance criteria\n"
        "- export_csv(invoices) returns a string: the header line "
        "number,customer,issued,due,total_cents, then one line per invoice in the given order\n"
        "- total_cents is the invoice's subtotal in cents (subtotal_cents(invoice))\n"
        "- A value containing a comma, a double quote or a line break is quoted as in RFC 4180\n"
        "- An empty list gives just the header line\n"
        "- Every line ends with a newline\n"
        "\n"
        "Notes\n"
        "See RFC 4180 (https://www.rfc-editor.org/rfc/rfc4180) for the quoting rules; the "
        "standard library's csv module is fine.");

  Outcome adf = ingest_ticket(read_file(kSamples / "07-inv-107-jira-adf-tasklist.json"));
  REQUIRE(adf.kind == Kind::kSuccess);
  std::string d = str(adf.spec, "description");
  CHECK(has(d, "Reported by @Grace Hopper \xF0\x9F\x91\x8D\n"));
  CHECK(has(d, "\n\nDefinition of done\n[ ] sort_by_due_date(invoices) returns a new list"));
  CHECK(has(d, "\n[x] invoices without a due date come last\n"));

  Outcome md = ingest_ticket(read_file(kSamples / "03-acme-invoices-103-github.json"));
  REQUIRE(md.kind == Kind::kSuccess);
  d = str(md.spec, "description");
  CHECK(d.starts_with("Summary\nInvoices are emailed to customers, so invoice[\"email\"] must"));
  CHECK(!has(d, "<!--"));
  CHECK(!has(d, "**"));
  CHECK(has(d,
            "See RFC 5322 (https://www.rfc-editor.org/rfc/rfc5322) for the full grammar (we "
            "do not need all of it)."));
}

TEST_CASE("wiki markup: headings, lists, code, links and emphasis", "[ingest][wiki]") {
  SECTION("headings h1 to h6, any of them opens the criteria section") {
    Document doc = parse_jira_wiki("h1. One\nh2. Two\nh3. Three\nh4. Four\nh5. Five\nh6. Six");
    std::erase_if(doc, [](const Block& b) { return b.kind == Block::Kind::kBreak; });
    REQUIRE(doc.size() == 6);
    for (int i = 0; i < 6; ++i) {
      CHECK(doc[i].kind == Block::Kind::kHeading);
      CHECK(doc[i].level == i + 1);
    }
    CHECK(doc[5].text == "Six");
    CHECK(to_plain_text(parse_jira_wiki("h2. Two\ntext\nh3.Three")) == "Two\ntext\n\nThree");
    for (const char* h : {"h1", "h4", "h6"}) {
      CHECK(criteria_of_wiki(std::string(h) + ". ACCEPTANCE CRITERIA:\n* works") ==
            Strings{"works"});
    }
    CHECK(criteria_of_wiki("h7. Acceptance criteria\n* works").empty());
    CHECK(criteria_of_wiki("h2. Acceptance criteria\nh3. Export\n* a\nh3. Import\n* b\nh2. "
                           "Notes\n* c\nh3. Acceptance criteria\n* d\nh2. Out of scope\n* e") ==
          Strings{"a", "b", "d"});
  }
  SECTION("* and # lists, nested and mixed") {
    Document doc = parse_jira_wiki("* a\n** b\n*# c\n# d\n## e\n- f");
    REQUIRE(doc.size() == 6);
    CHECK(doc[0].level == 1);
    CHECK(doc[1].level == 2);
    CHECK(doc[2].ordered);
    CHECK(doc[2].level == 2);
    CHECK(doc[3].ordered);
    CHECK(doc[4].level == 2);
    CHECK(doc[5].text == "f");
    CHECK(to_plain_text(doc) == "- a\n  - b\n  1. c\n1. d\n  1. e\n- f");
    CHECK(criteria_of_wiki("h3. Acceptance criteria\n* a\n** b\n# c\nh3. Notes\n* not one") ==
          Strings{"a", "b", "c"});
  }
  SECTION("{code} and {noformat} blocks are verbatim and never criteria") {
    Document doc = parse_jira_wiki(
        "h3. Acceptance criteria\n{code:python}\ndef f(*args, **kw):\n    return _x_\n{code}\n"
        "* it *works*\n{noformat}* not an item{noformat}");
    CHECK(to_plain_text(doc) ==
          "Acceptance criteria\ndef f(*args, **kw):\n    return _x_\n\n- it works\n\n* not an "
          "item");
    CHECK(extract_criteria(doc) == Strings{"it works"});
  }
  SECTION("links, mentions, monospace and emphasis") {
    CHECK(jira_wiki_inline("see [the docs|https://x.example/a_b_c] or [https://y.example]") ==
          "see the docs (https://x.example/a_b_c) or https://y.example");
    CHECK(jira_wiki_inline("ask [~jane.doe] or [~accountid:5b10] about [^spec.pdf]") ==
          "ask @jane.doe or @5b10 about spec.pdf");
    CHECK(jira_wiki_inline("*bold* _italic_ -gone- +under+ ^sup^ ~sub~ ??cite??") ==
          "bold italic gone under sup sub cite");
    CHECK(jira_wiki_inline("*_both_* and {{__init__.py}} and {{*kept*}}") ==
          "both and __init__.py and *kept*");
    CHECK(jira_wiki_inline("snake_case_name, e-mail, 2 * 3 * 4, a_b") ==
          "snake_case_name, e-mail, 2 * 3 * 4, a_b");
    CHECK(squash_spaces(jira_wiki_inline("{color:red}red{color} !screen.png|thumbnail! done")) ==
          "red done");
    CHECK(jira_wiki_inline("[not a link] stays, [x] too, [www.x.example] not") ==
          "[not a link] stays, [x] too, www.x.example not");
  }
  SECTION("tables, quotes, rules and line breaks") {
    Document doc = parse_jira_wiki(
        "||Code||Effect||\n|WELCOME10|[10%|https://x.example/p]|\nbq. quoted\n----\none\\\\two");
    CHECK(to_plain_text(doc) ==
          "Code | Effect\nWELCOME10 | 10% (https://x.example/p)\nquoted\n\none\ntwo");
  }
  SECTION("a panel titled Acceptance criteria opens the section") {
    Document doc = parse_jira_wiki(
        "Intro\n{panel:borderStyle=dashed|title=Acceptance Criteria|bgColor=#FFF}\n* a\n* "
        "b\n{panel}\n{expand:Details}more{expand}");
    CHECK(to_plain_text(doc) == "Intro\n\nAcceptance Criteria\n- a\n- b\n\nDetails\nmore");
    CHECK(extract_criteria(doc) == Strings{"a", "b"});
  }
  SECTION("checklists in wiki lists") {
    CHECK(criteria_of_wiki("Todo\n* [ ] first\n* [x] second\n* plain item") ==
          Strings{"first", "second"});
  }
}

TEST_CASE("ADF: nested lists, marks, breaks, mentions, unknown nodes", "[ingest][adf]") {
  json::value doc = json::parse(R"J({"type": "doc", "version": 1, "content": [
    {"type": "heading", "attrs": {"level": 2}, "content": [
      {"type": "text", "text": "Acceptance "}, {"type": "text", "text": "Criteria", "marks": [{"type": "em"}]}]},
    {"type": "bulletList", "content": [
      {"type": "listItem", "content": [
        {"type": "paragraph", "content": [
          {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
          {"type": "text", "text": " and "},
          {"type": "text", "text": "code()", "marks": [{"type": "code"}]}]},
        {"type": "bulletList", "content": [
          {"type": "listItem", "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "nested"}]}]}]}]},
      {"type": "listItem", "content": [
        {"type": "paragraph", "content": [
          {"type": "text", "text": "ask "},
          {"type": "mention", "attrs": {"id": "abc", "text": "@Ada"}},
          {"type": "text", "text": " via "},
          {"type": "text", "text": "chat", "marks": [{"type": "link", "attrs": {"href": "https://chat.example"}}]}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "second paragraph"}]}]}]},
    {"type": "orderedList", "attrs": {"order": 1}, "content": [
      {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "first"}]}]},
      {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "second"}]}]}]},
    {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Notes"}]},
    {"type": "paragraph", "content": [
      {"type": "text", "text": "line one"}, {"type": "hardBreak"}, {"type": "text", "text": "line two"},
      {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
      {"type": "date", "attrs": {"timestamp": "1711843200000"}}]},
    {"type": "futureWidget", "attrs": {"x": 1}, "content": [
      {"type": "paragraph", "content": [{"type": "text", "text": "kept text"}]},
      {"type": "sparkle", "text": "inline-ish"}]},
    {"type": "codeBlock", "attrs": {"language": "python"}, "content": [
      {"type": "text", "text": "x = 1\ny = 2"}]},
    {"type": "table", "content": [
      {"type": "tableRow", "content": [
        {"type": "tableHeader", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]},
        {"type": "tableHeader", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "b"}]}]}]}]},
    {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "m1", "type": "file"}}]}
  ]})J");
  Document d = parse_adf(doc);
  CHECK(to_plain_text(d) ==
        "Acceptance Criteria\n"
        "- bold and code()\n"
        "  - nested\n"
        "- ask @Ada via chat (https://chat.example) second paragraph\n"
        "\n"
        "1. first\n"
        "2. second\n"
        "\n"
        "Notes\n"
        "line one\n"
        "line twoIN PROGRESS2024-03-31\n"
        "\n"
        "kept text\n"
        "\n"
        "inline-ish\n"
        "\n"
        "x = 1\n"
        "y = 2\n"
        "\n"
        "a | b");
  CHECK(extract_criteria(d) == Strings{"bold and code()", "nested",
                                       "ask @Ada via chat (https://chat.example) second paragraph",
                                       "first", "second"});

  SECTION("task lists: checked and unchecked, nested") {
    json::value tasks = json::parse(R"({"type": "doc", "content": [
      {"type": "taskList", "content": [
        {"type": "taskItem", "attrs": {"state": "TODO"}, "content": [{"type": "text", "text": "open"}]},
        {"type": "taskList", "content": [
          {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [{"type": "text", "text": "inner"}]}]},
        {"type": "taskItem", "attrs": {"state": "DONE"}, "content": [{"type": "text", "text": "done"}]}]}]})");
    Document t = parse_adf(tasks);
    CHECK(to_plain_text(t) == "[ ] open\n  [x] inner\n[x] done");
    CHECK(extract_criteria(t) == Strings{"open", "inner", "done"});
  }
  SECTION("an expand titled Acceptance criteria opens the section") {
    json::value expand = json::parse(R"J({"type": "doc", "content": [
      {"type": "expand", "attrs": {"title": "Acceptance criteria"}, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "one"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "two"}]}]},
      {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Notes"}]},
      {"type": "paragraph", "content": [{"type": "text", "text": "three"}]}]})J");
    Document e = parse_adf(expand);
    CHECK(to_plain_text(e) == "Acceptance criteria\none\n\ntwo\n\nNotes\nthree");
    CHECK(extract_criteria(e) == Strings{"one", "two"});
  }
  SECTION("an empty or odd document is no error") {
    CHECK(parse_adf(json::parse(R"({"type": "doc", "version": 1, "content": []})")).empty());
    CHECK(parse_adf(json::parse(R"({"type": "doc"})")).empty());
    CHECK(to_plain_text(parse_adf(json::parse(R"({"type": "doc", "content": [
      {"type": "paragraph"}, {"type": "paragraph", "content": [{"type": "text"}]}, 42, "x"]})")))
              .empty());
  }
}

TEST_CASE("GitHub markdown", "[ingest][markdown]") {
  SECTION("headings, emphasis, code, links, images, comments and html") {
    Document doc = parse_markdown(
        "<!-- template\nhelp -->\n# Title #\nSome **bold**, __also__, *it*, _it_, ~~old~~ and "
        "`a_b*c*`.<br>Next line\n\n![shot](https://img.example/a.png) [docs](https://d.example "
        "\"Docs\") <https://auto.example> \\*not italic\\*\n\nSetext\n======\n\n> quoted "
        "**text**\n\n---\n| a | b |\n|---|:-:|\n| 1 | [x](http://x.example) |");
    CHECK(to_plain_text(doc) ==
          "Title\n"
          "Some bold, also, it, it, old and a_b*c*.\n"
          "Next line\n"
          "\n"
          "shot docs (https://d.example) https://auto.example *not italic*\n"
          "\n"
          "Setext\n"
          "quoted text\n"
          "\n"
          "a | b\n"
          "1 | x (http://x.example)");
  }
  SECTION("nested lists, ordered lists and continuation lines") {
    Document doc = parse_markdown(
        "## Acceptance criteria\n- one\n  - two\n    continued\n1. three\n2) four\n\n   more "
        "four\n* [X] five\n\nAfter the list.");
    CHECK(to_plain_text(doc) ==
          "Acceptance criteria\n- one\n  - two continued\n1. three\n2. four more four\n[x] "
          "five\n\nAfter the list.");
    // "After the list." is prose after the section's list: description, not a criterion.
    CHECK(extract_criteria(doc) ==
          Strings{"one", "two continued", "three", "four more four", "five"});
  }
  SECTION("fenced code is verbatim and never criteria") {
    Document doc =
        parse_markdown("### Acceptance Criteria\n```python\n- [ ] not a task\n```\n- ok");
    CHECK(to_plain_text(doc) == "Acceptance Criteria\n- [ ] not a task\n\n- ok");
    CHECK(extract_criteria(doc) == Strings{"ok"});
  }
}

TEST_CASE("acceptance criteria: sections, AC lines, scenarios, checklists", "[ingest][criteria]") {
  SECTION("an 'Acceptance Criteria:' line opens a section up to the next label") {
    CHECK(criteria_of_markdown("Intro text.\n\nAcceptance Criteria:\n- a\n- b\nplain line\n\n"
                               "Notes:\n- not a criterion") == Strings{"a", "b", "plain line"});
    CHECK(criteria_of_markdown("Acceptance criteria: inline one\n- two") ==
          Strings{"inline one", "two"});
    CHECK(criteria_of_wiki("*Acceptance criteria*\n# a\n# b") == Strings{"a", "b"});
  }
  SECTION("under a heading, label lines are skipped, not criteria") {
    CHECK(criteria_of_markdown("## Acceptance criteria\nHappy path:\n- a\nEdge cases:\n- b") ==
          Strings{"a", "b"});
  }
  SECTION("AC: lines anywhere, numbered or not") {
    CHECK(criteria_of_markdown("Text\nAC: one\nac1: two\nAC-3: three\nAC 4) four\n- AC5: five\n"
                               "Access rules: not one\nACME: not one") ==
          Strings{"one", "two", "three", "four", "five"});
  }
  SECTION("Given/When/Then across paragraphs, one criterion per scenario") {
    CHECK(criteria_of_markdown("Given a\n\nWhen b\n\nThen c\nAnd d\n\nGiven e\nWhen f\nThen g") ==
          Strings{"Given a When b Then c And d", "Given e When f Then g"});
    CHECK(criteria_of_markdown("Scenario: one\nGiven a\nThen b\nScenario: two\nGiven a\nThen b") ==
          Strings{"Given a Then b"});  // the same text twice: kept once
    CHECK(criteria_of_markdown("- **Given** a\n- **When** b\n- **Then** c") ==
          Strings{"Given a When b Then c"});
    CHECK(criteria_of_markdown("Given: a,\nwhen: b,\nTHEN: c") ==
          Strings{"Given: a, when: b, THEN: c"});
  }
  SECTION("prose starting with Given is not a scenario outside a section") {
    CHECK(criteria_of_markdown("Given the load, we should cache it.\nWhen in doubt, ask.").empty());
    CHECK(criteria_of_markdown("## Acceptance criteria\nGiven a cache\nWhen hit") ==
          Strings{"Given a cache When hit"});
  }
  SECTION("checklists anywhere, checked and unchecked") {
    CHECK(criteria_of_markdown("Intro\n- [ ] open\n- [x] done\n* [X] Done too\n+ [ ] plus\n- "
                               "[] not a task\n- plain") ==
          Strings{"open", "done", "Done too", "plus"});
  }
  SECTION("duplicates are dropped, order kept") {
    CHECK(criteria_of_markdown("## Acceptance criteria\n- b\n- a\n- b\n-   a  \nAC: b\n- [ ] c") ==
          Strings{"b", "a", "c"});
  }
}

// Found by tests/fuzz/ingest_fuzz.cpp (corpus: regress-adf-heading-level-out-of-range.json): an
// ADF heading level outside 1-6 was cast as given, so a hostile level 0 or 2^32 + 1 (read as
// 1) could close or hold open an acceptance-criteria section.
TEST_CASE("ADF heading levels outside 1-6 are clamped", "[ingest][adf]") {
  for (const char* level : {"0", "-3", "7", "4294967297"}) {
    INFO(level);
    std::string doc = std::string(R"J({"type": "doc", "content": [
      {"type": "heading", "attrs": {"level": 3},
       "content": [{"type": "text", "text": "Acceptance criteria"}]},
      {"type": "bulletList", "content": [{"type": "listItem", "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}]}]},
      {"type": "heading", "attrs": {"level": )J") +
                      level + R"J(}, "content": [{"type": "text", "text": "Sub"}]},
      {"type": "bulletList", "content": [{"type": "listItem", "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "b"}]}]}]}]})J";
    Document d = parse_adf(json::parse(doc));
    for (const Block& b : d) {
      if (b.kind == Block::Kind::kHeading) CHECK((b.level >= 1 && b.level <= 6));
    }
    // Levels 0 and -3 become 1 and end the level-3 section; 7 and 2^32 + 1 (which the cast
    // read as 1) become 6, a sub-heading that stays in it.
    bool deeper = std::string_view(level) == "7" || std::string_view(level) == "4294967297";
    CHECK(extract_criteria(d) == (deeper ? Strings{"a", "b"} : Strings{"a"}));
  }
}

// Issue 12: a closing paragraph after the criteria list was taken for one more criterion.
TEST_CASE("prose after a criteria list is description, not a criterion", "[ingest][criteria]") {
  SECTION("ADF: a bullet list under the heading, then a closing paragraph") {
    json::value doc = json::parse(R"J({"type": "doc", "version": 1, "content": [
      {"type": "paragraph", "content": [{"type": "text", "text": "Export invoices."}]},
      {"type": "heading", "attrs": {"level": 2},
       "content": [{"type": "text", "text": "Acceptance Criteria"}]},
      {"type": "bulletList", "content": [
        {"type": "listItem", "content": [{"type": "paragraph",
          "content": [{"type": "text", "text": "CSV has a header row"}]}]},
        {"type": "listItem", "content": [{"type": "paragraph",
          "content": [{"type": "text", "text": "Amounts use two decimals"}]}]},
        {"type": "listItem", "content": [{"type": "paragraph",
          "content": [{"type": "text", "text": "Empty months give an empty file"}]}]}]},
      {"type": "paragraph", "content": [{"type": "text", "text": "See the runbook for context."}]}
    ]})J");
    Document d = parse_adf(doc);
    CHECK(extract_criteria(d) == Strings{"CSV has a header row", "Amounts use two decimals",
                                         "Empty months give an empty file"});
    // Still part of the description.
    CHECK(to_plain_text(d).ends_with("See the runbook for context."));
  }
  SECTION("markdown: the same under a heading and under a label line") {
    CHECK(criteria_of_markdown("## Acceptance Criteria\n- a\n- b\n- c\n\nSee the runbook for "
                               "context.") == Strings{"a", "b", "c"});
    CHECK(criteria_of_markdown("Acceptance criteria:\n1. a\n2. b\n\nSee the runbook.") ==
          Strings{"a", "b"});
    CHECK(criteria_of_markdown("## Acceptance criteria\n- [ ] a\n\nSee the runbook.") ==
          Strings{"a"});
  }
  SECTION("JIRA wiki: the same") {
    CHECK(criteria_of_wiki("h3. Acceptance criteria\n* a\n* b\n\nSee the runbook for context.") ==
          Strings{"a", "b"});
    CHECK(criteria_of_wiki("*Acceptance criteria:*\n# a\n# b\n\nSee the runbook.") ==
          Strings{"a", "b"});
  }
  SECTION(
      "what still counts: text lines of a section without a list, a line under an item, "
      "a list after a sub-heading, scenarios and AC lines after the list") {
    CHECK(criteria_of_markdown("## Acceptance criteria\nfirst\n\nsecond") ==
          Strings{"first", "second"});
    CHECK(criteria_of_markdown("Acceptance Criteria:\n- a\nplain line") ==
          Strings{"a", "plain line"});
    CHECK(criteria_of_markdown("## Acceptance criteria\n- a\n\n### Export\n- b\n\nprose\n\n"
                               "Given x\nThen y\n\nAC: z") ==
          Strings{"a", "b", "Given x Then y", "z"});
  }
}

TEST_CASE("JIRA webhooks: wiki and ADF descriptions, events, links", "[ingest]") {
  auto jira = [](const std::string& event, json::value description) {
    return json::object{{"webhookEvent", event},
                        {"issue",
                         {{"key", "INV-7"},
                          {"self", "https://acme.atlassian.net/rest/api/3/issue/10007"},
                          {"fields",
                           {{"summary", "  A   title "},
                            {"description", description},
                            {"labels", json::array{"x", 3, "y"}},
                            {"priority", nullptr},
                            {"components", json::array{}},
                            {"project", {{"key", "INV"}}}}}}}};
  };
  Outcome o = ingest(params_for(jira("jira:issue_updated", "AC: it works")));
  REQUIRE(o.kind == Kind::kSuccess);
  CHECK(str(o.spec, "link") == "https://acme.atlassian.net/browse/INV-7");
  CHECK(str(o.spec, "title") == "A title");
  CHECK(strings(o.spec.at("labels")) == Strings{"x", "y"});
  CHECK(str(o.spec, "priority").empty());
  CHECK(str(o.spec, "component").empty());

  Outcome adf = ingest(params_for(jira("jira:issue_created", json::parse(R"({"type": "doc",
      "content": [{"type": "taskList", "content": [{"type": "taskItem",
      "attrs": {"state": "TODO"}, "content": [{"type": "text", "text": "works"}]}]}]})"))));
  REQUIRE(adf.kind == Kind::kSuccess);
  CHECK(strings(adf.spec.at("acceptance_criteria")) == Strings{"works"});

  Outcome deleted = ingest(params_for(jira("jira:issue_deleted", "AC: x")));
  CHECK(deleted.kind == Kind::kPermanent);
  CHECK(deleted.reason ==
        "ingest: JIRA webhookEvent 'jira:issue_deleted' is not a ticket to build: ingest takes "
        "jira:issue_created and jira:issue_updated");

  Outcome bad_adf = ingest(params_for(jira("jira:issue_created", json::object{{"a", 1}})));
  CHECK(bad_adf.kind == Kind::kPermanent);
  CHECK(has(bad_adf.reason,
            "JIRA webhook INV-7: issue.fields.description is an object but not "
            "an Atlassian Document Format document"));

  json::object no_summary = jira("jira:issue_created", "AC: x");
  no_summary["issue"].as_object()["fields"].as_object().erase("summary");
  Outcome ns = ingest(params_for(no_summary));
  CHECK(ns.kind == Kind::kPermanent);
  CHECK(ns.reason == "ingest: JIRA webhook: issue.fields.summary is missing or empty");

  json::object bare = jira("x", "AC: y")["issue"].as_object();
  Outcome b = ingest(params_for(bare));
  REQUIRE(b.kind == Kind::kSuccess);
  CHECK(str(b.spec, "source") == "jira");
}

TEST_CASE("GitHub issues webhooks: actions, labels, ids", "[ingest]") {
  auto gh = [](const std::string& action, json::value body) {
    return json::object{{"action", action},
                        {"issue",
                         {{"number", 5},
                          {"title", "T"},
                          {"body", body},
                          {"html_url", "https://github.com/o/r/issues/5"},
                          {"labels", json::array{json::object{{"name", "Priority: P1"}},
                                                 json::object{{"name", "component/api"}}}}}},
                        {"repository", {{"full_name", "o/r"}}}};
  };
  Outcome o = ingest(params_for(gh("reopened", "- [ ] a"), {{"default_project", "svc"}}));
  REQUIRE(o.kind == Kind::kSuccess);
  CHECK(str(o.spec, "id") == "o/r#5");
  CHECK(str(o.spec, "priority") == "P1");
  CHECK(str(o.spec, "component") == "api");
  CHECK(str(o.spec, "project") == "svc");

  Outcome closed = ingest(params_for(gh("closed", "- [ ] a")));
  CHECK(closed.kind == Kind::kPermanent);
  CHECK(has(closed.reason, "GitHub issues action 'closed' is not a ticket to build"));

  Outcome null_body = ingest(params_for(gh("opened", nullptr), {{"default_project", "svc"}}));
  CHECK(null_body.kind == Kind::kRoute);
  CHECK(has(null_body.reason, "ticket o/r#5 has no acceptance criteria"));
}

TEST_CASE("plain tickets: explicit criteria, projects, numeric ids", "[ingest]") {
  Outcome o = ingest_ticket(
      R"({"id": 42, "title": "T", "acceptance_criteria": ["one", " one ", "two"],
          "description": "AC: two\nAC: three", "project": "billing-service"})");
  REQUIRE(o.kind == Kind::kSuccess);
  CHECK(str(o.spec, "id") == "42");
  CHECK(strings(o.spec.at("acceptance_criteria")) == Strings{"one", "two", "three"});
  CHECK(str(o.spec, "project") == "billing-service");  // a plain ticket names its project
  CHECK(str(o.spec, "description") == "AC: two\nAC: three");

  Outcome mapped = ingest_ticket(R"({"id": "INV-1", "title": "T", "project": "invoices",
                                     "description": "AC: x"})");
  REQUIRE(mapped.kind == Kind::kSuccess);
  CHECK(str(mapped.spec, "project") == "invoices");

  Outcome unknown = ingest_ticket(R"({"id": "OPS-1", "title": "T", "description": "AC: x"})");
  CHECK(unknown.kind == Kind::kPermanent);
  CHECK(unknown.reason ==
        "ingest: ticket OPS-1: no target project for ticket prefix 'OPS'; map it in "
        "params.projects (e.g. {\"OPS\": \"invoices\"}) or set params.default_project");

  Outcome fallback = ingest_ticket(R"({"id": "OPS-1", "title": "T", "description": "AC: x"})",
                                   {{"default_project", "ops"}});
  REQUIRE(fallback.kind == Kind::kSuccess);
  CHECK(str(fallback.spec, "project") == "ops");

  Outcome bad_ac = ingest_ticket(R"({"id": "INV-1", "title": "T", "acceptance_criteria": "x"})");
  CHECK(bad_ac.kind == Kind::kPermanent);
  CHECK(bad_ac.reason == "ingest: ticket INV-1: acceptance_criteria must be an array of strings");
}

TEST_CASE("a ticket id with a control character is refused at ingest, shown escaped", "[ingest]") {
  // Found by reading (issue 12): a newline in a ticket id reached commit subjects and could
  // start a forged trailer line ("Factory-Round: ...").
  Outcome plain = ingest_ticket(
      R"({"id": "INV-1\nFactory-Round: forged", "title": "T", "description": "AC: x"})",
      {{"default_project", "invoices"}});
  CHECK(plain.kind == Kind::kPermanent);
  CHECK(plain.reason.find("ticket id 'INV-1\\x0AFactory-Round: forged' holds a control "
                          "character") != std::string::npos);
  CHECK(plain.reason.find('\n') == std::string::npos);
  for (const char* id : {"INV-1\r", "INV\x1b[2J-1", "INV-1\x7f", "INV-1\t"}) {
    INFO(id);
    json::object t{{"id", id}, {"title", "T"}, {"description", "AC: x"}};
    Outcome o = ingest(json::serialize(json::object{{"ticket", t}, {"default_project", "x"}}));
    CHECK(o.kind == Kind::kPermanent);
    CHECK(has(o.reason, "holds a control character"));
  }
  Outcome jira = ingest(R"({"ticket": {"key": "INV-1\n", "fields": {"summary": "S"}}})");
  CHECK(jira.kind == Kind::kPermanent);
  CHECK(has(jira.reason, "ticket key 'INV-1\\x0A' holds a control character"));
  Outcome github = ingest(R"({"ticket": {"action": "opened", "issue": {"number": 3,
      "title": "T", "body": "AC: x"}, "repository": {"full_name": "acme/sh\nop"}}})");
  CHECK(github.kind == Kind::kPermanent);
  CHECK(has(github.reason, "holds a control character"));
  CHECK(check_ticket_id(std::string(300, 'A'), "id").is_invalid_argument());
  CHECK(check_ticket_id("acme/shop#42", "id").ok());
}

TEST_CASE("no acceptance criteria routes to the review topic with the reason", "[ingest]") {
  Outcome o = ingest_ticket(R"({"id": "INV-9", "title": "Make it nicer",
      "description": "## Background\nIt should be nicer.\n\n```\n- [ ] in code\n```"})");
  REQUIRE(o.kind == Kind::kRoute);
  CHECK(o.route_topic == "human-review");
  CHECK(o.reason ==
        "ticket INV-9 has no acceptance criteria; add an 'Acceptance criteria' section, AC: "
        "lines, Given/When/Then or a checklist");

  Outcome topic = ingest_ticket(R"({"id": "INV-9", "title": "T"})", {{"review_topic", "triage"}});
  REQUIRE(topic.kind == Kind::kRoute);
  CHECK(topic.route_topic == "triage");
}

TEST_CASE("unknown or malformed tickets fail permanently, saying what was expected", "[ingest]") {
  for (const char* ticket : {R"({"hello": "world", "n": 1})", "[1, 2]", "{}"}) {
    INFO(ticket);
    Outcome o = ingest(json::serialize(json::object{{"ticket", json::parse(ticket)}}));
    CHECK(o.kind == Kind::kPermanent);
    CHECK(has(o.reason, "ingest: unrecognised ticket: got "));
    CHECK(has(o.reason, "ingest takes a JIRA webhook"));
    CHECK(has(o.reason, "a GitHub issues webhook"));
    CHECK(has(o.reason, "a plain ticket"));
  }
  Outcome keys = ingest(R"({"ticket": {"hello": "world", "n": 1}})");
  CHECK(has(keys.reason, "got an object with keys hello, n;"));

  Outcome title = ingest_ticket(R"({"id": "INV-1", "title": ["x"]})");
  CHECK(title.kind == Kind::kPermanent);
  CHECK(title.reason == "ingest: title must be a string, not array");

  Outcome desc = ingest_ticket(R"({"id": "INV-1", "title": "T", "description": 5})");
  CHECK(desc.reason ==
        "ingest: ticket INV-1: description must be text or an Atlassian Document Format "
        "object, not int64");

  Outcome no_ticket = ingest(R"({"projects": {}})");
  CHECK(no_ticket.kind == Kind::kPermanent);
  CHECK(has(no_ticket.reason, "params.ticket is missing"));
  CHECK(!input_contract().validate(R"({"projects": {}})").ok());
  CHECK(!input_contract().validate(R"({"ticket": {}, "projects": {"INV": 1}})").ok());
  CHECK(!input_contract().validate(R"({"ticket": {}, "extra": 1})").ok());
}

TEST_CASE("in a DAG a routed ticket fails its task, not retried, naming the topic",
          "[ingest][dag]") {
  auto inner = runtime::create_stage("ingest");
  REQUIRE_OK(inner);
  auto task = scheduler::TaskStage::create(std::move(*inner));
  REQUIRE_OK(task);
  auto dispatch = [](const json::value& params) {
    return json::serialize(json::object{{"run_id", "run-1"},
                                        {"dag_id", "software_factory"},
                                        {"task_id", "ingest_spec"},
                                        {"try", 1},
                                        {"params", params},
                                        {"output_topic", "feature-specs"},
                                        {"results_topic", "results"}});
  };
  SECTION("no criteria") {
    test::FakeStageContext ctx;
    json::value params = json::parse(params_for(
        json::parse(read_file(kSamples / "08-acme-invoices-108-github-no-criteria.json"))));
    StageResult r = (*task)->process(test::make_event(dispatch(params)), ctx);
    CHECK(r.kind() == Kind::kSuccess);  // the dispatch itself was handled
    // One result record and no spec. (Today TaskStage appends nothing to human-review; should
    // it start forwarding routed inputs there, that is the only other output allowed.)
    std::vector<Output> results;
    for (const Output& o : ctx.outputs()) {
      CHECK(o.topic != "feature-specs");
      if (o.topic == "results") {
        results.push_back(o);
      } else {
        CHECK(o.topic == "human-review");
      }
    }
    REQUIRE(results.size() == 1);
    json::object result = json::parse(results[0].payload).as_object();
    CHECK(result.at("state") == "failed");
    CHECK(result.at("retryable") == false);
    CHECK(result.at("error") ==
          "routed to human-review: ticket acme/invoices#108 has no acceptance criteria; add an "
          "'Acceptance criteria' section, AC: lines, Given/When/Then or a checklist");
  }
  SECTION("a spec") {
    test::FakeStageContext ctx;
    json::value params =
        json::parse(params_for(json::parse(read_file(kSamples / "01-inv-101-jira-wiki.json"))));
    REQUIRE((*task)->process(test::make_event(dispatch(params)), ctx).kind() == Kind::kSuccess);
    auto outputs = ctx.outputs();
    REQUIRE(outputs.size() == 2);
    CHECK(outputs[0].topic == "feature-specs");
    json::object result = json::parse(outputs[1].payload).as_object();
    CHECK(result.at("state") == "success");
    CHECK(result.at("output").at("id") == "INV-101");
  }
}
