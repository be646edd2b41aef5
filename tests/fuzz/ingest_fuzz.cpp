// Fuzz target: the whole ticket ingest (stages/ingest/): JSON text -> read_ticket() (JIRA
// webhook with wiki or ADF description, GitHub issues webhook, plain ticket) -> the
// acceptance criteria and the plain-text description the feature_spec carries, the way
// ingest_stage.cpp puts them together. An input object with a "ticket" field is read as the
// stage's params; anything else as the ticket itself (the webhook body a DAG passes on).
//
// Properties: every Document property (ingest_doc_checks.h); the spec serializes to JSON that
// parses back to the same value (no invalid UTF-8 cut out of a multi-byte character).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "fuzz_util.h"
#include "ingest/criteria.h"
#include "ingest/ticket.h"
#include "ingest_doc_checks.h"

namespace json = boost::json;
using namespace factory::stages::ingest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::system::error_code ec;
  json::value v = json::parse(factory::fuzz::as_view(data, size), ec);
  if (ec) return 0;
  const json::value* ticket = &v;
  if (v.is_object()) {
    if (const json::value* t = v.as_object().if_contains("ticket")) ticket = t;
  }
  auto t = read_ticket(*ticket);
  if (!t.ok()) {
    FUZZ_CHECK(!t.status().message().empty(), "a refusal without a message");
    return 0;
  }
  factory::fuzz::check_document(t->description, /*input_utf8=*/true);
  std::vector<std::string> criteria;
  for (const std::string& c : t->criteria) add_criterion(&criteria, c);
  for (const std::string& c : extract_criteria(t->description)) add_criterion(&criteria, c);

  json::array ac, labels;
  for (const std::string& c : criteria) ac.emplace_back(c);
  for (const std::string& l : t->labels) labels.emplace_back(l);
  json::object spec{{"id", t->id},
                    {"source", t->source},
                    {"link", t->link},
                    {"title", t->title},
                    {"description", to_plain_text(t->description)},
                    {"acceptance_criteria", std::move(ac)},
                    {"labels", std::move(labels)},
                    {"priority", t->priority},
                    {"component", t->component},
                    {"project", t->project_key}};
  FUZZ_CHECK(!t->id.empty(), "a ticket without an id");
  std::string text = json::serialize(spec);
  json::value back = json::parse(text, ec);
  FUZZ_CHECK(!ec, "the feature_spec is not JSON: " + ec.message());
  FUZZ_CHECK(back == json::value(spec), "the feature_spec does not read back");
  return 0;
}
