#include "http/jwt.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "base/clock.h"

namespace factory::http {

namespace json = boost::json;

namespace {

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A JSON object from decoded bytes; *error says why not.
std::optional<json::object> parse_object(std::string_view text, std::string* error) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 16;  // claims are shallow; deep nesting is only ever an attack
  json::value v = json::parse(text, ec, {}, opt);
  if (ec) {
    *error = "is not JSON (" + ec.message() + ")";
    return std::nullopt;
  }
  if (!v.is_object()) {
    *error = "is JSON but not an object";
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// Reads an optional string member; false (with *error) when present with another type.
bool get_string(const json::object& o, std::string_view key, std::string* out, std::string* error) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_string()) {
    *error = fmt::format("claim '{}' must be a string", key);
    return false;
  }
  *out = std::string(v->as_string());
  return true;
}

bool get_number(const json::object& o, std::string_view key, std::optional<double>* out,
                std::string* error) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_number()) {
    *error = fmt::format("claim '{}' must be a number (seconds since 1970)", key);
    return false;
  }
  double d = v->to_number<double>();
  if (!std::isfinite(d)) {
    *error = fmt::format("claim '{}' is not a finite number", key);
    return false;
  }
  *out = d;
  return true;
}

// Walks role_claim ("realm_access.roles") through nested objects. A string is split on spaces
// (OAuth2 "scope"); an array keeps its strings and ignores anything else.
void read_roles(const json::object& payload, std::string_view path, ParsedJwt* out) {
  const json::object* at = &payload;
  const json::value* v = nullptr;
  while (true) {
    size_t dot = path.find('.');
    std::string_view part = path.substr(0, dot);
    v = at->if_contains(part);
    if (v == nullptr) return;
    if (dot == std::string_view::npos) break;
    if (!v->is_object()) return;
    at = &v->as_object();
    path.remove_prefix(dot + 1);
  }
  out->has_role_claim = true;
  if (v->is_string()) {
    std::string_view s = v->as_string();
    size_t i = 0;
    while (i < s.size()) {
      size_t end = s.find(' ', i);
      if (end == std::string_view::npos) end = s.size();
      if (end > i) out->roles.emplace_back(s.substr(i, end - i));
      i = end + 1;
    }
  } else if (v->is_array()) {
    for (const json::value& item : v->as_array()) {
      if (item.is_string()) out->roles.emplace_back(item.as_string());
    }
  }
}

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::shared_ptr<void> share(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

// RSA public key from the JWK's n and e (big-endian bytes).
EVP_PKEY* rsa_key(const std::string& n, const std::string& e) {
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY* key = nullptr;
  if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
      (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    if (ctx && EVP_PKEY_fromdata_init(ctx) > 0) {
      if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) key = nullptr;
    }
    EVP_PKEY_CTX_free(ctx);
  }
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  return key;
}

// P-256 public key from x and y (32 bytes each); null when the point is not on the curve.
EVP_PKEY* ec256_key(const std::string& x, const std::string& y) {
  if (x.size() != 32 || y.size() != 32) return nullptr;
  std::string point = "\x04" + x + y;  // SEC1 uncompressed
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("prime256v1"),
                                       0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  if (ctx && EVP_PKEY_fromdata_init(ctx) > 0) {
    if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) key = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  if (key != nullptr) {
    // fromdata does not always check the point; an off-curve point is an invalid-curve attack.
    EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
    bool ok = check && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!ok) {
      EVP_PKEY_free(key);
      key = nullptr;
    }
  }
  return key;
}

// JWS ES256 signatures are r||s (32 bytes each); OpenSSL verifies DER ECDSA-Sig-Value.
std::optional<std::string> es256_to_der(const std::string& raw) {
  if (raw.size() != 64) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, 32, nullptr);
  BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (!r || !s || !sig || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);  // owns r and s
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verify_signature(const Jwk& key, const ParsedJwt& t) {
  std::string sig = t.signature;
  if (key.type == Jwk::Type::kEc256) {
    auto der = es256_to_der(sig);
    if (!der) return false;
    sig = std::move(*der);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx &&
            EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr,
                                 static_cast<EVP_PKEY*>(key.pkey.get())) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(t.signing_input.data()),
                             t.signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

JwtVerdict refuse(std::string why, int status = 401) {
  JwtVerdict v;
  v.status = status;
  v.why = std::move(why);
  return v;
}

std::string when(double epoch_s) {
  return base::format_iso8601_utc(static_cast<int64_t>(epoch_s) * 1000);
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64url_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical tail
  return out;
}

std::string base64url_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

Result<ParsedJwt> parse_jwt(std::string_view token, std::string_view role_claim) {
  if (token.size() > kMaxJwtBytes) {
    return Status::invalid_argument(
        fmt::format("the bearer token is {} bytes; JWTs over {} bytes are refused", token.size(),
                    kMaxJwtBytes));
  }
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return Status::invalid_argument(
        "the bearer token is not a JWT: a JWS has three base64url parts separated by '.'");
  }
  std::string_view parts[3] = {token.substr(0, d1), token.substr(d1 + 1, d2 - d1 - 1),
                               token.substr(d2 + 1)};
  static constexpr const char* kNames[3] = {"header", "payload", "signature"};
  std::string decoded[3];
  for (int i = 0; i < 3; ++i) {
    auto d = base64url_decode(parts[i]);
    if (!d) {
      return Status::invalid_argument(
          fmt::format("the JWT's {} is not base64url (RFC 4648 §5, unpadded)", kNames[i]));
    }
    decoded[i] = std::move(*d);
  }
  ParsedJwt out;
  std::string error;
  auto header = parse_object(decoded[0], &error);
  if (!header) return Status::invalid_argument("the JWT's header " + error);
  auto payload = parse_object(decoded[1], &error);
  if (!payload) return Status::invalid_argument("the JWT's payload " + error);
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string()) {
    return Status::invalid_argument("the JWT's header has no \"alg\" string");
  }
  out.alg = std::string(alg->as_string());
  if (!get_string(*header, "kid", &out.kid, &error) ||
      !get_string(*header, "typ", &out.typ, &error)) {
    return Status::invalid_argument("the JWT's header: " + error);
  }
  if (header->contains("crit")) {
    // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
    return Status::invalid_argument("the JWT's header has \"crit\" extensions, not supported");
  }
  if (!get_string(*payload, "iss", &out.iss, &error) ||
      !get_string(*payload, "sub", &out.sub, &error) ||
      !get_string(*payload, "preferred_username", &out.preferred_username, &error) ||
      !get_string(*payload, "typ", &out.token_type, &error) ||
      !get_number(*payload, "exp", &out.exp, &error) ||
      !get_number(*payload, "nbf", &out.nbf, &error)) {
    return Status::invalid_argument("the JWT's payload: " + error);
  }
  if (const json::value* aud = payload->if_contains("aud")) {
    if (aud->is_string()) {
      out.aud.emplace_back(aud->as_string());
    } else if (aud->is_array()) {
      for (const json::value& a : aud->as_array()) {
        if (!a.is_string()) {
          return Status::invalid_argument("the JWT's payload: claim 'aud' must hold strings");
        }
        out.aud.emplace_back(a.as_string());
      }
    } else {
      return Status::invalid_argument(
          "the JWT's payload: claim 'aud' must be a string or an array of strings");
    }
  }
  if (!role_claim.empty()) read_roles(*payload, role_claim, &out);
  out.signing_input = std::string(token.substr(0, d2));
  out.signature = std::move(decoded[2]);
  return out;
}

Result<JwkSet> JwkSet::parse(std::string_view text) {
  std::string error;
  auto doc = parse_object(text, &error);
  if (!doc) return Status::invalid_argument("the JWKS " + error);
  const json::value* keys = doc->if_contains("keys");
  if (keys == nullptr || !keys->is_array()) {
    return Status::invalid_argument("the JWKS has no \"keys\" array");
  }
  JwkSet set;
  size_t i = 0;
  for (const json::value& item : keys->as_array()) {
    std::string at = fmt::format("JWKS key {}", i++);
    if (!item.is_object()) return Status::invalid_argument(at + " is not an object");
    const json::object& o = item.as_object();
    Jwk k;
    std::string kty, use, crv;
    if (!get_string(o, "kid", &k.kid, &error) || !get_string(o, "kty", &kty, &error) ||
        !get_string(o, "alg", &k.alg, &error) || !get_string(o, "use", &use, &error) ||
        !get_string(o, "crv", &crv, &error)) {
      return Status::invalid_argument(at + ": " + error);
    }
    std::string name = k.kid.empty() ? at : "'" + printable(k.kid) + "'";
    auto member = [&](std::string_view m) -> std::optional<std::string> {
      const json::value* v = o.if_contains(m);
      if (v == nullptr || !v->is_string()) return std::nullopt;
      return base64url_decode(v->as_string());
    };
    if (!use.empty() && use != "sig") {
      set.skipped_.push_back(name + " (use is not sig)");
      continue;
    }
    if (kty == "RSA") {
      auto n = member("n");
      auto e = member("e");
      if (!n || !e || n->empty() || e->empty()) {
        return Status::invalid_argument(at + ": an RSA key needs base64url n and e");
      }
      size_t lead = n->find_first_not_of('\0');
      size_t bits = lead == std::string::npos ? 0 : (n->size() - lead) * 8;
      if (bits < 2048) {
        set.skipped_.push_back(name + " (RSA under 2048 bits)");
        continue;
      }
      EVP_PKEY* pk = rsa_key(*n, *e);
      if (pk == nullptr) return Status::invalid_argument(at + ": OpenSSL refused the RSA key");
      k.type = Jwk::Type::kRsa;
      k.pkey = share(pk);
    } else if (kty == "EC" && crv == "P-256") {
      auto x = member("x");
      auto y = member("y");
      EVP_PKEY* pk = x && y ? ec256_key(*x, *y) : nullptr;
      if (pk == nullptr) {
        return Status::invalid_argument(at +
                                        ": a P-256 key needs x and y (32 bytes each, base64url) "
                                        "of a point on the curve");
      }
      k.type = Jwk::Type::kEc256;
      k.pkey = share(pk);
    } else {
      set.skipped_.push_back(name + " (kty " + printable(kty) +
                             (crv.empty() ? "" : " " + printable(crv)) + " not supported)");
      continue;
    }
    set.keys_.push_back(std::move(k));
  }
  return set;
}

const Jwk* JwkSet::find(std::string_view kid) const {
  if (kid.empty()) return keys_.size() == 1 ? &keys_[0] : nullptr;
  for (const Jwk& k : keys_) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

JwtVerdict verify_jwt(std::string_view token, const JwkSet& keys, const JwtPolicy& policy,
                      int64_t now_ms) {
  auto parsed = parse_jwt(token, policy.role_claim);
  if (!parsed.ok()) return refuse(std::string(parsed.status().message()));
  const ParsedJwt& t = *parsed;

  // The algorithm first: no key is looked up for a token we would never accept.
  std::string alg = lower(t.alg);
  if (alg == "none") {
    return refuse("the JWT is unsigned (alg 'none'); only RS256 and ES256 tokens are accepted");
  }
  if (alg.starts_with("hs")) {
    return refuse(fmt::format(
        "the JWT uses HMAC (alg '{}'); only RS256 and ES256 tokens signed with the identity "
        "provider's private key are accepted",
        printable(t.alg)));
  }
  if (t.alg != "RS256" && t.alg != "ES256") {
    return refuse(
        fmt::format("the JWT's alg '{}' is not supported; use RS256 or ES256", printable(t.alg)));
  }
  if (!t.typ.empty()) {
    std::string typ = lower(t.typ);
    if (typ != "jwt" && typ != "at+jwt" && typ != "application/at+jwt") {
      return refuse(fmt::format("the JWT's header typ '{}' is not an access token (JWT, at+jwt)",
                                printable(t.typ)));
    }
  }
  const Jwk* key = keys.find(t.kid);
  if (key == nullptr) {
    JwtVerdict v = refuse(
        t.kid.empty()
            ? fmt::format("the JWT has no kid and the JWKS holds {} usable keys, not one",
                          keys.size())
            : fmt::format("the JWT's key id (kid) '{}' is not in the JWKS", printable(t.kid)));
    v.unknown_kid = true;
    return v;
  }
  Jwk::Type want = t.alg == "RS256" ? Jwk::Type::kRsa : Jwk::Type::kEc256;
  if (key->type != want || (!key->alg.empty() && key->alg != t.alg)) {
    return refuse(fmt::format("the JWT's alg {} does not fit key '{}' ({}{})", t.alg,
                              printable(key->kid),
                              key->type == Jwk::Type::kRsa ? "RSA" : "EC P-256",
                              key->alg.empty() ? "" : ", alg " + key->alg));
  }
  if (!verify_signature(*key, t)) {
    return refuse(fmt::format(
        "the JWT's signature does not verify with key '{}'; the token was altered or not "
        "issued by the configured identity provider",
        printable(key->kid)));
  }

  // Claims: only after the signature, so nothing unsigned is believed.
  double now_s = static_cast<double>(now_ms) / 1000.0;
  double leeway = static_cast<double>(policy.leeway_s);
  if (!t.exp) return refuse("the JWT has no exp (expiry) claim; access tokens must expire");
  if (now_s > *t.exp + leeway) {
    return refuse(fmt::format("the JWT expired at {}; get a new access token", when(*t.exp)));
  }
  if (t.nbf && now_s + leeway < *t.nbf) {
    return refuse(fmt::format("the JWT is not valid before {}; check the clocks", when(*t.nbf)));
  }
  if (t.iss != policy.issuer) {
    return refuse(fmt::format("the JWT's issuer '{}' is not the configured auth.jwt.issuer '{}'",
                              printable(t.iss, 200), policy.issuer));
  }
  if (std::find(t.aud.begin(), t.aud.end(), policy.audience) == t.aud.end()) {
    return refuse(fmt::format(
        "the JWT's audience (aud) does not include '{}'; in Keycloak add an audience mapper for "
        "this client",
        policy.audience));
  }
  if (!t.token_type.empty() && lower(t.token_type) != "bearer") {
    // Keycloak marks ID tokens "ID" and refresh tokens "Refresh": not for API calls.
    return refuse(fmt::format("the JWT is a '{}' token, not an access (Bearer) token",
                              printable(t.token_type)));
  }
  if (t.sub.empty() || t.sub.size() > 255 ||
      std::any_of(t.sub.begin(), t.sub.end(), [](char c) { return c >= 0 && c < 0x20; })) {
    return refuse("the JWT has no usable sub (subject) claim: 1 to 255 characters, no control");
  }

  JwtVerdict v;
  v.subject = t.sub;
  if (t.preferred_username.size() <= 255) v.username = printable(t.preferred_username, 255);
  for (const std::string& value : t.roles) {
    for (const auto& [name, role] : policy.role_map) {
      if (name == value && role > v.role) v.role = role;
    }
  }
  if (v.role == Role::kPublic) {
    v.status = 403;
    v.why = fmt::format(
        "the JWT for subject '{}' carries no role factoryd maps: {} (see auth.jwt.roles in the "
        "daemon config, or grant the user one of those roles)",
        printable(t.sub),
        t.has_role_claim ? "none of the values in claim " + policy.role_claim + " is mapped"
                         : "it has no claim " + policy.role_claim);
    return v;
  }
  v.status = 0;
  return v;
}

}  // namespace factory::http
