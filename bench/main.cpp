// factory-bench: benchmarks for factoryd. One subcommand per subsystem; each prints a table and,
// last, one JSON line ({"bench": "<name>", ...}) for scripts to collect.
//
//   factory-bench log [--records N] [--quick] [--factoryd PATH] [--redis-server PATH]
//   factory-bench pipeline [--events N] [--quick] [--prefill-rows N]
//   factory-bench scheduler [--quick] [--only chain,runs,...] [--awake]
//   factory-bench http [--batch N] [--connections N] [--sweep 1,10,100,1000] [--quick]
//   factory-bench json [--seconds S] [--rounds N] [--quick]
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "bench/http_bench.h"
#include "bench/json_bench.h"
#include "bench/log_bench.h"
#include "bench/pipeline_bench.h"
#include "bench/scheduler_bench.h"

namespace {

// This executable's path, for spawning probes of itself; "" when /proc is unavailable.
std::string self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

// The factoryd built beside factory-bench: <build>/bench/factory-bench -> <build>/src/cli/factoryd.
std::string default_factoryd(const std::string& self) {
  if (self.empty()) return "";
  std::filesystem::path p(self);
  return (p.parent_path() / ".." / "src" / "cli" / "factoryd").lexically_normal().string();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string self = self_path();
    CLI::App app{"factory-bench: benchmarks for factoryd"};
    app.require_subcommand(1);

    factory::bench::LogBenchOptions log_opts;
    log_opts.self_path = self;
    log_opts.factoryd_path = default_factoryd(self);
    auto* log = app.add_subcommand(
        "log", "Durable log vs raw RocksDB and Redis Streams: append, consume, latency, RSS");
    log->add_option("--records", log_opts.records,
                    "100-B records to append (1-KiB records: a fifth of this)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    log->add_flag("--quick", log_opts.quick, "10x fewer records, for smoke tests");
    log->add_option("--factoryd", log_opts.factoryd_path,
                    "factoryd binary for the first-ack measurement")
        ->capture_default_str();
    log->add_option("--redis-server", log_opts.redis_server_path,
                    "redis-server binary for the Redis Streams peer (skipped when missing)")
        ->capture_default_str();
    log->add_flag("--markdown", log_opts.markdown, "also print the table as Markdown");

    factory::bench::PipelineBenchOptions pipe_opts;
    auto* pipe = app.add_subcommand(
        "pipeline", "Three noop stages end to end vs the raw log and SQLite's batched upsert");
    pipe->add_option("--events", pipe_opts.events, "Events through the pipeline")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    pipe->add_flag("--quick", pipe_opts.quick, "10x fewer events, for smoke tests");
    pipe->add_option("--prefill-rows", pipe_opts.prefill_rows,
                     "Rows already in the processed table (baseline and throughput runs)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    pipe->add_flag("--markdown", pipe_opts.markdown, "also print the table as Markdown");

    factory::bench::SchedulerBenchOptions sched_opts;
    auto* sched = app.add_subcommand(
        "scheduler", "DAG scheduler with noop tasks and durable state vs an in-memory executor");
    sched->add_flag("--quick", sched_opts.quick, "10x smaller workloads, for smoke tests");
    sched->add_flag("--markdown", sched_opts.markdown, "also print the table as Markdown");
    sched
        ->add_option("--only", sched_opts.only,
                     "workloads to run: sqlite, chain, runs, manual, fanout, trigger, big")
        ->delimiter(',');
    sched->add_flag("--awake", sched_opts.awake,
                    "keep the CPUs busy with idle-priority spinners (idle vCPUs delay fsyncs)");

    factory::bench::HttpBenchOptions http_opts;
    http_opts.factoryd_path = default_factoryd(self);
    auto* http = app.add_subcommand(
        "http", "Batched produce through factoryd's HTTP API (wrk) vs the direct library append");
    http->add_option("--batch", http_opts.batch, "Records per request (and per direct append)")
        ->check(CLI::Range(1, 100'000))
        ->capture_default_str();
    http->add_option("--value-bytes", http_opts.value_bytes, "Bytes of each record's value")
        ->check(CLI::Range(1, 65'536))
        ->capture_default_str();
    http->add_option("--connections", http_opts.connections,
                     "HTTP connections; also the direct baseline's appending threads")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    http->add_option("--partitions", http_opts.partitions, "Partitions of each bench topic")
        ->check(CLI::Range(1, 10'000))
        ->capture_default_str();
    http->add_option("--seconds", http_opts.seconds, "Seconds per round per contender")
        ->check(CLI::Range(1, 3600))
        ->capture_default_str();
    http->add_option("--rounds", http_opts.rounds, "Rounds; direct and http alternate")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    http->add_option("--sweep", http_opts.sweep,
                     "Batch sizes to run one after another (e.g. 1,10,100,1000); the JSON "
                     "line's main figures are --batch's")
        ->delimiter(',')
        ->check(CLI::Range(1, 100'000));
    http->add_flag("--quick", http_opts.quick, "1 round of 2 s, for smoke tests");
    http->add_option("--client", http_opts.client,
                     "wrk, inprocess (http::Client threads) or auto (wrk when installed)")
        ->check(CLI::IsMember({"auto", "wrk", "inprocess"}))
        ->capture_default_str();
    http->add_option("--wrk", http_opts.wrk_path, "wrk binary")->capture_default_str();
    http->add_option("--wrk-threads", http_opts.wrk_threads, "wrk's -t")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    http->add_option("--io-threads", http_opts.io_threads,
                     "The daemon's server.io_threads (0: its default)")
        ->check(CLI::Range(0, 64))
        ->capture_default_str();
    http->add_option("--handler-threads", http_opts.handler_threads,
                     "The daemon's server.handler_threads (0: its default)")
        ->check(CLI::Range(0, 1024))
        ->capture_default_str();
    http->add_option("--factoryd", http_opts.factoryd_path, "factoryd binary to serve the API")
        ->capture_default_str();
    http->add_flag("--markdown", http_opts.markdown, "also print the table as Markdown");

    factory::bench::JsonBenchOptions json_opts;
    auto* json = app.add_subcommand(
        "json", "Boost.JSON vs simdjson on each hot JSON read, events of 200 B, 2 KB, 50 KB");
    json->add_option("--seconds", json_opts.seconds, "Seconds per round per contender")
        ->check(CLI::Range(0.01, 60.0))
        ->capture_default_str();
    json->add_option("--rounds", json_opts.rounds, "Rounds; the two contenders alternate")
        ->check(CLI::Range(1, 100))
        ->capture_default_str();
    json->add_flag("--quick", json_opts.quick, "1 round of 0.1 s, for smoke tests");
    json->add_flag("--markdown", json_opts.markdown, "also print the table as Markdown");

    // Hidden: the idle-RSS probe run_log_bench spawns.
    std::string child_dir;
    bool child_raw = false;
    auto* child = app.add_subcommand("idle-rss-child", "");
    child->group("");
    child->add_option("dir", child_dir)->required();
    child->add_flag("--raw", child_raw);

    CLI11_PARSE(app, argc, argv);
    if (log->parsed()) return factory::bench::run_log_bench(log_opts);
    if (pipe->parsed()) return factory::bench::run_pipeline_bench(pipe_opts);
    if (sched->parsed()) return factory::bench::run_scheduler_bench(sched_opts);
    if (http->parsed()) return factory::bench::run_http_bench(http_opts);
    if (json->parsed()) return factory::bench::run_json_bench(json_opts);
    if (child->parsed()) return factory::bench::run_idle_rss_child(child_dir, child_raw);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "factory-bench: %s\n", e.what());
    return 1;
  }
}
