// factory-bench: benchmarks for factoryd. One subcommand per subsystem; each prints a table and,
// last, one JSON line ({"bench": "<name>", ...}) for scripts to collect.
//
//   factory-bench log [--records N] [--quick] [--factoryd PATH] [--redis-server PATH]
//   factory-bench pipeline [--events N] [--quick]
//   factory-bench scheduler [--quick] [--only chain,runs,...] [--awake]
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

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
    if (child->parsed()) return factory::bench::run_idle_rss_child(child_dir, child_raw);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "factory-bench: %s\n", e.what());
    return 1;
  }
}
