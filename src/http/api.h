// The daemon's HTTP surface: what each group of routes needs, and the functions that add
// them to a Router. serve (cli/serve_cmd.cpp) opens the Host, fills an ApiContext and adds:
//
//   add_health_routes    /livez /healthz /readyz                        (health.cpp)
//   add_log_routes       /api/v1/topics..., records, groups, dead letters (api_log.cpp)
//   add_scheduler_routes /api/v1/dags..., runs, tasks, approvals, audit  (api_scheduler.cpp)
//   add_webhook_routes   /hooks/jira /hooks/github                        (webhooks.cpp)
//   add_metrics_routes   /metrics                                         (metrics_routes.cpp)
//   add_openapi_routes   /api/v1/openapi.json                             (openapi.cpp)
//
// Every pointer is borrowed and must outlive the server. Handlers are called concurrently.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "factory/log.h"
#include "http/router.h"
#include "runtime/engine.h"
#include "scheduler/scheduler.h"
#include "store/meta_store.h"

namespace factory::obs {
class Registry;
}  // namespace factory::obs

namespace factory::http {

// A webhook endpoint's settings (factory.yaml `webhooks.github` / `webhooks.jira`).
struct WebhookConfig {
  bool enabled = false;
  std::string topic = "jira-events";  // where deliveries are produced
  std::string secret;                 // HMAC-SHA256 key; "" = unsigned deliveries refused
  size_t body_limit = 1 << 20;
};

struct ApiContext {
  Log* log = nullptr;
  store::MetaStore* store = nullptr;
  scheduler::Scheduler* scheduler = nullptr;  // may be null (no DAGs configured)
  runtime::Engine* engine = nullptr;          // may be null
  obs::Registry* metrics = nullptr;
  std::string data_dir;
  std::string config_dir;
  std::string dead_letter_suffix = ".dlq";
  WebhookConfig github;
  WebhookConfig jira;
  std::atomic<bool> ready{false};  // /readyz: true once everything is open, false at shutdown
  // Writes are refused (507) and /readyz says "disk full" while the data dir's filesystem has
  // less free than this: the log and the store then never meet ENOSPC half-way through a write,
  // and there is room left for the audit row of the refusal.
  int64_t min_free_bytes = 4 << 20;
  // Base URL clients should use for links (e.g. "http://127.0.0.1:7070").
  std::string public_url;
};

// OK when the data dir can take writes; else NoSpace naming the disk: it has less than
// ctx->min_free_bytes free, or the log or the store found it full and it still is (the log
// resumes its writes here once space is back). Never writes (health.cpp).
Status check_disk_space(ApiContext* ctx);

void add_health_routes(Router* router, ApiContext* ctx);
void add_log_routes(Router* router, ApiContext* ctx);
void add_scheduler_routes(Router* router, ApiContext* ctx);
void add_webhook_routes(Router* router, ApiContext* ctx);
void add_metrics_routes(Router* router, ApiContext* ctx);
void add_openapi_routes(Router* router, ApiContext* ctx);

}  // namespace factory::http
