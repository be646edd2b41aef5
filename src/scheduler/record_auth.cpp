#include "scheduler/record_auth.h"

#include <array>
#include <cstdint>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "obs/metrics.h"

namespace factory::scheduler {
namespace {

constexpr std::string_view kDomain = "factoryd-record-v1";
constexpr std::string_view kVersionPrefix = "v1=";

void put_u32(std::string* out, size_t n) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((n >> shift) & 0xFF));
}

void put_field(std::string* out, std::string_view field) {
  put_u32(out, field.size());
  out->append(field);
}

std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0xF]);
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<const RecordAuth>> RecordAuth::load_or_create(store::MetaStore* store) {
  auto stored = store->get_kv(kStoreKey);
  if (!stored.ok()) return stored.status();
  if (*stored) {
    std::string key = **stored;
    if (key.size() != kKeyBytes * 2) {
      return Status::corruption("the store's " + std::string(kStoreKey) + " is not " +
                                std::to_string(kKeyBytes) +
                                " bytes of hex; the data dir's factory.db was altered");
    }
    return std::shared_ptr<const RecordAuth>(new RecordAuth(std::move(key)));
  }
  std::array<unsigned char, kKeyBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Status::internal("no randomness for the record key (OpenSSL RAND_bytes failed)");
  }
  // Stored as hex: the kv table holds text.
  std::string key = to_hex(bytes.data(), bytes.size());
  OPENSSL_cleanse(bytes.data(), bytes.size());
  store::SchedulerBatch batch;
  batch.kv.emplace_back(std::string(kStoreKey), key);
  FACTORY_RETURN_IF_ERROR(store->apply_scheduler_batch(batch));
  return std::shared_ptr<const RecordAuth>(new RecordAuth(std::move(key)));
}

Result<std::shared_ptr<const RecordAuth>> RecordAuth::from_key_for_test(std::string key) {
  if (key.size() != kKeyBytes) return Status::invalid_argument("a record key is 32 bytes");
  return std::shared_ptr<const RecordAuth>(
      new RecordAuth(to_hex(reinterpret_cast<const unsigned char*>(key.data()), key.size())));
}

std::string RecordAuth::sign(std::string_view topic, const std::optional<std::string>& key,
                             std::string_view value) const {
  std::string input(kDomain);
  input.push_back('\0');
  put_field(&input, topic);
  input.push_back(key ? '\1' : '\0');
  put_field(&input, key ? std::string_view(*key) : std::string_view());
  put_field(&input, value);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return std::string(kVersionPrefix) + to_hex(mac, len);
}

Status RecordAuth::verify(std::string_view topic, const std::optional<std::string>& key,
                          std::string_view value, const std::vector<Header>& headers) const {
  const Header* found = nullptr;
  for (const Header& h : headers) {
    if (h.key != kHeader) continue;
    if (found) {
      return Status::invalid_argument("the record has two " + std::string(kHeader) +
                                      " headers; the scheduler writes one");
    }
    found = &h;
  }
  if (!found) {
    return Status::invalid_argument(
        "the record has no " + std::string(kHeader) +
        " header: it was not written by this daemon's scheduler or task workers");
  }
  std::string expected = sign(topic, key, value);
  if (found->value.size() != expected.size() ||
      CRYPTO_memcmp(found->value.data(), expected.data(), expected.size()) != 0) {
    return Status::invalid_argument("the record's " + std::string(kHeader) +
                                    " does not match its topic, key and value under this "
                                    "daemon's key: it was forged or altered");
  }
  return Status();
}

void count_refused_record(std::string_view topic) {
  static obs::Family<obs::Counter>& refused = obs::default_registry().counter(
      "factory_records_refused_total",
      "Dispatch and result records refused because their factory.auth MAC is missing or wrong "
      "(forged or altered), by topic. Each is dead-lettered with its reason, never acted on.",
      {"topic"});
  refused.labels({topic})->inc();
}

}  // namespace factory::scheduler
