#include "runtime/engine.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/clock.h"
#include "base/mutex.h"
#include "factory/consumer.h"
#include "factory/event.h"
#include "factory/stage.h"
#include "obs/logger.h"
#include "obs/metrics.h"
#include "runtime/backpressure.h"
#include "runtime/contract.h"
#include "runtime/retry.h"
#include "runtime/stage_registry.h"
#include "runtime/thread_pool.h"

namespace factory::runtime {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kMaxOutputsPerEvent = 1024;

std::string where(const Binding& b) {
  return "binding '" + b.name + "' (" + b.source + ":" + std::to_string(b.line) + ")";
}

uint64_t seed_of(const EventId& id) {
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s = (s << 8) | id.digest[i];
  return s;
}

// Breaker handed to stages: a CircuitBreaker plus its fallback route.
class BreakerImpl final : public Breaker {
 public:
  BreakerImpl(std::unique_ptr<CircuitBreaker> cb, std::string fallback)
      : cb_(std::move(cb)), fallback_(std::move(fallback)) {}
  bool allow() override { return cb_->allow(); }
  void record_success() override { cb_->on_success(); }
  void record_failure() override { cb_->on_failure(); }
  const std::string& fallback_topic() const override { return fallback_; }
  CircuitBreaker* breaker() { return cb_.get(); }

 private:
  std::unique_ptr<CircuitBreaker> cb_;
  const std::string fallback_;
};

}  // namespace

// Everything one binding shares between its workers.
struct BindingRuntime {
  Binding binding;
  std::shared_ptr<Stage> stage;
  StageInfo info;
  std::unique_ptr<Contract> input;
  std::unique_ptr<Contract> output;
  std::filesystem::path scratch;
  std::vector<std::string> downstream_groups;  // groups consuming the output topic
  int workers = 1;
  int batch_size = 100;

  base::Mutex mu;
  std::map<std::string, std::unique_ptr<BreakerImpl>> breakers GUARDED_BY(mu);
  std::set<EventId> open_intents GUARDED_BY(mu);           // fenced: intents a crash left open
  std::map<std::string, int64_t> counters GUARDED_BY(mu);  // StageContext::count

  std::atomic<int64_t> processed{0}, duplicates{0}, dead_lettered{0}, routed{0}, retries{0},
      recovered{0}, backpressure_pauses{0};
  std::atomic<int> paused_workers{0};
  obs::Histogram* call_seconds = nullptr;  // factory_stage_duration_seconds{binding,stage}
};

struct Engine::Impl {
  Log* log;
  store::MetaStore* store;
  EngineOptions options;
  std::filesystem::path data_dir;  // options.data_dir
  const base::Clock* clock;
  std::vector<std::unique_ptr<BindingRuntime>> bindings;
  std::unique_ptr<ThreadPool> pool;
  std::atomic<bool> stopping{false};

  base::Mutex mu;
  base::CondVar done_cv{&mu};
  int running GUARDED_BY(mu) = 0;
  bool stopped GUARDED_BY(mu) = false;

  void run_worker(BindingRuntime* b, int index);
  Breaker& breaker(BindingRuntime* b, std::string_view name);
  std::optional<std::string> secret(std::string_view name) const;
};

namespace {

// The context of one stage call.
class Context final : public StageContext {
 public:
  Context(Engine::Impl* engine, BindingRuntime* b, const Event* event)
      : engine_(engine),
        b_(b),
        event_(event),
        deadline_(Clock::now() + std::chrono::milliseconds(b->binding.timeout_ms)) {}

  void emit(Output output) override { outputs.push_back(std::move(output)); }
  const std::string& config() const override { return b_->binding.config_json; }
  std::optional<std::string> secret(std::string_view name) const override {
    return engine_->secret(name);
  }
  void log_info(std::string_view m) override { log(obs::Level::kInfo, m); }
  void log_warn(std::string_view m) override { log(obs::Level::kWarn, m); }
  void count(std::string_view metric, int64_t delta) override {
    base::MutexLock lock(&b_->mu);
    b_->counters[std::string(metric)] += delta;
  }
  std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
  bool cancelled() const override { return engine_->stopping.load() && Clock::now() > deadline_; }
  const std::filesystem::path& scratch_dir() const override { return b_->scratch; }
  const std::filesystem::path& data_dir() const override { return engine_->data_dir; }
  Breaker& breaker(std::string_view name) override { return engine_->breaker(b_, name); }

  std::vector<Output> outputs;

 private:
  void log(obs::Level level, std::string_view m) {
    obs::log(level, m,
             {{"binding", b_->binding.name},
              {"topic", event_->topic},
              {"partition", event_->partition},
              {"offset", static_cast<long>(event_->offset.value())},
              {"event_id", event_->id.hex()}});
  }

  Engine::Impl* engine_;
  BindingRuntime* b_;
  const Event* event_;
  Clock::time_point deadline_;
};

// One polled record on its way through a batch.
struct Item {
  enum class Outcome { kPending, kDuplicate, kOutputs, kDead, kRoute, kRetry, kBlocked };
  ConsumerRecord* rec;
  EventId id;
  std::string reject;  // set: dead-letter without running the stage
  Outcome outcome = Outcome::kPending;
  std::vector<Output> outputs;
  std::string reason;  // dead-letter or route reason
  std::string route_topic;
  int attempt = 1;
};

ProducerRecord forward(const Item& it, std::string_view stage, std::string_view reason_header,
                       const std::string& reason) {
  ProducerRecord r;
  r.key = it.rec->record.key;
  r.value = it.rec->record.value;
  r.headers = it.rec->record.headers;
  r.headers.push_back({std::string(reason_header), reason});
  r.headers.push_back({"factory.source.topic", it.rec->topic});
  r.headers.push_back({"factory.source.partition", std::to_string(it.rec->record.partition)});
  r.headers.push_back({"factory.source.offset", std::to_string(it.rec->record.offset.value())});
  r.headers.push_back({"factory.stage", std::string(stage)});
  r.headers.push_back({"factory.attempts", std::to_string(it.attempt)});
  return r;
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

void Engine::Impl::run_worker(BindingRuntime* b, int index) {
  const Binding& bind = b->binding;
  ConsumerOptions co;
  co.group = bind.group;
  co.topics = {bind.input_topic};
  co.client_id = bind.name + "-" + std::to_string(index);
  // Redelivery is harmless (the idempotency table and producer sequences catch it), so offset
  // commits need not wait for their own fsync: the next synced append carries them.
  co.sync_commits = false;
  auto sub = log->subscribe(co);
  if (!sub.ok()) {
    obs::error("worker cannot join its group",
               {{"binding", bind.name}, {"error", sub.status().to_string()}});
  }
  std::unique_ptr<Consumer> consumer = sub.ok() ? std::move(*sub) : nullptr;
  const bool fenced = b->info.side_effects == SideEffects::kFenced;
  const std::string producer_prefix = bind.name + "/" + bind.input_topic + "/";
  std::map<std::pair<int32_t, int64_t>, int> attempts;    // failed attempts so far per event
  std::map<TopicPartition, Clock::time_point> retry_due;  // paused partitions
  std::unique_ptr<BackpressureGate> gate;
  if (bind.backpressure_enabled && !b->downstream_groups.empty()) {
    gate = std::make_unique<BackpressureGate>(bind.backpressure);
  }
  bool was_paused = false;

  while (consumer && !stopping.load()) {
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
    for (auto it = retry_due.begin(); it != retry_due.end();) {
      if (it->second <= now) {
        consumer->resume(it->first);
        it = retry_due.erase(it);
      } else {
        wait_ms = std::min<int64_t>(
            wait_ms,
            std::chrono::duration_cast<std::chrono::milliseconds>(it->second - now).count() + 1);
        ++it;
      }
    }
    auto polled = consumer->poll(b->batch_size, wait_ms);
    if (!polled.ok()) {
      obs::error("poll failed", {{"binding", bind.name}, {"error", polled.status().to_string()}});
      log->wait_for_append(log->append_sequence(), 1000);
      continue;
    }
    if (polled->empty()) continue;

    // 1. Validate and identify.
    std::vector<Item> items;
    items.reserve(polled->size());
    for (ConsumerRecord& r : *polled) {
      Item it;
      it.rec = &r;
      const std::string payload = r.record.value.value_or("");
      auto id = event_id_for(payload);
      if (!id.ok()) {
        it.id = event_id_for_bytes(payload);
        it.reject = r.record.value ? "malformed event: " + id.status().message()
                                   : "malformed event: the record has no value";
      } else {
        it.id = *id;
        Status valid = b->input->validate(payload);
        if (!valid.ok()) it.reject = "input contract: " + valid.message();
      }
      auto a = attempts.find({r.record.partition, r.record.offset.value()});
      it.attempt = a == attempts.end() ? 1 : a->second + 1;
      items.push_back(std::move(it));
    }
    // 2. Idempotency: one read for the batch.
    std::vector<EventId> ids;
    for (const Item& it : items) ids.push_back(it.id);
    auto done = store->is_processed(bind.name, ids);
    if (!done.ok()) {
      obs::error("idempotency check failed",
                 {{"binding", bind.name}, {"error", done.status().to_string()}});
      // Re-read the batch later: move every partition back to its first polled offset.
      std::map<TopicPartition, int64_t> first;
      for (const Item& it : items)
        first.try_emplace({it.rec->topic, it.rec->record.partition}, it.rec->record.offset.value());
      for (const auto& [tp, off] : first) (void)consumer->seek(tp, Offset(off));
      log->wait_for_append(log->append_sequence(), 1000);
      continue;
    }
    std::vector<EventId> to_fence;
    for (size_t i = 0; i < items.size(); ++i) {
      if ((*done)[i]) {
        items[i].outcome = Item::Outcome::kDuplicate;
      } else if (fenced && items[i].reject.empty()) {
        to_fence.push_back(items[i].id);
      }
    }
    // 3. Fence: intents before any side effect.
    Status s;
    if (!to_fence.empty()) s = store->record_intents(bind.name, to_fence);

    // 4. Run the stage, partition by partition in offset order.
    std::set<int32_t> blocked;  // partitions stopped by a retry in this batch
    for (Item& it : items) {
      if (!s.ok()) break;
      if (it.outcome == Item::Outcome::kDuplicate) continue;
      const int32_t p = it.rec->record.partition;
      if (blocked.count(p)) {
        it.outcome = Item::Outcome::kBlocked;
        continue;
      }
      if (!it.reject.empty()) {
        it.outcome = Item::Outcome::kDead;
        it.reason = it.reject;
        continue;
      }
      Event ev;
      ev.id = it.id;
      ev.topic = it.rec->topic;
      ev.partition = p;
      ev.offset = it.rec->record.offset;
      ev.key = it.rec->record.key;
      ev.payload = *it.rec->record.value;
      ev.headers = it.rec->record.headers;
      ev.timestamp_ms = it.rec->record.timestamp_ms;
      ev.attempt = it.attempt;
      Context ctx(this, b, &ev);
      bool recovered = false;
      if (fenced) {
        bool open;
        {
          base::MutexLock lock(&b->mu);
          open = b->open_intents.count(it.id) > 0;
        }
        if (open) {
          Stage::Recovery rec = Stage::Recovery::kNotDone;
          try {
            rec = b->stage->recover(ev, ctx);
          } catch (const std::exception& e) {
            obs::error("recover threw", {{"binding", bind.name}, {"error", e.what()}});
          }
          base::MutexLock lock(&b->mu);
          b->open_intents.erase(it.id);
          if (rec == Stage::Recovery::kDone) recovered = true;
        }
      }
      StageResult result = StageResult::success();
      if (recovered) {
        ++b->recovered;
      } else {
        ctx.outputs.clear();
        const auto call_started = Clock::now();
        try {
          result = b->stage->process(ev, ctx);
        } catch (const std::exception& e) {
          result = StageResult::retryable(std::string("stage threw: ") + e.what());
        } catch (...) {
          result = StageResult::retryable("stage threw a non-standard exception");
        }
        b->call_seconds->observe(
            std::chrono::duration<double>(Clock::now() - call_started).count());
      }
      switch (result.kind()) {
        case StageResult::Kind::kSuccess: {
          it.outcome = Item::Outcome::kOutputs;
          if (static_cast<int64_t>(ctx.outputs.size()) > kMaxOutputsPerEvent - 1) {
            it.outcome = Item::Outcome::kDead;
            it.reason = "stage emitted " + std::to_string(ctx.outputs.size()) +
                        " outputs for one event; the limit is " +
                        std::to_string(kMaxOutputsPerEvent - 1);
            break;
          }
          for (const Output& o : ctx.outputs) {
            Status v = b->output->validate(o.payload);
            if (!v.ok()) {
              it.outcome = Item::Outcome::kDead;
              it.reason = "output contract: " + v.message();
              break;
            }
          }
          if (it.outcome == Item::Outcome::kOutputs) it.outputs = std::move(ctx.outputs);
          break;
        }
        case StageResult::Kind::kRetryable:
          if (should_retry(bind.retry, it.attempt)) {
            it.outcome = Item::Outcome::kRetry;
            it.reason = result.reason();
            blocked.insert(p);
          } else {
            it.outcome = Item::Outcome::kDead;
            it.reason =
                "failed after " + std::to_string(it.attempt) + " attempts: " + result.reason();
          }
          break;
        case StageResult::Kind::kPermanent:
          it.outcome = Item::Outcome::kDead;
          it.reason = "permanent failure: " + result.reason();
          break;
        case StageResult::Kind::kRoute:
          it.outcome = Item::Outcome::kRoute;
          it.reason = result.reason();
          it.route_topic = result.route_topic();
          break;
      }
    }

    // 5. Append outputs, dead letters and routes: one idempotent append per topic.
    std::map<std::string, std::vector<ProducerRecord>> appends;
    for (const Item& it : items) {
      const int64_t offset = it.rec->record.offset.value();
      const std::string producer = producer_prefix + std::to_string(it.rec->record.partition);
      auto add = [&](const std::string& topic, ProducerRecord r, int64_t index) {
        r.producer_id = producer;
        r.sequence = offset * kMaxOutputsPerEvent + index;
        appends[topic].push_back(std::move(r));
      };
      switch (it.outcome) {
        case Item::Outcome::kOutputs:
          for (size_t i = 0; i < it.outputs.size(); ++i) {
            const Output& o = it.outputs[i];
            const std::string& topic = o.topic.empty() ? bind.output_topic : o.topic;
            if (topic.empty()) continue;  // a sink
            ProducerRecord r;
            r.key = o.key ? o.key : it.rec->record.key;
            r.value = o.payload;
            r.headers = o.headers;
            for (const Header& h : it.rec->record.headers) {
              if (h.key == "traceparent" || h.key == "tracestate") r.headers.push_back(h);
            }
            r.headers.push_back({"factory.stage", bind.name});
            r.headers.push_back({"factory.source.event_id", it.id.hex()});
            add(topic, std::move(r), static_cast<int64_t>(i));
          }
          break;
        case Item::Outcome::kDead:
          add(bind.dead_letter_topic, forward(it, bind.name, "factory.dlq.reason", it.reason),
              kMaxOutputsPerEvent - 1);
          break;
        case Item::Outcome::kRoute:
          add(it.route_topic, forward(it, bind.name, "factory.route.reason", it.reason),
              kMaxOutputsPerEvent - 1);
          break;
        default:
          break;
      }
    }
    for (auto& [topic, records] : appends) {
      if (!s.ok()) break;
      auto r = log->append(topic, records);
      if (!r.ok()) s = r.status();
    }
    // 6. Record outcomes, then commit offsets. Dead letters are not marked processed, so a
    // replayed dead letter runs again.
    std::vector<EventId> finished;
    for (const Item& it : items) {
      if (it.outcome == Item::Outcome::kOutputs || it.outcome == Item::Outcome::kRoute) {
        finished.push_back(it.id);
      }
    }
    if (s.ok() && !finished.empty()) s = store->commit_processed(bind.name, finished);
    if (!s.ok()) {
      // Nothing of this batch is acknowledged: re-read it after a pause.
      obs::error("batch failed; will re-read it",
                 {{"binding", bind.name}, {"error", s.to_string()}});
      std::map<TopicPartition, int64_t> first;
      for (const Item& it : items) {
        first.try_emplace({it.rec->topic, it.rec->record.partition}, it.rec->record.offset.value());
      }
      for (const auto& [tp, off] : first) (void)consumer->seek(tp, Offset(off));
      log->wait_for_append(log->append_sequence(), 1000);
      continue;
    }
    // Retries: move back to the failed event and pause its partition until the delay passes.
    for (const Item& it : items) {
      const auto key = std::make_pair(it.rec->record.partition, it.rec->record.offset.value());
      if (it.outcome == Item::Outcome::kRetry) {
        TopicPartition tp{it.rec->topic, it.rec->record.partition};
        attempts[key] = it.attempt;
        int64_t delay = retry_delay_ms(bind.retry, it.attempt, seed_of(it.id));
        retry_due[tp] = Clock::now() + std::chrono::milliseconds(delay);
        (void)consumer->seek(tp, it.rec->record.offset);
        consumer->pause(tp);
        ++b->retries;
        obs::info("event will be retried", {{"binding", bind.name},
                                            {"attempt", it.attempt},
                                            {"delay_ms", static_cast<long>(delay)},
                                            {"reason", it.reason}});
      } else if (it.outcome != Item::Outcome::kBlocked) {
        attempts.erase(key);
      }
      switch (it.outcome) {
        case Item::Outcome::kOutputs:
          ++b->processed;
          break;
        case Item::Outcome::kDuplicate:
          ++b->duplicates;
          break;
        case Item::Outcome::kDead:
          ++b->dead_lettered;
          obs::warn(
              "event dead-lettered",
              {{"binding", bind.name}, {"topic", bind.dead_letter_topic}, {"reason", it.reason}});
          break;
        case Item::Outcome::kRoute:
          ++b->routed;
          break;
        default:
          break;
      }
    }
    Status c = consumer->commit();
    if (!c.ok())
      obs::error("offset commit failed", {{"binding", bind.name}, {"error", c.to_string()}});
  }
  if (consumer) {
    Status c = consumer->commit();
    if (!c.ok())
      obs::error("final offset commit failed", {{"binding", bind.name}, {"error", c.to_string()}});
  }
  if (was_paused) --b->paused_workers;
  consumer.reset();
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
    auto in =
        Contract::compile(b->info.input_schema, "the input schema of stage '" + bind.stage + "'");
    if (!in.ok()) return Status::invalid_argument(where(bind) + ": " + in.status().message());
    auto out =
        Contract::compile(b->info.output_schema, "the output schema of stage '" + bind.stage + "'");
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
    for (const std::string& t : {bind.output_topic, bind.dead_letter_topic}) {
      if (t.empty() || log->describe_topic(t).ok()) continue;
      TopicSpec spec{.name = t, .partitions = input->spec.partitions};
      Status s = log->create_topic(spec);
      if (!s.ok() && s.code() != Status::Code::kAlreadyExists) return s;
      obs::info("created topic for binding", {{"binding", bind.name}, {"topic", t}});
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
      base::MutexLock lock(&b->mu);
      b->open_intents.insert(open->begin(), open->end());
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
