// RedisServer: the nearest peer for the log benchmark. Starts Debian's redis-server on a free
// loopback port with every write fsynced (--appendonly yes --appendfsync always --save ""),
// and speaks RESP to it over one TCP connection with a minimal client here (no hiredis).
//
// Ownership: the object owns the server process; stop() (or the destructor) ends it by PID.
// Thread-safety: not thread-safe; one thread owns a RedisServer.
//
// Example:
//   auto redis = RedisServer::start({.dir = tmp});
//   if (!redis.ok() && redis.status().is_not_found()) ...  // redis-server not installed
//   std::string_view vs[] = {"a", "b"};
//   Status s = (*redis)->xadd_batch("stream-0", vs);   // both fsynced when this returns
//   (*redis)->stop();
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bench/subprocess.h"
#include "factory/status.h"

namespace factory::bench {

struct RedisOptions {
  std::string server_path = "/usr/bin/redis-server";
  std::string dir;  // existing dir for the AOF and redis.log
};

class RedisServer {
 public:
  // NotFound when server_path is not an executable (callers report redis as skipped); IOError
  // when it will not start or answer PING; Internal when it runs without appendfsync always.
  static Result<std::unique_ptr<RedisServer>> start(const RedisOptions& options);
  ~RedisServer();

  // Pipelines `XADD stream * v <value>` for every value in one write, then reads every reply.
  // Redis replies only after the AOF holding them is fsynced. Internal on an error reply.
  Status xadd_batch(std::string_view stream, std::span<const std::string_view> values);
  Result<int64_t> xlen(std::string_view stream);

  pid_t pid() const { return proc_.pid(); }
  const std::string& version() const { return version_; }
  // SIGTERM by PID, then SIGKILL after a grace period. Returns the exit status as
  // Subprocess::wait does.
  Result<int> stop();

 private:
  class Conn;
  RedisServer(Subprocess proc, std::unique_ptr<Conn> conn);

  Subprocess proc_;
  std::unique_ptr<Conn> conn_;
  std::string version_;
};

}  // namespace factory::bench
