// Event ids: the deterministic identity of an event payload.
//
// An EventId is the SHA-256 of the payload's canonical JSON (canonical_json() below), so the same
// event re-sent with its keys reordered or re-indented gets the same id, and the idempotency
// table (one row per stage and id) recognises a redelivery or a replayed append. Payloads that
// are not JSON use event_id_for_bytes(). The rules are written up in docs/event-ids.md with an
// example that can be checked with `jq` and `sha256sum`.
//
// EventId is a trivially copyable value; every function here is pure and thread-safe.
//
// Example:
//   auto id = factory::event_id_for(R"({"ticket":"PROJ-1","priority":2})");
//   if (!id.ok()) return id.status();      // InvalidArgument: not JSON, or a duplicate key
//   std::string hex = id->hex();           // 64 lowercase hex digits
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "factory/status.h"

namespace factory {

struct EventId {
  static constexpr size_t kSize = 32;  // a SHA-256 digest

  std::array<uint8_t, kSize> digest{};

  // The digest as 64 lowercase hex digits (what `sha256sum` prints).
  std::string hex() const;
  // Parses 64 hex digits (either case). InvalidArgument for any other length or a non-hex digit.
  static Result<EventId> from_hex(std::string_view hex);

  // Byte-wise order of the digests (the order of the store's primary key).
  auto operator<=>(const EventId&) const = default;
};

// Re-serializes a JSON document in factoryd's canonical form (docs/event-ids.md):
//   - object members sorted by key, comparing the keys' UTF-8 bytes (unsigned, shorter prefix
//     first), recursively; arrays keep their order;
//   - no whitespace outside strings;
//   - strings (keys and values) escape only '"', '\\' and the controls below 0x20, the latter as
//     \b \f \n \r \t or \u00XX with lowercase hex; everything else, non-ASCII and U+007F included,
//     is written as raw UTF-8 (escapes in the input are decoded first, so "\u00e9" and "é" are
//     the same string);
//   - integers (a number with no fraction and no exponent that fits int64 or uint64) in plain
//     decimal: 1, -42, 18446744073709551615; "-0" is the integer 0;
//   - every other number is a double, parsed with correct rounding and written the way
//     Boost.JSON 1.81's serializer writes doubles: the shortest digits that read back as the
//     same double (Ryu), always in scientific form with a capital E, no '+' and no leading
//     exponent zeros: 1.0 -> 1E0, 0.5 -> 5E-1, 123.456 -> 1.23456E2, 1e21 -> 1E21,
//     -0.0 -> -0E0. So 1 and 1.0 are DIFFERENT values here (different ids), while 1.0, 1.00
//     and 10e-1 are the same. Integers beyond uint64/int64 become doubles (lossy): send such
//     numbers as strings;
//   - true, false, null as themselves.
// Close to RFC 8785 (JCS), which differs in: keys sorted by UTF-16 code units (we use UTF-8
// bytes; the orders differ only between U+E000..U+FFFF and characters above U+FFFF); every
// number is an IEEE double written in ECMAScript form (1.0 and 1 are both "1", 1e21 is "1e+21",
// -0 is "0", integers above 2^53 are rounded); duplicate keys are not defined by JCS.
//
// Returns InvalidArgument, with the 0-based byte offset and the parser's reason, for input that
// is not exactly one JSON document (RFC 8259: no comments, trailing commas, NaN or invalid
// UTF-8; whitespace around the document is fine), for an object with a duplicate key, for a
// number whose magnitude overflows a double (e.g. 1e400), and for nesting deeper than 64.
Result<std::string> canonical_json(std::string_view json);

// SHA-256 of canonical_json(json). Fails exactly when canonical_json fails.
Result<EventId> event_id_for(std::string_view json);

// SHA-256 of the bytes as they are, for payloads that are not JSON.
EventId event_id_for_bytes(std::string_view bytes);

}  // namespace factory

template <>
struct std::hash<factory::EventId> {
  // The digest is already uniformly distributed: its first bytes are a good hash.
  size_t operator()(const factory::EventId& id) const {
    size_t h;
    std::memcpy(&h, id.digest.data(), sizeof h);
    return h;
  }
};
