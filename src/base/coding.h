// Byte encodings shared by the on-disk formats (leveldb util/coding.h).
// Big-endian fixed-width integers sort correctly as RocksDB keys; varints keep values small.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace factory::base {

void put_fixed32_be(std::string* dst, uint32_t v);
void put_fixed64_be(std::string* dst, uint64_t v);
uint32_t decode_fixed32_be(const char* p);
uint64_t decode_fixed64_be(const char* p);

void put_varint64(std::string* dst, uint64_t v);
// Zig-zag signed varint.
void put_varsint64(std::string* dst, int64_t v);
// Length-prefixed bytes: varint length, then the bytes.
void put_length_prefixed(std::string* dst, std::string_view s);

// Each get_* consumes from the front of *in; returns false when *in is truncated or malformed.
bool get_varint64(std::string_view* in, uint64_t* v);
bool get_varsint64(std::string_view* in, int64_t* v);
bool get_length_prefixed(std::string_view* in, std::string_view* s);

// Parses a whole base-10 integer: an optional '-', digits, nothing else, no overflow. False
// otherwise (*out unspecified).
bool parse_int64(std::string_view text, int64_t* out);

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when none starts there (a bad lead
// or continuation byte, a truncated, overlong or surrogate sequence, or past U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i);

// s with every byte that starts no valid UTF-8 sequence replaced by U+FFFD: text from outside
// (a stage's error, a command's stderr) made safe for a JSON document a parser will validate.
std::string valid_utf8(std::string_view s);

// JSON string escaping (RFC 8259) of possibly binary bytes: invalid UTF-8 becomes U+FFFD.
void append_json_string(std::string* dst, std::string_view s);

// JSON string escaping exactly as Boost.JSON's serializer writes it
// (boost/json/impl/serializer.ipp), for text a JSON parser has already validated as UTF-8:
// `"` and `\` backslashed; \b \f \n \r \t by name; the other bytes below 0x20 as \u00xx in
// lower-case hex; every other byte as it is. The canonical form of event ids (event.h) and the
// produce fast path (http/json_fast.h) write strings this way, so their bytes stay Boost's.
void append_boost_json_string(std::string* out, std::string_view s);

}  // namespace factory::base
