// Fuzz target: canonical JSON and event ids (include/factory/event.h, src/base/event_id.cpp).
// Properties: canonical_json is idempotent (canon(canon(x)) == canon(x)) and its output is
// JSON Boost.JSON reads to the same value; event_id_for(x) == event_id_for(canon(x)), and it
// fails exactly when canonical_json fails.
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/json.hpp>

#include "factory/event.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = factory::fuzz::as_view(data, size);
  auto canon = factory::canonical_json(text);
  auto id = factory::event_id_for(text);
  FUZZ_CHECK(canon.ok() == id.ok(), "canonical_json and event_id_for disagree on validity");
  if (!canon.ok()) {
    FUZZ_CHECK(canon.status().code() == factory::Status::Code::kInvalidArgument,
               canon.status().to_string());
    return 0;
  }
  auto again = factory::canonical_json(*canon);
  FUZZ_CHECK(again.ok(), "canonical output refused: " + again.status().to_string());
  FUZZ_CHECK(*again == *canon, "not idempotent:\n" + *canon + "\n" + *again);
  auto id2 = factory::event_id_for(*canon);
  FUZZ_CHECK(id2.ok() && *id2 == *id, "the id of the canonical form differs");
  boost::system::error_code ec;
  boost::json::value a = boost::json::parse(text, ec);
  if (!ec) {
    boost::json::value b = boost::json::parse(*canon, ec);
    FUZZ_CHECK(!ec, "canonical output is not JSON: " + *canon);
    FUZZ_CHECK(a == b, "canonical output is another value: " + *canon);
  }
  return 0;
}
