// ApiServer: the daemon's HTTP side — the router with every route (http/api.h), the server, and
// the context the handlers share — for `factoryd serve` and `factoryd demo --serve`.
//
// Lifecycle: start() listens at once with every route but the health checks answering 503;
// attach() points the handlers at an open Host and turns ready (/readyz 200); detach() turns
// not-ready again and wakes long-polls; stop() drains in-flight requests and joins the threads.
// The Host must outlive the ApiServer's attachment (detach or stop before closing it).
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
  const std::string& url() const { return url_; }

 private:
  ApiServer() = default;
  http::ApiContext ctx_;
  http::Router router_;
  std::unique_ptr<http::AuditWriter> audit_writer_;  // set by attach(), before ready
  std::atomic<http::AuditWriter*> audit_{nullptr};
  std::unique_ptr<http::Server> server_;
  std::string url_;
};

// For `demo --serve`: an ApiServer on `listen` with the default config, attached to `host`.
std::unique_ptr<ApiServer> start_api_server(Host* host, const std::string& data_dir,
                                            const std::string& config_dir,
                                            const std::string& listen);

}  // namespace factory::cli
