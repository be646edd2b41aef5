#include "bench/bench_util.h"

#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "base/coding.h"

namespace factory::bench {

namespace {

// Nearest-rank: the smallest sample with at least p of the samples at or below it.
double nearest_rank(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

}  // namespace

Percentiles summarize(std::vector<double>* samples) {
  Percentiles p;
  if (samples->empty()) return p;
  std::sort(samples->begin(), samples->end());
  p.count = samples->size();
  p.min = samples->front();
  p.max = samples->back();
  p.p50 = nearest_rank(*samples, 0.50);
  p.p90 = nearest_rank(*samples, 0.90);
  p.p99 = nearest_rank(*samples, 0.99);
  p.mean =
      std::accumulate(samples->begin(), samples->end(), 0.0) / static_cast<double>(samples->size());
  return p;
}

namespace {

double cpu_clock_s(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

double wait_for_background_idle(double max_s) {
  constexpr double kWindowS = 0.25;
  constexpr double kIdleShare = 0.02;
  Stopwatch sw;
  while (sw.elapsed_s() < max_s) {
    const double process0 = cpu_clock_s(CLOCK_PROCESS_CPUTIME_ID);
    const double self0 = cpu_clock_s(CLOCK_THREAD_CPUTIME_ID);
    std::this_thread::sleep_for(std::chrono::duration<double>(kWindowS));
    const double others = (cpu_clock_s(CLOCK_PROCESS_CPUTIME_ID) - process0) -
                          (cpu_clock_s(CLOCK_THREAD_CPUTIME_ID) - self0);
    if (others < kIdleShare * kWindowS) break;
  }
  return sw.elapsed_s();
}

std::optional<int64_t> proc_status_kb(std::string_view field, int pid) {
  std::string path = pid == 0 ? "/proc/self/status" : fmt::format("/proc/{}/status", pid);
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    // "VmRSS:\t   12345 kB"
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':') {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return std::nullopt;
}

Result<TempDir> TempDir::create(std::string_view prefix) {
  std::string tmpl = fmt::format("/tmp/{}-XXXXXX", prefix);
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Status::io_error(fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
  }
  return TempDir(std::move(tmpl));
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec)
    std::fprintf(stderr, "factory-bench: could not remove %s: %s\n", path_.c_str(),
                 ec.message().c_str());
}

int64_t dir_size_bytes(const std::string& dir) {
  std::error_code ec;
  int64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      auto n = it->file_size(size_ec);
      if (!size_ec) total += static_cast<int64_t>(n);
    }
  }
  return total;
}

std::string random_bytes(size_t n, uint64_t seed) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";  // 64 symbols
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  uint64_t bits = 0;
  int left = 0;
  for (size_t i = 0; i < n; i++) {
    if (left == 0) {
      bits = rng();
      left = 10;  // 10 x 6 bits per draw
    }
    s[i] = kAlphabet[bits & 63];
    bits >>= 6;
    left--;
  }
  return s;
}

std::string fmt_count(double v) {
  if (!std::isfinite(v)) return "-";
  // Thousands separators by hand: the "{:L}" output depends on the environment's locale.
  std::string digits = fmt::format("{}", std::llabs(std::llround(v)));
  std::string out;
  for (size_t i = 0; i < digits.size(); i++) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string fmt_fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.{}f}", v, decimals);
}

std::string fmt_ratio(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "-";
  return fmt::format("{:.2f}x", *v);
}

std::string fmt_opt(std::optional<double> v, int decimals) {
  if (!v) return "-";
  return fmt_fixed(*v, decimals);
}

namespace {

std::vector<size_t> column_widths(const std::vector<std::string>& header,
                                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); i++) w[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < w.size(); i++) w[i] = std::max(w[i], r[i].size());
  }
  return w;
}

void print_cells(std::FILE* out, const std::vector<std::string>& cells,
                 const std::vector<size_t>& w, std::string_view sep, std::string_view left,
                 std::string_view right) {
  std::string line(left);
  for (size_t i = 0; i < w.size(); i++) {
    const std::string cell = i < cells.size() ? cells[i] : "";
    if (i > 0) line += sep;
    line += i == 0 ? fmt::format("{:<{}}", cell, w[i]) : fmt::format("{:>{}}", cell, w[i]);
  }
  line += right;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  std::fprintf(out, "%s\n", line.c_str());
}

}  // namespace

void Table::print(std::FILE* out) const {
  auto w = column_widths(header_, rows_);
  print_cells(out, header_, w, "  ", "", "");
  size_t total = 0;
  for (size_t x : w) total += x;
  total += 2 * (w.size() - 1);
  std::fprintf(out, "%s\n", std::string(total, '-').c_str());
  for (const auto& r : rows_) print_cells(out, r, w, "  ", "", "");
}

void Table::print_markdown(std::FILE* out) const {
  auto w = column_widths(header_, rows_);
  print_cells(out, header_, w, " | ", "| ", " |");
  std::string rule = "|";
  for (size_t i = 0; i < w.size(); i++) {
    rule += i == 0 ? " " + std::string(w[i], '-') + " |" : " " + std::string(w[i] - 1, '-') + ": |";
  }
  std::fprintf(out, "%s\n", rule.c_str());
  for (const auto& r : rows_) print_cells(out, r, w, " | ", "| ", " |");
}

void JsonLine::add_key(std::string_view key) {
  if (!body_.empty()) body_ += ", ";
  base::append_json_string(&body_, key);
  body_ += ": ";
}

void JsonLine::add(std::string_view key, std::string_view value) {
  add_key(key);
  base::append_json_string(&body_, value);
}

void JsonLine::add_bool(std::string_view key, bool value) {
  add_key(key);
  body_ += value ? "true" : "false";
}

void JsonLine::add(std::string_view key, int64_t value) {
  add_key(key);
  body_ += fmt::format("{}", value);
}

void JsonLine::add(std::string_view key, std::optional<double> value, int decimals) {
  add_key(key);
  if (!value || !std::isfinite(*value)) {
    body_ += "null";
  } else {
    body_ += fmt::format("{:.{}f}", *value, decimals);
  }
}

void JsonLine::add_null(std::string_view key) {
  add_key(key);
  body_ += "null";
}

}  // namespace factory::bench
