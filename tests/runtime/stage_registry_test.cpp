#include "runtime/stage_registry.h"

#include <algorithm>
#include <string>
#include <vector>

#include "factory/plugin.h"
#include "runtime/fake_stage_context.h"
#include "test_util.h"

using namespace factory;
using runtime::create_stage;
using runtime::load_plugin;
using runtime::load_plugin_dir;
using runtime::registered_stages;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Test cases share the process-wide registry when the binary runs them all at once; ctest runs
// each alone. Either way the example plugin is loaded exactly once after this.
void ensure_example_plugin() {
  Result<std::vector<std::string>> r = load_plugin(FACTORY_EXAMPLE_PLUGIN);
  if (!r.ok()) REQUIRE(r.status().code() == Status::Code::kAlreadyExists);
  REQUIRE(contains(registered_stages(), "shout"));
}

}  // namespace

TEST_CASE("built-in stages are registered", "[runtime]") {
  std::vector<std::string> names = registered_stages();
  CHECK(contains(names, "noop"));
  CHECK(contains(names, "exec"));
  CHECK(contains(names, "fail"));
  CHECK(std::is_sorted(names.begin(), names.end()));

  auto noop = create_stage("noop");
  REQUIRE_OK(noop);
  CHECK((*noop)->info().name == "noop");
  CHECK((*noop)->info().side_effects == SideEffects::kPure);
  auto exec = create_stage("exec");
  REQUIRE_OK(exec);
  CHECK((*exec)->info().blocking);
  CHECK((*exec)->info().side_effects == SideEffects::kIdempotent);
}

TEST_CASE("a duplicate built-in name keeps the first registration", "[runtime]") {
  struct Impostor final : Stage {
    StageInfo info() const override { return {.name = "noop", .version = "9.9.9"}; }
    StageResult process(const Event&, StageContext&) override {
      return StageResult::permanent("impostor");
    }
  };
  CHECK_FALSE(
      register_stage([]() -> std::unique_ptr<Stage> { return std::make_unique<Impostor>(); }));
  auto noop = create_stage("noop");
  REQUIRE_OK(noop);
  CHECK((*noop)->info().version == "1.0.0");
}

TEST_CASE("create_stage of an unknown name lists the known stages", "[runtime]") {
  auto r = create_stage("no-such-stage");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_not_found());
  const std::string& msg = r.status().message();
  CHECK(msg.find("no-such-stage") != std::string::npos);
  CHECK(msg.find("noop") != std::string::npos);
  CHECK(msg.find("exec") != std::string::npos);
  CHECK(msg.find("fail") != std::string::npos);
}

TEST_CASE("a plugin's stage is registered and runs", "[runtime]") {
  ensure_example_plugin();
  auto shout = create_stage("shout");
  REQUIRE_OK(shout);
  test::FakeStageContext ctx;
  StageResult r = (*shout)->process(
      test::make_event(R"({"title":"add csv export","n":3,"tags":["ui",{"k":"déjà vu"}]})"), ctx);
  REQUIRE(r.kind() == StageResult::Kind::kSuccess);
  REQUIRE(ctx.outputs().size() == 1);
  CHECK(ctx.outputs()[0].payload ==
        R"({"title":"ADD CSV EXPORT","n":3,"tags":["UI",{"k":"DéJà VU"}]})");

  StageResult bad = (*shout)->process(test::make_event("not json"), ctx);
  CHECK(bad.kind() == StageResult::Kind::kPermanent);
}

TEST_CASE("loading a plugin twice is AlreadyExists", "[runtime]") {
  ensure_example_plugin();
  auto again = load_plugin(FACTORY_EXAMPLE_PLUGIN);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == Status::Code::kAlreadyExists);
  CHECK(again.status().message().find("shout") != std::string::npos);
  CHECK(again.status().message().find(FACTORY_EXAMPLE_PLUGIN) != std::string::npos);
  CHECK(create_stage("shout").ok());  // the first registration still works
}

TEST_CASE("a plugin built for another ABI is refused with both versions", "[runtime]") {
  auto r = load_plugin(FACTORY_WRONG_ABI_PLUGIN);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  const std::string& msg = r.status().message();
  INFO(msg);
  CHECK(msg.find(FACTORY_WRONG_ABI_PLUGIN) != std::string::npos);
  CHECK(msg.find("ABI 999") != std::string::npos);
  CHECK(msg.find("has " + std::to_string(FACTORY_PLUGIN_ABI_VERSION)) != std::string::npos);
  CHECK(msg.find("rebuild") != std::string::npos);
}

TEST_CASE("a library without the plugin symbol is refused naming the symbol", "[runtime]") {
  auto r = load_plugin(FACTORY_NO_SYMBOL_PLUGIN);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().is_invalid_argument());
  const std::string& msg = r.status().message();
  INFO(msg);
  CHECK(msg.find(FACTORY_NO_SYMBOL_PLUGIN) != std::string::npos);
  CHECK(msg.find("missing symbol factory_plugin_v1") != std::string::npos);
  CHECK(msg.find("FACTORY_PLUGIN(") != std::string::npos);
}

TEST_CASE("a file that is not a library is refused with dlopen's reason", "[runtime]") {
  test::TempDir dir;
  SECTION("missing file") {
    std::string path = dir.str() + "/missing.so";
    auto r = load_plugin(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_invalid_argument());
    CHECK(r.status().message().find(path) != std::string::npos);
    CHECK(r.status().message().find("No such file") != std::string::npos);
  }
  SECTION("not an ELF file") {
    std::string path = dir.str() + "/text.so";
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("hello\n", f);
    std::fclose(f);
    auto r = load_plugin(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find(path) != std::string::npos);
  }
  SECTION("a missing plugin directory") {
    auto r = load_plugin_dir(dir.str() + "/nope");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().is_not_found());
  }
  SECTION("an empty plugin directory loads nothing") {
    auto r = load_plugin_dir(dir.str());
    REQUIRE_OK(r);
    CHECK(r->empty());
  }
}
