// RefusalAuditLimiter: bounds the audit rows that refused, unauthenticated requests write.
//
// Every refused request on an audited route (401, 403, 429, and any error a public route such
// as a webhook answers, e.g. a disabled webhook's 404) is worth an audit row, but a caller
// without a token must not be able to grow the audit table, or bury real rows, by looping. Per
// remote address and window (window_ms), the first refusal writes its row; the rest are counted,
// and the next row written for that address says how many were left out ("+N"). So a flood
// writes one row per address per window, and nothing is lost from the count.
//
// Memory is bounded: at most max_addresses are tracked; when full, expired windows are dropped,
// and if none has expired the refusal shares one overflow bucket ("*").
//
// Thread-safety: safe (one mutex; admit() is a map lookup); the free functions are pure.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http/router.h"

namespace factory::http {

// A refusal whose audit rows are rate-limited per address: the caller was not let in (401,
// 403, 429), or a public route (a webhook) refused an anonymous sender.
bool rate_limited_refusal(const Request& req, int status);

// The audit object for a percent-decoded path: control characters encoded again (%0A, %1B), so
// that no reader of the trail receives raw ones.
std::string audit_object(std::string_view path);

class RefusalAuditLimiter {
 public:
  explicit RefusalAuditLimiter(int64_t window_ms, size_t max_addresses = 4096)
      : window_ms_(window_ms), max_addresses_(max_addresses) {}

  // For a refusal from `address` at now_ms: nullopt when its row is left out (counted), else
  // the number of refusals from that address left out since its last row (0 for none).
  std::optional<int64_t> admit(const std::string& address, int64_t now_ms);

 private:
  struct Window {
    int64_t start_ms = 0;
    int64_t suppressed = 0;
  };
  const int64_t window_ms_;
  const size_t max_addresses_;
  std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
};

}  // namespace factory::http
