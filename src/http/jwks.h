// JwtAuthenticator: OAuth2 sign-in for the server — checks JWT bearer tokens (jwt.h) against
// the identity provider's key set, fetched from a URL or read from a file and kept fresh.
//
// Operation. start() loads the key set once. A refresher thread then refetches it when it
// goes stale (Cache-Control max-age from the URL's answer, clamped to
// [kMinCacheS, kMaxCacheS]; kDefaultCacheS without one; files the same) and when a token names
// a kid the set does not hold — the provider rotated its keys — but at most once per
// min_refresh_s, so a flood of made-up kids costs one fetch per interval. authenticate() never
// waits for a fetch: it is called on the server's io threads. The token that revealed the new
// kid is refused ("retry in a moment"); once the fetch lands, tokens with that kid pass.
// A failed fetch keeps the previous keys and is retried after min_refresh_s.
//
// Thread-safety: authenticate() is safe from any thread; start() and the destructor (which
// joins the refresher) from the owner.
// Errors: start() returns InvalidArgument for bad options or an unreadable/malformed jwks_file
// (the daemon should not start on a typo); an unreachable jwks_url is logged and retried, and
// tokens are refused (401) until a set is loaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/mutex.h"
#include "factory/status.h"
#include "http/jwt.h"

namespace factory::http {

// How long a fetched JWKS is fresh, from its Cache-Control header: max-age, 0 for no-cache or
// no-store, kDefaultCacheS without either — clamped to [kMinCacheS, kMaxCacheS], so a
// provider's "no-cache" cannot turn every request into a fetch, nor a year-long max-age pin
// keys the provider has revoked.
int64_t jwks_cache_seconds(std::string_view cache_control);

class JwtAuthenticator {
 public:
  static constexpr int64_t kMinCacheS = 60;
  static constexpr int64_t kMaxCacheS = 24 * 3600;
  static constexpr int64_t kDefaultCacheS = 300;
  static constexpr size_t kMaxJwksBytes = 1 << 20;

  // *clock (token times and the refresh interval) must outlive the authenticator.
  static Result<std::unique_ptr<JwtAuthenticator>> start(
      const JwtOptions& options, const base::Clock* clock = base::SystemClock::instance());
  ~JwtAuthenticator();

  // The verdict for one bearer token (status 0, 401 or 403; see jwt.h).
  JwtVerdict authenticate(std::string_view token);

  // Fetches so far (started or finished); waits until `n` have finished or timeout_ms passed.
  uint64_t fetches_for_test() const;
  bool wait_fetches_for_test(uint64_t n, int64_t timeout_ms) const;

 private:
  JwtAuthenticator(const JwtOptions& options, const base::Clock* clock);
  Status fetch();  // loads the set once and installs it; called by start() and the refresher
  Result<std::string> read_source(int64_t* max_age_s) const;
  void run();  // the refresher thread

  const JwtOptions options_;
  const base::Clock* const clock_;
  const std::string source_;  // "the JWKS at <url>" / "the JWKS file <path>", for messages

  mutable base::Mutex mu_;
  mutable base::CondVar cv_{&mu_};  // refresher wake-ups and finished fetches
  // Immutable snapshots swapped whole: a request keeps its set alive while it checks.
  std::shared_ptr<const JwkSet> keys_ GUARDED_BY(mu_);
  std::string last_error_ GUARDED_BY(mu_);
  int64_t last_fetch_ms_ GUARDED_BY(mu_) = 0;  // clock_ time the last fetch started
  std::chrono::steady_clock::time_point next_due_ GUARDED_BY(mu_);
  bool wanted_ GUARDED_BY(mu_) = false;  // an unknown kid asked for a fetch
  bool stop_ GUARDED_BY(mu_) = false;
  uint64_t fetches_done_ GUARDED_BY(mu_) = 0;
  std::thread refresher_;  // last: started after everything it reads
};

}  // namespace factory::http
