// Fuzz target: canonical JSON and event ids (include/factory/event.h, src/base/event_id.cpp).
// Properties: canonical_json is idempotent (canon(canon(x)) == canon(x)) and its output is
// JSON Boost.JSON reads to the same value (doubles within a few ULPs: see same_value);
// event_id_for(x) == event_id_for(canon(x)), and it fails exactly when canonical_json fails.
// And the simdjson fast path (src/base/canonical_json.h), where it answers, writes exactly the
// Boost.JSON reference's bytes, for the input and for its canonical form.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "base/canonical_json.h"
#include "factory/event.h"
#include "fuzz_util.h"

namespace {

// a == b, except that doubles may differ by a few ULPs: canonical_json rounds correctly, and
// Boost.JSON 1.81's parser does not always (1.7976931348623158e308 reads as another double).
// And Boost.JSON reads 1e400 as Infinity and 0e400 as NaN, which canonical_json refuses or
// reads as 0: `a` (Boost's reading of the input) is not compared where it is not finite.
bool same_value(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && !std::isfinite(a.get_double())) return true;
  if (a.is_double() && b.is_double()) {
    double x = a.get_double(), y = b.get_double();
    for (int i = 0; i < 4 && x != y; ++i) x = std::nextafter(x, y);
    return x == y;
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &p = a.get_array(), &q = b.get_array();
    if (p.size() != q.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
      if (!same_value(p[i], q[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto &p = a.get_object(), &q = b.get_object();
    if (p.size() != q.size()) return false;
    for (const auto& [k, v] : p) {
      const boost::json::value* w = q.if_contains(k);
      if (w == nullptr || !same_value(v, *w)) return false;
    }
    return true;
  }
  return a == b;
}

// The fast path answers only with the reference's own text.
void check_fast_path(std::string_view text) {
  std::optional<std::string> fast = factory::base::canonical_json_simd(text);
  if (!fast) return;
  auto ref = factory::base::canonical_json_boost(text);
  FUZZ_CHECK(ref.ok(),
             "fast path accepted what the reference refuses: " + ref.status().to_string());
  FUZZ_CHECK(*fast == *ref, "fast path differs from the reference:\n" + *fast + "\n" + *ref);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = factory::fuzz::as_view(data, size);
  auto canon = factory::canonical_json(text);
  auto id = factory::event_id_for(text);
  check_fast_path(text);
  FUZZ_CHECK(canon.ok() == id.ok(), "canonical_json and event_id_for disagree on validity");
  if (!canon.ok()) {
    FUZZ_CHECK(canon.status().code() == factory::Status::Code::kInvalidArgument,
               canon.status().to_string());
    return 0;
  }
  check_fast_path(*canon);
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
    FUZZ_CHECK(same_value(a, b), "canonical output is another value: " + *canon);
  }
  return 0;
}
