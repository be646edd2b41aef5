// Shared by the HTTP targets (http_request_fuzz.cpp, router_fuzz.cpp): the daemon's real route
// table, and the checks on a request target.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "http/api.h"
#include "http/request_target.h"
#include "http/router.h"

namespace factory::fuzz {

// Every route the daemon serves (serve_api.cpp adds the same groups). The handlers are never
// called, so the context's members stay null.
inline const http::Router& daemon_router() {
  static http::ApiContext* ctx = new http::ApiContext();
  static http::Router* router = [] {
    auto* r = new http::Router();
    http::add_health_routes(r, ctx);
    http::add_log_routes(r, ctx);
    http::add_scheduler_routes(r, ctx);
    http::add_webhook_routes(r, ctx);
    http::add_metrics_routes(r, ctx);
    http::add_openapi_routes(r, ctx);
    return r;
  }();
  return *router;
}

inline std::string encode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' ||
        keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// Checks http::parse_request_target(raw); the properties are in http_request_fuzz.cpp's comment.
inline void check_target(std::string_view raw) {
  http::RequestTarget t = http::parse_request_target(raw);
  if (!t.ok()) {
    FUZZ_CHECK(t.refusal_code == "invalid_argument" || t.refusal_code == "token_in_query",
               t.refusal_code);
    return;
  }
  FUZZ_CHECK(!t.path.empty() && t.path[0] == '/', "path: " + t.path);
  std::string again = encode(t.path, "/");
  if (!t.query.empty()) again += '?';
  for (size_t i = 0; i < t.query.size(); ++i) {
    const auto& [k, v] = t.query[i];
    FUZZ_CHECK(k != "token" && k != "access_token", "a token in the query was accepted");
    again += (i ? "&" : "") + encode(k, "") + "=" + encode(v, "");
  }
  http::RequestTarget back = http::parse_request_target(again);
  FUZZ_CHECK(back.ok(), "re-encoded target refused: " + again);
  FUZZ_CHECK(back.path == t.path, "path does not read back: " + again);
  FUZZ_CHECK(back.query == t.query, "query does not read back: " + again);
}

}  // namespace factory::fuzz
