// ApiServer: the daemon's HTTP side — the router with every route (http/api.h), the server, and
// the context the handlers share — for `factoryd serve`, `factoryd demo --serve` and the local
// API of `factoryd run` (a unix socket in the data dir).
//
// Lifecycle: start() listens at once with every route but the health checks answering 503;
// attach() points the handlers at an open Host, turns ready (/readyz 200) and writes
// <data-dir>/daemon.json so that CLI commands on that data dir go through this API (remote.h:
// the one place every serving process records itself); detach() removes daemon.json, turns
// not-ready again and wakes long-polls; stop() detaches, drains in-flight requests and joins the
// threads. The Host must outlive the ApiServer's attachment (detach or stop before closing it).
//
// Thread-safety: start/attach/detach/stop from one thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "cli/factory_config.h"
#include "cli/host.h"
#include "http/api.h"
#include "http/audit_writer.h"
#include "http/server.h"

namespace factory::cli {

class ApiServer {
 public:
  // Prints the error (and returns nullptr) when the server cannot start.
  static std::unique_ptr<ApiServer> start(const FactoryConfig& config);
  ~ApiServer();

  void attach(Host* host);
  void detach();
  void stop(int64_t deadline_ms = 25'000);
  // "http://127.0.0.1:7070", the configured public_url, or "unix:///abs/path/api.sock".
  const std::string& url() const { return url_; }

 private:
  ApiServer() = default;
  http::ApiContext ctx_;
  http::Router router_;
  std::unique_ptr<http::AuditWriter> audit_writer_;  // set by attach(), before ready
  std::atomic<http::AuditWriter*> audit_{nullptr};
  std::unique_ptr<http::Server> server_;
  std::string url_;
  bool daemon_file_written_ = false;
};

// For `demo --serve`: an ApiServer on `listen` with the default config, attached to `host`.
std::unique_ptr<ApiServer> start_api_server(Host* host, const std::string& data_dir,
                                            const std::string& config_dir,
                                            const std::string& listen);

// The unix socket of a data dir's local API: <data-dir>/api.sock, absolute.
std::string local_api_socket(const std::string& data_dir);

// For `run`: the API on local_api_socket(data_dir) (owner-only, no token: http/server.h; any
// path length: http/unix_socket_path.h), attached to `host`. When it cannot listen (a second
// server on the socket) logs a warning that says what CLI commands beside this process will
// miss, and returns nullptr: the caller goes on without it.
std::unique_ptr<ApiServer> start_local_api(Host* host, const std::string& data_dir,
                                           const std::string& config_dir);

}  // namespace factory::cli
