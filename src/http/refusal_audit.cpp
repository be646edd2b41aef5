#include "http/refusal_audit.h"

#include <iterator>

#include "base/escape.h"

namespace factory::http {

bool rate_limited_refusal(const Request& req, int status) {
  return status == 401 || status == 403 || status == 429 ||
         (req.principal.role == Role::kPublic && status >= 400);
}

std::string audit_object(std::string_view path) { return base::escape_controls(path, "%"); }

std::optional<int64_t> RefusalAuditLimiter::admit(const std::string& address, int64_t now_ms) {
  if (window_ms_ <= 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = windows_.find(address);
  if (it == windows_.end()) {
    if (windows_.size() >= max_addresses_) {
      for (auto w = windows_.begin(); w != windows_.end();) {
        // An expired window with nothing left out carries no count worth keeping.
        bool drop = now_ms - w->second.start_ms >= window_ms_ && w->second.suppressed == 0;
        w = drop ? windows_.erase(w) : std::next(w);
      }
    }
    std::string key = windows_.size() >= max_addresses_ ? std::string("*") : address;
    it = windows_.find(key);
    if (it == windows_.end()) {
      windows_.emplace(key, Window{now_ms, 0});
      return 0;
    }
  }
  Window& w = it->second;
  if (now_ms - w.start_ms < window_ms_) {
    ++w.suppressed;
    return std::nullopt;
  }
  int64_t left_out = w.suppressed;
  w = Window{now_ms, 0};
  return left_out;
}

}  // namespace factory::http
