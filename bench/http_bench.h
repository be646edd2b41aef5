// `factory-bench http`: batched produce through the daemon's HTTP API
// (POST /api/v1/topics/{t}/records) against the direct library append, measured in the same
// run. See docs/benchmarks.md ("HTTP") for what each figure means.
//
// Contenders, per batch size B (--batch, or each size of --sweep):
//   direct  Log::append of B records (key "k<i>", --value-bytes of value), synced, from
//           --connections threads at once, each looping for --seconds: the same concurrency
//           the HTTP side offers the log, so both get the same group commit.
//   http    the real factoryd (`factoryd serve --listen 127.0.0.1:0`, started once, stopped
//           with SIGTERM) driven by wrk with --connections connections, each POSTing the same
//           B-record JSON body in a loop (wrk's Lua script is generated into the temp dir).
//           Without wrk, an in-process client (http::Client) per connection does the same.
// The two alternate in --rounds rounds, so a drift in the disk's speed affects both alike.
// Rates are records per second of the contender's own time; the ratio is http / direct.
//
// A failed request (non-2xx, socket error, timeout) fails the benchmark: no rate is reported.
// After the rounds, the topic's end offsets must lie between (2xx answers x B) and (requests
// sent x B): a request wrk abandoned in flight at the end of a round may or may not have been
// appended, an answered one must have been.
//
// The daemon's own view comes from its /metrics, scraped before and after each batch size:
// the mean request duration of the produce route (header read to response written) and the
// mean Log::append inside it; the difference is what HTTP, JSON and the audit row add per
// request inside the daemon.
//
// Prints a table and, last, one JSON line starting {"bench":"http", ...}.
#pragma once

#include <string>
#include <vector>

namespace factory::bench {

struct HttpBenchOptions {
  int batch = 100;              // records per request (and per direct append)
  int value_bytes = 100;        // bytes of each record's value
  int connections = 8;          // HTTP connections; also the direct baseline's appending threads
  int partitions = 4;           // of each bench topic; records are keyed, so a batch spreads
  int seconds = 5;              // per round per contender
  int rounds = 3;               // direct and http alternate this many times
  std::vector<int> sweep;       // batch sizes to run (--batch is added when missing)
  bool quick = false;           // 1 round of 2 s, for smoke tests
  std::string client = "auto";  // "wrk", "inprocess", or "auto" (wrk when installed)
  std::string wrk_path = "/usr/bin/wrk";
  int wrk_threads = 1;
  int io_threads = 0;         // the daemon's server.io_threads; 0 = its default
  int handler_threads = 0;    // the daemon's server.handler_threads; 0 = its default
  std::string factoryd_path;  // the daemon binary; required
  bool markdown = false;      // print the table as Markdown too
};

// Runs the benchmark; returns the process exit code (0 on success, 1 when a measurement or a
// check failed, 2 for bad options).
int run_http_bench(const HttpBenchOptions& options);

}  // namespace factory::bench
