// Keys, JWKS and signed tokens made in the test with OpenSSL's C API: what an identity
// provider (Keycloak) would issue, and what an attacker would forge.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "http/jwt.h"

namespace factory::http::test {

inline constexpr int64_t kNowS = 1'800'000'000;  // a fixed "now": tokens' times are relative to it
inline constexpr int64_t kNowMs = kNowS * 1000;

inline JwtPolicy policy_for_test() {
  JwtPolicy p;
  p.issuer = "https://sso.test/realms/factory";
  p.audience = "factoryd";
  p.leeway_s = 60;
  p.role_map = {{"factory-viewer", Role::kViewer},
                {"factory-operator", Role::kOperator},
                {"factory-admin", Role::kAdmin}};
  return p;
}

// A Keycloak-shaped access token's claims; tests change one field at a time.
struct Claims {
  std::string iss = "https://sso.test/realms/factory";
  std::string aud = R"(["factoryd","account"])";
  std::string sub = "0b7c-4d2e";
  std::string username = "alice";
  std::string typ = "Bearer";
  int64_t iat = kNowS;
  int64_t exp = kNowS + 300;
  std::string nbf;  // "" = none
  std::string roles = R"(["offline_access","factory-viewer","factory-operator"])";

  std::string json() const {
    return fmt::format(
        R"({{"iss":"{}","aud":{},"sub":"{}","preferred_username":"{}","typ":"{}","exp":{},"iat":{}{},"realm_access":{{"roles":{}}},"scope":"openid factory-admin"}})",
        iss, aud, sub, username, typ, exp, iat, nbf.empty() ? "" : ",\"nbf\":" + nbf, roles);
  }
};

struct KeyForTest {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string kid;
  bool ec = false;
};

inline KeyForTest rsa_key_for_test(std::string kid) {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  return {std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free), std::move(kid), false};
}

inline KeyForTest ec_key_for_test(std::string kid) {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  return {std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free), std::move(kid), true};
}

inline std::string bn_param_for_test(const KeyForTest& k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(k.pkey.get(), name, &bn);
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  if (pad > 0) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  BN_free(bn);
  return out;
}

// One JWK object (public part only), as Keycloak's certs endpoint lists it.
inline std::string jwk_for_test(const KeyForTest& k) {
  if (k.ec) {
    return R"({"kid":")" + k.kid + R"(","kty":"EC","alg":"ES256","use":"sig","crv":"P-256","x":")" +
           base64url_encode(bn_param_for_test(k, OSSL_PKEY_PARAM_EC_PUB_X, 32)) + R"(","y":")" +
           base64url_encode(bn_param_for_test(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + R"("})";
  }
  return R"({"kid":")" + k.kid + R"(","kty":"RSA","alg":"RS256","use":"sig","n":")" +
         base64url_encode(bn_param_for_test(k, OSSL_PKEY_PARAM_RSA_N)) + R"(","e":")" +
         base64url_encode(bn_param_for_test(k, OSSL_PKEY_PARAM_RSA_E)) + R"("})";
}

inline std::string jwks_for_test(std::initializer_list<const KeyForTest*> keys) {
  std::string out = R"({"keys":[)";
  for (const KeyForTest* k : keys) out += (out.back() == '[' ? "" : ",") + jwk_for_test(*k);
  return out + "]}";
}

inline std::string public_pem_for_test(const KeyForTest& k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k.pkey.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// header.payload signed with k (RS256, or ES256 as JWS's raw r||s). der=true keeps ES256's
// DER signature, which a JWS must not carry.
inline std::string sign_for_test(const std::string& header_json, const std::string& payload_json,
                                 const KeyForTest& k, bool der = false) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, k.pkey.get());
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (k.ec && !der) {
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(es);
    sig = raw;
  }
  return input + "." + base64url_encode(sig);
}

// The classic forgery: HS256 keyed with the provider's public key PEM.
inline std::string hs256_for_test(const std::string& header_json, const std::string& payload_json,
                                  const std::string& key) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

inline std::string header_for_test(const KeyForTest& k) {
  return std::string(R"({"alg":")") + (k.ec ? "ES256" : "RS256") + R"(","typ":"JWT","kid":")" +
         k.kid + R"("})";
}

}  // namespace factory::http::test
