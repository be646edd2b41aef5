#include "http/jwt.h"

#include <string>

#include <fmt/format.h>

#include "http/jwt_signer.h"
#include "test_util.h"

namespace factory::http {
namespace {

using test::ec_key_for_test;
using test::hs256_for_test;
using test::KeyForTest;
using test::rsa_key_for_test;
using test::sign_for_test;

using test::Claims;
using test::kNowMs;
using test::kNowS;
using test::policy_for_test;

struct Keys {
  KeyForTest rsa = rsa_key_for_test("rsa-1");
  KeyForTest ec = ec_key_for_test("ec-1");
  JwkSet set;
  Keys() {
    auto parsed = JwkSet::parse(test::jwks_for_test({&rsa, &ec}));
    REQUIRE_OK(parsed);
    set = std::move(*parsed);
    REQUIRE(set.size() == 2);
  }
  JwtVerdict check(const std::string& token, const JwtPolicy& p = policy_for_test()) const {
    JwtVerdict v = verify_jwt(token, set, p, kNowMs);
    if (v.status != 0) {
      INFO(v.why);
      CHECK(v.why.find(token) == std::string::npos);  // a refusal never echoes the token
    }
    return v;
  }
};

Keys& keys() {
  static Keys k;  // RSA key generation is slow; one set for the file
  return k;
}

TEST_CASE("jwt: valid RS256 and ES256 tokens are accepted with the mapped role", "[http][jwt]") {
  Keys& k = keys();
  for (const KeyForTest* key : {&k.rsa, &k.ec}) {
    INFO(key->kid);
    JwtVerdict v = k.check(sign_for_test(test::header_for_test(*key), Claims{}.json(), *key));
    CHECK(v.why == "");
    REQUIRE(v.status == 0);
    CHECK(v.role == Role::kOperator);  // the highest of viewer and operator
    CHECK(v.subject == "0b7c-4d2e");
    CHECK(v.username == "alice");
  }
  SECTION("aud as a string, a plain scope claim as the roles") {
    Claims c;
    c.aud = R"("factoryd")";
    JwtPolicy p = policy_for_test();
    p.role_claim = "scope";
    JwtVerdict v = k.check(sign_for_test(test::header_for_test(k.rsa), c.json(), k.rsa), p);
    REQUIRE(v.status == 0);
    CHECK(v.role == Role::kAdmin);
  }
  SECTION("exp and nbf within the leeway") {
    Claims c;
    c.exp = kNowS - 59;
    c.nbf = std::to_string(kNowS + 59);
    CHECK(k.check(sign_for_test(test::header_for_test(k.ec), c.json(), k.ec)).status == 0);
  }
}

TEST_CASE("jwt: wrong times, issuer, audience or type are refused with 401", "[http][jwt]") {
  Keys& k = keys();
  auto refused = [&](const Claims& c, std::string_view why) {
    JwtVerdict v = k.check(sign_for_test(test::header_for_test(k.rsa), c.json(), k.rsa));
    INFO(v.why);
    CHECK(v.status == 401);
    CHECK(v.why.find(why) != std::string::npos);
  };
  Claims c;
  c.exp = kNowS - 61;
  refused(c, "expired at 2027-01-15T07:58:59");
  c = Claims{};
  c.nbf = std::to_string(kNowS + 61);
  refused(c, "not valid before");
  c = Claims{};
  c.iss = "https://evil.test/realms/factory";
  refused(c, "issuer 'https://evil.test/realms/factory' is not the configured");
  c = Claims{};
  c.aud = R"(["account"])";
  refused(c, "audience (aud) does not include 'factoryd'");
  c = Claims{};
  c.typ = "ID";
  refused(c, "not an access (Bearer) token");
  c = Claims{};
  c.sub = "";
  refused(c, "no usable sub");
}

TEST_CASE("jwt: no mapped role is 403 naming the claim", "[http][jwt]") {
  Keys& k = keys();
  Claims c;
  c.roles = R"(["offline_access","uma_authorization"])";
  JwtVerdict v = k.check(sign_for_test(test::header_for_test(k.rsa), c.json(), k.rsa));
  CHECK(v.status == 403);
  CHECK(v.why.find("none of the values in claim realm_access.roles is mapped") !=
        std::string::npos);
  JwtPolicy p = policy_for_test();
  p.role_claim = "resource_access.factoryd.roles";
  v = k.check(sign_for_test(test::header_for_test(k.rsa), Claims{}.json(), k.rsa), p);
  CHECK(v.status == 403);
  CHECK(v.why.find("it has no claim resource_access.factoryd.roles") != std::string::npos);
}

TEST_CASE("jwt: forged and malformed tokens are refused, saying what is wrong", "[http][jwt]") {
  Keys& k = keys();
  const std::string good = sign_for_test(test::header_for_test(k.rsa), Claims{}.json(), k.rsa);
  const std::string header_b64 = good.substr(0, good.find('.'));
  const std::string sig_b64 = good.substr(good.rfind('.') + 1);
  auto refused = [&](const std::string& token, std::string_view why) {
    JwtVerdict v = k.check(token);
    INFO(v.why);
    CHECK(v.status == 401);
    CHECK(v.why.find(why) != std::string::npos);
    return v;
  };

  SECTION("tampered payload: admin roles pasted under the original signature") {
    Claims c;
    c.roles = R"(["factory-admin"])";
    refused(header_b64 + "." + base64url_encode(c.json()) + "." + sig_b64,
            "signature does not verify with key 'rsa-1'");
  }
  SECTION("alg none, unsigned") {
    for (const char* alg : {"none", "None", "NONE"}) {
      refused(base64url_encode(fmt::format(R"({{"alg":"{}","kid":"rsa-1"}})", alg)) + "." +
                  base64url_encode(Claims{}.json()) + ".",
              "unsigned (alg 'none')");
    }
  }
  SECTION("HS256 keyed with the provider's public key PEM") {
    std::string pem = test::public_pem_for_test(k.rsa);
    refused(hs256_for_test(R"({"alg":"HS256","typ":"JWT","kid":"rsa-1"})", Claims{}.json(), pem),
            "uses HMAC (alg 'HS256')");
  }
  SECTION("an algorithm that does not fit the key's type") {
    // RS256 header naming the EC key; ES256 header naming the RSA key.
    refused(sign_for_test(R"({"alg":"RS256","kid":"ec-1"})", Claims{}.json(), k.rsa),
            "alg RS256 does not fit key 'ec-1' (EC P-256");
    refused(sign_for_test(R"({"alg":"ES256","kid":"rsa-1"})", Claims{}.json(), k.ec),
            "alg ES256 does not fit key 'rsa-1' (RSA");
    refused(sign_for_test(R"({"alg":"PS256","kid":"rsa-1"})", Claims{}.json(), k.rsa),
            "alg 'PS256' is not supported");
  }
  SECTION("ES256 with a DER signature, not JWS's r||s") {
    refused(sign_for_test(test::header_for_test(k.ec), Claims{}.json(), k.ec, /*der=*/true),
            "signature does not verify with key 'ec-1'");
  }
  SECTION("an unknown kid, and a kid with control characters") {
    KeyForTest other = ec_key_for_test("rotated-2");
    JwtVerdict v = refused(sign_for_test(test::header_for_test(other), Claims{}.json(), other),
                           "key id (kid) 'rotated-2' is not in the JWKS");
    CHECK(v.unknown_kid);
    other.kid = "a\\nb\\u001b[2J";
    v = refused(sign_for_test(test::header_for_test(other), Claims{}.json(), other),
                "key id (kid) 'a?b?[2J' is not in the JWKS");
  }
  SECTION("malformed base64url, JSON and shape") {
    refused("abc.def", "not a JWT: a JWS has three base64url parts");
    refused("a.b.c.d", "not a JWT");
    refused(header_b64 + "=." + base64url_encode(Claims{}.json()) + "." + sig_b64,
            "header is not base64url");
    refused(header_b64 + ".e30+." + sig_b64, "payload is not base64url");
    refused(header_b64 + "." + base64url_encode("{\"sub\":") + "." + sig_b64,
            "payload is not JSON");
    refused(header_b64 + "." + base64url_encode("[1,2]") + "." + sig_b64,
            "payload is JSON but not an object");
    refused(base64url_encode(R"({"kid":"rsa-1"})") + "." + base64url_encode("{}") + "." + sig_b64,
            "header has no \"alg\" string");
    refused(header_b64 + "." + base64url_encode(R"({"exp":"tomorrow"})") + "." + sig_b64,
            "claim 'exp' must be a number");
    refused(header_b64 + "." + base64url_encode(R"({"aud":7})") + "." + sig_b64,
            "claim 'aud' must be a string or an array");
  }
  SECTION("oversized") {
    Claims c;
    c.roles = "[\"" + std::string(9000, 'r') + "\"]";
    refused(sign_for_test(test::header_for_test(k.rsa), c.json(), k.rsa),
            "JWTs over 8192 bytes are refused");
  }
}

TEST_CASE("jwt: base64url is strict", "[http][jwt]") {
  CHECK(base64url_decode("") == std::string());
  CHECK(base64url_decode("YQ") == std::string("a"));
  CHECK(base64url_decode("YWI") == std::string("ab"));
  CHECK(base64url_decode("-_8") == std::string("\xfb\xff"));
  CHECK(!base64url_decode("YQ=="));  // padding
  CHECK(!base64url_decode("YR"));    // non-zero trailing bits: a second spelling of "a"
  CHECK(!base64url_decode("Y"));     // a lone sextet
  CHECK(!base64url_decode("+/8"));   // the other alphabet
  CHECK(base64url_encode("\xfb\xff") == "-_8");
}

TEST_CASE("jwt: JWKS keys we cannot use are skipped, broken ones refused", "[http][jwt]") {
  Keys& k = keys();
  auto set =
      JwkSet::parse(R"({"keys":[{"kid":"enc","kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},)"
                    R"({"kid":"small","kty":"RSA","n":"AQAB","e":"AQAB"},)"
                    R"({"kid":"hmac","kty":"oct","k":"c2VjcmV0"},)" +
                    test::jwk_for_test(k.ec) + "]}");
  REQUIRE_OK(set);
  CHECK(set->size() == 1);
  CHECK(set->skipped().size() == 3);
  CHECK(set->find("ec-1") != nullptr);
  CHECK(set->find("") != nullptr);  // one key: a token without kid may use it
  CHECK(set->find("hmac") == nullptr);

  CHECK(!JwkSet::parse("[]").ok());
  CHECK(!JwkSet::parse(R"({"keys":{}})").ok());
  CHECK(!JwkSet::parse(R"({"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]})").ok());
  // A point off the curve (invalid-curve attacks): refused, not loaded.
  std::string bad = test::jwk_for_test(k.ec);
  size_t y = bad.find(R"("y":")") + 5;
  bad[y] = bad[y] == 'A' ? 'B' : 'A';
  auto off = JwkSet::parse("{\"keys\":[" + bad + "]}");
  REQUIRE_FALSE(off.ok());
  CHECK(off.status().message().find("point on the curve") != std::string::npos);
}

}  // namespace
}  // namespace factory::http
