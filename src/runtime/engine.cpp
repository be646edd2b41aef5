#include "runtime/engine.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "factory/consumer.h"
#include "obs/logger.h"
#include "runtime/backpressure.h"
#include "runtime/engine_batch.h"
#include "runtime/engine_impl.h"
#include "runtime/mark_pruner.h"
#include "runtime/stage_registry.h"

namespace factory::runtime {
namespace {

using Clock = std::chrono::steady_clock;

std::string where(const Binding& b) {
  return "binding '" + b.name + "' (" + b.source + ":" + std::to_string(b.line) + ")";
}

}  // namespace

Breaker& Engine::Impl::breaker(BindingRuntime* b, std::string_view name) {
  base::MutexLock lock(&b->mu);
  auto it = b->breakers.find(std::string(name));
  if (it != b->breakers.end()) return *it->second;
  // A breaker the binding does not configure gets the defaults and no fallback.
  auto cb = std::make_unique<CircuitBreaker>(b->binding.name + "/" + std::string(name),
                                             CircuitBreakerConfig{}, clock);
  auto& slot = b->breakers[std::string(name)];
  slot = std::make_unique<BreakerImpl>(std::move(cb), "");
  return *slot;
}

std::optional<std::string> Engine::Impl::secret(std::string_view name) const {
  std::string env = "FACTORY_SECRET_";
  for (char c : name)
    env.push_back(std::isalnum(static_cast<unsigned char>(c)) ? std::toupper(c) : '_');
  if (const char* v = std::getenv(env.c_str())) return std::string(v);
  if (options.secrets_dir.empty() || name.find('/') != std::string_view::npos) return std::nullopt;
  std::ifstream in(std::filesystem::path(options.secrets_dir) / std::string(name));
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string v = ss.str();
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

namespace {

// Lag of the groups that consume `topic` (the largest of them).
int64_t downstream_lag(Log* log, const std::string& topic, const std::vector<std::string>& groups) {
  int64_t worst = 0;
  for (const std::string& g : groups) {
    auto d = log->describe_group(g);
    int64_t lag = 0;
    if (d.ok()) {
      for (const auto& row : d->partitions) {
        if (row.topic == topic) lag += row.lag;
      }
    } else {
      // The group never committed: everything on the topic is lag.
      auto info = log->describe_topic(topic);
      if (info.ok()) {
        for (const auto& p : info->partitions) lag += p.log_end.value() - p.log_start.value();
      }
    }
    worst = std::max(worst, lag);
  }
  return worst;
}

}  // namespace

Status Engine::Impl::ensure_topic(const BindingRuntime& b, const std::string& topic) {
  if (topic.empty() || log->describe_topic(topic).ok()) return Status();
  auto input = log->describe_topic(b.binding.input_topic);
  if (!input.ok()) return input.status();
  // What a binding writes must fit what it reads: the input's partitions and record limit.
  TopicSpec spec{.name = topic, .partitions = input->spec.partitions};
  spec.config.max_message_bytes =
      std::max(spec.config.max_message_bytes, input->spec.config.max_message_bytes);
  Status s = log->create_topic(spec);
  if (!s.ok() && !s.is_already_exists()) return s;
  obs::info("created topic for binding", {{"binding", b.binding.name}, {"topic", topic}});
  return Status();
}

void Engine::Impl::prune_marks(BindingRuntime* b, MarkPruner* pruner) {
  // The time first: the ends read after it are above every record a mark before it belongs to.
  const int64_t now_ms = clock->now_ms();
  MarkPruner::Positions starts, ends;
  int64_t keep_ms = 0;
  for (const std::string* t : {&b->binding.input_topic, &b->binding.dead_letter_topic}) {
    if (t->empty()) continue;
    auto info = log->describe_topic(*t);
    // A topic missing (the dead-letter topic is created again on the next letter) or unreadable,
    // or one that keeps records forever by time: keep every mark this round.
    if (!info.ok() || info->spec.config.retention_ms < 0) return;
    keep_ms = std::max(keep_ms, info->spec.config.retention_ms);
    for (const PartitionInfo& p : info->partitions) {
      starts[{info->id, p.partition}] = p.log_start.value();
      ends[{info->id, p.partition}] = p.log_end.value();
    }
  }
  const std::optional<int64_t> cutoff = pruner->observe(now_ms, starts, ends, keep_ms);
  if (!cutoff) return;
  // A sixteenth of the id space per round, so the worker's next poll is not held for long: a
  // whole pass takes 16 rounds, and a mark left for the next pass is only forgotten later.
  constexpr int kSlicesPerRound = 16;
  for (int i = 0; i < kSlicesPerRound; ++i) {
    auto n = store->prune_processed(b->binding.name, *cutoff, pruner->next_slice());
    if (!n.ok()) {
      obs::warn("pruning processed marks failed; will try again",
                {{"binding", b->binding.name}, {"error", n.status().to_string()}});
      return;
    }
    b->marks_pruned += *n;
  }
}

void Engine::Impl::run_worker(BindingRuntime* b, int index) {
  const Binding& bind = b->binding;
  ConsumerOptions co;
  co.group = bind.group;
  co.topics = {bind.input_topic};
  co.client_id = bind.name + "-" + std::to_string(index);
  // Redelivery is harmless (the idempotency table and the outputs' idempotency keys catch it),
  // so offset commits need not wait for their own fsync: the next synced append carries them.
  co.sync_commits = false;
  auto sub = log->subscribe(co);
  if (!sub.ok()) {
    obs::error("worker cannot join its group",
               {{"binding", bind.name}, {"error", sub.status().to_string()}});
  }
  WorkerState ws;
  ws.consumer = sub.ok() ? std::move(*sub) : nullptr;
  std::unique_ptr<BackpressureGate> gate;
  if (bind.backpressure_enabled && !b->downstream_groups.empty()) {
    gate = std::make_unique<BackpressureGate>(bind.backpressure);
  }
  bool was_paused = false;
  std::vector<ConsumerRecord> polled;  // reused by every poll_into (see below)
  // The binding's first worker also forgets the marks the log can no longer deliver again.
  MarkPruner pruner;
  auto next_prune = Clock::now();
  const bool prunes = index == 0 && options.prune_interval_ms > 0;

  while (ws.consumer && !stopping.load()) {
    if (prunes && Clock::now() >= next_prune) {
      prune_marks(b, &pruner);
      next_prune = Clock::now() + std::chrono::milliseconds(options.prune_interval_ms);
    }
    // Back-pressure: hold polling while downstream lags.
    if (gate) {
      bool paused = gate->update(downstream_lag(log, bind.output_topic, b->downstream_groups));
      if (paused != was_paused) {
        b->paused_workers += paused ? 1 : -1;
        if (paused) ++b->backpressure_pauses;
        was_paused = paused;
      }
      if (paused) {
        log->wait_for_append(log->append_sequence(), 50);
        continue;
      }
    }
    // Resume partitions whose retry delay has passed; wait no longer than the next one.
    auto now = Clock::now();
    int64_t wait_ms = options.idle_poll_ms;
    for (auto it = ws.retry_due.begin(); it != ws.retry_due.end();) {
      if (it->second <= now) {
        ws.consumer->resume(it->first);
        it = ws.retry_due.erase(it);
      } else {
        wait_ms = std::min<int64_t>(
            wait_ms,
            std::chrono::duration_cast<std::chrono::milliseconds>(it->second - now).count() + 1);
        ++it;
      }
    }
    // Polled into the same vector every time: its records keep their strings' capacity, so a
    // steady stream decodes without allocating per record (Consumer::poll_into).
    if (Status s = ws.consumer->poll_into(b->batch_size, wait_ms, &polled); !s.ok()) {
      obs::error("poll failed", {{"binding", bind.name}, {"error", s.to_string()}});
      log->wait_for_append(log->append_sequence(), 1000);
      continue;
    }
    if (polled.empty()) continue;

    Batch batch(this, b, &ws, &polled);
    if (Status s = batch.run(); !s.ok()) {
      // The log or the store failed: nothing of the batch is acknowledged. Read it again after
      // a pause.
      batch.rewind(s);
      log->wait_for_append(log->append_sequence(), 1000);
      continue;
    }
    batch.finish();
  }
  if (ws.consumer) {
    Status c = ws.consumer->commit();
    if (!c.ok())
      obs::error("final offset commit failed", {{"binding", bind.name}, {"error", c.to_string()}});
  }
  if (was_paused) --b->paused_workers;
  ws.consumer.reset();
  base::MutexLock lock(&mu);
  --running;
  done_cv.signal_all();
}

Result<std::unique_ptr<Engine>> Engine::start(Log* log, store::MetaStore* store,
                                              const PipelineConfig& config,
                                              const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->log = log;
  impl->store = store;
  impl->options = options;
  impl->data_dir = options.data_dir;
  impl->clock = options.clock ? options.clock : base::SystemClock::instance();
  int total_workers = 0;
  for (const Binding& bind : config.bindings) {
    auto b = std::make_unique<BindingRuntime>();
    b->binding = bind;
    if (bind.stage_instance) {
      b->stage = bind.stage_instance;
    } else {
      auto stage = create_stage(bind.stage);
      if (!stage.ok()) {
        return Status::not_found(where(bind) + ": " + stage.status().message());
      }
      b->stage = std::move(*stage);
    }
    b->info = b->stage->info();
    // Event counts and breaker states are read from stats() at scrape time (http/metrics_routes).
    b->call_seconds = obs::default_registry()
                          .histogram("factory_stage_duration_seconds",
                                     "Time of one stage process() call.", {"binding", "stage"})
                          .labels({bind.name, bind.stage});
    Status config_ok = b->stage->check_config(bind.config_json);
    if (!config_ok.ok()) {
      return Status::invalid_argument(where(bind) + ": config: " + config_ok.message());
    }
    auto in = config::Contract::compile(b->info.input_schema,
                                        "the input schema of stage '" + bind.stage + "'");
    if (!in.ok()) return Status::invalid_argument(where(bind) + ": " + in.status().message());
    auto out = config::Contract::compile(b->info.output_schema,
                                         "the output schema of stage '" + bind.stage + "'");
    if (!out.ok()) return Status::invalid_argument(where(bind) + ": " + out.status().message());
    b->input = std::move(*in);
    b->output = std::move(*out);
    b->workers = bind.concurrency > 0 ? bind.concurrency : std::max(1, b->info.default_concurrency);
    b->batch_size =
        bind.max_poll_records > 0 ? bind.max_poll_records : std::max(1, b->info.default_batch_size);
    b->scratch = std::filesystem::path(options.data_dir) / "scratch" / bind.name;
    std::error_code ec;
    std::filesystem::create_directories(b->scratch, ec);
    if (ec) return Status::io_error("cannot create " + b->scratch.string() + ": " + ec.message());

    auto input = log->describe_topic(bind.input_topic);
    if (!input.ok()) {
      return Status::not_found(where(bind) + " consumes topic '" + bind.input_topic +
                               "', which does not exist; create it (factoryd topics apply -f "
                               "config/topics.yaml, or factoryd topics create)");
    }
    // Every topic the binding writes to exists before its first batch: outputs, dead letters
    // and breaker fallbacks (a stage's own route topics are known only when it routes; a
    // missing one dead-letters that event with the reason).
    std::vector<std::string> writes = {bind.output_topic, bind.dead_letter_topic};
    for (const BreakerBinding& bb : bind.breakers) writes.push_back(bb.fallback_topic);
    for (const std::string& t : writes) {
      Status s = impl->ensure_topic(*b, t);
      if (!s.ok())
        return Status::from_code(s.code(), where(bind) + ": topic '" + t + "': " + s.message());
    }
    if (auto dlq = log->describe_topic(bind.dead_letter_topic);
        dlq.ok() && dlq->spec.config.max_message_bytes < input->spec.config.max_message_bytes) {
      obs::warn(
          "the dead-letter topic takes smaller records than the input; letters too big for "
          "it are stored by reference (raise its max.message.bytes to keep them whole)",
          {{"binding", bind.name}, {"topic", bind.dead_letter_topic}});
    }
    for (const BreakerBinding& bb : bind.breakers) {
      auto cb = CircuitBreaker::create(bind.name + "/" + bb.name, bb.config, impl->clock);
      if (!cb.ok()) return Status::invalid_argument(where(bind) + ": " + cb.status().message());
      base::MutexLock lock(&b->mu);
      b->breakers[bb.name] = std::make_unique<BreakerImpl>(std::move(*cb), bb.fallback_topic);
    }
    if (b->info.side_effects == SideEffects::kFenced) {
      auto open = store->open_intents(bind.name);
      if (!open.ok()) return open.status();
      if (!open->empty()) {
        obs::warn("fenced intents left open by a crash will be resolved with recover()",
                  {{"binding", bind.name}, {"count", static_cast<long>(open->size())}});
      }
    }
    total_workers += b->workers;
    impl->bindings.push_back(std::move(b));
  }
  for (auto& b : impl->bindings) {
    if (b->binding.output_topic.empty()) continue;
    for (auto& d : impl->bindings) {
      if (d->binding.input_topic == b->binding.output_topic) {
        b->downstream_groups.push_back(d->binding.group);
      }
    }
  }
  if (total_workers > 0) {
    ThreadPoolOptions po;
    po.name = "worker";
    po.min_threads = po.max_threads = total_workers;
    auto pool = ThreadPool::create(po);
    if (!pool.ok()) return pool.status();
    impl->pool = std::move(*pool);
  }
  Impl* p = impl.get();
  {
    base::MutexLock lock(&p->mu);
    p->running = total_workers;
  }
  for (auto& b : impl->bindings) {
    for (int i = 0; i < b->workers; ++i) {
      BindingRuntime* br = b.get();
      p->pool->submit([p, br, i] { p->run_worker(br, i); });
    }
    obs::info("binding started", {{"binding", b->binding.name},
                                  {"stage", b->binding.stage},
                                  {"input", b->binding.input_topic},
                                  {"output", b->binding.output_topic},
                                  {"workers", b->workers}});
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  Status s = stop(0);
  if (!s.ok()) {
    // Workers still inside a stage call: wait for them, they hold pointers into impl_.
    base::MutexLock lock(&impl_->mu);
    while (impl_->running > 0) impl_->done_cv.wait();
  }
  if (impl_->pool) impl_->pool->shutdown();
}

Status Engine::stop(int64_t deadline_ms) {
  impl_->stopping = true;  // workers notice within one idle poll (idle_poll_ms)
  auto deadline = Clock::now() + std::chrono::milliseconds(deadline_ms);
  base::MutexLock lock(&impl_->mu);
  while (impl_->running > 0) {
    if (!impl_->done_cv.wait_until(deadline) && Clock::now() >= deadline) break;
  }
  if (impl_->running > 0) {
    return Status::timed_out(std::to_string(impl_->running) +
                             " workers are still inside a stage call at the deadline");
  }
  impl_->stopped = true;
  return Status();
}

std::vector<BindingStats> Engine::stats() const {
  std::vector<BindingStats> out;
  for (const auto& b : impl_->bindings) {
    BindingStats s;
    s.binding = b->binding.name;
    s.stage = b->binding.stage;
    s.workers = b->workers;
    s.processed = b->processed;
    s.duplicates = b->duplicates;
    s.dead_lettered = b->dead_lettered;
    s.routed = b->routed;
    s.retries = b->retries;
    s.recovered = b->recovered;
    s.refused = b->refused;
    s.letters_by_reference = b->letters_by_reference;
    s.batch_failures = b->batch_failures;
    s.marks_pruned = b->marks_pruned;
    s.paused = b->paused_workers.load() > 0;
    s.backpressure_pauses = b->backpressure_pauses;
    base::MutexLock lock(&b->mu);
    for (auto& [name, br] : b->breakers) {
      s.breaker_names.push_back(name);
      s.breakers.push_back(br->breaker()->snapshot());
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace factory::runtime
