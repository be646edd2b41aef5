// Fuzz target: Atlassian Document Format (a JIRA Cloud description: JSON) to a Document
// (stages/ingest/adf.h), then its plain text and acceptance criteria. Inputs that are not JSON
// stop at the parser, as ingest would.
#include <cstddef>
#include <cstdint>

#include <boost/json.hpp>

#include "fuzz_util.h"
#include "ingest/adf.h"
#include "ingest_doc_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(factory::fuzz::as_view(data, size), ec);
  if (ec) return 0;
  auto doc = factory::stages::ingest::parse_adf(v);
  factory::fuzz::check_document(doc, /*input_utf8=*/true);  // Boost.JSON validated it
  return 0;
}
