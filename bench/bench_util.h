// Helpers shared by factory-bench subcommands: timers, percentiles, process memory, temp dirs,
// the result table and the one-line JSON summary each subcommand prints last.
//
// Everything here is thread-compatible: a value is used by one thread at a time, except the
// free functions, which are thread-safe.
//
// Example:
//   factory::bench::Stopwatch sw;
//   ... work ...
//   double rate = n / sw.elapsed_s();
//   factory::bench::Table t({"workload", "factoryd", "baseline", "ratio"});
//   t.add_row({"append 100 B", fmt_rate(rate), fmt_rate(base), fmt_ratio(rate / base)});
//   t.print(stdout);
//   factory::bench::JsonLine j;
//   j.add("bench", "log");
//   j.add("append_records_per_s", rate, 0);
//   std::puts(j.str().c_str());
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "factory/status.h"

namespace factory::bench {

// Monotonic wall time since construction (or the last reset()).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double elapsed_s() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double elapsed_ms() const { return elapsed_s() * 1e3; }

 private:
  std::chrono::steady_clock::time_point start_;
};

// steady_clock now in nanoseconds: a timestamp two threads of one process can compare.
inline int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Percentiles {
  size_t count = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

// Nearest-rank percentiles of `samples` (any unit; sorted in place). All zero when empty.
Percentiles summarize(std::vector<double>* samples);

// Waits until the threads of this process other than the caller (e.g. RocksDB's flush and
// compaction threads) have used under 2% of a CPU for 250 ms, or until max_s has passed, so
// that a CPU-bound phase does not compete with the previous phase's background work. Returns
// the seconds waited.
double wait_for_background_idle(double max_s);

// A "Vm*" field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"); pid 0 means this process.
// nullopt when the file or field cannot be read.
std::optional<int64_t> proc_status_kb(std::string_view field, int pid = 0);
inline double kb_to_mb(int64_t kb) { return static_cast<double>(kb) / 1024.0; }

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  // `prefix` names the directory: /tmp/<prefix>-XXXXXX. IOError when it cannot be made.
  static Result<TempDir> create(std::string_view prefix);
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  std::string sub(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Total size in bytes of the regular files under `dir` (0 when it does not exist).
int64_t dir_size_bytes(const std::string& dir);

// Deterministic printable pseudo-random bytes (not compressible to nothing, unlike a repeated
// byte), so payloads cost the storage engine what real payloads would.
std::string random_bytes(size_t n, uint64_t seed);

// Record payloads: record i's value is a window of one random pool, so values differ from record
// to record without generating or storing one string per record. Immutable; thread-safe.
class PayloadPool {
 public:
  PayloadPool(size_t pool_bytes, uint64_t seed) : pool_(random_bytes(pool_bytes, seed)) {}
  // `size` must be below the pool size.
  std::string_view get(int64_t i, size_t size) const {
    size_t span = pool_.size() - size;
    return std::string_view(pool_).substr(static_cast<size_t>(i) * 7919 % span, size);
  }

 private:
  std::string pool_;
};

// Formatting for table cells: "1,234,567", "12.3", "0.87x"; "-" for a missing value.
std::string fmt_count(double v);
std::string fmt_fixed(double v, int decimals);
std::string fmt_ratio(std::optional<double> v);
std::string fmt_opt(std::optional<double> v, int decimals);

// A plain-text table; the first column is left-aligned, the others right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void print(std::FILE* out) const;
  // GitHub-flavoured Markdown, for docs/benchmarks.md.
  void print_markdown(std::FILE* out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// One JSON object on one line, keys in insertion order. Non-finite numbers and nullopt become
// null, so a skipped measurement is explicit.
class JsonLine {
 public:
  void add(std::string_view key, std::string_view value);
  void add(std::string_view key, const char* value) { add(key, std::string_view(value)); }
  void add_bool(std::string_view key, bool value);
  void add(std::string_view key, int64_t value);
  void add(std::string_view key, std::optional<double> value, int decimals);
  void add_null(std::string_view key);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void add_key(std::string_view key);
  std::string body_;
};

}  // namespace factory::bench
