// /livez, /healthz and /readyz: public (no token), cheap, never touching the store.
#include "http/api.h"

namespace factory::http {

void add_health_routes(Router* router, ApiContext* ctx) {
  auto live = [](const Request&) { return json_response(R"({"status":"ok"})"); };
  router->add({.method = "GET", .pattern = "/livez", .role = Role::kPublic, .handler = live});
  router->add({.method = "GET", .pattern = "/healthz", .role = Role::kPublic, .handler = live});
  router->add({.method = "GET",
               .pattern = "/readyz",
               .role = Role::kPublic,
               .handler = [ctx](const Request&) {
                 if (ctx->ready.load()) return json_response(R"({"status":"ready"})");
                 return error_response(503, "unavailable",
                                       "not ready: starting up or shutting down");
               }});
}

}  // namespace factory::http
