// Where a log command (topics, produce, consume, groups, dlq) reads and writes: through the API
// of the daemon that holds the data dir (or --server), else the log opened in this process.
// Either way the command makes the same http::LogAccess calls and renders the same values, so
// its output and exit codes do not depend on which.
//
// Thread-safety: the CLI is single-threaded.
#pragma once

#include <memory>
#include <optional>

#include "cli/common.h"
#include "cli/remote.h"
#include "factory/log.h"
#include "http/client.h"
#include "http/log_access.h"

namespace factory::cli {

struct LogSession {
  std::unique_ptr<http::Client> client;  // set when a daemon answers for the data dir
  std::unique_ptr<Log> log;              // set otherwise
  // Over `client` or `log`; declared last so it is destroyed first.
  std::unique_ptr<http::LogAccess> access;
  bool remote() const { return client != nullptr; }
};

// The session, or nullopt after printing why (a bad --server URL, a log that cannot be opened)
// with *exit_code set.
inline std::optional<LogSession> open_log_session(const CommonOptions& common, int* exit_code) {
  LogSession s;
  int code = kExitOk;
  s.client = daemon_client(common, &code);
  if (code != kExitOk) {
    *exit_code = code;
    return std::nullopt;
  }
  if (s.client) {
    s.access = http::remote_log_access(s.client.get());
    return s;
  }
  s.log = open_log_or_report(common);
  if (!s.log) {
    *exit_code = kExitRuntime;
    return std::nullopt;
  }
  s.access = http::local_log_access(s.log.get());
  return s;
}

}  // namespace factory::cli
