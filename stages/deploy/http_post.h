// post_json: one HTTP(S) POST of a JSON body to a full URL, for the stages that call out — the
// deploy stage's webhook target and the approval_notify stage's incoming-webhook message.
//
// The URL is http://host[:port]/path?query or https://... (verified against the system's CA
// store). One connection per call; no retries (the callers decide what a failure means).
//
// Thread-safe: calls share nothing.
//
// Example:
//   auto r = post_json("http://127.0.0.1:9000/hooks/deploy", R"({"release":"r1"})", 5000);
//   if (r.ok() && r->status / 100 == 2) ...
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "factory/status.h"

namespace factory::stages {

struct HttpPostResult {
  int status = 0;
  std::string body;  // the response body, at most its first 4 KiB
};

// POSTs `body` with Content-Type: application/json. Any HTTP status is OK (the caller checks
// it). InvalidArgument for a URL that is not http(s)://host..., Unavailable when the server
// cannot be reached, TimedOut after timeout_ms.
Result<HttpPostResult> post_json(std::string_view url, std::string_view body, int64_t timeout_ms);

// The URL with any userinfo and query removed, for logs and outputs (webhook URLs often carry
// a token in their path or query: only the scheme, host and the path's first segment are kept).
std::string redact_url(std::string_view url);

}  // namespace factory::stages
