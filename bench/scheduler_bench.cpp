#include "bench/scheduler_bench.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <sqlite3.h>

#include "bench/bench_util.h"
#include "factory/consumer.h"
#include "factory/log.h"
#include "factory/stage.h"
#include "obs/logger.h"
#include "runtime/engine.h"
#include "runtime/stage_registry.h"
#include "runtime/thread_pool.h"
#include "scheduler/dag.h"
#include "scheduler/dag_parser.h"
#include "scheduler/scheduler.h"
#include "store/meta_store.h"

namespace factory::bench {
namespace {

using scheduler::Dag;
using scheduler::Task;

// max_active_runs, max_active_tasks and default_pool slots of every bench DAG: never binding.
constexpr int kLimit = 100'000;
constexpr double kRunTimeoutS = 1800;

// ---- bench-stamp: a noop that timestamps its calls ----

// Per-task steady_clock ns at the start and end of bench-stamp's process(), indexed by the "i"
// of the task's params; the first call for an index wins (a redelivery does not move it).
struct Stamps {
  explicit Stamps(size_t n)
      : start(new std::atomic<int64_t>[n]), end(new std::atomic<int64_t>[n]), size(n) {
    for (size_t i = 0; i < n; ++i) {
      start[i].store(0);
      end[i].store(0);
    }
  }
  std::unique_ptr<std::atomic<int64_t>[]> start, end;
  size_t size;
};
// The workload's stamps while it runs; null otherwise.
std::atomic<Stamps*> g_stamps{nullptr};

// N from params {"i": N} or {"i": "N"}; -1 without one.
int64_t stamp_index(std::string_view payload) {
  size_t p = payload.find("\"i\":");
  if (p == std::string_view::npos) return -1;
  p += 4;
  while (p < payload.size() && (payload[p] == ' ' || payload[p] == '"')) ++p;
  int64_t v = -1;
  while (p < payload.size() && payload[p] >= '0' && payload[p] <= '9') {
    v = (v < 0 ? 0 : v * 10) + (payload[p++] - '0');
  }
  return v;
}

class StampStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "bench-stamp", .version = "1.0.0", .side_effects = SideEffects::kPure};
  }
  StageResult process(const Event& event, StageContext& ctx) override {
    const int64_t t0 = steady_now_ns();
    ctx.emit({.payload = event.payload});
    Stamps* s = g_stamps.load(std::memory_order_acquire);
    const int64_t i = stamp_index(event.payload);
    if (s != nullptr && i >= 0 && static_cast<size_t>(i) < s->size) {
      int64_t unset = 0;
      if (s->start[i].compare_exchange_strong(unset, t0)) s->end[i].store(steady_now_ns());
    }
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(StampStage);

// ---- DAGs built in code ----

Dag new_dag(std::string id) {
  Dag d;
  d.dag_id = std::move(id);
  d.max_active_runs = kLimit;
  d.max_active_tasks = kLimit;
  d.pools[std::string(scheduler::kDefaultPool)] = kLimit;
  d.source = "factory-bench";
  return d;
}

Task new_task(std::string id, std::string stage, std::string params = "{}") {
  Task t;
  t.id = std::move(id);
  t.stage = std::move(stage);
  t.params = std::move(params);
  return t;
}

Result<Dag> indexed(Dag d) {
  FACTORY_RETURN_IF_ERROR(scheduler::build_index(&d));
  return d;
}

// t0 -> t1 -> ... -> t(n-1), each bench-stamp with params {"i": position}.
Dag chain_dag(int n) {
  Dag d = new_dag("bench_chain");
  for (int i = 0; i < n; ++i) {
    Task t = new_task("t" + std::to_string(i), "bench-stamp", "{\"i\":" + std::to_string(i) + "}");
    if (i > 0) t.upstream.push_back("t" + std::to_string(i - 1));
    d.tasks.push_back(std::move(t));
  }
  return d;
}

// root -> p0 .. p(n-3) -> sink, all noop: n tasks.
Dag fan_dag(std::string id, int n) {
  Dag d = new_dag(std::move(id));
  d.tasks.push_back(new_task("root", "noop"));
  Task sink = new_task("sink", "noop");
  for (int i = 0; i < n - 2; ++i) {
    Task t = new_task("p" + std::to_string(i), "noop");
    t.upstream.push_back("root");
    sink.upstream.push_back(t.id);
    d.tasks.push_back(std::move(t));
  }
  d.tasks.push_back(std::move(sink));
  return d;
}

// The same DAG as fan_dag(id, n), as a config/dags file.
std::string fan_yaml(const std::string& id, int n) {
  std::string y = "dag_id: " + id + "\nmax_active_runs: " + std::to_string(kLimit) +
                  "\nmax_active_tasks: " + std::to_string(kLimit) + "\npools: {" +
                  std::string(scheduler::kDefaultPool) + ": " + std::to_string(kLimit) +
                  "}\ntasks:\n  root: {stage: noop}\n";
  std::string sink_up;
  for (int i = 0; i < n - 2; ++i) {
    std::string p = "p" + std::to_string(i);
    y += "  " + p + ": {stage: noop, upstream: [root]}\n";
    sink_up += (i ? ", " : "") + p;
  }
  y += "  sink:\n    stage: noop\n    upstream: [" + sink_up + "]\n";
  return y;
}

// n unconnected tasks: the in-memory floor of n one-task runs.
Dag independent_dag(int n, const std::string& stage) {
  Dag d = new_dag("bench_independent");
  for (int i = 0; i < n; ++i) d.tasks.push_back(new_task("t" + std::to_string(i), stage));
  return d;
}

// One task, started by every record on `topic`, its params {"i": <the record's "i">}.
Dag topic_dag(std::string id, std::string topic, std::string stage) {
  Dag d = new_dag(std::move(id));
  d.trigger.kind = scheduler::Trigger::Kind::kTopic;
  d.trigger.topic = std::move(topic);
  d.tasks.push_back(new_task("first", std::move(stage), R"({"i":"{{ run.conf.i }}"})"));
  return d;
}

// ---- the durable rig: log + store + scheduler + engine ----

struct Rig {
  explicit Rig(TempDir d) : dir(std::move(d)) {}
  ~Rig() { (void)close(); }
  // Stops the scheduler, then the engine. Idempotent.
  Status close() {
    if (sched) sched->stop();
    Status s = engine ? engine->stop(10'000) : Status();
    events.reset();
    engine.reset();
    sched.reset();
    return s;
  }

  TempDir dir;
  std::unique_ptr<Log> log;
  std::unique_ptr<store::MetaStore> store;
  std::unique_ptr<scheduler::Scheduler> sched;
  std::unique_ptr<runtime::Engine> engine;
  std::unique_ptr<Consumer> events;  // factory.task-events from its start
};

Result<std::unique_ptr<Rig>> open_rig(std::vector<Dag> dags) {
  auto dir = TempDir::create("factory-bench-scheduler");
  if (!dir.ok()) return dir.status();
  auto rig = std::make_unique<Rig>(std::move(*dir));
  LogOptions lo;
  lo.dir = rig->dir.sub("log");
  lo.sync = true;
  lo.retention_interval_ms = 0;
  auto log = open_log(lo);
  if (!log.ok()) return log.status();
  rig->log = std::move(*log);
  auto st = store::open_sqlite_store({.dir = rig->dir.sub("store"), .sync = true});
  if (!st.ok()) return st.status();
  rig->store = std::move(*st);
  scheduler::SchedulerOptions so;
  auto sc = scheduler::Scheduler::create(rig->log.get(), rig->store.get(), std::move(dags), so);
  if (!sc.ok()) return sc.status();
  rig->sched = std::move(*sc);
  auto ev = rig->log->subscribe({.group = "bench-events", .topics = {so.events_topic}});
  if (!ev.ok()) return ev.status();
  rig->events = std::move(*ev);
  runtime::PipelineConfig pc;
  pc.bindings = rig->sched->task_bindings();
  runtime::EngineOptions eo;
  eo.data_dir = rig->dir.path();
  auto engine = runtime::Engine::start(rig->log.get(), rig->store.get(), pc, eo);
  if (!engine.ok()) return engine.status();
  rig->engine = std::move(*engine);
  FACTORY_RETURN_IF_ERROR(rig->sched->start());
  return rig;
}

// Reads factory.task-events until `runs` runs have ended (their run_state events); returns the
// steady ns at which the last was seen. TimedOut after timeout_s; FailedPrecondition when a run
// ended other than in success.
Result<int64_t> wait_run_ends(Rig* rig, int64_t runs, double timeout_s) {
  int64_t ended = 0, failed = 0;
  Stopwatch sw;
  while (ended < runs) {
    if (sw.elapsed_s() > timeout_s) {
      return Status::timed_out(std::to_string(ended) + " of " + std::to_string(runs) +
                               " runs ended in " + std::to_string(timeout_s) + " s");
    }
    auto got = rig->events->poll(10'000, 200);
    if (!got.ok()) return got.status();
    for (const ConsumerRecord& cr : *got) {
      if (!cr.record.value || cr.record.value->find("\"run_state\"") == std::string::npos) continue;
      ++ended;
      if (cr.record.value->find("\"run_state\":\"success\"") == std::string::npos) ++failed;
    }
  }
  const int64_t at = steady_now_ns();
  if (failed > 0) {
    return Status::failed_precondition(std::to_string(failed) + " runs did not succeed");
  }
  return at;
}

// OK when the run succeeded with all `tasks` task instances in success.
Status check_run(Rig* rig, const std::string& run_id, size_t tasks) {
  auto v = rig->sched->show_run(run_id);
  if (!v.ok()) return v.status();
  size_t ok = 0;
  for (const auto& t : v->tasks) ok += t.row.state == "success" ? 1 : 0;
  if (v->run.state != "success" || ok != tasks) {
    return Status::internal("run " + run_id + " is " + v->run.state + " with " +
                            std::to_string(ok) + "/" + std::to_string(tasks) + " tasks succeeded");
  }
  return Status();
}

// ---- the in-memory floor ----

class AlwaysClosedBreaker final : public Breaker {
 public:
  bool allow() override { return true; }
  void record_success() override {}
  void record_failure() override {}
  const std::string& fallback_topic() const override { return none_; }

 private:
  std::string none_;
};

// The least a StageContext can be: outputs kept, everything else inert.
class MiniContext final : public StageContext {
 public:
  void emit(Output output) override { outputs.push_back(std::move(output)); }
  const std::string& config() const override { return config_; }
  std::optional<std::string> secret(std::string_view) const override { return std::nullopt; }
  void log_info(std::string_view) override {}
  void log_warn(std::string_view) override {}
  void count(std::string_view, int64_t) override {}
  std::chrono::steady_clock::time_point deadline() const override {
    return std::chrono::steady_clock::time_point::max();
  }
  bool cancelled() const override { return false; }
  const std::filesystem::path& scratch_dir() const override { return scratch_; }
  // The scratch dir stands in for the data dir: nothing outlives this command.
  const std::filesystem::path& data_dir() const override { return scratch_; }
  Breaker& breaker(std::string_view) override { return breaker_; }
  std::vector<Output> outputs;

 private:
  std::string config_ = "{}";
  std::filesystem::path scratch_;
  AlwaysClosedBreaker breaker_;
};

// Runs every task of an indexed DAG once on `pool`: a task is submitted when its last upstream
// has finished; each calls its stage's process() on its params. No state is kept but counters.
class FloorRun {
 public:
  FloorRun(const Dag* dag, runtime::ThreadPool* pool) : dag_(dag), pool_(pool) {
    waiting_.reset(new std::atomic<int>[dag->tasks.size()]);
    for (size_t t = 0; t < dag->tasks.size(); ++t) {
      waiting_[t].store(static_cast<int>(dag->index.upstream(static_cast<int>(t)).size()));
      auto& stage = stages_[dag->tasks[t].stage];
      if (!stage) {
        auto s = runtime::create_stage(dag->tasks[t].stage);
        if (s.ok()) stage = std::move(*s);
      }
    }
  }

  // Seconds from the first submit to the last task's end.
  Result<double> run() {
    for (const auto& [name, stage] : stages_) {
      if (!stage) return Status::not_found("stage " + name);
    }
    Stopwatch sw;
    for (int t : dag_->index.roots()) submit(t);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return finished_; });
    return sw.elapsed_s();
  }

 private:
  void submit(int t) {
    pool_->submit([this, t] { run_task(t); });
  }
  void run_task(int t) {
    const Task& task = dag_->tasks[t];
    Event ev;
    ev.payload = task.params;
    MiniContext ctx;
    (void)stages_.find(task.stage)->second->process(ev, ctx);
    for (int d : dag_->index.downstream(t)) {
      if (waiting_[d].fetch_sub(1) == 1) submit(d);
    }
    if (done_.fetch_add(1) + 1 == dag_->tasks.size()) {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
      cv_.notify_all();
    }
  }

  const Dag* dag_;
  runtime::ThreadPool* pool_;
  std::map<std::string, std::unique_ptr<Stage>> stages_;
  std::unique_ptr<std::atomic<int>[]> waiting_;
  std::atomic<size_t> done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
};

// The fastest of three runs: the floor is microseconds to milliseconds, where one thread
// wake-up more or less shows.
Result<double> floor_run(const Dag& dag, runtime::ThreadPool* pool) {
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    FloorRun r(&dag, pool);
    auto s = r.run();
    if (!s.ok()) return s.status();
    best = i == 0 ? *s : std::min(best, *s);
  }
  return best;
}

// Pool submit -> task start, µs, one at a time with 1 ms between submits.
Percentiles floor_start_latency_us(runtime::ThreadPool* pool, int samples) {
  std::vector<double> us;
  for (int i = 0; i < samples; ++i) {
    std::promise<int64_t> started;
    auto f = started.get_future();
    const int64_t t0 = steady_now_ns();
    pool->submit([&started] { started.set_value(steady_now_ns()); });
    us.push_back(static_cast<double>(f.get() - t0) / 1e3);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return summarize(&us);
}

// ---- the durability floor: a synced single-row SQLite UPDATE ----

Result<Percentiles> sqlite_update_ms(int ops) {
  auto dir = TempDir::create("factory-bench-sqlite");
  if (!dir.ok()) return dir.status();
  sqlite3* db = nullptr;
  const std::string path = dir->sub("update.db");
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::io_error("sqlite open " + path + ": " + m);
  }
  auto fail = [&](const char* what) -> Status {
    Status s = Status::io_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
    sqlite3_close(db);
    return s;
  };
  // The store's settings (src/store/sqlite_store.cpp): WAL, synchronous=FULL.
  if (sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
                   "INSERT INTO t VALUES (1, 0);",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("setup");
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "UPDATE t SET v = ?1 WHERE id = 1", -1, &st, nullptr) != SQLITE_OK) {
    return fail("prepare");
  }
  std::vector<double> ms;
  for (int i = 0; i < ops; ++i) {
    const int64_t t0 = steady_now_ns();
    sqlite3_bind_int64(st, 1, i);
    int rc = sqlite3_step(st);  // autocommit: one transaction, one WAL fsync
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
      sqlite3_finalize(st);
      return fail("update");
    }
    ms.push_back(static_cast<double>(steady_now_ns() - t0) / 1e6);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return summarize(&ms);
}

// ---- workloads ----

struct ChainResult {
  Percentiles step_ms;  // start(i) - end(i-1)
  double total_s = 0;
};

// Per-step overhead from stamps of a chain: start(i) - end(i-1), in `unit_ns` units.
Result<Percentiles> chain_steps(const Stamps& s, int n, double unit_ns) {
  std::vector<double> v;
  for (int i = 1; i < n; ++i) {
    if (s.start[i] == 0 || s.end[i - 1] == 0) {
      return Status::internal("task t" + std::to_string(i) + " of the chain left no stamp");
    }
    v.push_back(static_cast<double>(s.start[i] - s.end[i - 1]) / unit_ns);
  }
  return summarize(&v);
}

Result<ChainResult> measure_chain(int n) {
  auto dag = indexed(chain_dag(n));
  if (!dag.ok()) return dag.status();
  auto rig = open_rig({*dag});
  if (!rig.ok()) return rig.status();
  Stamps stamps(static_cast<size_t>(n));
  g_stamps = &stamps;
  Stopwatch sw;
  auto id = (*rig)->sched->trigger("bench_chain", "{}");
  if (!id.ok()) return id.status();
  auto end = wait_run_ends(rig->get(), 1, kRunTimeoutS);
  ChainResult r;
  r.total_s = sw.elapsed_s();
  FACTORY_RETURN_IF_ERROR((*rig)->close());
  g_stamps = nullptr;
  if (!end.ok()) return end.status();
  auto steps = chain_steps(stamps, n, 1e6);
  if (!steps.ok()) return steps.status();
  r.step_ms = *steps;
  return r;
}

struct RunsResult {
  double per_s = 0;
  double seconds = 0;
};

// `runs` records on a trigger topic, appended in batches of 1,000 -> one noop run each.
Result<RunsResult> measure_topic_runs(int runs) {
  auto dag = indexed(topic_dag("bench_runs", "bench-runs", "noop"));
  if (!dag.ok()) return dag.status();
  auto rig = open_rig({*dag});
  if (!rig.ok()) return rig.status();
  std::vector<std::vector<ProducerRecord>> batches;
  for (int i = 0; i < runs; i += 1000) {
    std::vector<ProducerRecord> b;
    for (int k = i; k < std::min(runs, i + 1000); ++k) {
      ProducerRecord r;
      r.key = "k" + std::to_string(k);
      r.value = "{\"i\":" + std::to_string(k) + "}";
      b.push_back(std::move(r));
    }
    batches.push_back(std::move(b));
  }
  const int64_t t0 = steady_now_ns();
  for (const auto& b : batches) {
    auto a = (*rig)->log->append("bench-runs", b);
    if (!a.ok()) return a.status();
  }
  auto end = wait_run_ends(rig->get(), runs, kRunTimeoutS);
  if (!end.ok()) return end.status();
  RunsResult r;
  r.seconds = static_cast<double>(*end - t0) / 1e9;
  r.per_s = runs / r.seconds;
  auto listed = (*rig)->store->list_runs({.dag_id = "bench_runs"});
  if (!listed.ok()) return listed.status();
  int64_t ok = 0;
  for (const auto& row : *listed) ok += row.state == "success" ? 1 : 0;
  if (ok != runs) {
    return Status::internal(std::to_string(ok) + " of " + std::to_string(runs) + " runs succeeded");
  }
  FACTORY_RETURN_IF_ERROR((*rig)->close());
  return r;
}

// `runs` one-task runs started by Scheduler::trigger() from one thread, back to back.
Result<RunsResult> measure_manual_runs(int runs) {
  Dag d = new_dag("bench_manual");
  d.tasks.push_back(new_task("first", "noop"));
  auto dag = indexed(std::move(d));
  if (!dag.ok()) return dag.status();
  auto rig = open_rig({*dag});
  if (!rig.ok()) return rig.status();
  const int64_t t0 = steady_now_ns();
  for (int i = 0; i < runs; ++i) {
    auto id = (*rig)->sched->trigger("bench_manual", "{}", "manual_" + std::to_string(i));
    if (!id.ok()) return id.status();
  }
  auto end = wait_run_ends(rig->get(), runs, kRunTimeoutS);
  if (!end.ok()) return end.status();
  RunsResult r;
  r.seconds = static_cast<double>(*end - t0) / 1e9;
  r.per_s = runs / r.seconds;
  FACTORY_RETURN_IF_ERROR((*rig)->close());
  return r;
}

struct OneRunResult {
  double total_s = 0;
  // Share of the run's dispatch records on the busiest partition of their topic, and the
  // topic's partition count: the engine runs one partition's records on one worker.
  double busiest_partition_share = 0;
  int partitions = 0;
};

// One run of `dag` (manual): trigger() to its end event, then checked task by task.
Result<OneRunResult> measure_one_run(const Dag& dag) {
  auto rig = open_rig({dag});
  if (!rig.ok()) return rig.status();
  const int64_t t0 = steady_now_ns();
  auto id = (*rig)->sched->trigger(dag.dag_id, "{}", "bench_run");
  if (!id.ok()) return id.status();
  auto end = wait_run_ends(rig->get(), 1, kRunTimeoutS);
  if (!end.ok()) return end.status();
  OneRunResult r;
  r.total_s = static_cast<double>(*end - t0) / 1e9;
  FACTORY_RETURN_IF_ERROR(check_run(rig->get(), *id, dag.tasks.size()));
  auto info = (*rig)->log->describe_topic(scheduler::SchedulerOptions().dispatch_prefix +
                                          dag.tasks.front().stage);
  if (!info.ok()) return info.status();
  int64_t total = 0, busiest = 0;
  for (const auto& p : info->partitions) {
    total += p.log_end.value();
    busiest = std::max(busiest, p.log_end.value());
  }
  r.partitions = static_cast<int>(info->partitions.size());
  r.busiest_partition_share = total > 0 ? static_cast<double>(busiest) / total : 0;
  FACTORY_RETURN_IF_ERROR((*rig)->close());
  return r;
}

// Records appended one at a time at `rate_per_s` to a trigger topic; latency from just before
// each append to its run's first task starting (bench-stamp). The first `warmup` are dropped.
Result<Percentiles> measure_trigger(int samples, int rate_per_s) {
  constexpr int kWarmup = 20;
  auto dag = indexed(topic_dag("bench_trigger", "bench-trigger", "bench-stamp"));
  if (!dag.ok()) return dag.status();
  auto rig = open_rig({*dag});
  if (!rig.ok()) return rig.status();
  const int n = samples + kWarmup;
  Stamps stamps(static_cast<size_t>(n));
  g_stamps = &stamps;
  std::vector<int64_t> sent(static_cast<size_t>(n), 0);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * i / rate_per_s));
    ProducerRecord r;
    r.value = "{\"i\":" + std::to_string(i) + "}";
    sent[static_cast<size_t>(i)] = steady_now_ns();
    auto a = (*rig)->log->append("bench-trigger", {&r, 1});
    if (!a.ok()) return a.status();
  }
  auto end = wait_run_ends(rig->get(), n, kRunTimeoutS);
  FACTORY_RETURN_IF_ERROR((*rig)->close());
  g_stamps = nullptr;
  if (!end.ok()) return end.status();
  std::vector<double> ms;
  for (int i = kWarmup; i < n; ++i) {
    if (stamps.start[i] == 0)
      return Status::internal("trigger " + std::to_string(i) + " never ran");
    ms.push_back(static_cast<double>(stamps.start[i] - sent[static_cast<size_t>(i)]) / 1e6);
  }
  return summarize(&ms);
}

struct BigLoad {
  double index_s = 0;  // build_index on the DAG made in code
  double yaml_s = 0;   // parse_dag_yaml of the generated file (its own build_index included)
  double yaml_mb = 0;
};

Result<BigLoad> measure_big_load(int n, Dag* out) {
  BigLoad b;
  Dag d = fan_dag("bench_big", n);
  Stopwatch sw;
  FACTORY_RETURN_IF_ERROR(scheduler::build_index(&d));
  b.index_s = sw.elapsed_s();
  const std::string yaml = fan_yaml("bench_big", n);
  b.yaml_mb = static_cast<double>(yaml.size()) / 1e6;
  scheduler::DagParseOptions po;
  po.stage_exists = [](const std::string& s) { return s == "noop"; };
  sw.reset();
  auto parsed = scheduler::parse_dag_yaml(yaml, "bench_big.yaml", po);
  b.yaml_s = sw.elapsed_s();
  if (!parsed.ok()) return parsed.status();
  if (parsed->tasks.size() != d.tasks.size()) return Status::internal("generated YAML lost tasks");
  *out = std::move(d);
  return b;
}

// Keeps every CPU busy while alive with one SCHED_IDLE spinning thread per CPU: they run only
// when nothing else wants the CPU, so a vCPU never halts between fsyncs (see docs/benchmarks.md:
// on this VM a halted vCPU notices an I/O completion only at its next 4 ms timer tick).
class CpuWaker {
 public:
  explicit CpuWaker(int cpus) {
    for (int i = 0; i < cpus; ++i) {
      threads_.emplace_back([this] {
        sched_param p{};
        p.sched_priority = 0;
        (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &p);
        while (!stop_.load(std::memory_order_relaxed)) {
        }
      });
    }
  }
  ~CpuWaker() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

std::optional<double> div_opt(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return std::nullopt;
  return *a / *b;
}

}  // namespace

int run_scheduler_bench(const SchedulerBenchOptions& o) {
  obs::set_min_level(obs::Level::kWarn);
  for (const std::string& w : o.only) {
    if (w != "sqlite" && w != "chain" && w != "runs" && w != "manual" && w != "fanout" &&
        w != "trigger" && w != "big") {
      std::fprintf(stderr,
                   "factory-bench scheduler: unknown workload '%s' (sqlite, chain, runs, manual, "
                   "fanout, trigger, big)\n",
                   w.c_str());
      return 2;
    }
  }
  auto want = [&](const char* w) { return o.only.empty() || o.only.count(w) > 0; };
  const int div = o.quick ? 10 : 1;
  const int chain_n = o.chain_tasks / div;
  const int runs_n = o.runs / div;
  const int manual_n = std::max(1, o.runs / 10 / div);
  const int fan_n = o.fanout_tasks / div;
  const int trig_n = o.trigger_samples / div;
  const int big_n = o.big_tasks / div;
  const int sqlite_n = 2000 / div;
  const scheduler::SchedulerOptions defaults;
  const int threads = defaults.task_concurrency;
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::printf(
      "factory-bench scheduler: noop tasks, synced log + SQLite FULL; chain %d, runs %d, fan-out "
      "%d, trigger %d samples, big DAG %d tasks; floor pool %d threads%s\n",
      chain_n, runs_n, fan_n, trig_n, big_n, threads,
      o.awake ? "; CPUs kept awake (SCHED_IDLE spinners)" : "");
  std::fflush(stdout);
  auto fail = [](const char* what, const Status& s) {
    std::fprintf(stderr, "factory-bench scheduler: %s: %s\n", what, s.to_string().c_str());
    return 1;
  };
  // Each measured phase starts once the previous phase's RocksDB work is done, and runs with
  // the CPU wakers when --awake.
  auto phase = [&](const char* what, auto&& fn) {
    wait_for_background_idle(5);
    std::fprintf(stderr, "  %s ...\n", what);
    std::unique_ptr<CpuWaker> waker = o.awake ? std::make_unique<CpuWaker>(cpus) : nullptr;
    return fn();
  };

  std::optional<Percentiles> sql, floor_chain_us, floor_trig_us, trig;
  std::optional<double> floor_runs_per_s, floor_fan_s, floor_big_s;
  std::optional<ChainResult> chain;
  std::optional<RunsResult> runs, manual;
  std::optional<OneRunResult> fanout, big_run;
  std::optional<BigLoad> load;
  Dag big;

  // Baselines first: the durability floor, then the in-memory floor of each wanted shape.
  if (want("sqlite")) {
    auto r = phase("sqlite update", [&] { return sqlite_update_ms(sqlite_n); });
    if (!r.ok()) return fail("sqlite update", r.status());
    sql = *r;
  }
  auto chain_dag_ix = indexed(chain_dag(chain_n));
  if (!chain_dag_ix.ok()) return fail("chain DAG", chain_dag_ix.status());
  auto fan = indexed(fan_dag("bench_fanout", fan_n));
  if (!fan.ok()) return fail("fan-out DAG", fan.status());
  if (want("big")) {
    auto r = phase("big DAG load", [&] { return measure_big_load(big_n, &big); });
    if (!r.ok()) return fail("big DAG load", r.status());
    load = *r;
  }
  {
    auto pool = runtime::ThreadPool::create(
        {.name = "floor", .min_threads = threads, .max_threads = threads});
    if (!pool.ok()) return fail("floor pool", pool.status());
    Status s = phase("in-memory floor", [&]() -> Status {
      if (want("chain")) {
        Stamps stamps(static_cast<size_t>(chain_n));
        g_stamps = &stamps;
        auto t = floor_run(*chain_dag_ix, pool->get());
        g_stamps = nullptr;
        if (!t.ok()) return t.status();
        auto steps = chain_steps(stamps, chain_n, 1e3);
        if (!steps.ok()) return steps.status();
        floor_chain_us = *steps;
      }
      if (want("runs")) {
        auto indep = indexed(independent_dag(runs_n, "noop"));
        if (!indep.ok()) return indep.status();
        auto t = floor_run(*indep, pool->get());
        if (!t.ok()) return t.status();
        floor_runs_per_s = runs_n / *t;
      }
      if (want("fanout")) {
        auto t = floor_run(*fan, pool->get());
        if (!t.ok()) return t.status();
        floor_fan_s = *t;
      }
      if (want("trigger"))
        floor_trig_us = floor_start_latency_us(pool->get(), std::min(trig_n, 1000));
      if (want("big")) {
        auto t = floor_run(big, pool->get());
        if (!t.ok()) return t.status();
        floor_big_s = *t;
      }
      return Status();
    });
    if (!s.ok()) return fail("in-memory floor", s);
    (*pool)->shutdown();
  }

  // The scheduler.
  if (want("chain")) {
    auto r = phase("chain", [&] { return measure_chain(chain_n); });
    if (!r.ok()) return fail("chain", r.status());
    chain = *r;
  }
  if (want("runs")) {
    auto r = phase("topic-triggered runs", [&] { return measure_topic_runs(runs_n); });
    if (!r.ok()) return fail("topic-triggered runs", r.status());
    runs = *r;
  }
  if (want("manual")) {
    auto r = phase("trigger() runs", [&] { return measure_manual_runs(manual_n); });
    if (!r.ok()) return fail("trigger() runs", r.status());
    manual = *r;
  }
  if (want("fanout")) {
    auto r = phase("fan-out", [&] { return measure_one_run(*fan); });
    if (!r.ok()) return fail("fan-out", r.status());
    fanout = *r;
  }
  if (want("trigger")) {
    auto r = phase("trigger latency", [&] { return measure_trigger(trig_n, 100); });
    if (!r.ok()) return fail("trigger latency", r.status());
    trig = *r;
  }
  if (want("big")) {
    auto r = phase("big DAG run", [&] { return measure_one_run(big); });
    if (!r.ok()) return fail("big DAG run", r.status());
    big_run = *r;
  }

  using Opt = std::optional<double>;
  auto p50 = [](const std::optional<Percentiles>& p) { return p ? Opt(p->p50) : std::nullopt; };
  auto p99 = [](const std::optional<Percentiles>& p) { return p ? Opt(p->p99) : std::nullopt; };
  auto mean = [](const std::optional<Percentiles>& p) { return p ? Opt(p->mean) : std::nullopt; };
  auto x1000 = [](Opt v) { return v ? Opt(*v * 1e3) : std::nullopt; };
  const Opt chain_p50 = chain ? Opt(chain->step_ms.p50) : std::nullopt;
  const Opt chain_p99 = chain ? Opt(chain->step_ms.p99) : std::nullopt;
  const Opt chain_mean = chain ? Opt(chain->step_ms.mean) : std::nullopt;
  const Opt chain_total = chain ? Opt(chain->total_s) : std::nullopt;
  const Opt runs_per_s = runs ? Opt(runs->per_s) : std::nullopt;
  const Opt manual_per_s = manual ? Opt(manual->per_s) : std::nullopt;
  const Opt fan_s = fanout ? Opt(fanout->total_s) : std::nullopt;
  const Opt big_s = big_run ? Opt(big_run->total_s) : std::nullopt;
  const Opt index_s = load ? Opt(load->index_s) : std::nullopt;
  const Opt yaml_s = load ? Opt(load->yaml_s) : std::nullopt;
  auto per_s = [](int n, Opt s) { return s && *s > 0 ? Opt(n / *s) : std::nullopt; };
  // Multiples of the in-memory floor: factoryd's time (per step, per task, per run) / the
  // floor's; above 1 is slower.
  const Opt chain_x = div_opt(x1000(chain_p50), p50(floor_chain_us));
  const Opt runs_x = div_opt(floor_runs_per_s, runs_per_s);
  const Opt fan_x = div_opt(fan_s, floor_fan_s);
  const Opt trig_x = div_opt(x1000(p50(trig)), p50(floor_trig_us));
  const Opt big_x = div_opt(big_s, floor_big_s);

  auto ms = [](Opt v) { return v ? fmt_fixed(*v, 3) + " ms" : std::string("-"); };
  auto us = [](Opt v) { return v ? fmt_fixed(*v, 1) + " us" : std::string("-"); };
  auto sec = [](Opt v) { return v ? fmt_fixed(*v, 3) + " s" : std::string("-"); };
  auto count = [](Opt v) { return v ? fmt_count(*v) : std::string("-"); };
  Table t({"workload", "factoryd", "in-memory floor", "x floor", "target"});
  t.add_row({"chain " + fmt_count(chain_n) + ": step p50", ms(chain_p50), us(p50(floor_chain_us)),
             fmt_ratio(chain_x), "< 1 ms"});
  t.add_row({"chain: step p99", ms(chain_p99), us(p99(floor_chain_us)),
             fmt_ratio(div_opt(x1000(chain_p99), p99(floor_chain_us))), ""});
  t.add_row({"chain: step mean", ms(chain_mean), us(mean(floor_chain_us)),
             fmt_ratio(div_opt(x1000(chain_mean), mean(floor_chain_us))), ""});
  t.add_row({"chain: total", sec(chain_total), "", "", ""});
  t.add_row({fmt_count(runs_n) + " one-task runs, topic (task inst/s)", count(runs_per_s),
             count(floor_runs_per_s), fmt_ratio(runs_x), ">= 10,000/s"});
  t.add_row({fmt_count(manual_n) + " one-task runs, trigger() loop (/s)", count(manual_per_s), "",
             "", ""});
  t.add_row({"fan-out/fan-in " + fmt_count(fan_n) + ": total", sec(fan_s), sec(floor_fan_s),
             fmt_ratio(fan_x), ""});
  t.add_row({"fan-out/fan-in: task instances/s", count(per_s(fan_n, fan_s)),
             count(per_s(fan_n, floor_fan_s)), "", ""});
  auto share = [](const std::optional<OneRunResult>& r) {
    return r ? fmt_fixed(r->busiest_partition_share * 100, 0) + "% of " +
                   std::to_string(r->partitions)
             : std::string("-");
  };
  t.add_row({"fan-out/fan-in: dispatches on busiest partition", share(fanout), "", "", ""});
  t.add_row({"trigger record -> first task p50", ms(p50(trig)), us(p50(floor_trig_us)),
             fmt_ratio(trig_x), "< 5 ms"});
  t.add_row({"trigger record -> first task p99", ms(p99(trig)), us(p99(floor_trig_us)),
             fmt_ratio(div_opt(x1000(p99(trig)), p99(floor_trig_us))), ""});
  t.add_row({"big DAG " + fmt_count(big_n) + ": build_index", sec(index_s), "", "", ""});
  t.add_row({"big DAG: YAML parse" + (load ? " (" + fmt_fixed(load->yaml_mb, 1) + " MB)" : ""),
             sec(yaml_s), "", "", ""});
  t.add_row({"big DAG: run total", sec(big_s), sec(floor_big_s), fmt_ratio(big_x), "completes"});
  t.add_row({"big DAG: task instances/s", count(per_s(big_n, big_s)),
             count(per_s(big_n, floor_big_s)), "", ""});
  t.add_row({"big DAG: dispatches on busiest partition", share(big_run), "", "", ""});
  t.add_row({"durability floor: synced SQLite UPDATE p50", ms(p50(sql)), "", "", ""});
  t.add_row({"durability floor: synced SQLite UPDATE p99", ms(p99(sql)), "", "", ""});
  t.add_row(
      {"chain step p50 / SQLite UPDATE p50", fmt_ratio(div_opt(chain_p50, p50(sql))), "", "", ""});
  t.print(stdout);
  if (o.markdown) t.print_markdown(stdout);

  JsonLine j;
  j.add("bench", "scheduler");
  j.add("chain_step_p50_ms", chain_p50, 3);
  j.add("chain_step_p99_ms", chain_p99, 3);
  j.add("task_instances_per_s", runs_per_s, 0);
  j.add("task_instances_path", "topic");
  j.add("fanout_total_s", fan_s, 3);
  j.add("trigger_p50_ms", p50(trig), 3);
  j.add("trigger_p99_ms", p99(trig), 3);
  j.add("big_dag_load_s", yaml_s, 3);
  j.add("big_dag_index_s", index_s, 3);
  j.add("big_dag_total_s", big_s, 3);
  j.add("floor_chain_step_us", p50(floor_chain_us), 2);
  j.add("floor_chain_step_p99_us", p99(floor_chain_us), 2);
  j.add("floor_task_instances_per_s", floor_runs_per_s, 0);
  j.add("floor_fanout_total_s", floor_fan_s, 4);
  j.add("floor_trigger_us", p50(floor_trig_us), 2);
  j.add("floor_big_dag_total_s", floor_big_s, 4);
  j.add("sqlite_update_ms", p50(sql), 3);
  j.add("sqlite_update_p99_ms", p99(sql), 3);
  j.add("chain_step_x_floor", chain_x, 1);
  j.add("task_instances_x_floor", runs_x, 1);
  j.add("fanout_x_floor", fan_x, 1);
  j.add("trigger_x_floor", trig_x, 1);
  j.add("big_dag_x_floor", big_x, 1);
  j.add("chain_step_x_sqlite_update", div_opt(chain_p50, p50(sql)), 2);
  j.add("chain_total_s", chain_total, 3);
  j.add("manual_trigger_runs_per_s", manual_per_s, 0);
  j.add("fanout_task_instances_per_s", per_s(fan_n, fan_s), 0);
  j.add("big_dag_task_instances_per_s", per_s(big_n, big_s), 0);
  j.add("fanout_busiest_partition_share",
        fanout ? Opt(fanout->busiest_partition_share) : std::nullopt, 3);
  j.add("chain_tasks", static_cast<int64_t>(chain_n));
  j.add("runs", static_cast<int64_t>(runs_n));
  j.add("fanout_tasks", static_cast<int64_t>(fan_n));
  j.add("trigger_samples", static_cast<int64_t>(trig_n));
  j.add("big_dag_tasks", static_cast<int64_t>(big_n));
  j.add("floor_threads", static_cast<int64_t>(threads));
  j.add_bool("awake", o.awake);
  j.add_bool("quick", o.quick);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace factory::bench
