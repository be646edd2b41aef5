#include "runtime/engine_batch.h"

#include <chrono>
#include <map>
#include <set>
#include <span>

#include "obs/logger.h"
#include "runtime/retry.h"

namespace factory::runtime {
namespace {

using Clock = std::chrono::steady_clock;
// A guard against a runaway stage (outputs are keyed by index, so any count would do); kept at
// the limit the offset-derived producer sequences once imposed, so no stage that ran before
// is refused now.
constexpr int64_t kMaxOutputsPerEvent = 1023;
constexpr int64_t kDeferMs = 20;  // a copy of an event another worker is running waits this long

uint64_t seed_of(const EventId& id) {
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s = (s << 8) | id.digest[i];
  return s;
}

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

// 1. Validate and identify. The same event twice in one batch runs once: the later copy is a
// duplicate of the earlier whatever becomes of it (a retry re-reads both, a dead letter holds
// the event for a replay).
void Batch::classify() {
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
void Batch::run_stage() {
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

Batch::Batch(Engine::Impl* engine, BindingRuntime* b, WorkerState* w,
             std::vector<ConsumerRecord>* polled)
    : e_(engine),
      b_(b),
      bind_(b->binding),
      w_(w),
      polled_(polled),
      fenced_(b->info.side_effects == SideEffects::kFenced) {}

Status Batch::run() {
  classify();
  // Claim before asking the store: a worker that finishes an event records it processed
  // before it releases the claim, so whoever claims it next sees it processed.
  claim();
  FACTORY_RETURN_IF_ERROR(check_processed());
  FACTORY_RETURN_IF_ERROR(fence());
  run_stage();
  FACTORY_RETURN_IF_ERROR(append_outputs());
  FACTORY_RETURN_IF_ERROR(append_dead_letters());
  return mark_processed();
}

void Batch::rewind(const Status& why) {
  // Fenced events keep their open intents, so they are recovered, not re-run.
  obs::error("batch failed; will re-read it",
             {{"binding", bind_.name}, {"error", why.to_string()}});
  ++b_->batch_failures;
  std::map<TopicPartition, int64_t> first;
  for (const Item& it : items_) {
    first.try_emplace({it.rec->topic, it.rec->record.partition}, it.rec->record.offset.value());
  }
  for (const auto& [tp, off] : first) (void)w_->consumer->seek(tp, Offset(off));
  release_claims();
}

void Batch::finish() {
  release_claims();
  schedule_retries();
  count();
  commit_offsets();
}

void Batch::release_claims() {
  if (claimed_.empty()) return;
  base::MutexLock lock(&b_->mu);
  for (const EventId& id : claimed_) b_->in_flight.erase(id);
  claimed_.clear();
}

// 7. A retried or deferred event moves its partition back to it, paused until the delay
// passes; later events of that partition (kBlocked) wait with it, keeping per-key order.
void Batch::schedule_retries() {
  for (const Item& it : items_) {
    const auto key = std::make_pair(it.rec->record.partition, it.rec->record.offset.value());
    if (it.outcome == Item::Outcome::kRetry || it.outcome == Item::Outcome::kDeferred) {
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
  }
}

void Batch::count() {
  for (const Item& it : items_) {
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
}

// Offsets last: a crash before this commit re-reads the batch, and steps 2, 3 and 5 recognise
// what was done.
void Batch::commit_offsets() {
  Status c = w_->consumer->commit();
  if (!c.ok())
    obs::error("offset commit failed", {{"binding", bind_.name}, {"error", c.to_string()}});
}

}  // namespace factory::runtime
