// RocksLog: opening and closing, loading the metadata, RocksDB errors and write resumption.
// The rest of RocksLog: rocks_log_write.cpp (writer queue, appends), rocks_log_read.cpp,
// rocks_log_topics.cpp, rocks_log_groups.cpp, rocks_log_retention.cpp.
#include "log/rocks_log.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "base/coding.h"
#include "log/record_codec.h"
#include "log/rocks_log_internal.h"
#include "log/rocks_options.h"
#include "obs/logger.h"

namespace factory::log {
namespace {

constexpr char kRecordsCf[] = "records";
constexpr char kIndexCf[] = "timeindex";
constexpr char kDedupeCf[] = "dedupe";

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

Status partition_out_of_range(std::string_view topic, int32_t p, size_t n) {
  return Status::invalid_argument("partition " + std::to_string(p) + " does not exist in topic " +
                                  quote(topic) + " (it has " + std::to_string(n) +
                                  " partitions: 0.." + std::to_string(n - 1) + ")");
}

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

size_t RocksLog::queued_writers_for_test() {
  base::MutexLock lock(&mu_);
  return writers_.size();
}

int RocksLog::long_poll_waiters_for_test() {
  base::MutexLock lock(&mu_);
  return long_poll_waiters_;
}

}  // namespace factory::log

namespace factory {

Result<std::unique_ptr<Log>> open_log(const LogOptions& options) {
  return log::RocksLog::open(options);
}

}  // namespace factory
