// Fuzz target: the router's path and query handling on any bytes (http_request_fuzz.cpp goes
// through Beast, which lets only legal target characters through): parse_request_target()
// (request_target.h) and Router::match() over the daemon's routes. Input: a method, a newline,
// the target.
// Properties: http_checks.h's target checks; a match's parameters are non-empty single
// segments; a 405's Allow list never holds the method asked for.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "http_checks.h"

using namespace factory::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = factory::fuzz::as_view(data, size);
  std::string method(factory::fuzz::next_part(&rest, "\n"));
  factory::fuzz::check_target(rest);
  RequestTarget t = parse_request_target(rest);
  if (!t.ok()) return 0;
  Router::Match m = factory::fuzz::daemon_router().match(method, t.path);
  if (m.route != nullptr) {
    FUZZ_CHECK(m.route->method == method, "a route of another method matched");
    for (const auto& [name, value] : m.params) {
      FUZZ_CHECK(!value.empty() && value.find('/') == std::string::npos,
                 "path parameter " + name + " is not one segment: " + value);
    }
  } else {
    FUZZ_CHECK(std::find(m.allowed.begin(), m.allowed.end(), method) == m.allowed.end(),
               "405 allows the method it refused");
  }
  return 0;
}
