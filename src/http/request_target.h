// The request target ("/api/v1/runs?state=running") as factoryd reads it: the pure part of the
// server's request handling, split out of server.cpp so it can be tested and fuzzed
// (tests/fuzz/http_request_fuzz.cpp) without sockets.
//
// parse_request_target() accepts origin-form only (RFC 9112 3.2.1: an absolute path and an
// optional query); the path and the query parameters come back percent-decoded. It refuses,
// with 400 and the code word the server answers with:
//   invalid_argument  not origin-form, or bad percent-encoding
//   token_in_query    an access_token= or token= parameter (tokens in URLs end up in logs)
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace factory::http {

struct RequestTarget {
  std::string path;                                        // percent-decoded, no query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  // "" when accepted; else the error code word and a message saying how to fix the request.
  std::string refusal_code;
  std::string refusal_message;
  bool ok() const { return refusal_code.empty(); }
};

RequestTarget parse_request_target(std::string_view target);

// True for an X-Request-Id the server may echo and log as given: 1-64 of [A-Za-z0-9._-].
bool sane_request_id(std::string_view id);

}  // namespace factory::http
