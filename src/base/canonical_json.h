// The two parsers behind factory::canonical_json() (include/factory/event.h,
// src/base/event_id.cpp).
//
// canonical_json() runs the simdjson one and falls back to the Boost.JSON one whenever simdjson
// cannot decide alone: any refusal (so every error message, with its byte offset, is Boost's),
// a duplicate key, a double at the edge of the range, nesting near the limit. The Boost.JSON
// parser is the definition; the simdjson one is a faster way to the same bytes, and the tests
// (tests/base/event_id_test.cpp) and the event_id fuzz target compare the two.
//
// Thread-safety: safe; the simdjson parser is one per thread (thread_local).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "factory/status.h"

namespace factory::base {

// The reference: Boost.JSON's SAX parser. Returns the canonical text, or InvalidArgument naming
// the byte offset and the problem, exactly as canonical_json() documents.
Result<std::string> canonical_json_boost(std::string_view input);

// The fast path: the canonical text when simdjson reads the whole input as one valid document
// and nothing in it needs the reference's judgement; nullopt otherwise (never a different text).
std::optional<std::string> canonical_json_simd(std::string_view input);

}  // namespace factory::base
