// JWT bearer access tokens (RFC 7519 in JWS compact form, RFC 7515) checked against a JSON Web
// Key Set (RFC 7517): the pure half of OAuth2 sign-in — parsing, signature, claims, role.
// Fetching and caching the key set is jwks.h's; the server (server.cpp) calls JwtAuthenticator.
//
// Accepted: RS256 with an RSA key of 2048 bits or more, ES256 with a P-256 key; the JWK's kty
// (and its alg, when it declares one) must fit the token's alg. Refused, each with a message
// that says what is wrong (never the token): alg "none", HS* (HMAC keyed with a public key is
// the classic forgery), other algorithms, an unknown kid, bad base64url or JSON, tokens over
// kMaxJwtBytes, a wrong iss or aud, exp past or nbf ahead (both with leeway_s), no sub.
//
// Thread-safety: JwkSet is immutable after parse() and safe to share; the functions are pure.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"
#include "http/router.h"

namespace factory::http {

inline constexpr size_t kMaxJwtBytes = 8 * 1024;  // Keycloak tokens with many roles: ~2-4 KiB

// What a verified token must say, from the daemon config (auth.jwt.*).
struct JwtPolicy {
  std::string issuer;    // "iss" must equal this exactly
  std::string audience;  // "aud" (a string or an array of strings) must hold this
  int64_t leeway_s = 60;
  // Dotted path to the claim naming roles: a string (space-separated, like "scope") or an
  // array of strings. Keycloak realm roles: "realm_access.roles".
  std::string role_claim = "realm_access.roles";
  // Claim value → role; the highest mapped role wins.
  std::vector<std::pair<std::string, Role>> role_map;
};

// auth.jwt.* in the daemon config. Enabled when jwks_url or jwks_file is set.
struct JwtOptions {
  std::string jwks_url;      // https://... (http:// only to a loopback address)
  std::string jwks_file;     // a JWKS JSON file (one of url and file)
  std::string jwks_ca_file;  // CA bundle for jwks_url ("" = the system store)
  JwtPolicy policy;
  int64_t min_refresh_s = 30;  // fetches for unknown kids: at most one per this
  int64_t fetch_timeout_ms = 5'000;
  bool enabled() const { return !jwks_url.empty() || !jwks_file.empty(); }
};

// Checks a JwtOptions without loading anything (jwks.cpp). InvalidArgument saying what to fix.
Status validate_jwt_options(const JwtOptions& options);

// A token's parts and the claims factoryd reads, before any check.
struct ParsedJwt {
  std::string alg;
  std::string kid;            // "" when absent
  std::string typ;            // header typ, "" when absent
  std::string signing_input;  // "<header b64>.<payload b64>": what the signature covers
  std::string signature;      // decoded bytes
  std::string iss, sub, preferred_username, token_type;  // token_type: payload "typ"
  std::vector<std::string> aud;
  std::optional<double> exp, nbf;
  bool has_role_claim = false;
  std::vector<std::string> roles;  // the values found at role_claim
};

// Splits and decodes a compact JWS and reads its claims (role values from role_claim).
// InvalidArgument naming the part at fault: not three parts, bad base64url, a header or payload
// that is not a JSON object, a claim of the wrong type, over kMaxJwtBytes.
Result<ParsedJwt> parse_jwt(std::string_view token, std::string_view role_claim);

// One public key from a JWKS.
struct Jwk {
  enum class Type { kRsa, kEc256 };
  std::string kid;
  Type type = Type::kRsa;
  std::string alg;             // as declared; "" when the JWK leaves it out
  std::shared_ptr<void> pkey;  // EVP_PKEY*; shared so JwkSet copies are cheap (immutable)
};

// A parsed key set. Keys that cannot sign tokens we accept (use "enc", kty "oct" or "OKP",
// RSA under 2048 bits, other curves) are skipped and named in skipped().
class JwkSet {
 public:
  // InvalidArgument for JSON that is not {"keys": [...]}, or a key it cannot read (bad
  // base64url in n/e/x/y); a set with no usable key parses (every token then gets "unknown kid").
  static Result<JwkSet> parse(std::string_view json);

  // The key with that kid; with kid "" the only key when there is exactly one. Null if none.
  const Jwk* find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  std::vector<Jwk> keys_;
  std::vector<std::string> skipped_;  // "kid (why)"
};

// The outcome of checking one token.
struct JwtVerdict {
  int status = 401;  // 0 accepted; 401 not authenticated; 403 authenticated but no mapped role
  std::string why;   // for the caller when refused
  bool unknown_kid = false;  // refused because no key has its kid: the key set may be stale
  std::string subject;
  std::string username;  // preferred_username, "" when absent
  Role role = Role::kPublic;
};

// Checks token against keys and policy at now_ms (Unix epoch ms).
JwtVerdict verify_jwt(std::string_view token, const JwkSet& keys, const JwtPolicy& policy,
                      int64_t now_ms);

// RFC 4648 §5 without padding, strict: no '=', no other characters, zero trailing bits.
std::optional<std::string> base64url_decode(std::string_view in);
std::string base64url_encode(std::string_view in);

// Keeps printable ASCII (up to max), so a kid or sub in a message cannot forge log lines.
std::string printable(std::string_view s, size_t max = 64);

}  // namespace factory::http
