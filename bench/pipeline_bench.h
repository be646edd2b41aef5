// `factory-bench pipeline`: events through a three-stage pipeline of trivial (noop) stages,
// every hop a synced idempotent append plus idempotency bookkeeping in SQLite.
//
// Workloads (--events N, default 60,000; --quick divides by 10), each with 1 and 8 partitions:
//   throughput  N events pre-loaded on the input topic; time from the engine's start until all
//               N are on the final topic.
//   latency     events appended one at a time at a modest rate (not saturated); end-to-end =
//               append call start to a long-polling consumer of the final topic receiving it.
// Baselines in the same run: (a) the raw log's durable produce rate (100-B records, batches of
// 1,000, synced) and (b) SQLite's batched INSERT ... ON CONFLICT DO NOTHING of random 32-byte
// ids in the store's own schema (MetaStore::commit_processed, 100 ids per transaction).
// hop_ratio = events/s (8 partitions) x 3 hops / the lower baseline.
// --prefill-rows N starts the SQLite baseline and the throughput runs on a processed table
// already holding N random marks (off by default).
//
// Prints a table and, last, one JSON line starting {"bench":"pipeline", ...}.
#pragma once

#include <cstdint>

namespace factory::bench {

struct PipelineBenchOptions {
  int64_t events = 60'000;
  bool quick = false;
  bool markdown = false;
  // Rows put in the processed table before the SQLite baseline and the throughput runs (copied
  // into each run's store); 0 = an empty table. The latency runs start empty.
  int64_t prefill_rows = 0;
};

int run_pipeline_bench(const PipelineBenchOptions& options);

}  // namespace factory::bench
