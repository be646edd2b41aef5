// Fuzz target: JWT bearer tokens and JWKS documents (src/http/jwt.h), the parsers that see what
// an unauthenticated caller sends in Authorization and what an identity provider serves.
// Input: a JWKS document when it starts with '{', else a bearer token checked against a fixed
// key set (one P-256 key, one RSA key) at a fixed time.
// Properties: base64url decoding is canonical (decode then encode gives the input back); a
// refusal never echoes a well-formed token; a token is accepted only with one of the keys'
// signatures — and the seeds in corpus/jwt/ are the only signed payloads, so an accepted token is
// theirs (subject 0b7c-4d2e, operator); a parsed JWKS finds only keys it holds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/jwt.h"

namespace {

using factory::http::JwkSet;
using factory::http::JwtPolicy;
using factory::http::Role;

#define JWT_FUZZ_CHECK(cond, what)                    \
  do {                                                \
    if (!(cond)) {                                    \
      std::fprintf(stderr, "jwt_fuzz: %s\n", (what)); \
      std::abort();                                   \
    }                                                 \
  } while (0)

// The seeds' signer: P-256 private scalar 0x1f2e3d4c...7988 (fixed), RSA-2048 (made once).
constexpr std::string_view kJwks =
    R"({"keys":[{"kid":"fuzz-ec","kty":"EC","alg":"ES256","use":"sig","crv":"P-256",)"
    R"("x":"vXxzuIsum0ztpiAistqL4TGTpbVu3Cbn33hC4kzQtes",)"
    R"("y":"BgWtp72oOsaiuA1-MUBA-kf_Frg7rIXO2wFEUbt85xo"},)"
    R"({"kid":"fuzz-rsa","kty":"RSA","alg":"RS256","use":"sig","e":"AQAB","n":")"
    "smH1hpQc3SCKKGVLJbUWoypL2jQ2xiqHZIdfv7af7SpPVvDvamPypP4Ts7ZGB5n8NR9slJd9dM873-"
    "GFNUAoR7jp7zJ9gyioXNlYaImqkUeOOVvEgzl0KixPhGzteDIx0Z86BO6tlvs8L53s0VORD6Xqtt3PG41LyopYu477iK_"
    "6LFL-dMMy-eyTR5EbFF1VWIpCb_Q4mmAp0LClxz5Cg9ij4zQ2r5cmqHm9WND8kSbV4RfbjlB85e8fLkVyd_"
    "rIK8RZDBeXkk7k68Nthn3YmB-ss7hQKM9wbS_Dvo3FuQRT8y3jGK1jQkjvNqJLWFC4ysWX_VCWv_1YimRRSRCNQQ"
    R"("}]})";
constexpr int64_t kNowMs = 1'800'000'000'000;  // the seeds' iat

const JwkSet& keys() {
  static const JwkSet set = [] {
    auto s = JwkSet::parse(kJwks);
    JWT_FUZZ_CHECK(s.ok() && s->size() == 2, "the built-in JWKS does not parse");
    return std::move(*s);
  }();
  return set;
}

JwtPolicy policy() {
  JwtPolicy p;
  p.issuer = "https://sso.fuzz/realms/factory";
  p.audience = "factoryd";
  p.role_map = {{"factory-viewer", Role::kViewer},
                {"factory-operator", Role::kOperator},
                {"factory-admin", Role::kAdmin}};
  return p;
}

void check_base64url(std::string_view part) {
  auto decoded = factory::http::base64url_decode(part);
  if (decoded) {
    JWT_FUZZ_CHECK(factory::http::base64url_encode(*decoded) == part,
                   "base64url decoding is not canonical");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && in[0] == '{') {
    auto set = JwkSet::parse(in);
    if (set.ok()) {
      JWT_FUZZ_CHECK(set->find("") == nullptr || set->size() == 1, "kid '' found among many");
      JWT_FUZZ_CHECK(set->size() > 0 || set->find("fuzz-ec") == nullptr, "a key in an empty set");
    }
    return 0;
  }
  size_t start = 0;
  for (int i = 0; i < 4 && start <= in.size(); ++i) {
    size_t dot = in.find('.', start);
    check_base64url(in.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  bool parsed = false;
  for (const char* claim : {"realm_access.roles", "scope", "a.b.c.d", ""}) {
    parsed = factory::http::parse_jwt(in, claim).ok();
  }
  static const JwtPolicy kPolicy = policy();
  factory::http::JwtVerdict v = factory::http::verify_jwt(in, keys(), kPolicy, kNowMs);
  if (v.status == 0) {
    JWT_FUZZ_CHECK(v.subject == "0b7c-4d2e" && v.role == Role::kOperator,
                   "a token no seed signed was accepted");
  } else {
    JWT_FUZZ_CHECK(v.status == 401 || v.status == 403, "a refusal that is not 401 or 403");
    JWT_FUZZ_CHECK(v.status == 403 || v.role == Role::kPublic, "a 401 with a role");
    // Only for a token that parses: base64url and dots only, longer than any claim it
    // encodes — so it can be in the message only if the message quotes it. (Free text can be
    // a piece of a message: the fuzzer learns them.)
    JWT_FUZZ_CHECK(!parsed || v.why.find(in) == std::string::npos, "the refusal echoes the token");
  }
  return 0;
}
