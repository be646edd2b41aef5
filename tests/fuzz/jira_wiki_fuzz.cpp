// Fuzz target: JIRA wiki markup (a JIRA Server issue's description, Cloud REST v2) to a
// Document (stages/ingest/jira_wiki.h), then its plain text and acceptance criteria.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "ingest/jira_wiki.h"
#include "ingest_doc_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = factory::fuzz::as_view(data, size);
  auto doc = factory::stages::ingest::parse_jira_wiki(text);
  factory::fuzz::check_document(doc, factory::fuzz::valid_utf8(text));
  return 0;
}
