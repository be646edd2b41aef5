// `factory-bench json`: Boost.JSON vs simdjson on each hot path that reads JSON, on events of
// 200 B, 2 KB and 50 KB (GitHub-webhook-like objects: strings, integers, booleans, nulls,
// nested objects and arrays; no doubles unless the row says so).
//
// Paths, each timed both ways in the same run (the Boost.JSON side is the code the fast path
// falls back to, so both produce the same answer):
//   event id      canonical_json: base::canonical_json_boost vs canonical_json (simdjson first)
//   produce       a POST .../records body of 10 records whose values are the event:
//                 read_produce_body (parse_body + FieldReader) vs read_produce_body_simd;
//                 "+double" rows put one double in each value, which sends the fast path back
//                 to Boost.JSON (the row shows what that fallback costs)
//   webhook       a delivery body: parse_body + webhookEvent vs simd_check_object_body
//   stage record  Contract::validate with an empty schema: boost::json::parse (what it did)
//                 vs validate() (simdjson)
// Each contender runs for --seconds per round, rounds alternate (3; --quick: 1 round of
// 0.1 s); the figure is the median round's ns per document. speedup = Boost ns / simdjson ns.
//
// Prints a table and, last, one JSON line starting {"bench":"json", ...}.
#pragma once

namespace factory::bench {

struct JsonBenchOptions {
  double seconds = 0.3;
  int rounds = 3;
  bool quick = false;
  bool markdown = false;
};

int run_json_bench(const JsonBenchOptions& options);

}  // namespace factory::bench
