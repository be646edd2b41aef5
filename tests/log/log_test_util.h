// Shared fixtures for the log tests: open a log in a temp dir, build records.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "factory/consumer.h"
#include "factory/log.h"
#include "test_util.h"

namespace factory::test {

inline LogOptions test_log_options(const TempDir& dir) {
  LogOptions o;
  o.dir = (dir.path() / "log").string();
  o.retention_interval_ms = 0;  // tests drive retention explicitly
  o.write_buffer_bytes = 4 << 20;
  return o;
}

inline std::unique_ptr<Log> open_test_log(const LogOptions& o) {
  auto r = open_log(o);
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  return std::move(*r);
}

inline ProducerRecord rec(std::string value, std::optional<std::string> key = std::nullopt) {
  ProducerRecord r;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

inline std::vector<RecordPosition> append_ok(Log* log, const std::string& topic,
                                             std::vector<ProducerRecord> records) {
  auto r = log->append(topic, records);
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  return std::move(*r);
}

}  // namespace factory::test
