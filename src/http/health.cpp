// /livez, /healthz and /readyz: public (no token), cheap, never writing to the store.
#include <sys/statvfs.h>

#include "http/api.h"

namespace factory::http {

Status check_disk_space(ApiContext* ctx) {
  struct statvfs v;
  if (!ctx->data_dir.empty() && ::statvfs(ctx->data_dir.c_str(), &v) == 0) {
    const auto free_bytes = static_cast<int64_t>(v.f_bavail) * static_cast<int64_t>(v.f_frsize);
    if (free_bytes < ctx->min_free_bytes) {
      return Status::no_space("the disk holding '" + ctx->data_dir + "' is full (" +
                              std::to_string(free_bytes) + " bytes free, under the " +
                              std::to_string(ctx->min_free_bytes) +
                              " factoryd keeps in reserve); nothing was written. Free space on "
                              "that disk: writes resume by themselves, no restart needed");
    }
  }
  if (ctx->log) FACTORY_RETURN_IF_ERROR(ctx->log->writable());
  if (ctx->store) FACTORY_RETURN_IF_ERROR(ctx->store->writable());
  return Status();
}

void add_health_routes(Router* router, ApiContext* ctx) {
  auto live = [](const Request&) { return json_response(R"({"status":"ok"})"); };
  router->add({.method = "GET", .pattern = "/livez", .role = Role::kPublic, .handler = live});
  router->add({.method = "GET", .pattern = "/healthz", .role = Role::kPublic, .handler = live});
  router->add({.method = "GET",
               .pattern = "/readyz",
               .role = Role::kPublic,
               .handler = [ctx](const Request&) {
                 if (!ctx->ready.load()) {
                   return error_response(503, "unavailable",
                                         "not ready: starting up or shutting down");
                 }
                 if (Status s = check_disk_space(ctx); !s.ok()) {
                   std::string why = s.is_no_space() ? "not ready: disk full at " + ctx->data_dir
                                                     : "not ready: cannot write";
                   return error_response(503, "unavailable", why + ": " + s.message());
                 }
                 return json_response(R"({"status":"ready"})");
               }});
}

}  // namespace factory::http
