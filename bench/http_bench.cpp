#include "bench/http_bench.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <sys/resource.h>

#include "bench/bench_util.h"
#include "bench/subprocess.h"
#include "factory/log.h"
#include "http/client.h"
#include "obs/logger.h"

namespace factory::bench {
namespace {

constexpr char kReadyPrefix[] = "factoryd serving on ";
constexpr int64_t kDaemonStartMs = 60'000;
constexpr int64_t kDaemonStopMs = 30'000;
constexpr int kWrkTimeoutS = 30;  // a request slower than this counts as failed

void progress(const std::string& what) {
  std::fprintf(stderr, "factory-bench: %s\n", what.c_str());
}

// `s` prefixed with what was being done (OK stays OK).
Status context(const Status& s, std::string_view what) {
  if (s.ok()) return s;
  return Status::internal(fmt::format(
      "{}: {}", what, s.code() == Status::Code::kInternal ? s.message() : s.to_string()));
}

// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; nullopt when
// it cannot be read.
std::optional<double> proc_cpu_s(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // Field 2 (comm) may contain spaces; the fields after its ')' are space-separated, utime
  // and stime being fields 14 and 15 of the whole line.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> f;
  size_t i = close + 2;
  while (i < stat.size()) {
    size_t sp = stat.find(' ', i);
    if (sp == std::string::npos) sp = stat.size();
    f.push_back(stat.substr(i, sp - i));
    i = sp + 1;
  }
  if (f.size() < 13) return std::nullopt;  // f[0] is field 3 (state)
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::stod(f[11]) + std::stod(f[12])) / ticks;
}

double rusage_cpu_s(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Waits until `pid` uses under 2% of a CPU for 250 ms (its RocksDB flushes and compactions
// from the previous round are done), or max_s passes. Returns the seconds waited.
double wait_for_pid_idle(pid_t pid, double max_s) {
  Stopwatch sw;
  while (sw.elapsed_s() < max_s) {
    auto before = proc_cpu_s(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto after = proc_cpu_s(pid);
    if (!before || !after || *after - *before < 0.005) break;
  }
  return sw.elapsed_s();
}

void settle(pid_t daemon) {
  double a = wait_for_background_idle(30);
  double b = wait_for_pid_idle(daemon, 30);
  if (a + b > 1.5) progress(fmt::format("waited {:.1f} s for background work to finish", a + b));
}

// The records every request (and every direct append) carries: key "k<i>", a value window of
// the payload pool. The same batch each time, on both sides.
std::vector<ProducerRecord> make_batch(int batch, int value_bytes, const PayloadPool& pool) {
  std::vector<ProducerRecord> records(static_cast<size_t>(batch));
  for (int i = 0; i < batch; ++i) {
    records[static_cast<size_t>(i)].key = "k" + std::to_string(i);
    records[static_cast<size_t>(i)].value.emplace(pool.get(i, static_cast<size_t>(value_bytes)));
  }
  return records;
}

// {"records":[{"key":"k0","value":"..."},...]}. Keys and values are drawn from [A-Za-z0-9-_],
// so nothing needs escaping.
std::string produce_body(const std::vector<ProducerRecord>& records) {
  std::string body = R"({"records":[)";
  for (size_t i = 0; i < records.size(); ++i) {
    if (i > 0) body += ',';
    body += R"({"key":")" + *records[i].key + R"(","value":")" + *records[i].value + "\"}";
  }
  body += "]}";
  return body;
}

std::string topic_name(int batch) { return fmt::format("bench-b{}", batch); }

// One contender's figures for one batch size, summed over its rounds.
struct Side {
  int64_t requests = 0;  // answered 2xx (http) or append calls (direct)
  int64_t sent = 0;      // http: requests sent, including any abandoned at a round's end
  int64_t records = 0;
  double seconds = 0;
  double cpu_s = 0;                    // direct: this process; http: the daemon
  double client_cpu_s = 0;             // http: wrk or the in-process client threads
  std::vector<double> lat_ms;          // pooled samples (direct, in-process client)
  std::vector<Percentiles> round_pct;  // wrk: one per round (its histograms cannot be merged)

  double records_per_s() const { return seconds > 0 ? records / seconds : 0; }
  double requests_per_s() const { return seconds > 0 ? requests / seconds : 0; }
  // Pooled percentiles when there are samples, else the median over rounds of each figure.
  Percentiles latency() {
    if (!lat_ms.empty()) return summarize(&lat_ms);
    Percentiles out;
    if (round_pct.empty()) return out;
    auto median = [&](double Percentiles::*field) {
      std::vector<double> v;
      for (const Percentiles& p : round_pct) v.push_back(p.*field);
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    out.count = static_cast<size_t>(requests);
    out.p50 = median(&Percentiles::p50);
    out.p90 = median(&Percentiles::p90);
    out.p99 = median(&Percentiles::p99);
    out.max = median(&Percentiles::max);
    out.mean = median(&Percentiles::mean);
    return out;
  }
};

struct BatchResult {
  int batch = 0;
  Side direct, http;
  Percentiles direct_lat, http_lat;
  int64_t http_appended = 0;  // the daemon topic's end offsets, summed
  // From the daemon's /metrics over this batch size's rounds (means per request, ms).
  std::optional<double> server_request_ms;  // produce route: header read -> response written
  std::optional<double> server_append_ms;   // Log::append inside it
  double ratio() const {
    double d = direct.records_per_s();
    return d > 0 ? http.records_per_s() / d : 0;
  }
};

// --- The daemon ---

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> start(const HttpBenchOptions& o, const TempDir& tmp) {
    const std::string& factoryd = o.factoryd_path;
    const std::string config_dir = tmp.sub("daemon-config");
    const std::string config_file = tmp.sub("factory.yaml");
    std::filesystem::create_directories(config_dir);
    {
      // Defaults except the log level: a request is logged at debug only, startup at info.
      std::ofstream f(config_file);
      f << "# written by factory-bench http\nlogging:\n  level: warn\n";
      if (o.io_threads > 0 || o.handler_threads > 0) f << "server:\n";
      if (o.io_threads > 0) f << "  io_threads: " << o.io_threads << "\n";
      if (o.handler_threads > 0) f << "  handler_threads: " << o.handler_threads << "\n";
      if (!f) return Status::io_error("cannot write " + config_file);
    }
    std::unique_ptr<Daemon> d(new Daemon);
    d->stderr_path_ = tmp.sub("factoryd.stderr");
    auto p = Subprocess::spawn(
        {.argv = {factoryd, "serve", "--config", config_file, "--listen", "127.0.0.1:0",
                  "--data-dir", tmp.sub("daemon-data"), "--config-dir", config_dir},
         .capture_stdout = true,
         .stderr_path = d->stderr_path_});
    if (!p.ok()) return context(p.status(), "starting factoryd");
    d->proc_.emplace(std::move(*p));
    Stopwatch sw;
    while (true) {
      int64_t left = kDaemonStartMs - static_cast<int64_t>(sw.elapsed_ms());
      auto line = d->proc_->read_line(std::max<int64_t>(left, 1));
      if (!line.ok()) {
        return Status::internal(fmt::format("factoryd did not print '{}URL' ({}); its stderr: {}",
                                            kReadyPrefix, line.status().to_string(),
                                            d->stderr_tail()));
      }
      if (line->rfind(kReadyPrefix, 0) == 0) {
        d->url_ = line->substr(sizeof(kReadyPrefix) - 1);
        break;
      }
    }
    auto client = http::Client::connect({.url = d->url_, .timeout_ms = 60'000});
    if (!client.ok()) return context(client.status(), "connecting to factoryd at " + d->url_);
    d->client_ = std::move(*client);
    return d;
  }

  const std::string& url() const { return url_; }
  pid_t pid() const { return proc_->pid(); }

  // POST /api/v1/topics. OK on 201.
  Status create_topic(const std::string& name, int partitions) {
    auto r = client_->request("POST", "/api/v1/topics",
                              fmt::format(R"({{"name":"{}","partitions":{}}})", name, partitions),
                              {{"Content-Type", "application/json"}});
    if (!r.ok()) return context(r.status(), "POST /api/v1/topics");
    if (r->status != 201) {
      return Status::internal(
          fmt::format("POST /api/v1/topics answered {}: {}", r->status, r->body));
    }
    return Status();
  }

  // GET /api/v1/topics/{t}: the partitions' log_end offsets, summed.
  Result<int64_t> end_total(const std::string& topic) {
    const std::string target = "/api/v1/topics/" + topic;
    auto r = client_->request("GET", target);
    if (!r.ok()) return context(r.status(), "GET " + target);
    if (r->status != 200) {
      return Status::internal(fmt::format("GET {} answered {}: {}", target, r->status, r->body));
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(r->body, ec);
    const boost::json::object* o = ec ? nullptr : v.if_object();
    const boost::json::value* parts = o ? o->if_contains("partitions") : nullptr;
    if (!parts || !parts->is_array()) {
      return Status::internal(fmt::format("GET {}: no partitions array in {}", target, r->body));
    }
    int64_t total = 0;
    for (const boost::json::value& p : parts->get_array()) {
      const boost::json::value* end =
          p.is_object() ? p.get_object().if_contains("log_end") : nullptr;
      if (!end || !end->is_int64()) {
        return Status::internal(fmt::format("GET {}: a partition without log_end", target));
      }
      total += end->get_int64();
    }
    return total;
  }

  // GET /metrics: the value of every sample line, keyed by its name and labels as written
  // (`factory_log_appends_total{topic="t"}`).
  Result<std::map<std::string, double>> metrics() {
    auto r = client_->request("GET", "/metrics");
    if (!r.ok()) return context(r.status(), "GET /metrics");
    if (r->status != 200) {
      return Status::internal(fmt::format("GET /metrics answered {}: {}", r->status, r->body));
    }
    std::map<std::string, double> out;
    size_t start = 0;
    while (start < r->body.size()) {
      size_t end = r->body.find('\n', start);
      if (end == std::string::npos) end = r->body.size();
      std::string_view line(r->body.data() + start, end - start);
      start = end + 1;
      size_t sp = line.rfind(' ');
      if (line.empty() || line[0] == '#' || sp == std::string_view::npos) continue;
      try {
        out[std::string(line.substr(0, sp))] = std::stod(std::string(line.substr(sp + 1)));
      } catch (const std::exception&) {
      }
    }
    return out;
  }

  // SIGTERM, then waits for the drain. OK when it exits 0.
  Status stop() {
    client_.reset();
    auto code = proc_->stop(SIGTERM, kDaemonStopMs);
    if (!code.ok()) return context(code.status(), "stopping factoryd");
    if (*code != 0) {
      return Status::internal(
          fmt::format("factoryd exited {} after SIGTERM; stderr: {}", *code, stderr_tail()));
    }
    return Status();
  }

  std::string stderr_tail() const {
    std::ifstream in(stderr_path_);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (all.size() > 2000) all = "..." + all.substr(all.size() - 2000);
    return all.empty() ? "(empty)" : all;
  }

 private:
  Daemon() = default;
  std::optional<Subprocess> proc_;
  std::string url_;
  std::string stderr_path_;
  std::unique_ptr<http::Client> client_;
};

// --- Contenders ---

// `threads` threads each append `records` in a loop for `seconds`.
Status direct_round(Log* log, const std::string& topic, const std::vector<ProducerRecord>& records,
                    int threads, int seconds, Side* side) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
  std::vector<int64_t> calls(static_cast<size_t>(threads), 0);
  std::mutex mu;
  Status failed;
  const double cpu0 = rusage_cpu_s(RUSAGE_SELF);
  Stopwatch sw;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      while (std::chrono::steady_clock::now() < deadline) {
        Stopwatch call;
        auto pos = log->append(topic, records);
        if (!pos.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          failed = context(pos.status(), "direct append to " + topic);
          return;
        }
        lat[static_cast<size_t>(t)].push_back(call.elapsed_ms());
        calls[static_cast<size_t>(t)]++;
      }
    });
  }
  for (std::thread& th : pool) th.join();
  side->seconds += sw.elapsed_s();
  side->cpu_s += rusage_cpu_s(RUSAGE_SELF) - cpu0;
  if (!failed.ok()) return failed;
  for (int t = 0; t < threads; ++t) {
    side->requests += calls[static_cast<size_t>(t)];
    side->sent += calls[static_cast<size_t>(t)];
    side->records += calls[static_cast<size_t>(t)] * static_cast<int64_t>(records.size());
    side->lat_ms.insert(side->lat_ms.end(), lat[static_cast<size_t>(t)].begin(),
                        lat[static_cast<size_t>(t)].end());
  }
  return Status();
}

// The wrk script: POSTs the body file to `path`, counts requests sent and answers by class in
// each thread, and prints one machine-readable line from done().
std::string wrk_script(const std::string& body_file, const std::string& path) {
  return fmt::format(R"lua(-- generated by factory-bench http
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()

local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end

local req
function init(args)
  sent, ok, bad, first_bad = 0, 0, 0, ""
  req = wrk.format(nil, "{path}")
end

function request()
  sent = sent + 1
  return req
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local s, o, b, fb = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    o = o + t:get("ok")
    b = b + t:get("bad")
    if fb == "" then fb = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "FACTORY_BENCH sent=%d ok=%d bad=%d requests=%d duration_us=%d connect=%d read=%d " ..
    "write=%d status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%d\n",
    s, o, b, summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
  if fb ~= "" then
    io.write("FACTORY_BENCH_FIRST_BAD " .. string.gsub(fb, "\n", " ") .. "\n")
  end
end
)lua",
                     fmt::arg("body", body_file), fmt::arg("path", path));
}

// "k1=v1 k2=v2 ..." → map.
std::map<std::string, int64_t> parse_fields(std::string_view line) {
  std::map<std::string, int64_t> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t sp = line.find(' ', i);
    if (sp == std::string_view::npos) sp = line.size();
    std::string_view item = line.substr(i, sp - i);
    size_t eq = item.find('=');
    if (eq != std::string_view::npos) {
      try {
        out[std::string(item.substr(0, eq))] = std::stoll(std::string(item.substr(eq + 1)));
      } catch (const std::exception&) {
      }
    }
    i = sp + 1;
  }
  return out;
}

Status wrk_round(const HttpBenchOptions& o, const TempDir& tmp, const Daemon& daemon, int batch,
                 int seconds, Side* side) {
  const std::string script = tmp.sub(fmt::format("produce-b{}.lua", batch));
  const std::string err = tmp.sub("wrk.stderr");
  const int threads = std::min(o.wrk_threads, o.connections);
  const double daemon_cpu0 = proc_cpu_s(daemon.pid()).value_or(0);
  const double child_cpu0 = rusage_cpu_s(RUSAGE_CHILDREN);
  auto p = Subprocess::spawn(
      {.argv = {o.wrk_path, "-t", std::to_string(threads), "-c", std::to_string(o.connections),
                "-d", fmt::format("{}s", seconds), "--timeout", fmt::format("{}s", kWrkTimeoutS),
                "--latency", "-s", script,
                daemon.url() + "/api/v1/topics/" + topic_name(batch) + "/records"},
       .capture_stdout = true,
       .stderr_path = err});
  if (!p.ok()) return context(p.status(), "starting wrk");
  std::string output, summary, first_bad;
  while (true) {
    auto line = p->read_line((seconds + kWrkTimeoutS + 30) * 1000);
    if (!line.ok()) {
      if (line.status().code() == Status::Code::kOutOfRange) break;
      return context(line.status(), "reading wrk's output");
    }
    output += *line + "\n";
    if (line->rfind("FACTORY_BENCH ", 0) == 0) summary = *line;
    if (line->rfind("FACTORY_BENCH_FIRST_BAD ", 0) == 0) first_bad = line->substr(24);
  }
  auto code = p->wait(30'000);
  if (!code.ok()) return context(code.status(), "waiting for wrk");
  side->cpu_s += proc_cpu_s(daemon.pid()).value_or(0) - daemon_cpu0;
  side->client_cpu_s += rusage_cpu_s(RUSAGE_CHILDREN) - child_cpu0;
  if (*code != 0 || summary.empty()) {
    std::ifstream in(err);
    std::string e((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return Status::internal(
        fmt::format("wrk exited {} without its summary line; output:\n{}{}", *code, output, e));
  }
  auto f = parse_fields(summary.substr(14));
  const int64_t sent = f["sent"], ok = f["ok"], bad = f["bad"];
  const int64_t socket_errors = f["connect"] + f["read"] + f["write"] + f["timeout"];
  if (bad > 0 || socket_errors > 0) {
    return Status::internal(fmt::format(
        "requests failed: {} of {} answers were not 2xx, socket errors: connect {}, read {}, "
        "write {}, timeout {}; first failure: {}\nwrk output:\n{}",
        bad, ok + bad, f["connect"], f["read"], f["write"], f["timeout"],
        first_bad.empty() ? "-" : first_bad, output));
  }
  if (ok == 0 || f["duration_us"] <= 0) {
    return Status::internal("wrk completed no request; output:\n" + output);
  }
  side->requests += ok;
  side->sent += sent;
  side->records += ok * batch;
  side->seconds += static_cast<double>(f["duration_us"]) / 1e6;
  Percentiles pct;
  pct.count = static_cast<size_t>(ok);
  pct.p50 = static_cast<double>(f["p50_us"]) / 1e3;
  pct.p90 = static_cast<double>(f["p90_us"]) / 1e3;
  pct.p99 = static_cast<double>(f["p99_us"]) / 1e3;
  pct.max = static_cast<double>(f["max_us"]) / 1e3;
  pct.mean = static_cast<double>(f["mean_us"]) / 1e3;
  side->round_pct.push_back(pct);
  return Status();
}

// The fallback client: one http::Client (one keep-alive connection) per thread, each POSTing
// the body in a loop and waiting for every answer.
Status inprocess_round(const HttpBenchOptions& o, const Daemon& daemon, const std::string& body,
                       int batch, int seconds, Side* side) {
  const std::string target = "/api/v1/topics/" + topic_name(batch) + "/records";
  const int threads = o.connections;
  std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
  std::vector<int64_t> ok(static_cast<size_t>(threads), 0);
  std::vector<int64_t> sent(static_cast<size_t>(threads), 0);
  std::mutex mu;
  Status failed;
  const double daemon_cpu0 = proc_cpu_s(daemon.pid()).value_or(0);
  const double self_cpu0 = rusage_cpu_s(RUSAGE_SELF);
  Stopwatch sw;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto fail = [&](const Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed.ok()) failed = s;
      };
      auto client = http::Client::connect({.url = daemon.url(), .timeout_ms = kWrkTimeoutS * 1000});
      if (!client.ok()) return fail(client.status());
      const std::vector<std::pair<std::string, std::string>> headers = {
          {"Content-Type", "application/json"}};
      while (std::chrono::steady_clock::now() < deadline) {
        Stopwatch call;
        sent[static_cast<size_t>(t)]++;
        auto r = (*client)->request("POST", target, body, headers);
        if (!r.ok()) return fail(context(r.status(), "POST " + target));
        if (r->status < 200 || r->status >= 300) {
          return fail(Status::internal(
              fmt::format("POST {} answered {}: {}", target, r->status, r->body.substr(0, 300))));
        }
        lat[static_cast<size_t>(t)].push_back(call.elapsed_ms());
        ok[static_cast<size_t>(t)]++;
      }
    });
  }
  for (std::thread& th : pool) th.join();
  side->seconds += sw.elapsed_s();
  side->cpu_s += proc_cpu_s(daemon.pid()).value_or(0) - daemon_cpu0;
  side->client_cpu_s += rusage_cpu_s(RUSAGE_SELF) - self_cpu0;
  if (!failed.ok()) return failed;
  for (int t = 0; t < threads; ++t) {
    side->requests += ok[static_cast<size_t>(t)];
    side->sent += sent[static_cast<size_t>(t)];
    side->records += ok[static_cast<size_t>(t)] * batch;
    side->lat_ms.insert(side->lat_ms.end(), lat[static_cast<size_t>(t)].begin(),
                        lat[static_cast<size_t>(t)].end());
  }
  return Status();
}

// The mean of histogram `name{labels}` between two scrapes, in ms; nullopt without samples.
std::optional<double> mean_ms_delta(const std::map<std::string, double>& before,
                                    const std::map<std::string, double>& after,
                                    const std::string& name, const std::string& labels) {
  auto get = [](const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? 0.0 : it->second;
  };
  const std::string sum = name + "_sum" + labels, count = name + "_count" + labels;
  const double n = get(after, count) - get(before, count);
  if (n <= 0) return std::nullopt;
  return (get(after, sum) - get(before, sum)) / n * 1e3;
}

// Runs the rounds of one batch size and checks what reached both logs.
Status run_batch(const HttpBenchOptions& o, const TempDir& tmp, bool use_wrk, Log* direct_log,
                 Daemon* daemon, const PayloadPool& pool, int rounds, int seconds,
                 BatchResult* res) {
  const int batch = res->batch;
  const std::string topic = topic_name(batch);
  FACTORY_RETURN_IF_ERROR(
      context(direct_log->create_topic({.name = topic, .partitions = o.partitions}),
              "creating the direct topic"));
  FACTORY_RETURN_IF_ERROR(daemon->create_topic(topic, o.partitions));
  const std::vector<ProducerRecord> records = make_batch(batch, o.value_bytes, pool);
  auto metrics_before = daemon->metrics();
  if (!metrics_before.ok()) return metrics_before.status();
  const std::string body = produce_body(records);
  const std::string body_file = tmp.sub(fmt::format("produce-b{}.json", batch));
  {
    std::ofstream f(body_file, std::ios::binary);
    f << body;
    std::ofstream s(tmp.sub(fmt::format("produce-b{}.lua", batch)));
    s << wrk_script(body_file, "/api/v1/topics/" + topic + "/records");
    if (!f || !s) return Status::io_error("cannot write the wrk script into " + tmp.path());
  }
  for (int r = 0; r < rounds; ++r) {
    // Alternate which contender goes first, so neither always inherits the other's flushes.
    for (int k = 0; k < 2; ++k) {
      const bool http_turn = (k == 0) == (r % 2 == 1);
      settle(daemon->pid());
      progress(fmt::format(
          "batch {}: round {}/{}: {}", batch, r + 1, rounds,
          http_turn ? (use_wrk ? "http (wrk)" : "http (in-process client)") : "direct append"));
      Status s =
          http_turn
              ? (use_wrk ? wrk_round(o, tmp, *daemon, batch, seconds, &res->http)
                         : inprocess_round(o, *daemon, body, batch, seconds, &res->http))
              : direct_round(direct_log, topic, records, o.connections, seconds, &res->direct);
      if (!s.ok()) return context(s, fmt::format("batch {}", batch));
    }
  }

  // What the daemon's log holds: every answered request's records, and nothing that was not
  // sent. (A request wrk abandoned when a round ended may or may not have been appended.)
  auto appended = daemon->end_total(topic);
  if (!appended.ok()) return appended.status();
  res->http_appended = *appended;
  const int64_t lo = res->http.requests * batch, hi = res->http.sent * batch;
  if (*appended < lo || *appended > hi) {
    return Status::internal(fmt::format(
        "batch {}: the daemon's topic {} holds {} records, but {} requests were answered 2xx "
        "and {} sent ({} to {} records expected): requests failed or were counted wrong",
        batch, topic, *appended, res->http.requests, res->http.sent, lo, hi));
  }
  auto info = direct_log->describe_topic(topic);
  if (!info.ok()) return info.status();
  int64_t direct_total = 0;
  for (const PartitionInfo& p : info->partitions) direct_total += p.log_end.value();
  if (direct_total != res->direct.records) {
    return Status::internal(fmt::format("batch {}: the direct topic holds {} records, {} appended",
                                        batch, direct_total, res->direct.records));
  }
  auto metrics_after = daemon->metrics();
  if (!metrics_after.ok()) return metrics_after.status();
  res->server_request_ms =
      mean_ms_delta(*metrics_before, *metrics_after, "factory_http_request_duration_seconds",
                    R"({route="/api/v1/topics/{topic}/records"})");
  res->server_append_ms =
      mean_ms_delta(*metrics_before, *metrics_after, "factory_log_append_duration_seconds",
                    fmt::format(R"({{topic="{}"}})", topic));
  res->direct_lat = res->direct.latency();
  res->http_lat = res->http.latency();
  return Status();
}

std::optional<double> per_record_us(double cpu_s, int64_t records) {
  if (records <= 0) return std::nullopt;
  return cpu_s * 1e6 / static_cast<double>(records);
}

void print_report(const HttpBenchOptions& o, const std::string& client, int rounds, int seconds,
                  int primary, std::vector<BatchResult>& results) {
  Table t({"batch", "direct rec/s", "http rec/s", "http req/s", "ratio", "http p50 ms",
           "http p90 ms", "http p99 ms", "direct p50 ms", "direct p99 ms", "daemon ms/req",
           "daemon append ms/req", "daemon CPU us/rec", "direct CPU us/rec"});
  for (BatchResult& r : results) {
    t.add_row({std::to_string(r.batch), fmt_count(r.direct.records_per_s()),
               fmt_count(r.http.records_per_s()), fmt_count(r.http.requests_per_s()),
               fmt_ratio(r.ratio()), fmt_fixed(r.http_lat.p50, 2), fmt_fixed(r.http_lat.p90, 2),
               fmt_fixed(r.http_lat.p99, 2), fmt_fixed(r.direct_lat.p50, 2),
               fmt_fixed(r.direct_lat.p99, 2), fmt_opt(r.server_request_ms, 2),
               fmt_opt(r.server_append_ms, 2),
               fmt_opt(per_record_us(r.http.cpu_s, r.http.records), 1),
               fmt_opt(per_record_us(r.direct.cpu_s, r.direct.records), 1)});
  }
  std::printf(
      "factory-bench http: %d-B values, %d partitions, %d connections (direct: %d "
      "threads), %d round(s) x %d s per contender, client %s\n",
      o.value_bytes, o.partitions, o.connections, o.connections, rounds, seconds, client.c_str());
  t.print(stdout);
  if (o.markdown) t.print_markdown(stdout);

  BatchResult* top = &results.front();
  for (BatchResult& r : results) {
    if (r.batch == primary) top = &r;
  }
  const bool met = top->ratio() >= 0.5;
  std::printf("target (issue 5): http batched produce >= 0.5x direct at batch %d: %s (%.2fx)\n",
              top->batch, met ? "met" : "NOT met", top->ratio());
  JsonLine j;
  j.add("bench", "http");
  j.add("ratio_vs_direct", top->ratio(), 3);
  j.add("records_per_s", top->http.records_per_s(), 0);
  j.add("requests_per_s", top->http.requests_per_s(), 1);
  j.add("p50_ms", top->http_lat.p50, 3);
  j.add("p90_ms", top->http_lat.p90, 3);
  j.add("p99_ms", top->http_lat.p99, 3);
  j.add("direct_records_per_s", top->direct.records_per_s(), 0);
  j.add("direct_p50_ms", top->direct_lat.p50, 3);
  j.add("direct_p99_ms", top->direct_lat.p99, 3);
  j.add("batch", static_cast<int64_t>(top->batch));
  j.add("connections", static_cast<int64_t>(o.connections));
  j.add("direct_threads", static_cast<int64_t>(o.connections));
  j.add("client", client);
  j.add("value_bytes", static_cast<int64_t>(o.value_bytes));
  j.add("partitions", static_cast<int64_t>(o.partitions));
  j.add("rounds", static_cast<int64_t>(rounds));
  j.add("seconds_per_round", static_cast<int64_t>(seconds));
  j.add("http_requests", top->http.requests);
  j.add("http_records_appended", top->http_appended);
  j.add("server_request_ms", top->server_request_ms, 3);
  j.add("server_append_ms", top->server_append_ms, 3);
  j.add("daemon_cpu_us_per_record", per_record_us(top->http.cpu_s, top->http.records), 2);
  j.add("client_cpu_us_per_record", per_record_us(top->http.client_cpu_s, top->http.records), 2);
  j.add("direct_cpu_us_per_record", per_record_us(top->direct.cpu_s, top->direct.records), 2);
  j.add_bool("target_met", met);
  if (results.size() > 1) {
    for (BatchResult& r : results) {
      j.add(fmt::format("b{}_ratio", r.batch), r.ratio(), 3);
      j.add(fmt::format("b{}_records_per_s", r.batch), r.http.records_per_s(), 0);
      j.add(fmt::format("b{}_direct_records_per_s", r.batch), r.direct.records_per_s(), 0);
      j.add(fmt::format("b{}_p99_ms", r.batch), r.http_lat.p99, 3);
      j.add(fmt::format("b{}_server_request_ms", r.batch), r.server_request_ms, 3);
      j.add(fmt::format("b{}_server_append_ms", r.batch), r.server_append_ms, 3);
    }
  }
  std::printf("%s\n", j.str().c_str());
  std::fflush(stdout);
}

}  // namespace

int run_http_bench(const HttpBenchOptions& o) {
  obs::set_min_level(obs::Level::kWarn);
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "factory-bench http: %s\n", why.c_str());
    return 2;
  };
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "factory-bench http: %s\n", s.to_string().c_str());
    return 1;
  };
  if (o.factoryd_path.empty() || ::access(o.factoryd_path.c_str(), X_OK) != 0) {
    return usage(
        fmt::format("no factoryd binary at '{}'; build the factoryd target or pass --factoryd PATH",
                    o.factoryd_path));
  }
  bool use_wrk;
  if (o.client == "wrk") {
    if (::access(o.wrk_path.c_str(), X_OK) != 0) {
      return usage(
          fmt::format("--client wrk, but no wrk at '{}'; install it (apt-get install "
                      "wrk, or scripts/setup.sh) or pass --wrk PATH",
                      o.wrk_path));
    }
    use_wrk = true;
  } else if (o.client == "inprocess") {
    use_wrk = false;
  } else if (o.client == "auto") {
    use_wrk = ::access(o.wrk_path.c_str(), X_OK) == 0;
    if (!use_wrk) progress("no wrk at '" + o.wrk_path + "': using the in-process client");
  } else {
    return usage("--client must be wrk, inprocess or auto, got '" + o.client + "'");
  }
  const std::string client = use_wrk ? "wrk" : "inprocess";
  const int rounds = o.quick ? 1 : o.rounds;
  const int seconds = o.quick ? 2 : o.seconds;
  std::vector<int> batches = o.sweep;
  if (std::find(batches.begin(), batches.end(), o.batch) == batches.end()) {
    batches.push_back(o.batch);
  }
  std::sort(batches.begin(), batches.end());

  auto tmp = TempDir::create("factory-bench-http");
  if (!tmp.ok()) return fail(tmp.status());
  // Windows of this pool are the values; it must be larger than one value.
  const PayloadPool pool(std::max<size_t>(1 << 20, static_cast<size_t>(o.value_bytes) * 4), 42);

  // The daemon first, while this process is small.
  progress("starting " + o.factoryd_path + " serve");
  auto daemon = Daemon::start(o, *tmp);
  if (!daemon.ok()) return fail(daemon.status());
  progress("factoryd serving on " + (*daemon)->url());

  LogOptions lo;
  lo.dir = tmp->sub("direct-log");  // sync = true, as the produce route's default "sync": true
  auto log = open_log(lo);
  if (!log.ok()) return fail(context(log.status(), "open_log"));

  std::vector<BatchResult> results;
  for (int b : batches) {
    BatchResult r;
    r.batch = b;
    Status s = run_batch(o, *tmp, use_wrk, log->get(), daemon->get(), pool, rounds, seconds, &r);
    if (!s.ok()) {
      progress("factoryd stderr: " + (*daemon)->stderr_tail());
      return fail(s);
    }
    results.push_back(std::move(r));
  }
  log->reset();
  Status stopped = (*daemon)->stop();
  if (!stopped.ok()) return fail(stopped);
  print_report(o, client, rounds, seconds, o.batch, results);
  return 0;
}

}  // namespace factory::bench
