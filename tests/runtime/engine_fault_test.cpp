// The engine under faults other than a crash (issue 11): a batch that fails after process()
// ran, the same event twice, outputs after an offset reset or a re-created topic, records that
// no topic takes, a recover() that throws. Each test names the case it reproduces.
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "factory/event.h"
#include "factory/stage.h"
#include "http/log_access.h"
#include "runtime/engine.h"
#include "runtime/engine_harness.h"

using namespace factory;
using factory::test::append_ok;
using factory::test::binding;
using factory::test::header;
using factory::test::rec;
using Harness = factory::test::EngineHarness;

namespace {

// The side effects of the fenced stages below, per event id.
struct Effects {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> done;     // side effects per event id
  std::map<std::string, int> running;  // process() calls in progress per event id
  int recover_calls = 0;
  int recover_throws = 0;  // the next n recover() calls throw
  void reset() {
    std::lock_guard<std::mutex> lock(mu);
    done.clear();
    running.clear();
    recover_calls = 0;
    recover_throws = 0;
  }
  int of(const std::string& payload) {
    std::lock_guard<std::mutex> lock(mu);
    return done[event_id_for(payload)->hex()];
  }
};
Effects g_fx;

// The value of "field" in a flat JSON payload ("" when absent).
std::string field(const std::string& payload, const std::string& name) {
  std::string key = "\"" + name + "\":\"";
  size_t at = payload.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return payload.substr(at, payload.find('"', at) - at);
}

// Fenced: one side effect per process() call, then emits the payload — or routes to the
// topic named by "route". recover() reports done for events whose effect happened (re-emitting
// the output), after throwing `recover_throws` times.
class FaultFencedStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "fault-fenced", .version = "1", .side_effects = SideEffects::kFenced};
  }
  StageResult process(const Event& e, StageContext& ctx) override {
    {
      std::lock_guard<std::mutex> lock(g_fx.mu);
      ++g_fx.done[e.id.hex()];
    }
    if (std::string to = field(e.payload, "route"); !to.empty()) {
      return StageResult::route(to, "asked to");
    }
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }
  Recovery recover(const Event& e, StageContext& ctx) override {
    std::lock_guard<std::mutex> lock(g_fx.mu);
    ++g_fx.recover_calls;
    if (g_fx.recover_throws > 0) {
      --g_fx.recover_throws;
      throw std::runtime_error("the deployment service did not answer");
    }
    if (g_fx.done[e.id.hex()] == 0) return Recovery::kNotDone;
    ctx.emit({.payload = e.payload});
    return Recovery::kDone;
  }
};
FACTORY_REGISTER_STAGE(FaultFencedStage);

// Fenced, and slow enough to be caught in a race: process() waits (up to 2 s) for a second
// call with the same event id, so two workers running one event overlap for sure.
class FaultRacyStage final : public Stage {
 public:
  StageInfo info() const override {
    return {.name = "fault-racy", .version = "1", .side_effects = SideEffects::kFenced};
  }
  StageResult process(const Event& e, StageContext& ctx) override {
    std::unique_lock<std::mutex> lock(g_fx.mu);
    const std::string id = e.id.hex();
    ++g_fx.done[id];
    ++g_fx.running[id];
    g_fx.cv.notify_all();
    g_fx.cv.wait_for(lock, std::chrono::seconds(2), [&] { return g_fx.running[id] >= 2; });
    lock.unlock();
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(FaultRacyStage);

// Pure: emits the payload, except a "fragile" one while g_broken (a bug, fixed later).
std::atomic<bool> g_broken{false};
class FaultFixableStage final : public Stage {
 public:
  StageInfo info() const override { return {.name = "fault-fixable", .version = "1"}; }
  StageResult process(const Event& e, StageContext& ctx) override {
    if (g_broken && e.payload.find("fragile") != std::string::npos) {
      return StageResult::permanent("the stage has a bug");
    }
    ctx.emit({.payload = e.payload});
    return StageResult::success();
  }
};
FACTORY_REGISTER_STAGE(FaultFixableStage);

std::vector<std::string> values(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(r.value.value_or("<null>"));
  return out;
}

}  // namespace

TEST_CASE(
    "issue 11.1: a fenced stage whose batch fails after process() ran is asked recover(), "
    "never run twice",
    "[runtime][fault]") {
  g_fx.reset();
  Harness h;
  h.topic("in");
  h.failing->fail_commit_processed = 3;  // the processed marks fail three times after the effect
  h.start({binding("fault-fenced", "in", "out")});
  const std::string a = R"({"deploy":"release-1"})", b = R"({"deploy":"release-2"})";
  append_ok(h.log.get(), "in", {rec(a), rec(b)});
  REQUIRE(h.wait_drained("fault-fenced-in", "in"));
  CHECK(g_fx.of(a) == 1);
  CHECK(g_fx.of(b) == 1);
  {
    std::lock_guard<std::mutex> lock(g_fx.mu);
    CHECK(g_fx.recover_calls >= 2);  // each re-read asked before acting
  }
  CHECK(h.records("out").size() == 2);  // re-read batches appended nothing twice
  CHECK(h.engine->stats()[0].batch_failures == 3);
  CHECK(*h.store->processed_count("fault-fenced-in") == 2);
  CHECK(h.store->open_intents("fault-fenced-in")->empty());
}

TEST_CASE(
    "issue 11.1: an event routed to a missing topic is dead-lettered; the side effect of its "
    "batch-mate happens once",
    "[runtime][fault]") {
  g_fx.reset();
  Harness h;
  h.topic("in");
  h.start({binding("fault-fenced", "in", "out")});
  const std::string ok = R"({"deploy":"ok-1"})";
  const std::string routed = R"({"deploy":"x","route":"no-such-topic"})";
  append_ok(h.log.get(), "in", {rec(ok), rec(routed)});
  REQUIRE(h.wait_drained("fault-fenced-in", "in"));
  CHECK(g_fx.of(ok) == 1);
  CHECK(g_fx.of(routed) == 1);
  CHECK(values(h.records("out")) == std::vector<std::string>{ok});
  auto dlq = h.records("in.dlq");
  REQUIRE(dlq.size() == 1);
  CHECK(dlq[0].value == routed);
  CHECK(header(dlq[0], "factory.dlq.reason").find("route to topic 'no-such-topic' refused") !=
        std::string::npos);
  CHECK(h.engine->stats()[0].refused == 1);
  CHECK(h.engine->stats()[0].batch_failures == 0);
}

TEST_CASE("issue 11.2: the same event twice in one append runs once", "[runtime][fault]") {
  g_fx.reset();
  Harness h;
  h.topic("in");
  h.start({binding("fault-fenced", "in", "out")});
  const std::string e = R"({"deploy":"release-1"})";
  append_ok(h.log.get(), "in", {rec(e), rec(e)});
  REQUIRE(h.wait_drained("fault-fenced-in", "in"));
  CHECK(g_fx.of(e) == 1);
  CHECK(h.records("out").size() == 1);
  CHECK(h.engine->stats()[0].duplicates == 1);
}

TEST_CASE(
    "issue 11.2: two workers of one binding racing one event id on two partitions run it once",
    "[runtime][fault]") {
  g_fx.reset();
  Harness h;
  h.topic("in", 2);
  auto b = binding("fault-racy", "in", "out");
  b.concurrency = 2;
  h.start({b});
  // Both members own a partition before the records arrive.
  REQUIRE(test::eventually([&] {
    auto d = h.log->describe_group(b.group);
    if (!d.ok()) return false;
    std::set<std::string> members;
    for (const auto& p : d->partitions) members.insert(p.member);
    return members.size() == 2 && !members.count("");
  }));
  std::vector<std::string> events;
  for (int i = 0; i < 3; ++i) {
    const std::string e = R"({"deploy":"race-)" + std::to_string(i) + R"("})";
    events.push_back(e);
    ProducerRecord on0 = rec(e), on1 = rec(e);
    on0.partition = 0;
    on1.partition = 1;
    append_ok(h.log.get(), "in", {on0, on1});
  }
  REQUIRE(h.wait_drained(b.group, "in"));
  for (const std::string& e : events) CHECK(g_fx.of(e) == 1);
  CHECK(h.records("out").size() == events.size());
}

TEST_CASE(
    "issue 11.3: after the input topic is deleted and created again, new outputs are "
    "appended",
    "[runtime][fault]") {
  Harness h;
  h.topic("in");
  auto b = binding("fault-fixable", "in", "out");
  h.start({b});
  append_ok(h.log.get(), "in", {rec(R"({"title":"first"})")});
  REQUIRE(h.wait_records("out", 1).size() == 1);
  h.stop();
  REQUIRE_OK(h.log->delete_topic("in"));
  h.topic("in");
  append_ok(h.log.get(), "in", {rec(R"({"title":"after re-creation"})")});
  h.start({b});
  REQUIRE(h.wait_drained(b.group, "in"));
  CHECK(values(h.records("out")) ==
        std::vector<std::string>{R"({"title":"first"})", R"({"title":"after re-creation"})"});
}

TEST_CASE(
    "issue 11.3: after a stage is fixed and the group reset, dead-lettered events' outputs "
    "are appended once",
    "[runtime][fault]") {
  Harness h;
  h.topic("in");
  auto b = binding("fault-fixable", "in", "out");
  g_broken = true;
  h.start({b});
  const std::string e0 = R"({"title":"a"})", e1 = R"({"title":"fragile"})", e2 = R"({"title":"c"})";
  append_ok(h.log.get(), "in", {rec(e0), rec(e1), rec(e2)});
  REQUIRE(h.wait_drained(b.group, "in"));
  CHECK(values(h.records("out")) == std::vector<std::string>{e0, e2});
  CHECK(h.records("in.dlq").size() == 1);
  h.stop();
  g_broken = false;  // the fix
  REQUIRE_OK(h.log->reset_offsets(b.group, "in", {}, /*execute=*/true));
  h.start({b});
  REQUIRE(h.wait_drained(b.group, "in"));
  CHECK(values(h.records("out")) == std::vector<std::string>{e0, e2, e1});
  // A second reset replays nothing new: every event is processed, every output keyed.
  h.stop();
  REQUIRE_OK(h.log->reset_offsets(b.group, "in", {}, /*execute=*/true));
  h.start({b});
  REQUIRE(h.wait_drained(b.group, "in"));
  CHECK(h.records("out").size() == 3);
}

TEST_CASE(
    "issue 11.4: a record too big for the dead-letter topic is stored by reference and the "
    "partition moves on",
    "[runtime][fault]") {
  Harness h;
  TopicSpec in{.name = "in"};
  in.config.max_message_bytes = 3 << 20;
  REQUIRE_OK(h.log->create_topic(in));
  h.topic("in.dlq");  // the default 1 MB limit
  auto b = binding("fault-fixable", "in", "out");
  h.start({b});
  const std::string big(1'500'000, 'x');  // not JSON: dead-lettered, and too big for in.dlq
  append_ok(h.log.get(), "in", {rec(big), rec(R"({"title":"behind it"})")});
  CHECK(values(h.wait_records("out", 1, 10'000)) ==
        std::vector<std::string>{R"({"title":"behind it"})"});
  REQUIRE(h.wait_drained(b.group, "in"));
  auto dlq = h.records("in.dlq");
  REQUIRE(dlq.size() == 1);
  CHECK(!dlq[0].value);
  CHECK(header(dlq[0], "factory.dlq.by_reference") == "1500000 bytes at in/0/0");
  CHECK(header(dlq[0], "factory.dlq.reason").find("malformed event") != std::string::npos);
  CHECK(h.engine->stats()[0].letters_by_reference == 1);

  // Replaying the letter re-appends the source record (the letter has no value of its own);
  // still malformed, it is dead-lettered again: a new letter, since it is a new record.
  auto access = http::local_log_access(h.log.get());
  auto replayed = access->replay_dead_letters("in.dlq", {.all = true}, /*execute=*/true);
  REQUIRE_OK(replayed);
  REQUIRE(replayed->size() == 1);
  CHECK(replayed->at(0).result == http::ReplayRow::Result::kReplayed);
  auto in_records = h.records("in");
  REQUIRE(in_records.size() == 3);
  CHECK(in_records[2].value == big);
  CHECK(header(in_records[2], "factory.replayed_from") == "in.dlq/0/0");
  CHECK(h.wait_records("in.dlq", 2).size() == 2);
  // Once retention has removed the source record, replay says so instead of replaying nothing.
  h.stop();
  TopicSpec gone{.name = "in"};
  gone.config.max_message_bytes = 3 << 20;
  gone.config.retention_bytes = 1;
  REQUIRE_OK(h.log->apply_topic(gone));
  REQUIRE_OK(h.log->enforce_retention());
  auto lost = access->replay_dead_letters("in.dlq", {.partition = 0, .offset = 1}, true);
  CHECK(lost.status().is_not_found());
  CHECK(lost.status().message().find("no longer in the log") != std::string::npos);
}

TEST_CASE(
    "issue 11.4: an output over its topic's max.message.bytes dead-letters its event, not "
    "the partition",
    "[runtime][fault]") {
  Harness h;
  h.topic("in");
  TopicSpec out{.name = "out"};
  out.config.max_message_bytes = 1024;
  REQUIRE_OK(h.log->create_topic(out));
  auto b = binding("fault-fixable", "in", "out");
  h.start({b});
  const std::string large = R"({"title":")" + std::string(2000, 'y') + R"("})";
  append_ok(h.log.get(), "in", {rec(large), rec(R"({"title":"small"})")});
  REQUIRE(h.wait_drained(b.group, "in"));
  CHECK(values(h.records("out")) == std::vector<std::string>{R"({"title":"small"})"});
  auto dlq = h.records("in.dlq");
  REQUIRE(dlq.size() == 1);
  CHECK(dlq[0].value == large);
  CHECK(header(dlq[0], "factory.dlq.reason").find("output to topic 'out' refused") !=
        std::string::npos);
  CHECK(h.engine->stats()[0].refused == 1);
}

TEST_CASE("issue 11.4: dead-letter and fallback topics are created with the input's record limit",
          "[runtime][fault]") {
  Harness h;
  TopicSpec in{.name = "in", .partitions = 2};
  in.config.max_message_bytes = 3 << 20;
  REQUIRE_OK(h.log->create_topic(in));
  auto b = binding("fault-fixable", "in", "out");
  runtime::BreakerBinding llm;
  llm.name = "llm";
  llm.fallback_topic = "needs-a-person";
  b.breakers.push_back(llm);
  h.start({b});
  for (const char* t : {"out", "in.dlq", "needs-a-person"}) {
    auto info = h.log->describe_topic(t);
    REQUIRE_OK(info);
    CHECK(info->spec.partitions == 2);
    CHECK(info->spec.config.max_message_bytes >= 3 << 20);
  }
}

TEST_CASE("issue 11.6: a recover() that throws is retried, never answered by running process()",
          "[runtime][fault]") {
  g_fx.reset();
  Harness h;
  h.topic("in");
  const std::string e = R"({"deploy":"release-7"})";
  const EventId id = *event_id_for(e);
  {
    // A previous process recorded the intent, deployed, and died before recording the outcome;
    // now the deployment service is flaky when asked.
    std::lock_guard<std::mutex> lock(g_fx.mu);
    g_fx.done[id.hex()] = 1;
    g_fx.recover_throws = 2;
  }
  REQUIRE_OK(h.store->record_intents("fault-fenced-in", std::vector<EventId>{id}));
  h.start({binding("fault-fenced", "in", "out")});
  append_ok(h.log.get(), "in", {rec(e)});
  REQUIRE(h.wait_records("out", 1).size() == 1);
  REQUIRE(h.wait_drained("fault-fenced-in", "in"));
  CHECK(g_fx.of(e) == 1);  // deployed once, before the crash
  std::lock_guard<std::mutex> lock(g_fx.mu);
  CHECK(g_fx.recover_calls == 3);
  CHECK(h.engine->stats()[0].recovered == 1);
}
