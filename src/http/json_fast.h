// simdjson on the API's hot reads: the verdict of parse_json() (json_input.h) without building
// a Boost.JSON document, and Boost's serialization of a value straight from simdjson's DOM.
//
// Every function here either answers exactly as the Boost.JSON path would, or says it cannot
// decide (false/nullopt) and the caller runs the Boost.JSON path, which stays the definition of
// what is accepted and of every error message. The fast path leaves to Boost: any input
// simdjson refuses, nesting near kMaxDepth, doubles that are zero (Boost 1.81 reads 0e400 as
// NaN, which parse_json refuses, and refuses an exponent past 2^31) or beyond 1e300 or below 1e-300
// in magnitude (Boost's own reading overflows at 1.7976931348623158e308), and, where a value is
// written on, any double (Boost's reading is not always correctly rounded, and the bytes written
// are Boost's) and any duplicate key (Boost keeps the last one).
//
// The tests (tests/http/json_fast_test.cpp) and the json_input fuzz target compare each answer
// with the Boost.JSON path's.
//
// Thread-safety: safe; the simdjson parser is one per thread (thread_local), and a document
// larger than kMaxKeptParserBytes gets a parser of its own so no thread keeps its memory.
// Memory: a kept parser holds buffers sized to the largest document its thread has read, about
// 4.4 MB of RSS after a 1 MiB document (measured), so at most that per handler thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace factory::http {

inline constexpr size_t kMaxKeptParserBytes = 1 << 20;

// Parses `text` with this thread's parser (or `*own` for a large one). The element is valid
// until the next parse on this thread. nullopt when simdjson refuses the text.
std::optional<simdjson::dom::element> simd_parse(std::string_view text,
                                                 std::optional<simdjson::dom::parser>* own);

// Whether parse_json() accepts the document rooted at `e` (already parsed by simdjson): false
// means "ask parse_json", not "refused".
bool simd_parse_json_would_accept(simdjson::dom::element e);

// Appends boost::json::serialize() of the value parse_json() would read for `e`, found inside
// `depth` containers of its document, or returns false (out then holds a partial text) when the
// fast path cannot know it: a double, a duplicate key, nesting near kMaxDepth.
bool append_boost_serialization(simdjson::dom::element e, size_t depth, std::string* out);

// Whether two members of `o` share a key.
bool simd_has_duplicate_key(simdjson::dom::object o);

// parse_body() (json_input.h) for a body that is a JSON object, without the document: true when
// parse_body() accepts `body`; then *field_value is the last top-level member named `field`
// when that is a string, else nullopt. false: ask parse_body().
bool simd_check_object_body(std::string_view body, std::string_view field,
                            std::optional<std::string>* field_value);

}  // namespace factory::http
