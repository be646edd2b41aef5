// How the API carries bytes in JSON (keys, values and header values of records, and whatever
// else is not known to be text), and the UTF-8 and base64 helpers behind it.
//
// A JSON string carries the bytes when they are valid UTF-8: {"value": "text"}; otherwise
// base64 (RFC 4648, padded) under a "_b64" name: {"value_b64": "3q2+7w=="}. A null is
// {"key": null} where the shape allows it. Exactly one of the two names is present in what the
// API writes; requests may use either (read_bytes refuses both at once).
//
// Split out of log_views.cpp, whose record shapes use it, as the one file that knows the rule.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "factory/status.h"

namespace factory::http {

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);
std::string base64_encode(std::string_view bytes);
// nullopt when `text` is not padded standard base64.
std::optional<std::string> base64_decode(std::string_view text);
// Reads bytes written as `name` (a string; null allowed when nullable) or `name_b64`.
// *out is nullopt for null or absent. InvalidArgument naming where.name for a wrong type,
// bad base64, or both names present.
Status read_bytes(const boost::json::object& obj, std::string_view name, std::string_view where,
                  bool nullable, std::optional<std::string>* out);

}  // namespace factory::http
