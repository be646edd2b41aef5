// The built-in stages (stages/), driven one event at a time through a FakeStageContext.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "runtime/fake_stage_context.h"
#include "runtime/stage_registry.h"
#include "test_util.h"

using namespace factory;
using Kind = StageResult::Kind;

namespace {

std::unique_ptr<Stage> stage(const std::string& name) {
  auto r = runtime::create_stage(name);
  REQUIRE_OK(r);
  return std::move(*r);
}

std::string exec_config(const std::vector<std::string>& command, int timeout_ms = 0) {
  boost::json::object o;
  boost::json::array a;
  for (const std::string& arg : command) a.emplace_back(arg);
  o["command"] = std::move(a);
  if (timeout_ms > 0) o["timeout_ms"] = timeout_ms;
  return boost::json::serialize(o);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// True when `pid` no longer runs: gone, or a zombie waiting for its (new) parent to reap it.
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren == std::string::npos || (paren + 2 < line.size() && line[paren + 2] == 'Z');
}

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

}  // namespace

TEST_CASE("noop emits its input unchanged", "[runtime]") {
  auto noop = stage("noop");
  test::FakeStageContext ctx;
  const std::string payload = R"({"issue":"PROJ-101","n":[1,2.5,null]})";
  StageResult r = noop->process(test::make_event(payload, 1, "tickets", "PROJ-101"), ctx);
  CHECK(r.kind() == Kind::kSuccess);
  auto out = ctx.outputs();
  REQUIRE(out.size() == 1);
  CHECK(out[0].payload == payload);
  CHECK_FALSE(out[0].key.has_value());  // the runtime keeps the input's key
  CHECK(out[0].topic.empty());          // the binding's output topic
}

TEST_CASE("fail fails the first N attempts, then emits the input", "[runtime]") {
  auto fail = stage("fail");
  const std::string payload = R"({"a":1})";
  for (std::string mode : {"retryable", "permanent"}) {
    DYNAMIC_SECTION("mode " << mode) {
      test::FakeStageContext ctx(R"({"failures": 2, "mode": ")" + mode + R"("})");
      const Kind expected = mode == "retryable" ? Kind::kRetryable : Kind::kPermanent;
      for (int attempt = 1; attempt <= 2; ++attempt) {
        StageResult r = fail->process(test::make_event(payload, attempt), ctx);
        CHECK(r.kind() == expected);
        CHECK(has(r.reason(), "attempt " + std::to_string(attempt) + " of 2"));
      }
      CHECK(ctx.outputs().empty());
      CHECK(ctx.counter("planned_failures") == 2);
      StageResult r = fail->process(test::make_event(payload, 3), ctx);
      CHECK(r.kind() == Kind::kSuccess);
      REQUIRE(ctx.outputs().size() == 1);
      CHECK(ctx.outputs()[0].payload == payload);
    }
  }
  SECTION("defaults: one retryable failure") {
    test::FakeStageContext ctx;
    CHECK(fail->process(test::make_event(payload, 1), ctx).kind() == Kind::kRetryable);
    CHECK(fail->process(test::make_event(payload, 2), ctx).kind() == Kind::kSuccess);
  }
  SECTION("a bad config is a permanent failure that says what is wrong") {
    test::FakeStageContext ctx(R"({"failures": 1, "mode": "sometimes"})");
    StageResult r = fail->process(test::make_event(payload, 5), ctx);
    CHECK(r.kind() == Kind::kPermanent);
    CHECK(has(r.reason(), "config.mode"));
  }
}

TEST_CASE("exec pipes the payload through a command and emits its JSON stdout", "[runtime]") {
  auto exec = stage("exec");
  SECTION("cat echoes the payload") {
    test::FakeStageContext ctx(exec_config({"cat"}));
    const std::string payload = R"({"title":"déjà vu","n":3})";
    StageResult r = exec->process(test::make_event(payload), ctx);
    INFO(r.reason());
    REQUIRE(r.kind() == Kind::kSuccess);
    REQUIRE(ctx.outputs().size() == 1);
    CHECK(ctx.outputs()[0].payload == payload);
  }
  SECTION("a payload far larger than a pipe buffer, both ways") {
    test::FakeStageContext ctx(exec_config({"cat"}));
    const std::string payload = "{\"blob\":\"" + std::string(3 << 20, 'x') + "\"}";
    StageResult r = exec->process(test::make_event(payload), ctx);
    INFO(r.reason());
    REQUIRE(r.kind() == Kind::kSuccess);
    CHECK(ctx.outputs()[0].payload == payload);
  }
  SECTION("a command that ignores its stdin does not hurt factoryd (no SIGPIPE)") {
    test::FakeStageContext ctx(exec_config({"sh", "-c", "echo '{\"ok\":true}'"}));
    const std::string payload = "{\"blob\":\"" + std::string(1 << 20, 'x') + "\"}";
    StageResult r = exec->process(test::make_event(payload), ctx);
    INFO(r.reason());
    REQUIRE(r.kind() == Kind::kSuccess);
    CHECK(ctx.outputs()[0].payload == R"({"ok":true})");
  }
  SECTION("the command transforms the payload") {
    test::FakeStageContext ctx(exec_config({"sed", "-e", R"(s/}[[:space:]]*$/,"seen":true}/)"}));
    StageResult r = exec->process(test::make_event(R"({"issue":"PROJ-1"})"), ctx);
    INFO(r.reason());
    REQUIRE(r.kind() == Kind::kSuccess);
    CHECK(ctx.outputs()[0].payload == R"({"issue":"PROJ-1","seen":true})");
  }
}

TEST_CASE("exec failures: exit codes, bad output, missing programs, bad config", "[runtime]") {
  auto exec = stage("exec");
  const Event event = test::make_event(R"({"a":1})");
  SECTION("a non-zero exit is retryable, with the code and stderr") {
    test::FakeStageContext ctx(exec_config({"sh", "-c", "echo oops >&2; exit 3"}));
    StageResult r = exec->process(event, ctx);
    INFO(r.reason());
    CHECK(r.kind() == Kind::kRetryable);
    CHECK(has(r.reason(), "exit code 3"));
    CHECK(has(r.reason(), "oops"));
    CHECK(ctx.outputs().empty());
  }
  SECTION("only the first 500 bytes of stderr are kept") {
    test::FakeStageContext ctx(
        exec_config({"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' e >&2; exit 1"}));
    StageResult r = exec->process(event, ctx);
    CHECK(r.kind() == Kind::kRetryable);
    CHECK(has(r.reason(), std::string(500, 'e')));
    CHECK_FALSE(has(r.reason(), std::string(501, 'e')));
  }
  SECTION("death by a signal is retryable and names it") {
    test::FakeStageContext ctx(exec_config({"sh", "-c", "kill -SEGV $$"}));
    StageResult r = exec->process(event, ctx);
    INFO(r.reason());
    CHECK(r.kind() == Kind::kRetryable);
    CHECK(has(r.reason(), "SIGSEGV"));
  }
  SECTION("output that is not JSON is permanent") {
    test::FakeStageContext ctx(exec_config({"echo", "hello"}));
    StageResult r = exec->process(event, ctx);
    INFO(r.reason());
    CHECK(r.kind() == Kind::kPermanent);
    CHECK(has(r.reason(), "not JSON"));
    CHECK(has(r.reason(), "hello"));
  }
  SECTION("no output at all is permanent") {
    test::FakeStageContext ctx(exec_config({"true"}));
    StageResult r = exec->process(event, ctx);
    CHECK(r.kind() == Kind::kPermanent);
    CHECK(has(r.reason(), "printed nothing"));
  }
  SECTION("a missing program is permanent") {
    test::FakeStageContext ctx(exec_config({"factory-no-such-program-xyz"}));
    StageResult r = exec->process(event, ctx);
    INFO(r.reason());
    CHECK(r.kind() == Kind::kPermanent);
    CHECK(has(r.reason(), "No such file"));
  }
  SECTION("a bad config is permanent") {
    for (const char* config :
         {"{}", R"({"command": []})", R"({"command": "cat"})",
          R"({"command": ["cat"], "timeout_ms": -1})", R"({"command": ["cat"], "timeout": 5})"}) {
      test::FakeStageContext ctx(config);
      StageResult r = exec->process(event, ctx);
      INFO(config << " -> " << r.reason());
      CHECK(r.kind() == Kind::kPermanent);
      CHECK(has(r.reason(), "config"));
    }
  }
}

TEST_CASE("exec kills a command that outlives its timeout, and what it started", "[runtime]") {
  auto exec = stage("exec");
  test::TempDir dir;
  const std::string child_pid = dir.str() + "/child.pid";
  const std::string background_pid = dir.str() + "/background.pid";
  // The shell starts a background sleep in its group, records both pids, then waits. Both
  // sleeps outlast every wait below by far, so only the group kill can end them in time.
  test::FakeStageContext ctx(exec_config(
      {"sh", "-c",
       "echo $$ > " + child_pid + "; sleep 600 & echo $! > " + background_pid + "; sleep 600"},
      200));
  auto start = std::chrono::steady_clock::now();
  StageResult r = exec->process(test::make_event(R"({"a":1})"), ctx);
  auto elapsed = std::chrono::steady_clock::now() - start;
  INFO(r.reason());
  CHECK(r.kind() == Kind::kRetryable);
  CHECK(has(r.reason(), "timed out after 200 ms"));
  CHECK(elapsed < std::chrono::seconds(5));
  const pid_t child = read_pid(child_pid);
  const pid_t background = read_pid(background_pid);
  REQUIRE(child > 0);
  REQUIRE(background > 0);
  CHECK(process_gone(child));  // reaped by exec itself: no zombie either
  CHECK(::kill(child, 0) != 0);
  // The orphaned sleep is reaped by init, asynchronously; it is dead as soon as it is killed.
  // 5 s is far below its 600 s: gone by then means killed, not finished.
  bool background_gone = test::eventually([&] { return process_gone(background); }, 5'000);
  if (!background_gone) ::kill(background, SIGKILL);  // do not leave it behind the failure
  CHECK(background_gone);
}

TEST_CASE("exec honours the binding's deadline and cancellation", "[runtime]") {
  auto exec = stage("exec");
  SECTION("the context's deadline bounds a command without its own timeout") {
    test::FakeStageContext ctx(exec_config({"sleep", "10"}), std::chrono::milliseconds(200));
    StageResult r = exec->process(test::make_event("{}"), ctx);
    INFO(r.reason());
    CHECK(r.kind() == Kind::kRetryable);
    CHECK(has(r.reason(), "timed out"));
    CHECK(has(r.reason(), "binding's timeout_ms"));
  }
  SECTION("a cancelled context kills the command") {
    // Cancelled before the call: the command is started, seen cancelled and killed.
    test::FakeStageContext ctx(exec_config({"sleep", "10"}));
    ctx.cancel();
    auto start = std::chrono::steady_clock::now();
    StageResult r = exec->process(test::make_event("{}"), ctx);
    INFO(r.reason());
    CHECK(r.kind() == Kind::kRetryable);
    CHECK(has(r.reason(), "cancelled"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  }
}

TEST_CASE("exec runs concurrently without leaking pipes between commands", "[runtime]") {
  // If one command inherited another's stdin pipe, that cat would never see EOF and its call
  // would run into the 20 s timeout.
  auto exec = stage("exec");
  test::FakeStageContext ctx(exec_config({"cat"}, 20'000));
  constexpr int kThreads = 8;
  std::vector<StageResult> results(kThreads, StageResult::permanent("not run"));
  std::vector<std::thread> threads;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        results[i] =
            exec->process(test::make_event("{\"i\":" + std::to_string(i * 100 + round) + "}"), ctx);
        if (results[i].kind() != Kind::kSuccess) return;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const StageResult& r : results) {
    INFO(r.reason());
    CHECK(r.kind() == Kind::kSuccess);
  }
  CHECK(ctx.outputs().size() == kThreads * 5);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
}
