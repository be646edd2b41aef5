// Fuzz target: GitHub markdown (a GitHub issue's body, a plain ticket's description) to a
// Document (stages/ingest/markdown.h), then its plain text and acceptance criteria.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "ingest/markdown.h"
#include "ingest_doc_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = factory::fuzz::as_view(data, size);
  auto doc = factory::stages::ingest::parse_markdown(text);
  factory::fuzz::check_document(doc, factory::fuzz::valid_utf8(text));
  return 0;
}
