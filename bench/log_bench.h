// `factory-bench log`: the durable log against raw RocksDB (same key shape, same sync) and
// against Redis Streams with appendfsync always. See docs/benchmarks.md for what each figure
// means.
//
// Workloads (--records N, default 1,000,000; --quick divides by 10):
//   append   N records of 100 B and N/5 of 1 KiB to 12-partition topics, batches of 1,000, each
//            batch to one partition (round-robin), every batch synced (LogOptions::sync).
//            Redis gets the 100-B workload as XADDs pipelined 1,000 at a time.
//   consume  the same records through a consumer group (Log::subscribe, poll 1,000 at a time);
//            the baseline is one RocksDB iterator over the same keys.
//   visible  one thread appends single records at a modest fixed rate while a consumer
//            long-polls; latency = append call start to poll() returning the record.
//   first ack, idle RSS: measured in child processes (factoryd itself; `idle-rss-child`).
// The contenders of each workload run interleaved in 12 rounds (log_contenders.h), so a shared
// disk's drifting speed affects them alike.
//
// Prints a table and, last, one JSON line starting {"bench":"log", ...}.
#pragma once

#include <cstdint>
#include <string>

namespace factory::bench {

struct LogBenchOptions {
  int64_t records = 1'000'000;
  bool quick = false;
  std::string factoryd_path;  // "" : skip the first-ack measurement
  std::string redis_server_path = "/usr/bin/redis-server";
  std::string self_path;  // this binary, for the idle-rss-child probe
  bool markdown = false;  // print the table as Markdown too
};

// Runs the benchmark; returns the process exit code (0 on success).
int run_log_bench(const LogBenchOptions& options);

// The idle RSS probe: opens a log in `dir` (raw: a plain RocksDB with the same options), creates
// a 12-partition topic, appends 1,200 records of 100 B, settles, and prints
// "<VmRSS kB> <VmHWM kB>" on one stdout line. Returns the exit code.
int run_idle_rss_child(const std::string& dir, bool raw);

}  // namespace factory::bench
