// The daemon's Prometheus side (metrics_routes.cpp): GET /metrics (add_metrics_routes, api.h)
// and the recorders the server and the webhook handlers call. Metric names, types and labels
// are listed in docs/user-guide.md ("Metrics").
//
// Every label value recorded here comes from a closed set (a route PATTERN, never the raw path;
// known methods; the webhook source and outcome enums), so a client cannot grow the series.
//
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <string_view>

#include "http/server.h"

namespace factory::obs {
class Registry;
}  // namespace factory::obs

namespace factory::http {

// Counts a finished request: factory_http_requests_total{route,method,code} and
// factory_http_request_duration_seconds{route}. An unmatched request (route "") is recorded as
// route "unmatched"; a method outside GET/HEAD/POST/PUT/PATCH/DELETE/OPTIONS as "other".
// registry null: obs::default_registry(). For ServerHooks::on_request:
//   hooks.on_request = [](const RequestRecord& r) { record_http_request(nullptr, r); };
void record_http_request(obs::Registry* registry, const RequestRecord& record);

// What became of one webhook delivery.
enum class WebhookOutcome {
  kAccepted,      // produced to the configured topic
  kDuplicate,     // a delivery id seen before: answered 200, nothing produced
  kBadSignature,  // signature missing or wrong
  kInvalid,       // malformed: missing delivery id, body not JSON, ...
  kRejected,      // refused before looking at it: endpoint disabled, no secret configured
  kFailed,        // our side failed (the produce returned an error)
};
std::string_view webhook_outcome_name(WebhookOutcome outcome);  // "accepted", "bad_signature", ...

// Counts factory_webhook_deliveries_total{source,outcome}. source is "github" or "jira"
// (anything else is recorded as "other"). registry null: obs::default_registry().
void record_webhook_delivery(obs::Registry* registry, std::string_view source,
                             WebhookOutcome outcome);

}  // namespace factory::http
