#include "bench/pipeline_bench.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>

#include "bench/bench_util.h"
#include "factory/consumer.h"
#include "factory/log.h"
#include "obs/logger.h"
#include "runtime/engine.h"
#include "store/meta_store.h"

namespace factory::bench {
namespace {

constexpr char kIn[] = "bench-in";
constexpr char kOut[] = "bench-out";

struct Rig {
  TempDir dir;
  std::unique_ptr<Log> log;
  std::unique_ptr<store::MetaStore> store;
};

// A store whose processed table already holds `rows` random marks (stage "prefill"), built
// once and copied into each rig that asks for it: how the hop rate depends on the table's size.
struct Prefill {
  std::optional<TempDir> dir;  // holds store/factory.db; empty = no prefill
  int64_t rows = 0;
};

void random_ids(std::mt19937_64& rng, std::vector<EventId>* ids) {
  for (EventId& id : *ids) {
    for (size_t k = 0; k < EventId::kSize; k += 8) {
      uint64_t v = rng();
      std::memcpy(id.digest.data() + k, &v, 8);
    }
  }
}

Result<Prefill> make_prefill(int64_t rows) {
  Prefill p;
  p.rows = rows;
  if (rows <= 0) return p;
  auto dir = TempDir::create("factory-bench-prefill");
  if (!dir.ok()) return dir.status();
  Stopwatch sw;
  {
    // Setup, not measured: unsynced, big transactions.
    auto st = store::open_sqlite_store({.dir = dir->sub("store"), .sync = false});
    if (!st.ok()) return st.status();
    std::mt19937_64 rng(4242);
    std::vector<EventId> batch;
    for (int64_t done = 0; done < rows; done += static_cast<int64_t>(batch.size())) {
      batch.resize(static_cast<size_t>(std::min<int64_t>(100'000, rows - done)));
      random_ids(rng, &batch);
      FACTORY_RETURN_IF_ERROR((*st)->commit_processed("prefill", batch));
    }
  }  // closing the last connection checkpoints the WAL into factory.db
  std::printf("prefilled the processed table with %lld rows in %.1f s\n",
              static_cast<long long>(rows), sw.elapsed_s());
  p.dir.emplace(std::move(*dir));
  return p;
}

Result<Rig> open_rig(int32_t partitions, const Prefill& prefill = {}) {
  auto dir = TempDir::create("factory-bench-pipeline");
  if (!dir.ok()) return dir.status();
  Rig rig{std::move(*dir), nullptr, nullptr};
  if (prefill.dir) {
    std::error_code ec;
    std::filesystem::create_directories(rig.dir.sub("store"), ec);
    std::filesystem::copy_file(prefill.dir->sub("store") + "/factory.db",
                               rig.dir.sub("store") + "/factory.db", ec);
    if (ec) return Status::io_error("copy the prefilled store: " + ec.message());
  }
  LogOptions lo;
  lo.dir = rig.dir.sub("log");
  lo.retention_interval_ms = 0;
  auto log = open_log(lo);
  if (!log.ok()) return log.status();
  rig.log = std::move(*log);
  auto st = store::open_sqlite_store({.dir = rig.dir.sub("store")});
  if (!st.ok()) return st.status();
  rig.store = std::move(*st);
  for (const char* t : {kIn, "bench-a", "bench-b", kOut}) {
    FACTORY_RETURN_IF_ERROR(rig.log->create_topic({.name = t, .partitions = partitions}));
  }
  return rig;
}

runtime::PipelineConfig three_noops() {
  runtime::PipelineConfig c;
  const char* topics[] = {kIn, "bench-a", "bench-b", kOut};
  for (int i = 0; i < 3; ++i) {
    runtime::Binding b;
    b.name = "hop" + std::to_string(i + 1);
    b.stage = "noop";
    b.group = b.name;
    b.input_topic = topics[i];
    b.output_topic = topics[i + 1];
    b.dead_letter_topic = std::string(topics[i]) + ".dlq";
    b.max_poll_records = 500;
    b.source = "bench";
    c.bindings.push_back(b);
  }
  return c;
}

int64_t end_total(Log* log, const char* topic) {
  int64_t n = 0;
  auto info = log->describe_topic(topic);
  if (info.ok()) {
    for (const auto& p : info->partitions) n += p.log_end.value();
  }
  return n;
}

std::string payload(int64_t i, const PayloadPool& pool) {
  return R"({"n":)" + std::to_string(i) + R"(,"pad":")" + std::string(pool.get(i, 60)) + "\"}";
}

struct Throughput {
  double events_per_s = 0;
  double seconds = 0;
};

Result<Throughput> measure_throughput(int32_t partitions, int64_t events, const PayloadPool& pool,
                                      const Prefill& prefill) {
  auto rig = open_rig(partitions, prefill);
  if (!rig.ok()) return rig.status();
  std::vector<ProducerRecord> batch;
  for (int64_t i = 0; i < events; ++i) {
    ProducerRecord r;
    r.key = "k" + std::to_string(i % 1000);
    r.value = payload(i, pool);
    batch.push_back(std::move(r));
    if (batch.size() == 1000 || i + 1 == events) {
      auto a = rig->log->append(kIn, batch);
      if (!a.ok()) return a.status();
      batch.clear();
    }
  }
  wait_for_background_idle(5);
  Stopwatch sw;
  runtime::EngineOptions eo;
  eo.data_dir = rig->dir.path();
  auto engine = runtime::Engine::start(rig->log.get(), rig->store.get(), three_noops(), eo);
  if (!engine.ok()) return engine.status();
  while (end_total(rig->log.get(), kOut) < events) {
    rig->log->wait_for_append(rig->log->append_sequence(), 100);
    if (sw.elapsed_s() > 600) return Status::timed_out("pipeline did not finish in 600 s");
  }
  Throughput t;
  t.seconds = sw.elapsed_s();
  t.events_per_s = static_cast<double>(events) / t.seconds;
  FACTORY_RETURN_IF_ERROR((*engine)->stop(10'000));
  return t;
}

Result<Percentiles> measure_latency(int32_t partitions, int64_t events, int rate_per_s,
                                    const PayloadPool& pool) {
  auto rig = open_rig(partitions);
  if (!rig.ok()) return rig.status();
  runtime::EngineOptions eo;
  eo.data_dir = rig->dir.path();
  auto engine = runtime::Engine::start(rig->log.get(), rig->store.get(), three_noops(), eo);
  if (!engine.ok()) return engine.status();
  auto consumer = rig->log->subscribe({.group = "latency", .topics = {kOut}});
  if (!consumer.ok()) return consumer.status();
  std::vector<int64_t> sent_ns(static_cast<size_t>(events), 0);
  std::atomic<bool> failed{false};
  std::thread producer([&] {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < events; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000 * i / rate_per_s));
      ProducerRecord r;
      r.key = "k" + std::to_string(i);
      r.value = payload(i, pool);
      sent_ns[static_cast<size_t>(i)] = steady_now_ns();
      if (!rig->log->append(kIn, {&r, 1}).ok()) failed = true;
    }
  });
  std::vector<double> ms;
  Stopwatch sw;
  while (static_cast<int64_t>(ms.size()) < events && sw.elapsed_s() < 120 && !failed) {
    auto got = (*consumer)->poll(1000, 200);
    if (!got.ok()) break;
    int64_t now = steady_now_ns();
    for (const auto& cr : *got) {
      const std::string& v = *cr.record.value;
      int64_t n = std::stoll(v.substr(5, v.find(',') - 5));
      ms.push_back(static_cast<double>(now - sent_ns[static_cast<size_t>(n)]) / 1e6);
    }
  }
  producer.join();
  FACTORY_RETURN_IF_ERROR((*engine)->stop(10'000));
  if (static_cast<int64_t>(ms.size()) < events) return Status::timed_out("latency run incomplete");
  return summarize(&ms);
}

Result<double> raw_log_rate(int64_t records, const PayloadPool& pool) {
  auto rig = open_rig(8);
  if (!rig.ok()) return rig.status();
  std::vector<ProducerRecord> batch(1000);
  Stopwatch sw;
  for (int64_t i = 0; i < records; i += 1000) {
    for (int k = 0; k < 1000; ++k) {
      batch[k].value = std::string(pool.get(i + k, 100));
      batch[k].partition = static_cast<int32_t>((i / 1000) % 8);
    }
    auto a = rig->log->append(kIn, batch);
    if (!a.ok()) return a.status();
  }
  return static_cast<double>(records) / sw.elapsed_s();
}

Result<double> sqlite_rate(int64_t ids, const Prefill& prefill) {
  auto rig = open_rig(1, prefill);
  if (!rig.ok()) return rig.status();
  std::mt19937_64 rng(42);
  std::vector<EventId> batch(100);
  Stopwatch sw;
  for (int64_t i = 0; i < ids; i += 100) {
    random_ids(rng, &batch);
    FACTORY_RETURN_IF_ERROR(rig->store->commit_processed("bench", batch));
  }
  return static_cast<double>(ids) / sw.elapsed_s();
}

}  // namespace

int run_pipeline_bench(const PipelineBenchOptions& o) {
  obs::set_min_level(obs::Level::kWarn);
  const int64_t events = o.quick ? o.events / 10 : o.events;
  const int64_t latency_events = o.quick ? 300 : 2000;
  PayloadPool pool(1 << 20, 7);
  std::printf("factory-bench pipeline: %lld events, 3 noop hops, synced appends + SQLite FULL\n",
              static_cast<long long>(events));
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "factory-bench pipeline: %s\n", s.to_string().c_str());
    return 1;
  };
  auto prefill = make_prefill(o.prefill_rows);
  if (!prefill.ok()) return fail(prefill.status());
  auto raw = raw_log_rate(o.quick ? 20'000 : 200'000, pool);
  if (!raw.ok()) return fail(raw.status());
  wait_for_background_idle(5);
  auto sql = sqlite_rate(o.quick ? 10'000 : 100'000, *prefill);
  if (!sql.ok()) return fail(sql.status());
  wait_for_background_idle(5);
  auto t1 = measure_throughput(1, events, pool, *prefill);
  if (!t1.ok()) return fail(t1.status());
  wait_for_background_idle(5);
  auto t8 = measure_throughput(8, events, pool, *prefill);
  if (!t8.ok()) return fail(t8.status());
  wait_for_background_idle(5);
  auto l1 = measure_latency(1, latency_events, 500, pool);
  if (!l1.ok()) return fail(l1.status());
  auto l8 = measure_latency(8, latency_events, 500, pool);
  if (!l8.ok()) return fail(l8.status());

  const double floor = std::min(*raw, *sql);
  const double hop_ratio = t8->events_per_s * 3 / floor;
  Table t({"workload", "value", "unit"});
  t.add_row({"pipeline, 1 partition", fmt_count(t1->events_per_s), "events/s"});
  t.add_row({"pipeline, 8 partitions", fmt_count(t8->events_per_s), "events/s"});
  t.add_row({"stage-hops, 8 partitions", fmt_count(t8->events_per_s * 3), "hops/s"});
  t.add_row({"baseline: raw durable produce", fmt_count(*raw), "records/s"});
  t.add_row({"baseline: SQLite batched upsert", fmt_count(*sql), "ids/s"});
  t.add_row({"hop ratio (hops/s / lower baseline)", fmt_ratio(hop_ratio), ""});
  t.add_row({"end-to-end p50, 1 partition", fmt_fixed(l1->p50, 2), "ms"});
  t.add_row({"end-to-end p99, 1 partition", fmt_fixed(l1->p99, 2), "ms"});
  t.add_row({"end-to-end p50, 8 partitions", fmt_fixed(l8->p50, 2), "ms"});
  t.add_row({"end-to-end p99, 8 partitions", fmt_fixed(l8->p99, 2), "ms"});
  t.print(stdout);
  if (o.markdown) t.print_markdown(stdout);
  JsonLine j;
  j.add("bench", "pipeline");
  j.add("hop_ratio", hop_ratio, 3);
  j.add("events_per_s", t8->events_per_s, 0);
  j.add("events_per_s_1p", t1->events_per_s, 0);
  j.add("p50_ms", l8->p50, 3);
  j.add("p99_ms", l8->p99, 3);
  j.add("p50_ms_1p", l1->p50, 3);
  j.add("p99_ms_1p", l1->p99, 3);
  j.add("raw_log_records_per_s", *raw, 0);
  j.add("sqlite_ids_per_s", *sql, 0);
  j.add("events", events);
  j.add("prefill_rows", o.prefill_rows);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace factory::bench
