#include "cli/serve_api.h"

#include <filesystem>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/remote.h"
#include "http/metrics_routes.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace factory::cli {
namespace {

// Every route but the health checks answers 503 until the daemon is ready (and again once it
// drains): their handlers use the Host, which is opened after the server listens. Writes
// (audited routes) answer 507 while the data dir's disk is full (http::check_disk_space).
void add_gated(http::Router* router, http::ApiContext* ctx,
               void (*add)(http::Router*, http::ApiContext*)) {
  http::Router staged;
  add(&staged, ctx);
  for (http::Route route : staged.routes()) {
    route.handler = [ctx, write = route.audited,
                     inner = std::move(route.handler)](const http::Request& req) {
      if (!ctx->ready.load(std::memory_order_acquire)) {
        return http::error_response(503, "unavailable",
                                    "factoryd is starting or shutting down; retry shortly");
      }
      // A write on a full disk is refused before it starts (507), not failed half-way.
      if (write) {
        if (Status s = http::check_disk_space(ctx); !s.ok()) return http::status_response(s);
      }
      return inner(req);
    };
    router->add(std::move(route));
  }
}

}  // namespace

std::unique_ptr<ApiServer> ApiServer::start(const FactoryConfig& config) {
  std::unique_ptr<ApiServer> api(new ApiServer());
  http::ApiContext& ctx = api->ctx_;
  ctx.data_dir = config.data_dir;
  ctx.config_dir = config.config_dir;
  ctx.github = config.github;
  ctx.jira = config.jira;
  ctx.metrics = &obs::default_registry();

  http::Router& router = api->router_;
  http::add_health_routes(&router, &ctx);
  add_gated(&router, &ctx, http::add_openapi_routes);
  add_gated(&router, &ctx, http::add_metrics_routes);
  add_gated(&router, &ctx, http::add_log_routes);
  add_gated(&router, &ctx, http::add_scheduler_routes);
  add_gated(&router, &ctx, http::add_webhook_routes);

  http::ServerHooks hooks;
  hooks.on_request = [](const http::RequestRecord& r) {
    http::record_http_request(nullptr, r);
    obs::debug("http request", {{"method", r.method},
                                {"route", r.route},
                                {"status", r.status},
                                {"principal", r.principal},
                                {"request_id", r.request_id}});
  };
  hooks.audit = [raw = api.get()](store::AuditRow row) {
    http::AuditWriter* writer = raw->audit_.load();
    if (!writer) return;
    if (Status s = writer->append(std::move(row)); !s.ok()) {
      obs::error("cannot write audit row", {{"error", s.to_string()}});
    }
  };
  const http::ServerOptions& options = config.server;  // address and port from listen
  auto server = http::Server::start(options, &router, std::move(hooks));
  if (!server.ok()) {
    status_error("cannot start the HTTP server", server.status(), "");
    return nullptr;
  }
  api->server_ = std::move(*server);
  api->url_ = config.public_url;
  if (!options.unix_socket.empty()) {
    api->url_ = "unix://" + options.unix_socket;
  } else if (api->url_.empty()) {
    std::string host = options.address == "0.0.0.0" ? "127.0.0.1" : options.address;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    api->url_ = fmt::format("{}://{}:{}", api->server_->tls() ? "https" : "http", host,
                            api->server_->port());
  }
  ctx.public_url = api->url_;
  return api;
}

ApiServer::~ApiServer() { stop(0); }

void ApiServer::attach(Host* host) {
  ctx_.log = host->log();
  ctx_.store = host->store();
  ctx_.scheduler = host->scheduler();
  ctx_.engine = host->engine();
  audit_writer_ = std::make_unique<http::AuditWriter>(host->store());
  audit_.store(audit_writer_.get());
  ctx_.ready.store(true, std::memory_order_release);
  if (Status s = write_daemon_file(ctx_.data_dir, url_); !s.ok()) {
    obs::warn("cannot write daemon.json; CLI commands on this data dir need --server",
              {{"error", s.message()}});
  } else {
    daemon_file_written_ = true;
  }
}

void ApiServer::detach() {
  if (daemon_file_written_) remove_daemon_file(ctx_.data_dir);
  daemon_file_written_ = false;
  ctx_.ready.store(false, std::memory_order_release);
  if (ctx_.log) ctx_.log->wake_waiters();  // long-poll fetches return now
}

void ApiServer::stop(int64_t deadline_ms) {
  if (!server_) return;
  detach();
  server_->stop(deadline_ms);
  server_.reset();
  audit_.store(nullptr);
}

std::unique_ptr<ApiServer> start_api_server(Host* host, const std::string& data_dir,
                                            const std::string& config_dir,
                                            const std::string& listen) {
  auto config = load_factory_config(
      "", {{"server.listen", listen}, {"data_dir", data_dir}, {"config_dir", config_dir}},
      process_environment());
  if (!config.ok()) {
    status_error("invalid server settings", config.status(), "");
    return nullptr;
  }
  auto api = ApiServer::start(*config);
  if (api) api->attach(host);
  return api;
}

std::string local_api_socket(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(data_dir, ec);
  if (ec) dir = data_dir;
  return (dir.lexically_normal() / "api.sock").string();
}

std::unique_ptr<ApiServer> start_local_api(Host* host, const std::string& data_dir,
                                           const std::string& config_dir) {
  std::string socket = local_api_socket(data_dir);
  auto unavailable = [&](std::string_view why) {
    obs::warn(
        "no local API: other factoryd commands on this data dir will find it held; use "
        "`factoryd serve` instead",
        {{"socket", socket}, {"reason", std::string(why)}});
    return nullptr;
  };
  auto config = load_factory_config("", {{"data_dir", data_dir}, {"config_dir", config_dir}}, {});
  if (!config.ok()) return unavailable(config.status().message());
  config->server.unix_socket = socket;
  config->server.tls = {};  // the socket's owner-only mode is the access control
  // A few CLI commands beside the run, not a service's traffic: fewer idle threads.
  config->server.handler_threads = 2;
  config->server.long_poll_limit = 8;
  config->public_url.clear();
  // The server reports its own failure; this says what it means for the run.
  auto api = ApiServer::start(*config);
  if (!api) return unavailable("the server did not start (the error above)");
  api->attach(host);
  return api;
}

}  // namespace factory::cli
