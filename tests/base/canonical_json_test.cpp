// The simdjson fast path of canonical_json() against the Boost.JSON reference
// (src/base/canonical_json.h): wherever the fast path answers, the reference accepts the input
// and writes the same bytes. Inputs: every fuzz corpus of a JSON parser, generated documents and
// number literals, and byte mutations of both (seeded; the seed is printed).
#include "base/canonical_json.h"

#include <string>
#include <vector>

#include "factory/event.h"
#include "json_gen.h"
#include "test_util.h"

namespace {

using factory::testing::corpus_inputs;
using factory::testing::JsonGenerator;

// Returns whether the fast path answered.
bool check_same(const std::string& input) {
  std::optional<std::string> fast = factory::base::canonical_json_simd(input);
  factory::Result<std::string> ref = factory::base::canonical_json_boost(input);
  if (!fast) return false;
  INFO("input: " << input);
  REQUIRE(ref.ok());
  REQUIRE(*fast == *ref);
  return true;
}

}  // namespace

TEST_CASE("the simdjson fast path writes the reference's bytes on every fuzz corpus", "[event]") {
  std::vector<std::string> inputs = corpus_inputs();
  REQUIRE(inputs.size() > 20);
  size_t fast = 0;
  for (const std::string& in : inputs) fast += check_same(in) ? 1 : 0;
  CHECK(fast > 0);
}

TEST_CASE("the simdjson fast path matches the reference on generated and mutated documents",
          "[event]") {
  const uint32_t seed = 13;
  INFO("seed " << seed);
  JsonGenerator gen(seed);
  size_t fast = 0;
  size_t valid = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string doc = gen.document();
    valid += factory::base::canonical_json_boost(doc).ok() ? 1 : 0;
    fast += check_same(doc) ? 1 : 0;
    check_same(gen.mutate(doc));
    check_same(gen.number());
    check_same("[" + gen.number() + "]");
  }
  // The fast path must carry the common case, not leave everything to the reference.
  CHECK(fast * 10 >= valid * 9);
}

TEST_CASE("the fast path leaves refusals and the range edges to the reference", "[event]") {
  for (const char* in : {"{\"a\":1,\"a\":2}", "1e400", "[1,]", "18446744073709551616", "4.9e-324",
                         "1.7976931348623158e308", "\"\\udc00\"", "", " "}) {
    INFO(in);
    CHECK_FALSE(factory::base::canonical_json_simd(in).has_value());
  }
  std::string deep(70, '[');
  deep += std::string(70, ']');
  CHECK_FALSE(factory::base::canonical_json_simd(deep).has_value());
  // canonical_json() answers as the reference does, message included.
  auto ref = factory::base::canonical_json_boost("{\"a\":1,\"a\":2}");
  auto got = factory::canonical_json("{\"a\":1,\"a\":2}");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().to_string() == ref.status().to_string());
  CHECK(*factory::canonical_json("{\"b\":[1,2.5,\"x\"],\"a\":null}") ==
        "{\"a\":null,\"b\":[1,2.5E0,\"x\"]}");
}
