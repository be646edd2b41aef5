#include "obs/logger.h"

#include <cstdio>

#include "test_util.h"

using namespace factory;

TEST_CASE("log lines are one JSON object with ts, level, msg and fields", "[obs]") {
  std::string line = obs::format_line(1764320400123, obs::Level::kWarn, "disk \"slow\"",
                                      {{"topic", "jira-events"}, {"lag", 42}});
  CHECK(line ==
        "{\"ts\":\"2025-11-28T09:00:00.123Z\",\"level\":\"warn\",\"msg\":\"disk \\\"slow\\\"\","
        "\"topic\":\"jira-events\",\"lag\":42}\n");
}

TEST_CASE("lines below the minimum level are dropped", "[obs]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f);
  obs::set_sink(f);
  obs::Level old = obs::min_level();
  obs::set_min_level(obs::Level::kWarn);
  obs::info("hidden");
  obs::error("shown", {{"n", 1}});
  obs::set_min_level(old);
  obs::set_sink(nullptr);
  std::rewind(f);
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string text(buf, n);
  CHECK(text.find("hidden") == std::string::npos);
  CHECK(text.find("\"msg\":\"shown\"") != std::string::npos);
  CHECK(text.find("\"n\":1") != std::string::npos);
}
