#include "bench/json_bench.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "base/canonical_json.h"
#include "bench/bench_util.h"
#include "config/contract.h"
#include "factory/event.h"
#include "http/json_fast.h"
#include "http/json_input.h"
#include "http/produce_body.h"

namespace factory::bench {

namespace {

namespace json = boost::json;

// A GitHub-webhook-like event of about `bytes` bytes: a header, then comments until the size.
std::string make_event(size_t bytes, bool with_double, uint64_t seed) {
  std::string pool = random_bytes(4096, seed);
  for (char& c : pool) {
    if (c == '"' || c == '\\') c = 'x';
  }
  json::object o;
  o["action"] = "created";
  o["delivery"] = 1234567 + static_cast<int64_t>(seed);
  o["repository"] = {{"id", 42}, {"full_name", "factory/factoryd"}, {"private", false}};
  if (bytes >= 1000) {
    o["sender"] = {{"login", "octo"}, {"id", 7}, {"type", "User"}, {"avatar", nullptr}};
  }
  if (with_double) o["score"] = 0.8125;
  json::array comments;
  size_t i = 0;
  while (json::serialize(o).size() + json::serialize(comments).size() + 12 < bytes) {
    size_t len = std::min<size_t>(60, bytes / 8 + 1);
    comments.push_back({{"id", static_cast<int64_t>(1000 + i)},
                        {"body", pool.substr((i * 97) % (pool.size() - len), len)},
                        {"labels", json::array{"bug", "p2"}},
                        {"draft", i % 2 == 0}});
    ++i;
  }
  o["comments"] = std::move(comments);
  return json::serialize(o);
}

std::string produce_body(const std::string& event) {
  std::string body = "{\"records\":[";
  for (int i = 0; i < 10; ++i) {
    if (i > 0) body += ",";
    body += "{\"key\":\"k" + std::to_string(i) + "\",\"value\":" + event + "}";
  }
  return body + "]}";
}

// ns per call of `fn`, the median of `rounds` rounds of about `seconds` each; the two
// contenders alternate round by round.
std::pair<double, double> time_pair(const std::function<bool()>& a, const std::function<bool()>& b,
                                    double seconds, int rounds) {
  std::vector<double> as, bs;
  auto one = [seconds](const std::function<bool()>& fn) {
    Stopwatch sw;
    int64_t n = 0;
    bool ok = true;
    while (sw.elapsed_s() < seconds) {
      for (int k = 0; k < 16; ++k) ok = fn() && ok;
      n += 16;
    }
    if (!ok) std::fprintf(stderr, "factory-bench json: a contender failed\n");
    return sw.elapsed_s() * 1e9 / static_cast<double>(n);
  };
  for (int r = 0; r < rounds; ++r) {
    as.push_back(one(a));
    bs.push_back(one(b));
  }
  std::sort(as.begin(), as.end());
  std::sort(bs.begin(), bs.end());
  return {as[as.size() / 2], bs[bs.size() / 2]};
}

}  // namespace

int run_json_bench(const JsonBenchOptions& options) {
  JsonBenchOptions o = options;
  if (o.quick) {
    o.seconds = 0.1;
    o.rounds = 1;
  }
  auto any = config::Contract::compile("", "bench");
  if (!any.ok()) {
    std::fprintf(stderr, "factory-bench json: %s\n", any.status().to_string().c_str());
    return 1;
  }
  const config::Contract& contract = **any;

  struct Size {
    const char* name;
    size_t bytes;
  };
  const Size sizes[] = {{"200B", 200}, {"2KB", 2048}, {"50KB", 50 * 1024}};
  Table t({"path", "event", "doc bytes", "Boost.JSON ns", "simdjson ns", "speedup"});
  JsonLine j;
  j.add("bench", "json");
  for (const Size& size : sizes) {
    const std::string event = make_event(size.bytes, false, 1);
    const std::string event_double = make_event(size.bytes, true, 1);
    const std::string body = produce_body(event);
    const std::string body_double = produce_body(event_double);
    http::Request req, req_double, hook;
    req.body = body;
    req_double.body = body_double;
    hook.body = event;

    struct Row {
      std::string path;
      size_t doc_bytes;
      std::function<bool()> boost, simd;
    };
    std::vector<Row> rows;
    rows.push_back({"event id", event.size(),
                    [&] { return base::canonical_json_boost(event).ok(); },
                    [&] { return canonical_json(event).ok(); }});
    auto reference = [](const http::Request& r) {
      http::ProduceBody out;
      std::optional<size_t> failed;
      return http::read_produce_body(r, &out, &failed).ok();
    };
    // What produce() runs: the fast path, then the reference when it declines.
    auto handler = [](const http::Request& r) {
      http::ProduceBody out;
      std::optional<size_t> failed;
      return http::read_produce_body_fast(r, &out, &failed).ok();
    };
    rows.push_back(
        {"produce", body.size(), [&] { return reference(req); }, [&] { return handler(req); }});
    rows.push_back({"produce +double", body_double.size(), [&] { return reference(req_double); },
                    [&] { return handler(req_double); }});
    rows.push_back({"webhook", event.size(),
                    [&] {
                      auto b = http::parse_body(hook);
                      return b.ok() && b->if_contains("webhookEvent") == nullptr;
                    },
                    [&] {
                      std::optional<std::string> ev;
                      return http::simd_check_object_body(event, "webhookEvent", &ev);
                    }});
    rows.push_back({"stage record", event.size(),
                    [&] {
                      boost::system::error_code ec;
                      json::value v = json::parse(event, ec);
                      return !ec;
                    },
                    [&] { return contract.validate(event).ok(); }});
    for (const Row& row : rows) {
      auto [b, s] = time_pair(row.boost, row.simd, o.seconds, o.rounds);
      t.add_row({row.path, size.name, fmt_count(static_cast<double>(row.doc_bytes)),
                 fmt_fixed(b, 0), fmt_fixed(s, 0), fmt_ratio(b / s)});
      std::string key = row.path + "_" + size.name;
      std::replace(key.begin(), key.end(), ' ', '_');
      std::replace(key.begin(), key.end(), '+', 'p');
      j.add(key + "_speedup", b / s, 2);
    }
  }
  t.print(stdout);
  if (o.markdown) t.print_markdown(stdout);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace factory::bench
