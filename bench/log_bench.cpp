#include "bench/log_bench.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include "bench/bench_util.h"
#include "bench/log_contenders.h"
#include "bench/redis_peer.h"
#include "bench/subprocess.h"
#include "factory/consumer.h"
#include "factory/log.h"

namespace factory::bench {

namespace {

constexpr size_t kPoolBytes = 4 << 20;        // payload pool (bench_util.h PayloadPool)
constexpr int kRounds = 12;                   // rounds per workload (see round_order)
constexpr int64_t kLatencyIntervalUs = 4000;  // a single-record write every 4 ms (8 ms each)
constexpr int kFirstAckRuns = 5;
constexpr double kStallS = 30;  // no progress for this long fails the benchmark

struct Throughput {
  int64_t records = 0;
  int64_t payload_bytes = 0;  // value bytes only; MB/s is payload MB (1e6 bytes) per second
  double seconds = 0;
  double records_per_s() const { return static_cast<double>(records) / seconds; }
  double mb_per_s() const { return static_cast<double>(payload_bytes) / seconds / 1e6; }
};

template <typename T>
struct Entrant {
  T* contender;
  Throughput* result;
};

// The order of n contenders in round r: every permutation in turn, so that over the rounds each
// contender runs first, last, and right after each other one equally often (a contender that
// follows another inherits its flushes and compactions). 12 rounds cycle through all orders of
// 2 or 3 contenders evenly.
std::vector<size_t> round_order(size_t n, int r) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (int i = 0; i < r; i++) {
    if (!std::next_permutation(order.begin(), order.end())) std::sort(order.begin(), order.end());
  }
  return order;
}

// Appends every record of w through each appender. The batches are split into kRounds ranges;
// in each round every appender writes the same range, in the order round_order gives, so drift
// in the disk's speed and one engine's background work hit all of them alike.
Status append_rounds(const Workload& w, const std::vector<Entrant<Appender>>& entrants) {
  const int64_t batches = (w.records + kBatch - 1) / kBatch;
  for (int r = 0; r < kRounds; r++) {
    const int64_t b0 = batches * r / kRounds, b1 = batches * (r + 1) / kRounds;
    for (size_t k : round_order(entrants.size(), r)) {
      const Entrant<Appender>& e = entrants[k];
      Stopwatch sw;
      for (int64_t b = b0; b < b1; b++) {
        const int64_t first = b * kBatch;
        const int64_t n = std::min<int64_t>(kBatch, w.records - first);
        FACTORY_RETURN_IF_ERROR(
            e.contender->append_batch(w, static_cast<int32_t>(b % kPartitions), first, n));
        e.result->records += n;
        e.result->payload_bytes += n * static_cast<int64_t>(w.value_bytes);
      }
      e.result->seconds += sw.elapsed_s();
    }
  }
  return Status();
}

// Reads every record of w through each reader, interleaved as append_rounds does.
Status read_rounds(const Workload& w, const std::vector<Entrant<Reader>>& entrants) {
  const int64_t per_round = (w.records + kRounds - 1) / kRounds;
  for (int r = 0; r < kRounds; r++) {
    for (size_t k : round_order(entrants.size(), r)) {
      const Entrant<Reader>& e = entrants[k];
      const int64_t want = std::min(per_round, w.records - e.result->records);
      Stopwatch sw;
      if (want > 0) {
        FACTORY_RETURN_IF_ERROR(
            e.contender->read_at_least(want, &e.result->records, &e.result->payload_bytes));
      }
      if (r == kRounds - 1) FACTORY_RETURN_IF_ERROR(e.contender->finish());
      e.result->seconds += sw.elapsed_s();
    }
  }
  return Status();
}

// Record j's value in the latency run: its index in 10 digits, then payload up to 100 B.
std::string latency_value(int64_t j, const PayloadPool& pool) {
  std::string v = fmt::format("{:010d}", j);
  v.append(pool.get(j, 90));
  return v;
}

// Paces a loop at one iteration per kLatencyIntervalUs at most; never bursts to catch up.
class Pacer {
 public:
  void wait() {
    auto now = std::chrono::steady_clock::now();
    if (next_ > now) std::this_thread::sleep_until(next_);
    next_ = std::max(next_, now) + std::chrono::microseconds(kLatencyIntervalUs);
  }

 private:
  std::chrono::steady_clock::time_point next_{};
};

struct Latency {
  Percentiles visible_ms;  // factoryd: append call start -> poll() returned the record
  Percentiles ack_ms;      // factoryd: single-record append call
  Percentiles raw_ack_ms;  // raw RocksDB: single-record synced Put
};

// One thread writes single records at a modest fixed rate, alternating a factoryd append
// (round-robin over 12 partitions) and a raw synced Put, while this thread long-polls a
// consumer group on the factoryd topic. Visibility latency runs from just before the append
// call to just after the poll() that returned the record; timestamps are steady_clock values
// shared in-process.
Result<Latency> measure_latency(Log* log, rocksdb::DB* raw, const PayloadPool& pool,
                                int64_t samples) {
  const std::string topic = "bench-latency";
  Status s = log->create_topic({.name = topic, .partitions = kPartitions});
  if (!s.ok()) return with_context(s, "create_topic");
  auto consumer = log->subscribe({.group = "bench-latency", .topics = {topic}});
  if (!consumer.ok()) return with_context(consumer.status(), "subscribe");
  // Join the group and take the assignment before the clock starts.
  auto warm = (*consumer)->poll(1, 0);
  if (!warm.ok()) return with_context(warm.status(), "poll");

  const auto n = static_cast<size_t>(samples);
  std::vector<std::atomic<int64_t>> start_ns(n);
  std::vector<double> ack_ms(n, 0), raw_ack_ms(n, 0);
  std::atomic<bool> stop{false};
  std::atomic<bool> writer_failed{false};
  Status writer_status;  // written before writer_failed is set

  std::thread writer([&] {
    Pacer pacer;
    for (size_t i = 0; i < 2 * n && !stop.load(); i++) {
      pacer.wait();
      const size_t j = i / 2;
      const int32_t partition = static_cast<int32_t>(j % kPartitions);
      const std::string value = latency_value(static_cast<int64_t>(j), pool);
      const int64_t t0 = steady_now_ns();
      Status ws;
      if (i % 2 == 0) {
        ProducerRecord r;
        r.value = value;
        r.partition = partition;
        start_ns[j].store(t0, std::memory_order_release);
        auto pos = log->append(topic, {&r, 1});
        ack_ms[j] = static_cast<double>(steady_now_ns() - t0) / 1e6;
        if (!pos.ok()) ws = pos.status();
      } else {
        ws = raw_put(raw, 99, partition, static_cast<int64_t>(j) / kPartitions, value);
        raw_ack_ms[j] = static_cast<double>(steady_now_ns() - t0) / 1e6;
      }
      if (!ws.ok()) {
        writer_status = ws;
        writer_failed.store(true, std::memory_order_release);
        return;
      }
    }
  });

  std::vector<double> visible;
  std::vector<bool> seen(n, false);
  Status result;
  Stopwatch idle;
  while (visible.size() < n && result.ok()) {
    if (writer_failed.load(std::memory_order_acquire)) {
      result = with_context(writer_status, "latency writer");
      break;
    }
    auto batch = (*consumer)->poll(100, 200);
    const int64_t now = steady_now_ns();
    if (!batch.ok()) {
      result = with_context(batch.status(), "latency poll");
      break;
    }
    if (batch->empty() && idle.elapsed_s() > kStallS) {
      result = Status::internal(fmt::format("latency: stalled after {} records", visible.size()));
      break;
    }
    if (!batch->empty()) idle.reset();
    for (const ConsumerRecord& cr : *batch) {
      int64_t j = -1;
      const std::string& v = cr.record.value.value_or("");
      std::from_chars(v.data(), v.data() + std::min<size_t>(v.size(), 10), j);
      if (j < 0 || j >= samples || seen[static_cast<size_t>(j)]) {
        result = Status::internal(fmt::format("latency: unexpected record '{}'", v.substr(0, 10)));
        break;
      }
      seen[static_cast<size_t>(j)] = true;
      const int64_t t0 = start_ns[static_cast<size_t>(j)].load(std::memory_order_acquire);
      visible.push_back(static_cast<double>(now - t0) / 1e6);
    }
  }
  if (!result.ok()) stop.store(true);
  writer.join();
  if (!result.ok()) return result;
  if (writer_failed.load()) return with_context(writer_status, "latency writer");
  Latency out;
  out.visible_ms = summarize(&visible);
  out.ack_ms = summarize(&ack_ms);
  out.raw_ack_ms = summarize(&raw_ack_ms);
  return out;
}

// ---------------------------------------------------------------- child processes

struct FirstAck {
  Percentiles ms;  // over kFirstAckRuns runs
};

// Times `factoryd --data-dir DIR produce T --acks` with "x" on stdin, from posix_spawn to the
// "PARTITION OFFSET" ack line on its stdout. The topic is created first by another factoryd run.
Result<FirstAck> measure_first_ack(const std::string& factoryd, const std::string& tmp) {
  const std::string data_dir = tmp + "/first-ack-data";
  const std::string err = tmp + "/first-ack.stderr";
  const std::string topic = "first-ack";
  {
    auto p = Subprocess::spawn(
        {.argv = {factoryd, "--data-dir", data_dir, "topics", "create", topic, "--partitions", "1"},
         .stderr_path = err});
    if (!p.ok()) return p.status();
    auto code = p->wait(60'000);
    if (!code.ok()) return code.status();
    if (*code != 0) {
      return Status::internal(fmt::format("factoryd topics create exited {} (see {})", *code, err));
    }
  }
  std::vector<double> ms;
  for (int run = 0; run < kFirstAckRuns; run++) {
    Stopwatch sw;
    auto p =
        Subprocess::spawn({.argv = {factoryd, "--data-dir", data_dir, "produce", topic, "--acks"},
                           .stdin_data = "x\n",
                           .capture_stdout = true,
                           .stderr_path = err});
    if (!p.ok()) return p.status();
    auto line = p->read_line(60'000);
    const double elapsed = sw.elapsed_ms();
    if (!line.ok()) return with_context(line.status(), "factoryd produce --acks");
    int64_t partition = -1, offset = -1;
    if (std::sscanf(line->c_str(), "%ld %ld", &partition, &offset) != 2 || partition != 0 ||
        offset != run) {
      return Status::internal(
          fmt::format("factoryd produce --acks printed '{}', expected '0 {}'", *line, run));
    }
    auto code = p->wait(60'000);
    if (!code.ok()) return code.status();
    if (*code != 0) {
      return Status::internal(fmt::format("factoryd produce exited {} (see {})", *code, err));
    }
    ms.push_back(elapsed);
  }
  return FirstAck{summarize(&ms)};
}

// Runs `factory-bench idle-rss-child DIR [--raw]` and returns the VmRSS it reports, in MB.
Result<double> measure_idle_rss(const std::string& self, const std::string& dir, bool raw) {
  SpawnOptions o{.argv = {self, "idle-rss-child", dir}, .capture_stdout = true};
  if (raw) o.argv.push_back("--raw");
  o.stderr_path = dir + ".stderr";
  auto p = Subprocess::spawn(o);
  if (!p.ok()) return p.status();
  auto line = p->read_line(120'000);
  if (!line.ok()) return with_context(line.status(), "idle-rss-child");
  auto code = p->wait(60'000);
  if (!code.ok()) return code.status();
  long long rss_kb = 0, hwm_kb = 0;
  if (*code != 0 || std::sscanf(line->c_str(), "%lld %lld", &rss_kb, &hwm_kb) != 2) {
    return Status::internal(fmt::format("idle-rss-child exited {} printing '{}' (see {})", *code,
                                        *line, o.stderr_path));
  }
  return kb_to_mb(rss_kb);
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return std::nullopt;
  return *a / *b;
}

void progress(const std::string& what) {
  std::fprintf(stderr, "factory-bench: %s\n", what.c_str());
}

// Lets the previous phase's flushes and compactions finish first: on a small machine they
// would otherwise steal CPU from whichever contender runs next.
void settle() {
  const double waited = wait_for_background_idle(60);
  if (waited > 0.5) progress(fmt::format("waited {:.1f} s for background work to finish", waited));
}

// Everything the log benchmark measured.
struct Results {
  int64_t small_n = 0, large_n = 0, latency_samples = 0;
  Throughput append[2], raw_append[2], redis_append, consume[2], consume_fresh[2], raw_consume[2];
  Latency latency;
  std::optional<FirstAck> first_ack;
  double idle_rss_mb = 0, raw_idle_rss_mb = 0;
  double disk_mb = 0, raw_disk_mb = 0;
  double reopen_ms = 0, raw_reopen_ms = 0;
  double peak_rss_mb = 0;
  std::optional<std::string> redis_skipped;
  std::string redis_version;
  std::optional<double> redis_idle_rss_mb, redis_rss_mb, redis_disk_mb;
};

// The in-process part: factoryd and raw RocksDB (and redis, when installed) side by side.
Status run_engines(const LogBenchOptions& opts, const TempDir& tmp,
                   const std::vector<Workload>& workloads, const PayloadPool& pool, Results* res) {
  const std::string log_dir = tmp.sub("log"), raw_dir = tmp.sub("raw"),
                    redis_dir = tmp.sub("redis");
  LogOptions log_options;
  log_options.dir = log_dir;  // sync = true: every append is fsynced before it returns
  auto log = open_log(log_options);
  if (!log.ok()) return with_context(log.status(), "open_log");
  auto raw = raw_open(raw_dir);
  if (!raw.ok()) return raw.status();
  for (const Workload& w : workloads) {
    Status s = (*log)->create_topic({.name = w.topic, .partitions = kPartitions});
    if (!s.ok()) return with_context(s, "create_topic");
  }

  std::unique_ptr<RedisServer> redis;
  std::filesystem::create_directories(redis_dir);
  auto started = RedisServer::start({.server_path = opts.redis_server_path, .dir = redis_dir});
  if (started.ok()) {
    redis = std::move(*started);
    res->redis_version = redis->version();
    if (auto kb = proc_status_kb("VmRSS", redis->pid())) res->redis_idle_rss_mb = kb_to_mb(*kb);
  } else if (started.status().is_not_found()) {
    res->redis_skipped = started.status().message();
  } else {
    res->redis_skipped = "failed: " + started.status().to_string();
  }
  if (res->redis_skipped) progress("redis skipped: " + *res->redis_skipped);

  // Appends.
  auto fa = factoryd_appender(log->get(), &pool);
  auto ra = raw_appender(raw->get(), &pool);
  auto xa = redis ? redis_appender(redis.get(), &pool) : nullptr;
  for (size_t i = 0; i < workloads.size(); i++) {
    const Workload& w = workloads[i];
    std::vector<Entrant<Appender>> entrants = {{fa.get(), &res->append[i]},
                                               {ra.get(), &res->raw_append[i]}};
    // Redis runs the 100-B workload only.
    if (i == 0 && xa) entrants.push_back({xa.get(), &res->redis_append});
    settle();
    progress(fmt::format("append {} x {}: factoryd, raw RocksDB{}", w.label, w.records,
                         entrants.size() > 2 ? ", redis" : ""));
    FACTORY_RETURN_IF_ERROR(append_rounds(w, entrants));
  }
  if (redis) {
    int64_t total = 0;
    for (int32_t p = 0; p < kPartitions; p++) {
      auto n = redis->xlen(fmt::format("{}:{}", workloads[0].topic, p));
      if (!n.ok()) return n.status();
      total += *n;
    }
    if (total != workloads[0].records) {
      return Status::internal(
          fmt::format("redis: XLEN total {} != {} appended", total, workloads[0].records));
    }
    if (auto kb = proc_status_kb("VmRSS", redis->pid())) res->redis_rss_mb = kb_to_mb(*kb);
    auto code = redis->stop();
    if (!code.ok()) return with_context(code.status(), "stopping redis");
    res->redis_disk_mb = static_cast<double>(dir_size_bytes(redis_dir)) / 1e6;
    redis.reset();
  }

  // Consumption.
  for (size_t i = 0; i < workloads.size(); i++) {
    const Workload& w = workloads[i];
    settle();
    progress(fmt::format(
        "consume {}: factoryd consumer group (poll_into, poll), raw RocksDB iterator", w.label));
    auto fr = factoryd_reader(log->get(), w, PollStyle::kInto);
    if (!fr.ok()) return fr.status();
    auto ff = factoryd_reader(log->get(), w, PollStyle::kFresh);
    if (!ff.ok()) return ff.status();
    auto rr = raw_reader(raw->get(), w);
    FACTORY_RETURN_IF_ERROR(read_rounds(w, {{fr->get(), &res->consume[i]},
                                            {ff->get(), &res->consume_fresh[i]},
                                            {rr.get(), &res->raw_consume[i]}}));
  }

  // Latency.
  settle();
  progress(fmt::format("latency: {} single-record appends each, one every {} ms",
                       res->latency_samples, 2 * kLatencyIntervalUs / 1000));
  auto lat = measure_latency(log->get(), raw->get(), pool, res->latency_samples);
  if (!lat.ok()) return lat.status();
  res->latency = *lat;
  if (auto kb = proc_status_kb("VmHWM")) res->peak_rss_mb = kb_to_mb(*kb);

  // Close both, measure what they left on disk, then time reopening them (WAL replay).
  log->reset();
  raw->reset();
  res->disk_mb = static_cast<double>(dir_size_bytes(log_dir)) / 1e6;
  res->raw_disk_mb = static_cast<double>(dir_size_bytes(raw_dir)) / 1e6;
  progress("reopen after the writes");
  {
    Stopwatch sw;
    auto reopened = open_log(log_options);
    res->reopen_ms = sw.elapsed_ms();
    if (!reopened.ok()) return with_context(reopened.status(), "reopen log");
  }
  {
    Stopwatch sw;
    auto reopened = raw_open(raw_dir);
    res->raw_reopen_ms = sw.elapsed_ms();
    if (!reopened.ok()) return reopened.status();
  }
  std::filesystem::remove_all(log_dir);
  std::filesystem::remove_all(raw_dir);
  return Status();
}

void print_report(const LogBenchOptions& opts, const Results& r) {
  const std::optional<double> redis_rate =
      r.redis_skipped ? std::nullopt : std::optional<double>(r.redis_append.records_per_s());
  const std::optional<double> first_ack =
      r.first_ack ? std::optional<double>(r.first_ack->ms.p50) : std::nullopt;
  const double append_rate = r.append[0].records_per_s();

  auto rate_row = [](std::string name, double a, double b) {
    return std::vector<std::string>{std::move(name), fmt_count(a), fmt_count(b), fmt_ratio(a / b)};
  };
  auto num_row = [](std::string name, std::optional<double> a, std::optional<double> b,
                    int decimals) {
    return std::vector<std::string>{std::move(name), fmt_opt(a, decimals), fmt_opt(b, decimals),
                                    fmt_ratio(ratio(a, b))};
  };
  Table t({"workload", "factoryd", "baseline", "ratio"});
  for (int i = 0; i < 2; i++) {
    const char* label = i == 0 ? "100 B" : "1 KiB";
    const int64_t n = i == 0 ? r.small_n : r.large_n;
    t.add_row(rate_row(fmt::format("append {} x {}, batch {}, sync (rec/s) vs raw RocksDB", label,
                                   fmt_count(static_cast<double>(n)), fmt_count(kBatch)),
                       r.append[i].records_per_s(), r.raw_append[i].records_per_s()));
    t.add_row(num_row(fmt::format("append {} (MB/s of payload)", label), r.append[i].mb_per_s(),
                      r.raw_append[i].mb_per_s(), 1));
  }
  for (int i = 0; i < 2; i++) {
    const char* label = i == 0 ? "100 B" : "1 KiB";
    t.add_row(rate_row(fmt::format("consume {}, group poll_into (rec/s) vs raw iterator", label),
                       r.consume[i].records_per_s(), r.raw_consume[i].records_per_s()));
    t.add_row(rate_row(fmt::format("consume {}, group poll, new vector (rec/s) vs raw", label),
                       r.consume_fresh[i].records_per_s(), r.raw_consume[i].records_per_s()));
  }
  t.add_row(num_row("append -> visible to long-poll, p50 (ms)", r.latency.visible_ms.p50,
                    std::nullopt, 2));
  t.add_row(num_row("append -> visible to long-poll, p99 (ms)", r.latency.visible_ms.p99,
                    std::nullopt, 2));
  t.add_row(num_row("single-record append, p50 (ms) vs raw synced Put", r.latency.ack_ms.p50,
                    r.latency.raw_ack_ms.p50, 2));
  t.add_row(num_row("single-record append, p99 (ms) vs raw synced Put", r.latency.ack_ms.p99,
                    r.latency.raw_ack_ms.p99, 2));
  t.add_row(num_row(fmt::format("process start -> first ack, median of {} (ms)", kFirstAckRuns),
                    first_ack, std::nullopt, 1));
  t.add_row(
      num_row("idle RSS, opened log (MB) vs raw RocksDB", r.idle_rss_mb, r.raw_idle_rss_mb, 1));
  t.add_row(num_row("disk after the writes (MB) vs raw RocksDB", r.disk_mb, r.raw_disk_mb, 1));
  t.add_row(
      num_row("reopen after the writes (ms) vs raw RocksDB", r.reopen_ms, r.raw_reopen_ms, 1));
  t.add_row(num_row("peak RSS, whole benchmark process (MB)", r.peak_rss_mb, std::nullopt, 1));
  t.add_row({fmt::format("append 100 B (rec/s) vs Redis Streams, AOF fsync always"),
             fmt_count(append_rate), redis_rate ? fmt_count(*redis_rate) : "skipped",
             fmt_ratio(ratio(append_rate, redis_rate))});
  std::printf("\n");
  t.print(stdout);
  if (opts.markdown) {
    std::printf("\n");
    t.print_markdown(stdout);
  }
  std::printf("\n");

  JsonLine j;
  j.add("bench", "log");
  j.add("append_ratio", append_rate / r.raw_append[0].records_per_s(), 3);
  j.add("consume_ratio", r.consume[0].records_per_s() / r.raw_consume[0].records_per_s(), 3);
  j.add("append_records_per_s", append_rate, 0);
  j.add("append_mb_per_s", r.append[0].mb_per_s(), 2);
  j.add("consume_records_per_s", r.consume[0].records_per_s(), 0);
  j.add("p50_visible_ms", r.latency.visible_ms.p50, 3);
  j.add("p99_visible_ms", r.latency.visible_ms.p99, 3);
  j.add("first_ack_ms", first_ack, 1);
  j.add("idle_rss_mb", r.idle_rss_mb, 1);
  j.add("peak_rss_mb", r.peak_rss_mb, 1);
  j.add("redis_records_per_s", redis_rate, 0);
  j.add("redis_ratio", ratio(append_rate, redis_rate), 3);
  j.add("records", r.small_n);
  j.add("records_1k", r.large_n);
  j.add_bool("quick", opts.quick);
  j.add("raw_append_records_per_s", r.raw_append[0].records_per_s(), 0);
  j.add("raw_consume_records_per_s", r.raw_consume[0].records_per_s(), 0);
  j.add("consume_mb_per_s", r.consume[0].mb_per_s(), 2);
  j.add("append_1k_records_per_s", r.append[1].records_per_s(), 0);
  j.add("append_1k_mb_per_s", r.append[1].mb_per_s(), 2);
  j.add("raw_append_1k_records_per_s", r.raw_append[1].records_per_s(), 0);
  j.add("append_1k_ratio", r.append[1].records_per_s() / r.raw_append[1].records_per_s(), 3);
  j.add("consume_1k_records_per_s", r.consume[1].records_per_s(), 0);
  j.add("raw_consume_1k_records_per_s", r.raw_consume[1].records_per_s(), 0);
  j.add("consume_1k_ratio", r.consume[1].records_per_s() / r.raw_consume[1].records_per_s(), 3);
  j.add("consume_fresh_records_per_s", r.consume_fresh[0].records_per_s(), 0);
  j.add("consume_fresh_ratio",
        r.consume_fresh[0].records_per_s() / r.raw_consume[0].records_per_s(), 3);
  j.add("consume_1k_fresh_ratio",
        r.consume_fresh[1].records_per_s() / r.raw_consume[1].records_per_s(), 3);
  j.add("p50_ack_ms", r.latency.ack_ms.p50, 3);
  j.add("p99_ack_ms", r.latency.ack_ms.p99, 3);
  j.add("raw_p50_ack_ms", r.latency.raw_ack_ms.p50, 3);
  j.add("raw_p99_ack_ms", r.latency.raw_ack_ms.p99, 3);
  j.add("latency_samples", r.latency_samples);
  j.add("first_ack_min_ms", r.first_ack ? std::optional(r.first_ack->ms.min) : std::nullopt, 1);
  j.add("first_ack_max_ms", r.first_ack ? std::optional(r.first_ack->ms.max) : std::nullopt, 1);
  j.add("raw_idle_rss_mb", r.raw_idle_rss_mb, 1);
  j.add("disk_mb", r.disk_mb, 1);
  j.add("raw_disk_mb", r.raw_disk_mb, 1);
  j.add("reopen_ms", r.reopen_ms, 1);
  j.add("raw_reopen_ms", r.raw_reopen_ms, 1);
  j.add("redis_streams", static_cast<int64_t>(kPartitions));
  j.add("redis_version", r.redis_version);
  j.add("redis_idle_rss_mb", r.redis_idle_rss_mb, 1);
  j.add("redis_rss_mb", r.redis_rss_mb, 1);
  j.add("redis_disk_mb", r.redis_disk_mb, 1);
  if (r.redis_skipped) {
    j.add("redis_skipped", *r.redis_skipped);
  } else {
    j.add_null("redis_skipped");
  }
  std::printf("%s\n", j.str().c_str());
  std::fflush(stdout);
}

}  // namespace

int run_log_bench(const LogBenchOptions& opts) {
  Results res;
  res.small_n = opts.quick ? opts.records / 10 : opts.records;
  res.large_n = res.small_n / 5;
  res.latency_samples = opts.quick ? 200 : 2000;
  if (res.large_n < kBatch) {
    std::fprintf(stderr, "factory-bench log: needs at least %d records (%d with --quick)\n",
                 5 * kBatch, 50 * kBatch);
    return 2;
  }
  const std::vector<Workload> workloads = {
      {"100 B", "bench-100b", 1, res.small_n, 100},
      {"1 KiB", "bench-1k", 2, res.large_n, 1024},
  };
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "factory-bench log: %s\n", s.to_string().c_str());
    return 1;
  };
  auto tmp = TempDir::create("factory-bench-log");
  if (!tmp.ok()) return fail(tmp.status());
  const PayloadPool pool(kPoolBytes, 42);

  // Child processes first, while this process is small.
  if (opts.factoryd_path.empty() || ::access(opts.factoryd_path.c_str(), X_OK) != 0) {
    progress(fmt::format("factoryd not found at '{}': first-ack skipped", opts.factoryd_path));
  } else {
    progress("first ack: " + opts.factoryd_path);
    auto fa = measure_first_ack(opts.factoryd_path, tmp->path());
    if (!fa.ok()) return fail(fa.status());
    res.first_ack = *fa;
  }
  progress("idle RSS probes");
  auto idle = measure_idle_rss(opts.self_path, tmp->sub("idle-log"), false);
  if (!idle.ok()) return fail(idle.status());
  res.idle_rss_mb = *idle;
  auto raw_idle = measure_idle_rss(opts.self_path, tmp->sub("idle-raw"), true);
  if (!raw_idle.ok()) return fail(raw_idle.status());
  res.raw_idle_rss_mb = *raw_idle;

  Status s = run_engines(opts, *tmp, workloads, pool, &res);
  if (!s.ok()) return fail(s);
  print_report(opts, res);
  return 0;
}

int run_idle_rss_child(const std::string& dir, bool raw) {
  const PayloadPool pool(64 << 10, 7);
  Status s;
  std::unique_ptr<Log> log;
  std::unique_ptr<rocksdb::DB> db;
  const Workload w{"100 B", "idle", 1, kPartitions * 100, 100};
  if (raw) {
    auto opened = raw_open(dir);
    if (opened.ok()) {
      db = std::move(*opened);
      auto a = raw_appender(db.get(), &pool);
      for (int32_t p = 0; p < kPartitions && s.ok(); p++) s = a->append_batch(w, p, p * 100, 100);
    } else {
      s = opened.status();
    }
  } else {
    LogOptions options;
    options.dir = dir;
    auto opened = open_log(options);
    if (opened.ok()) {
      log = std::move(*opened);
      s = log->create_topic({.name = w.topic, .partitions = kPartitions});
      auto a = factoryd_appender(log.get(), &pool);
      for (int32_t p = 0; p < kPartitions && s.ok(); p++) s = a->append_batch(w, p, p * 100, 100);
    } else {
      s = opened.status();
    }
  }
  if (!s.ok()) {
    std::fprintf(stderr, "idle-rss-child: %s\n", s.to_string().c_str());
    return 1;
  }
  // Let background threads start and flushes settle before reading RSS.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::printf("%lld %lld\n", static_cast<long long>(proc_status_kb("VmRSS").value_or(-1)),
              static_cast<long long>(proc_status_kb("VmHWM").value_or(-1)));
  std::fflush(stdout);
  return 0;
}

}  // namespace factory::bench
