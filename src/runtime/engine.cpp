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
#include "config/contract.h"
#include "factory/consumer.h"
#include "factory/event.h"
#include "factory/stage.h"
#include "obs/logger.h"
#include "obs/metrics.h"
#include "runtime/backpressure.h"
#include "runtime/retry.h"
#include "runtime/stage_registry.h"
#include "runtime/thread_pool.h"

namespace factory::runtime {
namespace {

using Clock = std::chrono::steady_clock;
// A guard against a runaway stage (outputs are keyed by index, so any count would do); kept at
// the limit the offset-derived producer sequences once imposed, so no stage that ran before
// is refused now.
constexpr int64_t kMaxOutputsPerEvent = 1023;
constexpr int64_t kDeferMs = 20;  // a copy of an event another worker is running waits this long

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
  std::unique_ptr<config::Contract> input;
  std::unique_ptr<config::Contract> output;
  std::filesystem::path scratch;
  std::vector<std::string> downstream_groups;  // groups consuming the output topic
  int workers = 1;
  int batch_size = 100;

  base::Mutex mu;
  std::map<std::string, std::unique_ptr<BreakerImpl>> breakers GUARDED_BY(mu);
  std::set<EventId> in_flight GUARDED_BY(mu);              // ids a worker's batch is running
  std::map<std::string, int64_t> counters GUARDED_BY(mu);  // StageContext::count

  std::atomic<int64_t> processed{0}, duplicates{0}, dead_lettered{0}, routed{0}, retries{0},
      recovered{0}, backpressure_pauses{0}, refused{0}, letters_by_reference{0}, batch_failures{0};
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
  // Creates `topic` for the binding when missing, with the input's partition count and a
  // max.message.bytes at least the input's (what the binding forwards must fit).
  Status ensure_topic(const BindingRuntime& b, const std::string& topic);
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
  enum class Outcome {
    kPending,
    kDuplicate,  // already processed, or the same event earlier in this batch
    kOutputs,
    kDead,
    kRoute,
    kRetry,
    kDeferred,  // another worker of the binding holds the same event id: re-read it shortly
    kBlocked,   // behind a retried or deferred event of its partition
  };
  ConsumerRecord* rec;
  EventId id;
  std::string reject;  // set: dead-letter without running the stage
  Outcome outcome = Outcome::kPending;
  std::vector<Output> outputs;
  std::string reason;  // dead-letter or route reason
  std::string route_topic;
  int attempt = 1;
  bool intent_open = false;  // fenced: an earlier try's intent is open, so recover() comes first
};

// The headers factoryd adds to a record it forwards (a dead letter, a route): why, from where,
// by which stage, after how many attempts.
std::vector<Header> forward_headers(const Item& it, std::string_view stage,
                                    std::string_view reason_header, const std::string& reason) {
  return {{std::string(reason_header), reason},
          {"factory.source.topic", it.rec->topic},
          {"factory.source.partition", std::to_string(it.rec->record.partition)},
          {"factory.source.offset", std::to_string(it.rec->record.offset.value())},
          {"factory.stage", std::string(stage)},
          {"factory.attempts", std::to_string(it.attempt)}};
}

// The polled record with its headers and forward_headers().
ProducerRecord forward(const Item& it, std::string_view stage, std::string_view reason_header,
                       const std::string& reason) {
  ProducerRecord r;
  r.key = it.rec->record.key;
  r.value = it.rec->record.value;
  r.headers = it.rec->record.headers;
  for (Header& h : forward_headers(it, stage, reason_header, reason)) {
    r.headers.push_back(std::move(h));
  }
  return r;
}

// A dead letter too big for its topic, stored by reference: forward_headers() (the reason cut
// to 4 KiB) and where the record is, with no value and none of the record's own headers. The
// record stays readable at its source position for as long as the input's retention keeps it.
ProducerRecord by_reference(const ProducerRecord& letter, const Item& it, std::string_view stage) {
  constexpr size_t kMaxReason = 4096;
  ProducerRecord r;
  if (letter.key && letter.key->size() <= 1024) r.key = letter.key;
  r.idempotency_key = letter.idempotency_key;
  const std::string reason = it.reason.size() > kMaxReason
                                 ? it.reason.substr(0, kMaxReason) + "... (truncated)"
                                 : it.reason;
  r.headers = forward_headers(it, stage, "factory.dlq.reason", reason);
  const int64_t size =
      it.rec->record.value ? static_cast<int64_t>(it.rec->record.value->size()) : 0;
  r.headers.push_back(
      {"factory.dlq.by_reference", std::to_string(size) + " bytes at " + it.rec->topic + "/" +
                                       std::to_string(it.rec->record.partition) + "/" +
                                       std::to_string(it.rec->record.offset.value())});
  return r;
}

// An append the destination refuses whatever happens next (no such topic, a record over its
// max.message.bytes), as opposed to a failure of the log itself (I/O, shutting down).
bool refused(const Status& s) { return s.is_not_found() || s.is_invalid_argument(); }

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

namespace {

// What one worker keeps from one batch to the next.
struct WorkerState {
  std::unique_ptr<Consumer> consumer;
  std::map<std::pair<int32_t, int64_t>, int> attempts;    // failed attempts so far per event
  std::map<TopicPartition, Clock::time_point> retry_due;  // paused partitions
};

// One polled batch through the steps engine.h documents. run() takes it from the polled
// records to durable outcomes; on a failure of the log or the store it returns the error and
// the worker calls rewind(), so the batch is read again with nothing of it acknowledged. A
// fenced event that ran once keeps its intent open through all of this, so the next read asks
// recover() before acting again. Not thread-safe: owned by one worker.
class Batch {
 public:
  Batch(Engine::Impl* engine, BindingRuntime* b, WorkerState* w,
        std::vector<ConsumerRecord>* polled)
      : e_(engine),
        b_(b),
        bind_(b->binding),
        w_(w),
        polled_(polled),
        fenced_(b->info.side_effects == SideEffects::kFenced) {}
  ~Batch() { release_claims(); }

  Status run() {
    identify();
    // Claim before asking the store: a worker that finishes an event records it processed
    // before it releases the claim, so whoever claims it next sees it processed.
    claim();
    FACTORY_RETURN_IF_ERROR(check_processed());
    FACTORY_RETURN_IF_ERROR(fence());
    call_stage();
    FACTORY_RETURN_IF_ERROR(append_outputs());
    FACTORY_RETURN_IF_ERROR(append_dead_letters());
    return mark_processed();
  }

  // Nothing of this batch is acknowledged: move every partition back to its first polled
  // offset, so the next poll reads the batch again.
  void rewind() {
    std::map<TopicPartition, int64_t> first;
    for (const Item& it : items_) {
      first.try_emplace({it.rec->topic, it.rec->record.partition}, it.rec->record.offset.value());
    }
    for (const auto& [tp, off] : first) (void)w_->consumer->seek(tp, Offset(off));
    release_claims();
  }

  // After run() succeeded: schedule retries, count outcomes, commit offsets.
  void finish();

 private:
  void identify();
  Status check_processed();
  void claim();
  Status fence();
  void call_stage();
  void run_one(Item& it);
  Status append_outputs();
  Status append_dead_letters();
  Status mark_processed();
  void refuse(Item& it, const std::string& topic, const Status& why);
  void release_claims() {
    if (claimed_.empty()) return;
    base::MutexLock lock(&b_->mu);
    for (const EventId& id : claimed_) b_->in_flight.erase(id);
    claimed_.clear();
  }

  Engine::Impl* const e_;
  BindingRuntime* const b_;
  const Binding& bind_;
  WorkerState* const w_;
  std::vector<ConsumerRecord>* const polled_;
  const bool fenced_;
  std::vector<Item> items_;
  std::vector<EventId> claimed_;  // ids this batch holds in b_->in_flight
};

// 1. Validate and identify. The same event twice in one batch runs once: the later copy is a
// duplicate of the earlier whatever becomes of it (a retry re-reads both, a dead letter holds
// the event for a replay).
void Batch::identify() {
  std::set<EventId> seen;
  items_.reserve(polled_->size());
  for (ConsumerRecord& r : *polled_) {
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
      Status valid = b_->input->validate(payload);
      if (!valid.ok()) it.reject = "input contract: " + valid.message();
    }
    auto a = w_->attempts.find({r.record.partition, r.record.offset.value()});
    it.attempt = a == w_->attempts.end() ? 1 : a->second + 1;
    if (!seen.insert(it.id).second) it.outcome = Item::Outcome::kDuplicate;
    items_.push_back(std::move(it));
  }
}

// 2. Idempotency: one read for the batch.
Status Batch::check_processed() {
  std::vector<EventId> ids;
  std::vector<Item*> asked;
  for (Item& it : items_) {
    if (it.outcome != Item::Outcome::kPending) continue;
    ids.push_back(it.id);
    asked.push_back(&it);
  }
  if (ids.empty()) return Status();
  auto done = e_->store->is_processed(bind_.name, ids);
  if (!done.ok()) return done.status();
  for (size_t i = 0; i < asked.size(); ++i) {
    if ((*done)[i]) asked[i]->outcome = Item::Outcome::kDuplicate;
  }
  return Status();
}

// Two workers of one binding can poll the same event id on two partitions. The first to claim
// it runs it; the other defers its copy until the claim is released (after the outcome is
// recorded), when the idempotency check sees it processed. The claim comes before that check:
// claimed after it, a copy could pass the check just before the first worker records the event
// and claim it just after the first releases it, and run again.
void Batch::claim() {
  base::MutexLock lock(&b_->mu);
  for (Item& it : items_) {
    if (it.outcome != Item::Outcome::kPending) continue;
    if (!b_->in_flight.insert(it.id).second) {
      it.outcome = Item::Outcome::kDeferred;
      it.reason = "another worker of the binding is running the same event";
      continue;
    }
    claimed_.push_back(it.id);
  }
}

// 3. Fence: intents before any side effect. An intent that was already open belongs to an
// earlier try that may have acted (a crash, or a batch that failed after process() ran).
Status Batch::fence() {
  if (!fenced_) return Status();
  std::vector<EventId> ids;
  std::vector<Item*> fenced;
  for (Item& it : items_) {
    if (it.outcome != Item::Outcome::kPending || !it.reject.empty()) continue;
    ids.push_back(it.id);
    fenced.push_back(&it);
  }
  if (ids.empty()) return Status();
  auto open = e_->store->record_intents(bind_.name, ids);
  if (!open.ok()) return open.status();
  for (size_t i = 0; i < fenced.size(); ++i) fenced[i]->intent_open = (*open)[i];
  return Status();
}

// 4. Run the stage, partition by partition in offset order.
void Batch::call_stage() {
  std::set<int32_t> blocked;  // partitions stopped by a retry or a deferral in this batch
  for (Item& it : items_) {
    const int32_t p = it.rec->record.partition;
    if (it.outcome == Item::Outcome::kDeferred) {
      blocked.insert(p);
      continue;
    }
    if (it.outcome != Item::Outcome::kPending) continue;
    if (blocked.count(p)) {
      it.outcome = Item::Outcome::kBlocked;
      continue;
    }
    if (!it.reject.empty()) {
      it.outcome = Item::Outcome::kDead;
      it.reason = it.reject;
      continue;
    }
    run_one(it);
    if (it.outcome == Item::Outcome::kRetry) blocked.insert(p);
  }
}

void Batch::run_one(Item& it) {
  Event ev;
  ev.id = it.id;
  ev.topic = it.rec->topic;
  ev.partition = it.rec->record.partition;
  ev.offset = it.rec->record.offset;
  ev.key = it.rec->record.key;
  ev.payload = *it.rec->record.value;
  ev.headers = it.rec->record.headers;
  ev.timestamp_ms = it.rec->record.timestamp_ms;
  ev.attempt = it.attempt;
  Context ctx(e_, b_, &ev);
  StageResult result = StageResult::success();
  bool recovered = false;
  if (it.intent_open) {
    // The stage must tell whether the earlier try acted. If it cannot tell (recover() throws),
    // acting again could repeat the side effect: retry the recovery instead.
    std::string threw;
    Stage::Recovery rec = Stage::Recovery::kNotDone;
    try {
      rec = b_->stage->recover(ev, ctx);
    } catch (const std::exception& ex) {
      threw = ex.what();
    } catch (...) {
      threw = "a non-standard exception";
    }
    if (!threw.empty()) {
      obs::error("recover() threw; the event's side effect is unknown, retrying the recovery",
                 {{"binding", bind_.name}, {"event_id", it.id.hex()}, {"error", threw}});
      result = StageResult::retryable("recover() threw: " + threw);
    } else if (rec == Stage::Recovery::kDone) {
      recovered = true;
      ++b_->recovered;
    } else {
      ctx.outputs.clear();
    }
  }
  if (!recovered && result.kind() == StageResult::Kind::kSuccess) {
    const auto call_started = Clock::now();
    try {
      result = b_->stage->process(ev, ctx);
    } catch (const std::exception& ex) {
      result = StageResult::retryable(std::string("stage threw: ") + ex.what());
    } catch (...) {
      result = StageResult::retryable("stage threw a non-standard exception");
    }
    b_->call_seconds->observe(std::chrono::duration<double>(Clock::now() - call_started).count());
  }
  switch (result.kind()) {
    case StageResult::Kind::kSuccess: {
      it.outcome = Item::Outcome::kOutputs;
      if (static_cast<int64_t>(ctx.outputs.size()) > kMaxOutputsPerEvent) {
        it.outcome = Item::Outcome::kDead;
        it.reason = "stage emitted " + std::to_string(ctx.outputs.size()) +
                    " outputs for one event; the limit is " + std::to_string(kMaxOutputsPerEvent);
        break;
      }
      for (const Output& o : ctx.outputs) {
        Status v = b_->output->validate(o.payload);
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
      if (should_retry(bind_.retry, it.attempt)) {
        it.outcome = Item::Outcome::kRetry;
        it.reason = result.reason();
      } else {
        it.outcome = Item::Outcome::kDead;
        it.reason = "failed after " + std::to_string(it.attempt) + " attempts: " + result.reason();
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

// An output or route the destination refused: the event is dead-lettered with the reason, and
// the partition moves on. Records of the event already appended elsewhere keep their keys, so
// a replay of the letter appends each of them at most once.
void Batch::refuse(Item& it, const std::string& topic, const Status& why) {
  const bool route = it.outcome == Item::Outcome::kRoute;
  it.outcome = Item::Outcome::kDead;
  it.outputs.clear();
  it.reason = std::string(route ? "route to topic '" : "output to topic '") + topic +
              "' refused: " + why.message() +
              (route ? "" : "; the stage ran, its outputs were not all appended") +
              (route ? " (original reason: " + it.reason + ")" : "");
  ++b_->refused;
  obs::warn("append refused; the event goes to the dead-letter topic",
            {{"binding", bind_.name}, {"topic", topic}, {"error", why.to_string()}});
}

// 5a. Outputs and routes, one append per topic. Every record's idempotency key is its
// identity — "<binding>/<event id>/<output index>" (or "/route") — so a batch read again after
// a failure, or after a crash before step 6, appends nothing twice, and an offset reset, a
// re-created input topic or a dead-letter replay (new runs of the event) appends what it must.
Status Batch::append_outputs() {
  struct Pending {
    std::vector<ProducerRecord> records;
    std::vector<Item*> items;  // parallel to records
  };
  std::map<std::string, Pending> by_topic;
  for (Item& it : items_) {
    if (it.outcome != Item::Outcome::kOutputs && it.outcome != Item::Outcome::kRoute) continue;
    const std::string key_prefix = bind_.name + "/" + it.id.hex() + "/";
    if (it.outcome == Item::Outcome::kOutputs) {
      for (size_t i = 0; i < it.outputs.size(); ++i) {
        const Output& o = it.outputs[i];
        const std::string& topic = o.topic.empty() ? bind_.output_topic : o.topic;
        if (topic.empty()) continue;  // a sink
        ProducerRecord r;
        r.key = o.key ? o.key : it.rec->record.key;
        r.value = o.payload;
        r.headers = o.headers;
        for (const Header& h : it.rec->record.headers) {
          if (h.key == "traceparent" || h.key == "tracestate") r.headers.push_back(h);
        }
        r.headers.push_back({"factory.stage", bind_.name});
        r.headers.push_back({"factory.source.event_id", it.id.hex()});
        r.idempotency_key = key_prefix + std::to_string(i);
        by_topic[topic].records.push_back(std::move(r));
        by_topic[topic].items.push_back(&it);
      }
    } else if (it.outcome == Item::Outcome::kRoute) {
      ProducerRecord r = forward(it, bind_.name, "factory.route.reason", it.reason);
      r.idempotency_key = key_prefix + "route";
      by_topic[it.route_topic].records.push_back(std::move(r));
      by_topic[it.route_topic].items.push_back(&it);
    }
  }
  for (auto& [topic, pending] : by_topic) {
    auto appended = e_->log->append(topic, pending.records);
    if (appended.ok()) continue;
    if (!refused(appended.status())) return appended.status();
    // Find the events the topic refuses: one append per event.
    for (size_t i = 0; i < pending.records.size();) {
      Item* it = pending.items[i];
      size_t j = i;
      while (j < pending.records.size() && pending.items[j] == it) ++j;
      if (it->outcome == Item::Outcome::kOutputs || it->outcome == Item::Outcome::kRoute) {
        std::span<const ProducerRecord> own(pending.records.data() + i, j - i);
        auto one = e_->log->append(topic, own);
        if (!one.ok()) {
          if (!refused(one.status())) return one.status();
          refuse(*it, topic, one.status());
        }
      }
      i = j;
    }
  }
  return Status();
}

// 5b. Dead letters, keyed "<binding>/dlq/<input topic id>/<partition>/<offset>": one letter per
// failed read of a record, so a re-read batch adds none, and a replayed letter (a new record)
// that fails again adds a new one. A letter too big for the dead-letter topic is stored by
// reference; a dead-letter topic deleted under the running binding is created again.
Status Batch::append_dead_letters() {
  std::vector<Item*> dead;
  for (Item& it : items_) {
    if (it.outcome == Item::Outcome::kDead) dead.push_back(&it);
  }
  if (dead.empty()) return Status();
  auto input = e_->log->describe_topic(bind_.input_topic);
  const uint64_t topic_id = input.ok() ? input->id : 0;
  std::vector<ProducerRecord> letters;
  for (Item* it : dead) {
    ProducerRecord r = forward(*it, bind_.name, "factory.dlq.reason", it->reason);
    r.idempotency_key = bind_.name + "/dlq/" + std::to_string(topic_id) + "/" +
                        std::to_string(it->rec->record.partition) + "/" +
                        std::to_string(it->rec->record.offset.value());
    letters.push_back(std::move(r));
  }
  const std::string& dlq = bind_.dead_letter_topic;
  auto appended = e_->log->append(dlq, letters);
  if (appended.ok()) return Status();
  if (appended.status().is_not_found()) {
    FACTORY_RETURN_IF_ERROR(e_->ensure_topic(*b_, dlq));
    appended = e_->log->append(dlq, letters);
    if (appended.ok()) return Status();
  }
  if (!refused(appended.status())) return appended.status();
  for (size_t i = 0; i < letters.size(); ++i) {
    auto one = e_->log->append(dlq, std::span<const ProducerRecord>(&letters[i], 1));
    if (one.ok()) continue;
    if (!one.status().is_invalid_argument()) return one.status();
    ProducerRecord small = by_reference(letters[i], *dead[i], bind_.name);
    auto ref = e_->log->append(dlq, std::span<const ProducerRecord>(&small, 1));
    if (!ref.ok()) {
      return Status::from_code(ref.status().code(), "the dead-letter topic '" + dlq +
                                                        "' refuses even a letter by reference (" +
                                                        ref.status().message() +
                                                        "); raise its max.message.bytes");
    }
    ++b_->letters_by_reference;
  }
  return Status();
}

// 6. Record outcomes. Dead letters are not marked processed, so a replayed letter runs again
// (and a fenced one's intent stays open, so the replay asks recover() first).
Status Batch::mark_processed() {
  std::vector<EventId> finished;
  for (const Item& it : items_) {
    if (it.outcome == Item::Outcome::kOutputs || it.outcome == Item::Outcome::kRoute) {
      finished.push_back(it.id);
    }
  }
  if (finished.empty()) return Status();
  return e_->store->commit_processed(bind_.name, finished);
}

void Batch::finish() {
  release_claims();
  for (const Item& it : items_) {
    const auto key = std::make_pair(it.rec->record.partition, it.rec->record.offset.value());
    if (it.outcome == Item::Outcome::kRetry || it.outcome == Item::Outcome::kDeferred) {
      // Move back to the event and pause its partition until the delay passes.
      TopicPartition tp{it.rec->topic, it.rec->record.partition};
      int64_t delay = kDeferMs;
      if (it.outcome == Item::Outcome::kRetry) {
        w_->attempts[key] = it.attempt;
        delay = retry_delay_ms(bind_.retry, it.attempt, seed_of(it.id));
        ++b_->retries;
        obs::info("event will be retried", {{"binding", bind_.name},
                                            {"attempt", it.attempt},
                                            {"delay_ms", static_cast<long>(delay)},
                                            {"reason", it.reason}});
      }
      w_->retry_due[tp] = Clock::now() + std::chrono::milliseconds(delay);
      (void)w_->consumer->seek(tp, it.rec->record.offset);
      w_->consumer->pause(tp);
    } else if (it.outcome != Item::Outcome::kBlocked) {
      w_->attempts.erase(key);
    }
    switch (it.outcome) {
      case Item::Outcome::kOutputs:
        ++b_->processed;
        break;
      case Item::Outcome::kDuplicate:
        ++b_->duplicates;
        break;
      case Item::Outcome::kDead:
        ++b_->dead_lettered;
        obs::warn(
            "event dead-lettered",
            {{"binding", bind_.name}, {"topic", bind_.dead_letter_topic}, {"reason", it.reason}});
        break;
      case Item::Outcome::kRoute:
        ++b_->routed;
        break;
      default:
        break;
    }
  }
  Status c = w_->consumer->commit();
  if (!c.ok())
    obs::error("offset commit failed", {{"binding", bind_.name}, {"error", c.to_string()}});
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
  if (!s.ok() && s.code() != Status::Code::kAlreadyExists) return s;
  obs::info("created topic for binding", {{"binding", b.binding.name}, {"topic", topic}});
  return Status();
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

  while (ws.consumer && !stopping.load()) {
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
    auto polled = ws.consumer->poll(b->batch_size, wait_ms);
    if (!polled.ok()) {
      obs::error("poll failed", {{"binding", bind.name}, {"error", polled.status().to_string()}});
      log->wait_for_append(log->append_sequence(), 1000);
      continue;
    }
    if (polled->empty()) continue;

    Batch batch(this, b, &ws, &*polled);
    Status s = batch.run();
    if (!s.ok()) {
      // The log or the store failed: nothing of the batch is acknowledged. Read it again after
      // a pause; fenced events keep their open intents, so they are recovered, not re-run.
      obs::error("batch failed; will re-read it",
                 {{"binding", bind.name}, {"error", s.to_string()}});
      ++b->batch_failures;
      batch.rewind();
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
