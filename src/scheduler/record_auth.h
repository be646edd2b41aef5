// RecordAuth: authenticates the records the scheduler and its task workers exchange — dispatch
// records (scheduler -> worker: "run this stage with these params") and result records
// (worker -> scheduler: "this try succeeded with this output"). Each is an order: a dispatch
// runs a stage as the daemon, a result decides a task (a gate's verdict, a commit to approve).
// Refusing produces to internal topics (factory/topic.h) keeps outside callers away from them;
// this keeps anything else that could append there (a stage's output or route naming an
// internal topic, a dead letter replayed by hand, a local tool on the data dir) from being
// obeyed: only a record carrying the daemon's MAC is acted on.
//
// The MAC: HMAC-SHA256 with the daemon's 32-byte key over
//   "factoryd-record-v1" 0x00 | u32 len | topic | u8 has_key | u32 len | key | u32 len | value
// (lengths big-endian), as lowercase hex in the header `factory.auth` ("v1=<64 hex>"). It covers
// the topic (a dispatch for one stage cannot be replayed into another's topic), the key and the
// value: everything the scheduler and the workers act on. No header steers either record today
// (the engine adds trace and provenance headers on the way, which must not break the MAC); a
// header that comes to steer one must be added to the MAC input.
//
// The key lives in the store's scheduler key-value table (`scheduler.record_key`), created at
// the first start: it authenticates records about the store's runs, so it lives and dies with
// them (a new store starts new runs under a new key; a restored store brings its own), it is
// written in the same transactional file as the state it guards, and every embedder of the
// Scheduler (the daemon, `dags test`, tests) gets a persistent key without a path to plumb. A
// restart reads it back, so dispatches re-appended after a crash verify as before.
//
// Thread-safe (immutable after creation).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "factory/record.h"
#include "factory/status.h"
#include "store/meta_store.h"

namespace factory::scheduler {

class RecordAuth {
 public:
  static constexpr std::string_view kHeader = "factory.auth";
  static constexpr std::string_view kStoreKey = "scheduler.record_key";
  static constexpr size_t kKeyBytes = 32;

  // The daemon's key from *store, created (random, RAND_bytes) and stored on first use.
  // IOError/Corruption from the store; Internal when no randomness is available.
  static Result<std::shared_ptr<const RecordAuth>> load_or_create(store::MetaStore* store);
  // A fixed key, for tests that forge or check records. InvalidArgument unless 32 bytes.
  static Result<std::shared_ptr<const RecordAuth>> from_key_for_test(std::string key);

  // The `factory.auth` header value for a record with this topic, key and value.
  std::string sign(std::string_view topic, const std::optional<std::string>& key,
                   std::string_view value) const;
  // OK when `headers` hold a `factory.auth` that matches; else InvalidArgument whose message
  // says what was wrong (no header, a bad format, a wrong MAC), for the dead letter's reason.
  Status verify(std::string_view topic, const std::optional<std::string>& key,
                std::string_view value, const std::vector<Header>& headers) const;

 private:
  explicit RecordAuth(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// Counts one refused record on `topic` (factory_records_refused_total{topic}): a dispatch
// refused by a task worker, a result refused by the scheduler.
void count_refused_record(std::string_view topic);

}  // namespace factory::scheduler
