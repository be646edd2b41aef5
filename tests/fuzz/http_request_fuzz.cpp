// Fuzz target: an HTTP request as the server reads it, from raw bytes: Beast's request parser
// (header first with the server's header limit, then the body under the matched route's
// limit, as server.cpp does), factoryd's request-target handling (request_target.h: origin
// form, percent-decoding, tokens refused in the query), the X-Request-Id check, and the
// router's match over the daemon's real route table. Handlers are not called: the API
// handlers have their own targets (json_input, webhook).
//
// Properties: an accepted target has a path starting with '/' and no token parameter; the
// decoded path and query, percent-encoded again, parse back to the same values; a matched
// route's parameters are non-empty and hold no '/'; a body never exceeds the route's limit.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "fuzz_util.h"
#include "http/request_target.h"
#include "http/router.h"
#include "http_checks.h"

namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using namespace factory::http;
using factory::fuzz::check_target;
using factory::fuzz::daemon_router;

namespace {
constexpr size_t kHeaderLimit = 16 * 1024;  // ServerOptions::header_limit's default
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Router& router = daemon_router();
  bhttp::request_parser<bhttp::empty_body> header_parser;
  header_parser.header_limit(kHeaderLimit);
  header_parser.body_limit(std::numeric_limits<uint64_t>::max());
  boost::beast::error_code ec;
  size_t used = 0;
  while (!header_parser.is_header_done()) {
    size_t n = header_parser.put(asio::buffer(data + used, size - used), ec);
    used += n;
    if (ec || n == 0) return 0;  // not HTTP, over the limit, or incomplete: the server closes
  }
  const auto& header = header_parser.get();
  for (const auto& field : header) (void)field.name_string();
  if (auto rid = header["X-Request-Id"]; !rid.empty() && sane_request_id(rid)) {
    FUZZ_CHECK(rid.size() <= 64, "request id too long");
  }
  std::string_view target(header.target().data(), header.target().size());
  check_target(target);
  RequestTarget t = parse_request_target(target);
  if (!t.ok()) return 0;
  std::string method(header.method_string());
  Router::Match m = router.match(method, t.path);
  if (m.route == nullptr) return 0;
  for (const auto& [name, value] : m.params) {
    FUZZ_CHECK(!value.empty(), "empty path parameter " + name);
    FUZZ_CHECK(value.find('/') == std::string::npos, "a '/' in path parameter " + name);
  }
  if (auto length = header_parser.content_length(); length && *length > m.route->body_limit) {
    return 0;  // 413 unread
  }
  bhttp::request_parser<bhttp::string_body> body_parser(std::move(header_parser));
  body_parser.body_limit(m.route->body_limit);
  while (!body_parser.is_done()) {
    size_t n = body_parser.put(asio::buffer(data + used, size - used), ec);
    used += n;
    if (ec || n == 0) return 0;
  }
  FUZZ_CHECK(body_parser.get().body().size() <= m.route->body_limit, "body over the limit");
  return 0;
}
