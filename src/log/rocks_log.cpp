#include "log/rocks_log.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "base/check.h"
#include "base/coding.h"
#include "factory/event.h"
#include "log/record_codec.h"
#include "log/rocks_options.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace factory::log {
namespace {

constexpr char kRecordsCf[] = "records";
constexpr char kIndexCf[] = "timeindex";
constexpr char kDedupeCf[] = "dedupe";
constexpr size_t kMaxGroupBytes = 4 << 20;

std::string topic_meta_key(std::string_view name) { return "T" + std::string(name); }

std::string partition_meta_key(uint32_t id, int32_t p) {
  std::string k = "P";
  base::put_fixed32_be(&k, id);
  base::put_fixed32_be(&k, static_cast<uint32_t>(p));
  return k;
}

std::string group_meta_key(std::string_view group, std::string_view topic, int32_t p) {
  std::string k = "G";
  k += group;
  k.push_back('\0');
  k += topic;
  k.push_back('\0');
  base::put_fixed32_be(&k, static_cast<uint32_t>(p));
  return k;
}

std::string producer_meta_key(uint32_t topic_id, std::string_view producer) {
  std::string k = "Q";
  base::put_fixed32_be(&k, topic_id);
  k += producer;
  return k;
}

// dedupe column family, two entries per keyed record, the key by its SHA-256 (32 bytes: a
// fixed, small entry whatever the key's length, and no collision a producer could aim for):
//   topic_id u32 BE | 'K' | sha256(idempotency key)          -> partition u32 BE | offset u64 BE
//   topic_id u32 BE | 'P' | partition u32 BE | offset u64 BE -> sha256(idempotency key)
// The first is looked up by an append that carries the key (never loaded at open, so a large
// table costs no start-up time); the second lets retention drop the keys of the records it
// deletes with one scan of the deleted range. The topic id prefix lets delete_topic drop a
// topic's keys in one range.
std::string dedupe_key(uint32_t topic_id, std::string_view key) {
  std::string k;
  base::put_fixed32_be(&k, topic_id);
  k.push_back('K');
  k += key;
  return k;
}

std::string dedupe_position_key(uint32_t topic_id, int32_t partition, int64_t offset) {
  std::string k;
  base::put_fixed32_be(&k, topic_id);
  k.push_back('P');
  base::put_fixed32_be(&k, static_cast<uint32_t>(partition));
  base::put_fixed64_be(&k, static_cast<uint64_t>(offset));
  return k;
}

std::string encode_position(int32_t partition, int64_t offset) {
  std::string v;
  base::put_fixed32_be(&v, static_cast<uint32_t>(partition));
  base::put_fixed64_be(&v, static_cast<uint64_t>(offset));
  return v;
}

std::string encode_u64(uint64_t v) {
  std::string s;
  base::put_fixed64_be(&s, v);
  return s;
}

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// The RocksDB files named in a message ("/dir/000012.sst", "log number: 4"), as file names.
std::vector<std::string> files_named(const std::string& m) {
  std::vector<std::string> out;
  for (std::string_view ext : {".sst", ".log", "MANIFEST-"}) {
    for (size_t at = m.find(ext); at != std::string::npos; at = m.find(ext, at + 1)) {
      size_t begin = at, end = at + ext.size();
      while (begin > 0 &&
             (std::isalnum(static_cast<unsigned char>(m[begin - 1])) || m[begin - 1] == '-')) {
        --begin;
      }
      while (end < m.size() && std::isalnum(static_cast<unsigned char>(m[end]))) ++end;
      if (end - begin > ext.size()) out.push_back(m.substr(begin, end - begin));
    }
  }
  // "WAL (log number: 4)": the WAL file is 000004.log.
  constexpr std::string_view kLogNumber = "log number: ";
  if (size_t at = m.find(kLogNumber); at != std::string::npos) {
    size_t end = at + kLogNumber.size();
    uint64_t n = 0;
    bool any = false;
    while (end < m.size() && std::isdigit(static_cast<unsigned char>(m[end]))) {
      n = n * 10 + static_cast<uint64_t>(m[end++] - '0');
      any = true;
    }
    if (any) {
      char name[32];
      std::snprintf(name, sizeof name, "%06llu.log", static_cast<unsigned long long>(n));
      out.emplace_back(name);
    }
  }
  return out;
}

// The WAL files in dir, for a corruption found while replaying them (RocksDB's message then
// often names no file).
std::vector<std::string> wal_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".log") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Status from_rocks(const rocksdb::Status& s, const std::string& dir, std::string_view what) {
  if (s.ok()) return Status();
  std::string m = std::string(what) + " in '" + dir + "': " + s.ToString();
  if (s.IsNoSpace()) {
    return Status::no_space(std::string(what) + ": the disk holding '" + dir + "' is full (" +
                            s.ToString() +
                            "); nothing was written. Free space on that disk: writes resume by "
                            "themselves, no restart needed");
  }
  if (s.IsCorruption()) {
    std::vector<std::string> files = files_named(m);
    if (files.empty() && what.find("open") != std::string_view::npos) {  // replaying WALs
      for (const auto& f : wal_files(dir)) files.push_back(f);
    }
    std::string named;
    for (const auto& f : files) named += (named.empty() ? "" : ", ") + dir + "/" + f;
    const bool opening = what.find("open") != std::string_view::npos;
    return Status::corruption(
        m + (named.empty() ? "" : "; damaged file: " + named) +
        (opening ? ". The log refuses to open rather than drop acknowledged records"
                 : ". The log will not skip the damaged records") +
        ": restore the data dir from a backup (keep the damaged copy for inspection)");
  }
  return Status::io_error(m);
}

namespace {

Status partition_out_of_range(std::string_view topic, int32_t p, size_t n) {
  return Status::invalid_argument("partition " + std::to_string(p) + " does not exist in topic " +
                                  quote(topic) + " (it has " + std::to_string(n) +
                                  " partitions: 0.." + std::to_string(n - 1) + ")");
}

// Raw size Kafka compares with max.message.bytes: key + value + headers.
int64_t record_size(const ProducerRecord& r) {
  int64_t n = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
  for (const Header& h : r.headers) n += h.key.size() + h.value.size();
  return n;
}

// A topic's append metrics. Looked up once per thread and topic, so an append takes no lock
// for them: one histogram observe and three counter adds per append call, not per record.
struct AppendMetrics {
  obs::Counter* appends;
  obs::Counter* records;
  obs::Counter* bytes;
  obs::Counter* errors;
  obs::Histogram* duration;
};

const AppendMetrics& append_metrics(std::string_view topic) {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  thread_local std::unordered_map<std::string, AppendMetrics, Hash, std::equal_to<>> cache;
  if (auto it = cache.find(topic); it != cache.end()) return it->second;
  obs::Registry& r = obs::default_registry();
  static auto& appends =
      r.counter("factory_log_appends_total", "Append calls that succeeded.", {"topic"});
  static auto& records = r.counter("factory_log_append_records_total",
                                   "Records appended by successful append calls.", {"topic"});
  static auto& bytes = r.counter("factory_log_append_bytes_total",
                                 "Encoded bytes of the records appended.", {"topic"});
  static auto& errors =
      r.counter("factory_log_append_errors_total",
                "Append calls to an existing topic that failed to write.", {"topic"});
  static auto& duration = r.histogram(
      "factory_log_append_duration_seconds",
      "Time of a successful append call, including the wait for its group commit (fsync).",
      {"topic"});
  AppendMetrics m{appends.labels({topic}), records.labels({topic}), bytes.labels({topic}),
                  errors.labels({topic}), duration.labels({topic})};
  return cache.emplace(std::string(topic), m).first->second;
}

// RocksDB's own messages (warnings and errors: a failed flush, a background error) go to
// factoryd's logger instead of a LOG file in the data dir. A LOG file is one more writer on a
// disk that may be full, and RocksDB (built with assertions, as Debian's is) aborts the process
// when it writes to a LOG file whose previous write failed.
class RocksInfoLogger final : public rocksdb::Logger {
 public:
  RocksInfoLogger() : Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::WARN_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    // RocksDB's warnings repeat what the log reports itself as a Status (e.g. "DB::Open()
    // failed" before the CLI's own error line): debug, so they do not clutter stderr.
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      obs::error("rocksdb", {{"message", std::string(buf)}});
    } else {
      obs::debug("rocksdb", {{"message", std::string(buf)}});
    }
  }
};

}  // namespace

struct RocksLog::Writer {
  enum class Kind { kAppend, kCommit, kExclusive };
  explicit Writer(base::Mutex* mu, Kind k) : kind(k), cv(mu) {}

  const Kind kind;
  // kAppend: the records' chosen partitions (-1: sticky, chosen when queued), encodings, sizes.
  std::shared_ptr<Topic> topic;
  std::vector<int32_t> partitions;
  std::vector<std::string> values;
  std::vector<int64_t> timestamps;
  // Idempotent records: per record, an index into producers (-1: none) and its sequence.
  std::vector<std::string> producers;
  std::vector<int32_t> producer_of;
  std::vector<int64_t> sequences;
  // Keyed records: per record the SHA-256 of its idempotency key (empty: none; the vector is
  // empty when no record has one), and where an earlier append put that key (looked up by the
  // leader).
  std::vector<std::string> keys;
  std::vector<std::optional<RecordPosition>> key_found;
  std::vector<RecordPosition> positions;  // filled by the leader
  // kCommit: the offsets, and per offset the topic it was validated against when queued.
  std::string group;
  std::vector<TopicPartitionOffset> offsets;
  std::vector<std::shared_ptr<Topic>> offset_topics;
  // kExclusive
  const std::function<Status()>* fn = nullptr;

  size_t bytes = 0;
  bool sync = true;  // false: an offset commit that need not wait for an fsync
  Status status;
  bool done = false;
  base::CondVar cv;
};

rocksdb::Options make_rocksdb_options(const LogOptions& options) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.max_background_jobs = 2;
  o.write_buffer_size = options.write_buffer_bytes;
  o.max_write_buffer_number = 3;
  // The metadata and time-index column families get a few bytes per batch and would rarely
  // flush on their own, pinning every WAL file (measured: 1.1 GB of WAL and 6x slower
  // reopens). Capping the WAL forces their flush and keeps restarts fast.
  o.max_total_wal_size = 128 << 20;
  o.keep_log_file_num = 2;
  o.max_log_file_size = 1 << 20;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  o.info_log = std::make_shared<RocksInfoLogger>();
  // Every acknowledged batch was synced whole, so the only WAL damage a crash can leave is a
  // torn LAST record: a write that was never acknowledged, safe to drop. Anything else (a bad
  // checksum, a bad record before the end) is damage to acknowledged data and must refuse to
  // open. kPointInTimeRecovery (RocksDB's default) would stop replay at the damage and open
  // without every acknowledged record after it; kAbsoluteConsistency would refuse the torn tail
  // too, so a power cut during a write would need an operator to start again.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // The synced size of each closed WAL goes to the MANIFEST; a closed WAL missing or shorter
  // at open is refused (a truncated file, not a torn write).
  o.track_and_verify_wals_in_manifest = true;
  o.avoid_unnecessary_blocking_io = true;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  t.block_size = 16 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

Result<std::unique_ptr<Log>> RocksLog::open(const LogOptions& options) {
  return open_for_test(options, nullptr);
}

Result<std::unique_ptr<Log>> RocksLog::open_for_test(const LogOptions& options,
                                                     rocksdb::Env* env_for_test) {
  if (options.dir.empty()) return Status::invalid_argument("LogOptions.dir is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return Status::io_error("cannot create data dir '" + options.dir + "': " + ec.message() +
                            "; check the path and its permissions");
  }
  rocksdb::Options o = make_rocksdb_options(options);
  if (env_for_test) o.env = env_for_test;
  rocksdb::ColumnFamilyOptions cf(o);
  // Idempotency keys are looked up by every keyed append and are almost always new: a
  // whole-key bloom filter (in tables and in the memtable) answers most of those misses
  // without reading a block.
  rocksdb::ColumnFamilyOptions dedupe_cf(o);
  {
    const auto* base = o.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
    rocksdb::BlockBasedTableOptions t = base ? *base : rocksdb::BlockBasedTableOptions();
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    t.whole_key_filtering = true;
    dedupe_cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    dedupe_cf.memtable_whole_key_filtering = true;
    dedupe_cf.memtable_prefix_bloom_size_ratio = 0.05;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, cf},
                                                      {kRecordsCf, cf},
                                                      {kIndexCf, cf},
                                                      {kDedupeCf, dedupe_cf}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(o), options.dir, cfs, &handles, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::busy("data dir '" + options.dir +
                          "' is in use by another factoryd process; stop that process, or talk "
                          "to it through its API, or use another --data-dir");
    }
    return from_rocks(s, options.dir, "cannot open the log");
  }
  std::unique_ptr<RocksLog> log(new RocksLog(options, db, std::move(handles)));
  FACTORY_RETURN_IF_ERROR(log->load());
  if (options.retention_interval_ms > 0) {
    log->retention_thread_ = std::thread([p = log.get()] { p->retention_loop(); });
  }
  return std::unique_ptr<Log>(std::move(log));
}

RocksLog::RocksLog(const LogOptions& options, rocksdb::DB* db,
                   std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(options),
      db_(db),
      handles_(std::move(handles)),
      meta_cf_(handles_[0]),
      records_cf_(handles_[1]),
      index_cf_(handles_[2]),
      dedupe_cf_(handles_[3]),
      coordinator_(
          [this](const std::string& topic) -> int32_t {
            base::MutexLock lock(&mu_);
            auto it = topics_.find(topic);
            return it == topics_.end() ? 0 : static_cast<int32_t>(it->second->parts.size());
          },
          [this] { wake_waiters(); }),
      data_cv_(&mu_),
      retention_cv_(&mu_) {}

RocksLog::~RocksLog() {
  {
    base::MutexLock lock(&mu_);
    closing_ = true;
    retention_cv_.signal_all();
    data_cv_.signal_all();
  }
  if (retention_thread_.joinable()) retention_thread_.join();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

int64_t RocksLog::now_ms() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status RocksLog::to_status(const rocksdb::Status& s, std::string_view what) const {
  return from_rocks(s, options_.dir, what);
}

Status RocksLog::db_write(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch,
                          std::string_view what) {
  FACTORY_RETURN_IF_ERROR(resume_writes(what));
  Status s = to_status(db_->Write(wo, batch), what);
  if (!s.ok()) write_failed_.store(true);
  return s;
}

Status RocksLog::resume_writes(std::string_view what) {
  if (!write_failed_.load()) return Status();
  // RocksDB keeps a failed write's error (e.g. ENOSPC) and refuses every later write until it
  // recovers: Resume() flushes the memtables to new files and starts a new WAL (the failed one
  // may end in a partial record). For a full disk RocksDB also recovers by itself, polling for
  // free space (its SstFileManager), and Resume() answers Busy while that runs. Cheap when
  // nothing failed; fails again while the disk is full.
  rocksdb::Status r = db_->Resume();
  if (r.IsBusy()) {
    return Status::no_space(std::string(what) + ": the log in '" + options_.dir +
                            "' is recovering from a failed write (the disk was full); writes "
                            "resume by themselves once space is freed");
  }
  FACTORY_RETURN_IF_ERROR(to_status(r, what));
  write_failed_.store(false);
  obs::info("log writes resumed", {{"dir", options_.dir}});
  return Status();
}

Status RocksLog::writable() {
  if (!write_failed_.load()) return Status();
  return exclusive([&] { return resume_writes("resuming writes"); });
}

Status RocksLog::load() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  std::map<uint32_t, std::shared_ptr<Topic>> by_id;
  std::vector<std::pair<std::string, std::string>> partition_rows;
  base::MutexLock lock(&mu_);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    std::string_view v(it->value().data(), it->value().size());
    if (k == "N" && v.size() == 4) {
      next_topic_id_ = base::decode_fixed32_be(v.data());
    } else if (k.starts_with("T")) {
      auto t = std::make_shared<Topic>();
      t->spec.name = std::string(k.substr(1));
      // "key=value" lines: id, partitions, then topic config entries.
      size_t pos = 0;
      while (pos < v.size()) {
        size_t nl = v.find('\n', pos);
        if (nl == std::string_view::npos) nl = v.size();
        std::string_view line = v.substr(pos, nl - pos);
        pos = nl + 1;
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view key = line.substr(0, eq), val = line.substr(eq + 1);
        if (key == "id") {
          t->id = static_cast<uint32_t>(std::stoul(std::string(val)));
        } else if (key == "partitions") {
          t->spec.partitions = std::stoi(std::string(val));
        } else {
          Status s = set_topic_config(&t->spec.config, key, val);
          if (!s.ok())
            return Status::corruption("topic " + quote(t->spec.name) + ": " + s.message());
        }
      }
      for (int32_t p = 0; p < t->spec.partitions; ++p) {
        t->parts.push_back(std::make_unique<Partition>());
      }
      by_id[t->id] = t;
      topics_[t->spec.name] = t;
    } else if (k.starts_with("P") && k.size() == 9 && v.size() == 32) {
      partition_rows.emplace_back(k, v);
    } else if (k.starts_with("Q") && k.size() > 5 && v.size() == 8) {
      producer_seqs_[{base::decode_fixed32_be(k.data() + 1), std::string(k.substr(5))}] =
          static_cast<int64_t>(base::decode_fixed64_be(v.data()));
    } else if (k.starts_with("G") && k.size() > 7 && k[k.size() - 5] == '\0') {
      std::string_view rest = k.substr(1, k.size() - 6);  // group \0 topic
      size_t z = rest.find('\0');
      if (z == std::string_view::npos || v.size() != 8) continue;
      committed_[{std::string(rest.substr(0, z)), std::string(rest.substr(z + 1)),
                  static_cast<int32_t>(base::decode_fixed32_be(k.data() + k.size() - 4))}] =
          static_cast<int64_t>(base::decode_fixed64_be(v.data()));
    }
  }
  FACTORY_RETURN_IF_ERROR(to_status(it->status(), "reading log metadata"));
  for (const auto& [k, v] : partition_rows) {
    uint32_t id = base::decode_fixed32_be(k.data() + 1);
    auto p = static_cast<int32_t>(base::decode_fixed32_be(k.data() + 5));
    auto t = by_id.find(id);
    if (t == by_id.end() || p >= static_cast<int32_t>(t->second->parts.size())) continue;
    Partition& s = *t->second->parts[p];
    s.start = static_cast<int64_t>(base::decode_fixed64_be(v.data()));
    s.end = static_cast<int64_t>(base::decode_fixed64_be(v.data() + 8));
    s.bytes = static_cast<int64_t>(base::decode_fixed64_be(v.data() + 16));
    s.max_ts = unbias_timestamp(base::decode_fixed64_be(v.data() + 24));
  }
  return Status();
}

void RocksLog::put_partition_meta(rocksdb::WriteBatch* batch, uint32_t id, int32_t p,
                                  const Partition& s) {
  std::string v;
  base::put_fixed64_be(&v, static_cast<uint64_t>(s.start));
  base::put_fixed64_be(&v, static_cast<uint64_t>(s.end));
  base::put_fixed64_be(&v, static_cast<uint64_t>(s.bytes));
  base::put_fixed64_be(&v, bias_timestamp(s.max_ts));
  batch->Put(meta_cf_, partition_meta_key(id, p), v);
}

Status RocksLog::put_topic_meta(rocksdb::WriteBatch* batch, const Topic& t) {
  std::string v =
      "id=" + std::to_string(t.id) + "\npartitions=" + std::to_string(t.spec.partitions) + "\n";
  for (const auto& [k, val] : topic_config_entries(t.spec.config)) v += k + "=" + val + "\n";
  return to_status(batch->Put(meta_cf_, topic_meta_key(t.spec.name), v), "encoding topic");
}

Result<std::shared_ptr<RocksLog::Topic>> RocksLog::find_topic(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return Status::not_found(
        "topic " + quote(name) + " does not exist; create it with `factoryd topics create " +
        std::string(name) + " --partitions N` or `factoryd topics apply -f FILE`");
  }
  return it->second;
}

void RocksLog::wake_waiters() {
  base::MutexLock lock(&mu_);
  ++append_seq_;
  data_cv_.signal_all();
}

// ---------------------------------------------------------------------------------------------
// The writer queue.

Status RocksLog::write(Writer* w) {
  base::MutexLock lock(&mu_);
  if (closing_) return Status::shutting_down("the log is closing");
  if (w->kind == Writer::Kind::kAppend) {
    // Null-key records share one sticky partition per call, moving round-robin between calls.
    int32_t sticky = -1;
    for (int32_t& p : w->partitions) {
      if (p >= 0) continue;
      if (sticky < 0) {
        sticky = static_cast<int32_t>(w->topic->sticky++ % w->topic->parts.size());
      }
      p = sticky;
    }
  }
  writers_.push_back(w);
  while (!w->done && w != writers_.front()) w->cv.wait();
  if (w->done) return w->status;

  if (w->kind == Writer::Kind::kExclusive) {
    mu_.unlock();
    Status s = (*w->fn)();
    mu_.lock();
    writers_.pop_front();
    if (!writers_.empty()) writers_.front()->cv.signal();
    return s;
  }

  // Lead a group: this writer and the appends/commits queued right behind it.
  std::vector<Writer*> group;
  size_t max_bytes = w->bytes <= (256 << 10) ? w->bytes + (1 << 20) : kMaxGroupBytes;
  size_t bytes = 0;
  for (Writer* x : writers_) {
    if (x->kind == Writer::Kind::kExclusive) break;
    if (!group.empty() && bytes + x->bytes > max_bytes) break;
    bytes += x->bytes;
    group.push_back(x);
  }
  Status s = write_group(group);
  for (Writer* x : group) {
    FACTORY_CHECK(writers_.front() == x);
    writers_.pop_front();
    if (x->status.ok()) x->status = s;
    x->done = true;
    if (x != w) x->cv.signal();
  }
  if (!writers_.empty()) writers_.front()->cv.signal();
  return w->status;
}

Status RocksLog::lookup_keys(std::vector<Writer*>& group) {
  // One MultiGet for the whole group: its keys share index and filter block reads.
  std::vector<std::string> keys;
  std::vector<std::pair<Writer*, size_t>> owners;
  for (Writer* x : group) {
    for (size_t i = 0; i < x->keys.size(); ++i) {
      if (x->keys[i].empty()) continue;
      keys.push_back(dedupe_key(x->topic->id, x->keys[i]));
      owners.emplace_back(x, i);
    }
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), dedupe_cf_, keys.size(), slices.data(), values.data(),
                statuses.data());
  for (size_t k = 0; k < keys.size(); ++k) {
    if (statuses[k].IsNotFound()) continue;
    FACTORY_RETURN_IF_ERROR(to_status(statuses[k], "reading idempotency keys"));
    auto [x, i] = owners[k];
    const rocksdb::Slice v = values[k];
    if (v.size() != 12) {
      return Status::corruption("idempotency key of topic " + quote(x->topic->spec.name) + " in '" +
                                options_.dir + "' has a " + std::to_string(v.size()) +
                                "-byte value, not 12");
    }
    x->key_found[i] =
        RecordPosition{static_cast<int32_t>(base::decode_fixed32_be(v.data())),
                       Offset(static_cast<int64_t>(base::decode_fixed64_be(v.data() + 4))), true};
  }
  return Status();
}

Status RocksLog::write_group(std::vector<Writer*>& group) {
  // Phase 0, mu_ released: look up the idempotency keys. Only the writer at the queue front
  // writes, so what these reads see cannot change before this group's own write.
  bool keyed = false;
  for (Writer* x : group) keyed = keyed || !x->keys.empty();
  if (keyed) {
    mu_.unlock();
    Status s = lookup_keys(group);
    mu_.lock();
    if (!s.ok()) return s;
  }
  // Phase 1, under mu_: assign offsets and stage each touched partition's next state.
  struct Staged {
    uint32_t topic_id;
    int32_t partition;
    Partition next;
  };
  std::map<Partition*, Staged> staged;
  std::map<ProducerKey, int64_t> staged_seqs;
  struct StagedKey {
    RecordPosition position;
    uint32_t topic_id;
    const std::string* key;
  };
  std::map<std::string, StagedKey> staged_keys;  // dedupe_key -> first record in the group
  std::vector<std::string> index_keys;
  for (Writer* x : group) {
    if (x->kind == Writer::Kind::kCommit) {
      // A commit validated its topics before it queued; a deletion queued ahead of it may have
      // run since. Its offsets must not be written then: keyed by the topic's name, they would
      // outlive the topic and a topic recreated under that name would start from them. No
      // deletion can run between this check and the publish: deletions are exclusive writers.
      for (const auto& t : x->offset_topics) {
        if (!t->deleted) continue;
        x->status = Status::not_found("topic " + quote(t->spec.name) +
                                      " was deleted while offsets of group " + quote(x->group) +
                                      " were being committed to it; nothing was committed");
        break;
      }
      continue;
    }
    if (x->kind != Writer::Kind::kAppend) continue;
    Topic& t = *x->topic;
    if (t.deleted) {
      x->status = Status::not_found("topic " + quote(t.spec.name) + " was deleted");
      continue;
    }
    x->positions.resize(x->values.size());
    std::vector<int64_t*> last_seqs;  // per entry of x->producers
    for (const std::string& producer : x->producers) {
      ProducerKey key{t.id, producer};
      auto [it, fresh] = staged_seqs.try_emplace(key, INT64_MIN);
      if (fresh) {
        auto known = producer_seqs_.find(key);
        if (known != producer_seqs_.end()) it->second = known->second;
      }
      last_seqs.push_back(&it->second);
    }
    for (size_t i = 0; i < x->values.size(); ++i) {
      if (!x->producer_of.empty() && x->producer_of[i] >= 0) {
        int64_t* last = last_seqs[x->producer_of[i]];
        if (x->sequences[i] <= *last) {
          x->positions[i] = {-1, Offset(-1), true};
          continue;
        }
        *last = x->sequences[i];
      }
      std::string dkey;
      if (!x->keys.empty() && !x->keys[i].empty()) {
        if (x->key_found[i]) {
          x->positions[i] = *x->key_found[i];
          continue;
        }
        dkey = dedupe_key(t.id, x->keys[i]);
        if (auto seen = staged_keys.find(dkey); seen != staged_keys.end()) {
          x->positions[i] = seen->second.position;
          continue;
        }
      }
      int32_t p = x->partitions[i];
      Partition* ps = t.parts[p].get();
      auto [it, fresh] = staged.try_emplace(ps, Staged{t.id, p, *ps});
      Partition& n = it->second.next;
      x->positions[i] = {p, Offset(n.end)};
      if (!dkey.empty()) {
        staged_keys.emplace(std::move(dkey),
                            StagedKey{{p, Offset(n.end), true}, t.id, &x->keys[i]});
      }
      n.bytes += static_cast<int64_t>(kRecordKeySize + x->values[i].size());
      if (x->timestamps[i] > n.max_ts) {
        n.max_ts = x->timestamps[i];
        index_keys.push_back(time_index_key(t.id, p, n.max_ts, n.end));
      }
      ++n.end;
    }
  }
  mu_.unlock();

  // Phase 2, mu_ released: this writer stays at the queue front, so no one else writes.
  rocksdb::WriteBatch batch;
  for (Writer* x : group) {
    if (!x->status.ok()) continue;
    if (x->kind == Writer::Kind::kAppend) {
      for (size_t i = 0; i < x->values.size(); ++i) {
        if (x->positions[i].duplicate) continue;
        batch.Put(
            records_cf_,
            record_key(x->topic->id, x->positions[i].partition, x->positions[i].offset.value()),
            x->values[i]);
      }
    } else {
      for (const TopicPartitionOffset& o : x->offsets) {
        batch.Put(meta_cf_, group_meta_key(x->group, o.topic, o.partition),
                  encode_u64(static_cast<uint64_t>(o.offset.value())));
      }
    }
  }
  for (const std::string& k : index_keys) batch.Put(index_cf_, k, rocksdb::Slice());
  for (const auto& [k, staged] : staged_keys) {
    const RecordPosition& pos = staged.position;
    batch.Put(dedupe_cf_, k, encode_position(pos.partition, pos.offset.value()));
    batch.Put(dedupe_cf_, dedupe_position_key(staged.topic_id, pos.partition, pos.offset.value()),
              *staged.key);
  }
  for (const auto& [ps, st] : staged)
    put_partition_meta(&batch, st.topic_id, st.partition, st.next);
  for (const auto& [key, seq] : staged_seqs) {
    batch.Put(meta_cf_, producer_meta_key(key.first, key.second),
              encode_u64(static_cast<uint64_t>(seq)));
  }
  rocksdb::WriteOptions wo;
  wo.sync = false;
  for (Writer* x : group) wo.sync = wo.sync || x->sync;
  wo.sync = wo.sync && options_.sync;
  Status s = db_write(wo, &batch, "appending");

  // Phase 3, under mu_ again: publish.
  mu_.lock();
  if (!s.ok()) {
    obs::error("log write failed", {{"error", s.to_string()}});
    return s;
  }
  for (const auto& [key, seq] : staged_seqs) producer_seqs_[key] = seq;
  for (const auto& [ps, st] : staged) {
    ps->end = st.next.end;
    ps->bytes = st.next.bytes;
    ps->max_ts = st.next.max_ts;
  }
  for (Writer* x : group) {
    if (x->kind != Writer::Kind::kCommit || !x->status.ok()) continue;
    for (const TopicPartitionOffset& o : x->offsets) {
      committed_[{x->group, o.topic, o.partition}] = o.offset.value();
    }
  }
  ++append_seq_;
  data_cv_.signal_all();
  return Status();
}

size_t RocksLog::queued_writers_for_test() {
  base::MutexLock lock(&mu_);
  return writers_.size();
}

int RocksLog::long_poll_waiters_for_test() {
  base::MutexLock lock(&mu_);
  return long_poll_waiters_;
}

Status RocksLog::exclusive(const std::function<Status()>& fn) {
  Writer w(&mu_, Writer::Kind::kExclusive);
  w.fn = &fn;
  return write(&w);
}

// ---------------------------------------------------------------------------------------------
// Topics.

Status RocksLog::create_topic(const TopicSpec& spec) {
  FACTORY_RETURN_IF_ERROR(validate_topic_spec(spec));
  return exclusive([&] { return create_topic_locked(spec); });
}

Status RocksLog::create_topic_locked(const TopicSpec& spec) {
  auto t = std::make_shared<Topic>();
  t->spec = spec;
  {
    base::MutexLock lock(&mu_);
    if (topics_.count(spec.name)) {
      return Status::already_exists("topic " + quote(spec.name) +
                                    " already exists; use `factoryd topics apply` to change it");
    }
    t->id = next_topic_id_++;
  }
  for (int32_t p = 0; p < spec.partitions; ++p) t->parts.push_back(std::make_unique<Partition>());
  rocksdb::WriteBatch batch;
  // A new topic starts with no committed offsets. Group offsets are keyed by topic name, and a
  // data dir written before commits were checked against deletions (issue 11.10) may still
  // hold offsets of an earlier topic of this name: drop them with the creation.
  std::vector<GroupKey> orphans;
  {
    base::MutexLock lock(&mu_);
    for (const auto& [k, v] : committed_) {
      if (std::get<1>(k) == spec.name) orphans.push_back(k);
    }
  }
  for (const auto& [g, tp, p] : orphans) batch.Delete(meta_cf_, group_meta_key(g, tp, p));
  FACTORY_RETURN_IF_ERROR(put_topic_meta(&batch, *t));
  std::string next;
  base::put_fixed32_be(&next, t->id + 1);
  batch.Put(meta_cf_, "N", next);
  for (int32_t p = 0; p < spec.partitions; ++p) put_partition_meta(&batch, t->id, p, *t->parts[p]);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "creating topic"));
  base::MutexLock lock(&mu_);
  for (const auto& k : orphans) committed_.erase(k);
  topics_[spec.name] = std::move(t);
  obs::debug("topic created", {{"topic", spec.name}, {"partitions", spec.partitions}});
  return Status();
}

Result<TopicChange> RocksLog::apply_topic(const TopicSpec& spec) {
  FACTORY_RETURN_IF_ERROR(validate_topic_spec(spec));
  TopicChange change = TopicChange::kUnchanged;
  Status s = exclusive([&]() -> Status {
    std::shared_ptr<Topic> t;
    {
      base::MutexLock lock(&mu_);
      auto it = topics_.find(spec.name);
      if (it != topics_.end()) t = it->second;
    }
    if (!t) {
      change = TopicChange::kCreated;
      return create_topic_locked(spec);
    }
    int32_t old_parts = static_cast<int32_t>(t->parts.size());
    if (spec.partitions < old_parts) {
      return Status::invalid_argument(
          "topic " + quote(spec.name) + " has " + std::to_string(old_parts) +
          " partitions; the partition count cannot be lowered to " +
          std::to_string(spec.partitions) + " (Kafka cannot either): keep " +
          std::to_string(old_parts) + " or create a new topic");
    }
    if (spec.partitions == old_parts && spec.config == t->spec.config) return Status();
    Topic updated;
    updated.id = t->id;
    updated.spec = spec;
    rocksdb::WriteBatch batch;
    FACTORY_RETURN_IF_ERROR(put_topic_meta(&batch, updated));
    Partition empty;
    for (int32_t p = old_parts; p < spec.partitions; ++p)
      put_partition_meta(&batch, t->id, p, empty);
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "updating topic"));
    base::MutexLock lock(&mu_);
    t->spec = spec;
    for (int32_t p = old_parts; p < spec.partitions; ++p) {
      t->parts.push_back(std::make_unique<Partition>());
    }
    change = TopicChange::kUpdated;
    return Status();
  });
  if (!s.ok()) return s;
  if (change != TopicChange::kUnchanged) wake_waiters();  // consumers rebalance new partitions
  return change;
}

Status RocksLog::delete_topic(std::string_view name) {
  std::string topic(name);
  Status s = exclusive([&]() -> Status {
    std::shared_ptr<Topic> t;
    std::vector<GroupKey> group_keys;
    {
      base::MutexLock lock(&mu_);
      auto found = find_topic(topic);
      if (!found.ok()) return found.status();
      t = *found;
      for (const auto& [k, v] : committed_) {
        if (std::get<1>(k) == topic) group_keys.push_back(k);
      }
    }
    rocksdb::WriteBatch batch;
    batch.Delete(meta_cf_, topic_meta_key(topic));
    batch.DeleteRange(meta_cf_, partition_meta_key(t->id, 0), partition_meta_key(t->id + 1, 0));
    batch.DeleteRange(meta_cf_, producer_meta_key(t->id, ""), producer_meta_key(t->id + 1, ""));
    std::string lo = partition_prefix(t->id, 0), hi = partition_prefix(t->id + 1, 0);
    batch.DeleteRange(records_cf_, lo, hi);
    batch.DeleteRange(index_cf_, lo, hi);
    std::string dlo, dhi;
    base::put_fixed32_be(&dlo, t->id);
    base::put_fixed32_be(&dhi, t->id + 1);
    batch.DeleteRange(dedupe_cf_, dlo, dhi);
    for (const auto& [g, tp, p] : group_keys) batch.Delete(meta_cf_, group_meta_key(g, tp, p));
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "deleting topic"));
    base::MutexLock lock(&mu_);
    t->deleted = true;
    topics_.erase(topic);
    for (const auto& k : group_keys) committed_.erase(k);
    std::erase_if(producer_seqs_, [&](const auto& kv) { return kv.first.first == t->id; });
    return Status();
  });
  if (s.ok()) wake_waiters();
  return s;
}

std::vector<std::string> RocksLog::list_topics() {
  base::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, t] : topics_) out.push_back(name);
  return out;
}

Result<TopicInfo> RocksLog::describe_topic(std::string_view name) {
  base::MutexLock lock(&mu_);
  auto t = find_topic(name);
  if (!t.ok()) return t.status();
  TopicInfo info;
  info.id = (*t)->id;
  info.spec = (*t)->spec;
  for (size_t p = 0; p < (*t)->parts.size(); ++p) {
    const Partition& s = *(*t)->parts[p];
    info.partitions.push_back({static_cast<int32_t>(p), Offset(s.start), Offset(s.end), s.bytes});
  }
  return info;
}

// ---------------------------------------------------------------------------------------------
// Producing and reading.

Result<std::vector<RecordPosition>> RocksLog::append(std::string_view topic,
                                                     std::span<const ProducerRecord> records,
                                                     const AppendOptions& options) {
  if (records.empty()) return std::vector<RecordPosition>{};
  const auto started = std::chrono::steady_clock::now();
  Writer w(&mu_, Writer::Kind::kAppend);
  std::map<std::string_view, std::pair<int32_t, int64_t>> producer_state;  // index, last seq
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& producer =
        records[i].producer_id.empty() ? options.producer_id : records[i].producer_id;
    if (producer.empty()) continue;
    if (w.producer_of.empty()) {
      w.producer_of.assign(records.size(), -1);
      w.sequences.assign(records.size(), 0);
    }
    auto [it, fresh] =
        producer_state.try_emplace(producer, static_cast<int32_t>(w.producers.size()), INT64_MIN);
    if (fresh) w.producers.push_back(producer);
    if (!records[i].sequence || *records[i].sequence <= it->second.second) {
      return Status::invalid_argument(
          "record " + std::to_string(i) + " of an idempotent append (producer " + quote(producer) +
          ") has " +
          (records[i].sequence ? "a sequence not above the previous one of that producer"
                               : "no sequence") +
          "; give every record of a producer a strictly increasing sequence");
    }
    it->second.second = *records[i].sequence;
    w.producer_of[i] = it->second.first;
    w.sequences[i] = *records[i].sequence;
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& key = records[i].idempotency_key;
    if (key.empty()) continue;
    if (key.size() > kMaxIdempotencyKeyBytes) {
      return Status::invalid_argument("record " + std::to_string(i) +
                                      " has an idempotency key of " + std::to_string(key.size()) +
                                      " bytes; the limit is " +
                                      std::to_string(kMaxIdempotencyKeyBytes));
    }
    if (!w.producer_of.empty() && w.producer_of[i] >= 0) {
      return Status::invalid_argument(
          "record " + std::to_string(i) +
          " has both a producer sequence and an idempotency key; give it one of them");
    }
    if (w.keys.empty()) {
      w.keys.resize(records.size());
      w.key_found.resize(records.size());
    }
    const EventId digest = event_id_for_bytes(key);
    w.keys[i].assign(reinterpret_cast<const char*>(digest.digest.data()), digest.digest.size());
  }
  size_t nparts;
  int64_t max_bytes;
  {
    base::MutexLock lock(&mu_);
    auto t = find_topic(topic);
    if (!t.ok()) return t.status();
    w.topic = *t;
    nparts = w.topic->parts.size();
    max_bytes = w.topic->spec.config.max_message_bytes;
  }
  int64_t now = now_ms();
  w.partitions.reserve(records.size());
  w.values.resize(records.size());
  w.timestamps.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const ProducerRecord& r = records[i];
    int64_t size = record_size(r);
    if (size > max_bytes) {
      return Status::invalid_argument(
          "record " + std::to_string(i) + " is " + std::to_string(size) +
          " bytes (key + value + headers), over max.message.bytes=" + std::to_string(max_bytes) +
          " of topic " + quote(topic) +
          "; split the record or raise the limit with "
          "`factoryd topics apply` (config max.message.bytes)");
    }
    int32_t p = -1;
    if (r.partition) {
      if (*r.partition < 0 || static_cast<size_t>(*r.partition) >= nparts) {
        return partition_out_of_range(topic, *r.partition, nparts);
      }
      p = *r.partition;
    } else if (r.key) {
      p = partition_for_key(*r.key, static_cast<int32_t>(nparts));
    }
    w.partitions.push_back(p);
    int64_t ts = r.timestamp_ms.value_or(now);
    w.timestamps.push_back(ts);
    encode_record(r, ts, &w.values[i]);
    w.bytes += w.values[i].size() + kRecordKeySize;
  }
  w.sync = options.sync;
  Status s = write(&w);
  const AppendMetrics& m = append_metrics(topic);  // the topic exists: a bounded label
  if (!s.ok()) {
    m.errors->inc();
    return s;
  }
  m.appends->inc();
  m.records->inc(records.size());
  m.bytes->inc(w.bytes);
  m.duration->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return std::move(w.positions);
}

Result<FetchResult> RocksLog::read(std::string_view topic, int32_t partition, Offset from,
                                   const ReadOptions& options) {
  FetchResult out;
  uint32_t id;
  {
    base::MutexLock lock(&mu_);
    auto t = find_topic(topic);
    if (!t.ok()) return t.status();
    std::shared_ptr<Topic> tp = *t;
    if (partition < 0 || static_cast<size_t>(partition) >= tp->parts.size()) {
      return partition_out_of_range(topic, partition, tp->parts.size());
    }
    const Partition& ps = *tp->parts[partition];
    if (from.value() < ps.start || from.value() > ps.end) {
      return Status::out_of_range(
          "offset " + std::to_string(from.value()) + " is out of range for topic " + quote(topic) +
          " partition " + std::to_string(partition) + ": the log holds " +
          std::to_string(ps.start) + ".." + std::to_string(ps.end) +
          " (start..end); read from the start (earliest) or the end (latest)");
    }
    if (from.value() == ps.end && options.wait_ms > 0) {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.wait_ms);
      ++long_poll_waiters_;
      while (ps.end == from.value() && !closing_ && !tp->deleted) {
        if (!data_cv_.wait_until(deadline)) break;
      }
      --long_poll_waiters_;
    }
    id = tp->id;
    out.log_start = Offset(ps.start);
    out.log_end = Offset(ps.end);
  }
  if (from >= out.log_end) return out;
  std::string upper = record_key(id, partition, out.log_end.value());
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
  int64_t bytes = 0;
  int64_t expect = from.value();
  int64_t max_records = std::max<int32_t>(options.max_records, 1);
  out.records.reserve(
      static_cast<size_t>(std::min<int64_t>(max_records, out.log_end.value() - expect)));
  for (it->Seek(record_key(id, partition, from.value())); it->Valid(); it->Next()) {
    if (static_cast<int64_t>(out.records.size()) >= max_records) break;
    if (!out.records.empty() &&
        bytes + static_cast<int64_t>(it->value().size()) > options.max_bytes)
      break;
    int64_t offset = record_key_offset(std::string_view(it->key().data(), it->key().size()));
    if (offset != expect) {
      // Retention removed the records under us between the bounds check and the seek.
      return Status::out_of_range("offset " + std::to_string(expect) + " of topic " + quote(topic) +
                                  " partition " + std::to_string(partition) +
                                  " was removed by retention; read from the new log start");
    }
    Record& r = out.records.emplace_back();
    r.partition = partition;
    r.offset = Offset(offset);
    FACTORY_RETURN_IF_ERROR(
        decode_record(std::string_view(it->value().data(), it->value().size()), &r));
    bytes += static_cast<int64_t>(it->value().size());
    ++expect;
  }
  FACTORY_RETURN_IF_ERROR(to_status(it->status(), "reading"));
  return out;
}

Result<PartitionInfo> RocksLog::partition_info(std::string_view topic, int32_t partition) {
  base::MutexLock lock(&mu_);
  auto t = find_topic(topic);
  if (!t.ok()) return t.status();
  if (partition < 0 || static_cast<size_t>(partition) >= (*t)->parts.size()) {
    return partition_out_of_range(topic, partition, (*t)->parts.size());
  }
  const Partition& s = *(*t)->parts[partition];
  return PartitionInfo{partition, Offset(s.start), Offset(s.end), s.bytes};
}

Result<Offset> RocksLog::offset_for_timestamp(std::string_view topic, int32_t partition,
                                              int64_t timestamp_ms) {
  auto info = partition_info(topic, partition);
  if (!info.ok()) return info.status();
  uint32_t id;
  {
    base::MutexLock lock(&mu_);
    id = (*find_topic(topic))->id;
  }
  // The index yields the first offset whose running-max timestamp reached timestamp_ms; no
  // earlier record can match. Scan forward from there (usually that very record matches).
  std::string prefix = partition_prefix(id, partition);
  std::unique_ptr<rocksdb::Iterator> idx(db_->NewIterator(rocksdb::ReadOptions(), index_cf_));
  idx->Seek(time_index_key(id, partition, timestamp_ms, 0));
  if (!idx->Valid() || !idx->key().starts_with(prefix)) {
    FACTORY_RETURN_IF_ERROR(to_status(idx->status(), "reading the time index"));
    return info->log_end;
  }
  int64_t ts, candidate;
  if (!parse_time_index_key(std::string_view(idx->key().data(), idx->key().size()), &ts,
                            &candidate)) {
    return Status::corruption("malformed time-index key in '" + options_.dir + "'");
  }
  candidate = std::max(candidate, info->log_start.value());
  std::string upper = record_key(id, partition, info->log_end.value());
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
  for (it->Seek(record_key(id, partition, candidate)); it->Valid(); it->Next()) {
    int64_t rts;
    if (decode_record_timestamp(std::string_view(it->value().data(), it->value().size()), &rts) &&
        rts >= timestamp_ms) {
      return Offset(record_key_offset(std::string_view(it->key().data(), it->key().size())));
    }
  }
  FACTORY_RETURN_IF_ERROR(to_status(it->status(), "reading"));
  return info->log_end;
}

uint64_t RocksLog::append_sequence() {
  base::MutexLock lock(&mu_);
  return append_seq_;
}

uint64_t RocksLog::wait_for_append(uint64_t seen, int64_t wait_ms) {
  base::MutexLock lock(&mu_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  ++long_poll_waiters_;
  while (append_seq_ == seen && !closing_) {
    if (!data_cv_.wait_until(deadline)) break;
  }
  --long_poll_waiters_;
  return append_seq_;
}

// ---------------------------------------------------------------------------------------------
// Consumer-group offsets.

Status RocksLog::commit_offsets(std::string_view group,
                                std::span<const TopicPartitionOffset> offsets, bool sync) {
  if (group.empty()) return Status::invalid_argument("group name is empty; give a group id");
  Writer w(&mu_, Writer::Kind::kCommit);
  w.group = std::string(group);
  {
    base::MutexLock lock(&mu_);
    for (const TopicPartitionOffset& o : offsets) {
      auto t = find_topic(o.topic);
      if (!t.ok()) return t.status();
      if (o.partition < 0 || static_cast<size_t>(o.partition) >= (*t)->parts.size()) {
        return partition_out_of_range(o.topic, o.partition, (*t)->parts.size());
      }
      if (o.offset.value() < 0) {
        return Status::invalid_argument("cannot commit negative offset " +
                                        std::to_string(o.offset.value()) + " for topic " +
                                        quote(o.topic));
      }
      w.offset_topics.push_back(*t);
    }
  }
  w.offsets.assign(offsets.begin(), offsets.end());
  w.bytes = offsets.size() * 32;
  w.sync = sync;
  return write(&w);
}

Result<std::optional<Offset>> RocksLog::committed_offset(std::string_view group,
                                                         std::string_view topic,
                                                         int32_t partition) {
  base::MutexLock lock(&mu_);
  auto it = committed_.find({std::string(group), std::string(topic), partition});
  if (it == committed_.end()) return std::optional<Offset>();
  return std::optional<Offset>(Offset(it->second));
}

std::vector<std::string> RocksLog::list_groups() {
  std::set<std::string> names;
  for (auto& g : coordinator_.groups_with_members()) names.insert(std::move(g));
  base::MutexLock lock(&mu_);
  for (const auto& [k, v] : committed_) names.insert(std::get<0>(k));
  return {names.begin(), names.end()};
}

Result<GroupDescription> RocksLog::describe_group(std::string_view group) {
  std::string g(group);
  GroupDescription d;
  d.group = g;
  bool active = coordinator_.has_members(g);
  d.state = active ? "Stable" : "Empty";
  std::map<TopicPartition, std::string> owners = coordinator_.owners(g);
  std::map<TopicPartition, std::optional<int64_t>> rows;
  base::MutexLock lock(&mu_);
  for (auto it = committed_.lower_bound({g, "", INT32_MIN});
       it != committed_.end() && std::get<0>(it->first) == g; ++it) {
    rows[{std::get<1>(it->first), std::get<2>(it->first)}] = it->second;
  }
  for (const auto& [tp, member] : owners) rows.try_emplace(tp);
  if (rows.empty() && !active) {
    return Status::not_found("consumer group " + quote(group) +
                             " does not exist (no committed offsets, no members); "
                             "`factoryd groups list` shows the groups");
  }
  for (const auto& [tp, committed] : rows) {
    auto t = topics_.find(tp.topic);
    if (t == topics_.end() || tp.partition >= static_cast<int32_t>(t->second->parts.size()))
      continue;
    const Partition& ps = *t->second->parts[tp.partition];
    GroupPartitionLag row;
    row.topic = tp.topic;
    row.partition = tp.partition;
    if (committed) row.committed = Offset(*committed);
    row.log_end = Offset(ps.end);
    row.lag = ps.end - std::max(committed.value_or(ps.start), ps.start);
    if (row.lag < 0) row.lag = 0;
    auto o = owners.find(tp);
    if (o != owners.end()) row.member = o->second;
    d.partitions.push_back(std::move(row));
  }
  return d;
}

Result<std::vector<TopicPartitionOffset>> RocksLog::reset_offsets(std::string_view group,
                                                                  std::string_view topic,
                                                                  const OffsetResetSpec& spec,
                                                                  bool execute) {
  if (group.empty()) return Status::invalid_argument("group name is empty; give a group id");
  if (coordinator_.has_members(std::string(group))) {
    return Status::failed_precondition(
        "consumer group " + quote(group) +
        " has active members; stop its consumers before resetting offsets (as Kafka requires)");
  }
  auto info = describe_topic(topic);
  if (!info.ok()) return info.status();
  std::vector<TopicPartitionOffset> plan;
  for (const PartitionInfo& p : info->partitions) {
    int64_t o = 0;
    switch (spec.kind) {
      case OffsetResetSpec::Kind::kEarliest:
        o = p.log_start.value();
        break;
      case OffsetResetSpec::Kind::kLatest:
        o = p.log_end.value();
        break;
      case OffsetResetSpec::Kind::kOffset:
        o = std::clamp(spec.value, p.log_start.value(), p.log_end.value());
        break;
      case OffsetResetSpec::Kind::kTimestamp: {
        auto r = offset_for_timestamp(topic, p.partition, spec.value);
        if (!r.ok()) return r.status();
        o = r->value();
        break;
      }
    }
    plan.push_back({std::string(topic), p.partition, Offset(o)});
  }
  if (execute) FACTORY_RETURN_IF_ERROR(commit_offsets(group, plan));
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Retention.

Result<RetentionStats> RocksLog::enforce_retention() {
  RetentionStats stats;
  Status s = exclusive([&] { return retention_step(&stats); });
  if (!s.ok()) return s;
  return stats;
}

Status RocksLog::retention_step(RetentionStats* stats) {
  struct Work {
    std::shared_ptr<Topic> topic;
    int32_t partition;
    Partition state;
  };
  std::vector<Work> work;
  {
    base::MutexLock lock(&mu_);
    for (const auto& [name, t] : topics_) {
      const TopicConfig& c = t->spec.config;
      if (c.retention_ms < 0 && c.retention_bytes < 0) continue;
      for (size_t p = 0; p < t->parts.size(); ++p) {
        if (t->parts[p]->end > t->parts[p]->start) {
          work.push_back({t, static_cast<int32_t>(p), *t->parts[p]});
        }
      }
    }
  }
  const int64_t now = now_ms();
  rocksdb::WriteBatch batch;
  std::vector<std::pair<Work*, Partition>> changes;
  for (Work& w : work) {
    const TopicConfig& c = w.topic->spec.config;
    const uint32_t id = w.topic->id;
    Partition next = w.state;
    std::string upper = record_key(id, w.partition, w.state.end);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
    int64_t scanned = 0;
    for (it->Seek(record_key(id, w.partition, w.state.start)); it->Valid(); it->Next()) {
      if (scanned == options_.retention_step_records) {
        stats->more = true;
        break;
      }
      int64_t ts = 0;
      decode_record_timestamp(std::string_view(it->value().data(), it->value().size()), &ts);
      bool too_old = c.retention_ms >= 0 && ts < now - c.retention_ms;
      bool too_big = c.retention_bytes >= 0 && next.bytes > c.retention_bytes;
      if (!too_old && !too_big) break;
      int64_t size = static_cast<int64_t>(kRecordKeySize + it->value().size());
      next.bytes -= size;
      next.start = record_key_offset(std::string_view(it->key().data(), it->key().size())) + 1;
      stats->bytes_deleted += size;
      ++stats->records_deleted;
      ++scanned;
    }
    FACTORY_RETURN_IF_ERROR(to_status(it->status(), "retention scan"));
    if (next.start == w.state.start) continue;
    batch.DeleteRange(records_cf_, record_key(id, w.partition, w.state.start),
                      record_key(id, w.partition, next.start));
    // Drop time-index entries that no longer answer any lookup: entry i is dead once entry i+1
    // starts at or before the new log start (lookups clamp to the start).
    std::string prefix = partition_prefix(id, w.partition);
    std::unique_ptr<rocksdb::Iterator> idx(db_->NewIterator(rocksdb::ReadOptions(), index_cf_));
    std::string prev;
    for (idx->Seek(prefix); idx->Valid() && idx->key().starts_with(prefix); idx->Next()) {
      int64_t ts, off;
      if (!parse_time_index_key(std::string_view(idx->key().data(), idx->key().size()), &ts, &off))
        break;
      if (off > next.start) break;
      if (!prev.empty()) batch.Delete(index_cf_, prev);
      prev = idx->key().ToString();
    }
    // Forget the idempotency keys of the deleted records: nothing can append them twice any
    // more that a consumer could still read.
    std::string dlo = dedupe_position_key(id, w.partition, w.state.start);
    std::string dhi = dedupe_position_key(id, w.partition, next.start);
    rocksdb::Slice dhi_slice(dhi);
    rocksdb::ReadOptions dro;
    dro.iterate_upper_bound = &dhi_slice;
    std::unique_ptr<rocksdb::Iterator> dk(db_->NewIterator(dro, dedupe_cf_));
    for (dk->Seek(dlo); dk->Valid(); dk->Next()) {
      batch.Delete(dedupe_cf_,
                   dedupe_key(id, std::string_view(dk->value().data(), dk->value().size())));
    }
    FACTORY_RETURN_IF_ERROR(to_status(dk->status(), "retention scan of idempotency keys"));
    batch.DeleteRange(dedupe_cf_, dlo, dhi);
    put_partition_meta(&batch, id, w.partition, next);
    changes.emplace_back(&w, next);
  }
  if (changes.empty()) return Status();
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  FACTORY_RETURN_IF_ERROR(db_write(wo, &batch, "retention"));
  base::MutexLock lock(&mu_);
  for (auto& [w, next] : changes) {
    Partition& ps = *w->topic->parts[w->partition];
    ps.start = next.start;
    ps.bytes = next.bytes;
  }
  obs::debug("retention step", {{"records_deleted", stats->records_deleted}});
  return Status();
}

void RocksLog::retention_loop() {
  for (;;) {
    bool more = false;
    {
      base::MutexLock lock(&mu_);
      if (closing_) return;
      auto deadline = std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(options_.retention_interval_ms);
      while (!closing_ && retention_cv_.wait_until(deadline)) {
      }
      if (closing_) return;
    }
    do {
      auto r = enforce_retention();
      if (!r.ok()) {
        obs::warn("retention step failed", {{"error", r.status().to_string()}});
        break;
      }
      more = r->more;
    } while (more);
  }
}

}  // namespace factory::log

namespace factory {

Result<std::unique_ptr<Log>> open_log(const LogOptions& options) {
  return log::RocksLog::open(options);
}

}  // namespace factory
