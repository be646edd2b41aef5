#include "runtime/engine.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "factory/consumer.h"
#include "factory/stage.h"
#include "log/log_test_util.h"
#include "runtime/engine_harness.h"
#include "store/meta_store.h"

using namespace factory;
using factory::test::append_ok;
using factory::test::rec;
using Harness = factory::test::EngineHarness;
using factory::test::binding;
using factory::test::header;

namespace {

// Requires {"title": string}; emits {"title": ..., "seen": true}. Pure.
class TitleStage final : public Stage {
 public:
  StageInfo info() const override {
    return {
        .name = "test-title",
        .version = "1",
        .input_schema =
            R"({"type":"object","required":["title"],"properties":{"title":{"type":"string"}}})",
        .output_schema = R"({"type":"object","required":["seen"]})"};
  }
  StageResult process(const Event& e, StageContext& ctx) override {
    if (e.payload.find("\"bad-output\"") != std::string::npos) {
      ctx.emit({.payload = R"({"no":"seen"})"});
    } else if (e.payload.find("\"permanent\"") != std::string::npos) {
      return StageResult::permanent("the ticket says so");
    } else {
      std::string p = e.payload;
      p.insert(p.size() - 1, R"(,"seen":true)");
      ctx.emit({.payload = p});
    }
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(TitleStage);

// Fails `failures` times per event (from the binding config's number), then passes.
class FlakyStage final : public Stage {
 public:
  StageInfo info() const override { return {.name = "test-flaky", .version = "1"}; }
  StageResult process(const Event& e, StageContext& ctx) override {
    int failures = std::stoi(ctx.config().substr(ctx.config().find(':') + 1));
    if (e.attempt <= failures)
      return StageResult::retryable("flaky attempt " + std::to_string(e.attempt));
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(FlakyStage);

// Calls a dependency that always fails, behind the "llm" breaker; routes to the fallback
// while the breaker is open.
class LlmStage final : public Stage {
 public:
  StageInfo info() const override { return {.name = "test-llm", .version = "1"}; }
  StageResult process(const Event&, StageContext& ctx) override {
    Breaker& b = ctx.breaker("llm");
    if (!b.allow()) return StageResult::route(b.fallback_topic(), "llm breaker open");
    b.record_failure();
    return StageResult::permanent("llm returned 503");
  }
};
FACTORY_REGISTER_STAGE(LlmStage);

// Blocks every call until released: a stage stuck on a slow dependency.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
};
Gate g_gate;
class BlockedStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "test-blocked", .version = "1", .blocking = true};
  }
  StageResult process(const Event& e, StageContext& ctx) override {
    std::unique_lock<std::mutex> lock(g_gate.mu);
    ++g_gate.waiting;
    g_gate.cv.notify_all();
    g_gate.cv.wait(lock, [] { return g_gate.open; });
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(BlockedStage);

// Fenced: counts side effects per event; recover() reports done for events it saw.
std::mutex g_fx_mu;
std::map<std::string, int> g_effects;
std::atomic<int> g_recover_calls{0};
class FencedStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "test-fenced", .version = "1", .side_effects = SideEffects::kFenced};
  }
  StageResult process(const Event& e, StageContext& ctx) override {
    std::lock_guard<std::mutex> lock(g_fx_mu);
    ++g_effects[e.id.hex()];
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }
  Recovery recover(const Event& e, StageContext& ctx) override {
    ++g_recover_calls;
    std::lock_guard<std::mutex> lock(g_fx_mu);
    if (g_effects.count(e.id.hex())) {
      ctx.emit({.payload = e.payload});
      return Recovery::kDone;
    }
    return Recovery::kNotDone;
  }
};
FACTORY_REGISTER_STAGE(FencedStage);

}  // namespace

TEST_CASE("events flow through a chain of stages exactly once", "[runtime]") {
  Harness h;
  h.topic("in", 3);
  h.start({binding("test-title", "in", "mid"), binding("noop", "mid", "out")});
  std::vector<ProducerRecord> batch;
  for (int i = 0; i < 300; ++i)
    batch.push_back(
        rec(R"({"title":"t)" + std::to_string(i) + R"("})", "k" + std::to_string(i % 10)));
  append_ok(h.log.get(), "in", batch);
  auto out = h.wait_records("out", 300);
  REQUIRE(out.size() == 300);
  std::set<std::string> values;
  for (const auto& r : out) values.insert(*r.value);
  CHECK(values.size() == 300);
  CHECK(values.count(R"({"title":"t7","seen":true})") == 1);
  CHECK(header(out[0], "factory.stage") == "noop-mid");
  // The engine created the output and dead-letter topics with the input's partitions.
  CHECK(h.log->describe_topic("mid")->partitions.size() == 3);
  CHECK(h.log->describe_topic("in.dlq").ok());
  CHECK(test::eventually([&] { return h.engine->stats()[0].processed == 300; }));
}

TEST_CASE("malformed and contract-violating events go to the dead-letter topic with the reason",
          "[runtime]") {
  Harness h;
  h.topic("in");
  h.start({binding("test-title", "in", "out")});
  append_ok(h.log.get(), "in",
            {rec("{not json"), rec(R"({"title": 5})"), rec(R"({"title":"ok"})"),
             rec(R"({"title":"bad-output"})"), rec(R"({"title":"permanent"})")});
  auto dead = h.wait_records("in.dlq", 4);
  REQUIRE(dead.size() == 4);
  CHECK(header(dead[0], "factory.dlq.reason").find("malformed event") != std::string::npos);
  CHECK(header(dead[1], "factory.dlq.reason").find("input contract") != std::string::npos);
  CHECK(header(dead[1], "factory.dlq.reason").find("/title") != std::string::npos);
  CHECK(header(dead[2], "factory.dlq.reason").find("output contract") != std::string::npos);
  CHECK(header(dead[3], "factory.dlq.reason").find("permanent failure: the ticket says so") !=
        std::string::npos);
  CHECK(header(dead[0], "factory.source.topic") == "in");
  CHECK(header(dead[0], "factory.source.offset") == "0");
  CHECK(header(dead[3], "factory.source.offset") == "4");
  CHECK(*dead[0].value == "{not json");  // the original payload, untouched
  auto out = h.wait_records("out", 1);
  CHECK(out.size() == 1);  // the good one still went through: bad input never blocks the line
}

TEST_CASE("retryable failures are retried with backoff, then dead-lettered", "[runtime]") {
  Harness h;
  h.topic("in");
  h.topic("in2");
  auto ok = binding("test-flaky", "in", "out");
  ok.config_json = R"({"failures":2})";
  ok.retry.max_attempts = 3;
  auto exhausted = binding("test-flaky", "in2", "out2");
  exhausted.config_json = R"({"failures":5})";
  exhausted.retry.max_attempts = 3;
  h.start({ok, exhausted});
  append_ok(h.log.get(), "in", {rec(R"({"n":1})"), rec(R"({"n":2})")});
  append_ok(h.log.get(), "in2", {rec(R"({"n":3})")});
  auto out = h.wait_records("out", 2);
  REQUIRE(out.size() == 2);
  CHECK(*out[0].value == R"({"n":1})");  // order kept through retries
  CHECK(*out[1].value == R"({"n":2})");
  auto dead = h.wait_records("in2.dlq", 1);
  REQUIRE(dead.size() == 1);
  CHECK(header(dead[0], "factory.dlq.reason").find("failed after 3 attempts: flaky attempt 3") !=
        std::string::npos);
  CHECK(header(dead[0], "factory.attempts") == "3");
  CHECK(test::eventually([&] {
    auto stats = h.engine->stats();
    return stats[0].retries == 4 && stats[1].retries == 2;
  }));
}

TEST_CASE("a redelivered event is skipped by the idempotency table", "[runtime]") {
  Harness h;
  h.topic("in");
  h.start({binding("noop", "in", "out")});
  append_ok(h.log.get(), "in", {rec(R"({"a":1,"b":2})")});
  h.wait_records("out", 1);
  // The same event again, re-serialised: same canonical form, same event id.
  append_ok(h.log.get(), "in", {rec(R"({ "b": 2, "a": 1 })"), rec(R"({"a":2})")});
  auto out = h.wait_records("out", 2);
  CHECK(out.size() == 2);
  CHECK(*out[1].value == R"({"a":2})");
  // Counters move after the batch commits, just after its outputs become visible.
  CHECK(test::eventually([&] { return h.engine->stats()[0].duplicates == 1; }));
}

TEST_CASE("an open breaker routes events to its fallback topic", "[runtime]") {
  Harness h;
  h.topic("in");
  auto b = binding("test-llm", "in", "out");
  runtime::BreakerBinding llm;
  llm.name = "llm";
  llm.config.window = 4;
  llm.config.min_calls = 4;
  llm.config.failure_rate_threshold = 0.5;
  llm.config.open_ms = 3'600'000;
  llm.fallback_topic = "human-review";
  b.breakers = {llm};
  h.topic("human-review");
  h.start({b});
  std::vector<ProducerRecord> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(rec(R"({"n":)" + std::to_string(i) + "}"));
  append_ok(h.log.get(), "in", batch);
  auto routed = h.wait_records("human-review", 6);
  auto dead = h.wait_records("in.dlq", 4);
  CHECK(dead.size() == 4);    // the calls that reached the failing dependency
  CHECK(routed.size() == 6);  // the rest, once the breaker opened
  CHECK(header(routed[0], "factory.route.reason") == "llm breaker open");
  CHECK(test::eventually([&] { return h.engine->stats()[0].routed == 6; }));
  auto stats = h.engine->stats();
  REQUIRE(stats[0].breakers.size() == 1);
  CHECK(stats[0].breakers[0].state == runtime::CircuitBreaker::State::kOpen);
}

TEST_CASE("a stage blocked for seconds does not slow a fast stage", "[runtime]") {
  Harness h;
  h.topic("slow-in");
  h.topic("fast-in", 2);
  {
    std::lock_guard<std::mutex> lock(g_gate.mu);
    g_gate.open = false;
    g_gate.waiting = 0;
  }
  auto slow = binding("test-blocked", "slow-in", "slow-out");
  slow.concurrency = 2;
  auto fast = binding("noop", "fast-in", "fast-out");
  h.start({slow, fast});
  append_ok(h.log.get(), "slow-in", {rec(R"({"s":1})"), rec(R"({"s":2})")});
  {
    std::unique_lock<std::mutex> lock(g_gate.mu);
    REQUIRE(g_gate.cv.wait_for(lock, std::chrono::seconds(10), [] { return g_gate.waiting >= 1; }));
  }
  std::vector<ProducerRecord> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back(rec(R"({"f":)" + std::to_string(i) + "}"));
  append_ok(h.log.get(), "fast-in", batch);
  auto out = h.wait_records("fast-out", 1000);
  CHECK(out.size() == 1000);
  {
    std::lock_guard<std::mutex> lock(g_gate.mu);
    CHECK_FALSE(g_gate.open);  // the slow stage is still blocked while the fast one finished
    g_gate.open = true;
  }
  g_gate.cv.notify_all();
  CHECK(h.wait_records("slow-out", 2).size() == 2);
}

TEST_CASE("back-pressure pauses a stage while its downstream lags, keeping lag bounded",
          "[runtime]") {
  Harness h;
  h.topic("in");
  {
    std::lock_guard<std::mutex> lock(g_gate.mu);
    g_gate.open = false;
    g_gate.waiting = 0;
  }
  auto up = binding("noop", "in", "mid");
  up.backpressure_enabled = true;
  up.backpressure = {.high = 50, .low = 20};
  up.max_poll_records = 10;
  auto down = binding("test-blocked", "mid", "out");  // stuck: its lag only grows
  h.start({up, down});
  std::vector<ProducerRecord> batch;
  for (int i = 0; i < 2000; ++i) batch.push_back(rec(R"({"i":)" + std::to_string(i) + "}"));
  append_ok(h.log.get(), "in", batch);
  // Wait until the upstream stage has paused itself.
  bool paused = test::eventually([&] { return h.engine->stats()[0].paused; }, 20'000);
  REQUIRE(paused);
  int64_t mid_records = h.log->partition_info("mid", 0)->log_end.value();
  CHECK(mid_records <= 50 + 10);  // the high-water mark plus at most one batch
  CHECK(mid_records > 0);
  {
    std::lock_guard<std::mutex> lock(g_gate.mu);
    g_gate.open = true;
  }
  g_gate.cv.notify_all();
  // Once released, everything drains.
  CHECK(h.wait_records("out", 2000, 60'000).size() == 2000);
  CHECK(h.engine->stats()[0].backpressure_pauses >= 1);
}

TEST_CASE("a fenced stage resolves a crash-left intent with recover(), not a second run",
          "[runtime]") {
  Harness h;
  h.topic("in");
  {
    std::lock_guard<std::mutex> lock(g_fx_mu);
    g_effects.clear();
  }
  g_recover_calls = 0;
  const std::string done_payload = R"({"deploy":"done-before-crash"})";
  const std::string open_payload = R"({"deploy":"never-started"})";
  EventId done_id = *event_id_for(done_payload), open_id = *event_id_for(open_payload);
  {
    // As if a previous process recorded both intents, ran one side effect, then died.
    std::lock_guard<std::mutex> lock(g_fx_mu);
    g_effects[done_id.hex()] = 1;
  }
  std::vector<EventId> ids = {done_id, open_id};
  REQUIRE_OK(h.store->record_intents("test-fenced-in", ids));
  h.start({binding("test-fenced", "in", "out")});
  append_ok(h.log.get(), "in", {rec(done_payload), rec(open_payload)});
  auto out = h.wait_records("out", 2);
  CHECK(out.size() == 2);
  CHECK(g_recover_calls == 2);
  CHECK(test::eventually([&] { return h.store->open_intents("test-fenced-in")->empty(); }));
  CHECK(h.engine->stats()[0].recovered == 1);
  std::lock_guard<std::mutex> lock(g_fx_mu);
  CHECK(g_effects[done_id.hex()] == 1);  // not repeated
  CHECK(g_effects[open_id.hex()] == 1);  // run once, after recover() said it had not happened
}

TEST_CASE("an unknown stage or input topic is refused naming the binding and file", "[runtime]") {
  Harness h;
  runtime::PipelineConfig config;
  config.bindings = {binding("no-such-stage", "in", "out")};
  auto e = runtime::Engine::start(h.log.get(), h.store.get(), config, {.data_dir = h.dir.str()});
  CHECK(e.status().is_not_found());
  CHECK(e.status().message().find("test.yaml:1") != std::string::npos);
  config.bindings = {binding("noop", "missing", "out")};
  e = runtime::Engine::start(h.log.get(), h.store.get(), config, {.data_dir = h.dir.str()});
  CHECK(e.status().is_not_found());
  CHECK(e.status().message().find("'missing', which does not exist") != std::string::npos);
}

TEST_CASE("a binding whose config its stage rejects is refused at start", "[runtime]") {
  Harness h;
  h.topic("in");
  auto b = binding("exec", "in", "out");
  b.config_json = R"({"command": []})";
  runtime::PipelineConfig config;
  config.bindings = {b};
  auto e = runtime::Engine::start(h.log.get(), h.store.get(), config, {.data_dir = h.dir.str()});
  CHECK(e.status().is_invalid_argument());
  CHECK(e.status().message().find("test.yaml:1") != std::string::npos);
  CHECK(e.status().message().find("config.command must be a non-empty list") != std::string::npos);
}

TEST_CASE("processed marks are pruned once retention dropped their records, not before",
          "[runtime]") {
  base::ManualClock clock(1'800'000'000'000);
  Harness h;
  // The log, the store and the engine on one clock: record timestamps, retention, processed_at.
  h.log.reset();
  LogOptions lo = test::test_log_options(h.dir);
  lo.now_ms = [&] { return clock.now_ms(); };
  h.log = test::open_test_log(lo);
  auto st = store::open_sqlite_store(
      {.dir = h.dir.str() + "/store2", .sync = false, .now_ms = [&] { return clock.now_ms(); }});
  REQUIRE_OK(st);
  h.store = std::move(*st);
  TopicSpec in{.name = "in", .partitions = 1};
  in.config.retention_ms = 60'000;
  REQUIRE_OK(h.log->create_topic(in));
  // Marks are kept as long as the longer retention of the input and its dead letters (a letter
  // replayed within it is still a duplicate): the dead-letter topic keeps 60 s too.
  TopicSpec dlq{.name = "in.dlq", .partitions = 1};
  dlq.config.retention_ms = 60'000;
  REQUIRE_OK(h.log->create_topic(dlq));
  runtime::Binding b = binding("noop", "in", "out");
  runtime::PipelineConfig config;
  config.bindings = {b};
  runtime::EngineOptions eo;
  eo.data_dir = h.dir.str();
  eo.idle_poll_ms = 20;
  eo.clock = &clock;
  eo.prune_interval_ms = 1;
  auto e = runtime::Engine::start(h.log.get(), h.store.get(), config, eo);
  REQUIRE_OK(e);
  h.engine = std::move(*e);

  append_ok(h.log.get(), "in", {rec(R"({"n":1})"), rec(R"({"n":2})"), rec(R"({"n":3})")});
  REQUIRE(h.wait_drained(b.group, "in"));
  REQUIRE(h.store->processed_count(b.name).ok());
  CHECK(*h.store->processed_count(b.name) == 3);

  // Two minutes later a fourth event; the first three are still in the log, so their marks stay
  // however old they are (the worker loops many times while it processes the fourth).
  clock.advance_ms(120'000);
  append_ok(h.log.get(), "in", {rec(R"({"n":4})")});
  REQUIRE(h.wait_drained(b.group, "in"));
  CHECK(*h.store->processed_count(b.name) == 4);
  CHECK(h.engine->stats()[0].marks_pruned == 0);

  // Two more minutes: retention drops all four (older than 60 s), and with them their marks.
  clock.advance_ms(120'000);
  auto dropped = h.log->enforce_retention();
  REQUIRE_OK(dropped);
  REQUIRE(dropped->records_deleted == 4);
  CHECK(test::eventually([&] { return h.engine->stats()[0].marks_pruned == 4; }));
  CHECK(*h.store->processed_count(b.name) == 0);
}
