// POST /hooks/github and POST /hooks/jira: signed deliveries produced to a topic.
//
// A delivery is checked in this order, and each refusal produces nothing:
//   404 not_found        the webhook is disabled (webhooks.<source>.enabled: false)
//   401 unauthenticated  no secret configured (every delivery is refused until one is), the
//                        signature header is missing, not "sha256=<hex>", or does not match
//                        HMAC-SHA256(secret, raw body), compared in constant time
//   400 invalid_argument no delivery id header, or a body that is not a JSON object (checked
//                        after the signature, so unauthenticated callers learn nothing)
//   200 {"duplicate":true,"delivery"}                   a delivery id, or a payload, seen before
//   202 {"topic","partition","offset","delivery"}       produced
// GitHub's `ping` (sent when a webhook is created) is verified and answered 200 {"ping":true}
// without producing anything.
//
// The signature covers the body's exact bytes (Request::body is never re-serialized): the
// same JSON with other whitespace does not verify.
//
// Replays. The signature covers the body only, not the delivery id header: whoever captured
// one delivery (a proxy log, a sender's debug page) can resend it under a fresh id, and it
// verifies. So a delivery is identified by its payload as well as by its id: a payload seen
// before is a duplicate whatever id it comes with. Senders put the event's own ids and times
// in the payload (GitHub's issue and sender, JIRA's timestamp), so two real events never share
// a body; a genuine redelivery keeps both id and body.
//
// Exactly one record per delivery payload, across restarts and kill -9 at any point. The append
// is its own dedupe: the record carries the idempotency key
// "factory.<stage>/payload/<SHA-256 of the body>" (ProducerRecord::idempotency_key; factory.*
// names are the daemon's; before the payload bound it was ".../<delivery id>"), and the log writes
// the record and its key in one synced batch and skips a later record with that key, so no moment
// exists at which the record is in the log but the delivery is not known there. (A dedupe row
// in another store, written after the append, always leaves that window, and a redelivery
// through it started a second run: issue 11.11.) Keys are looked up on disk, not held in
// memory, and retention drops them with their records.
// After the append, the MetaStore's processed table records (stage "webhook.<source>",
// EventIds = SHA-256 of the delivery id, and of "payload\n" + body): it answers most
// redeliveries without queueing on the
// log's writer, and covers deliveries recorded before the log deduplicated them. A crash
// before that row only means that the redelivery reaches the log, which reports a duplicate.
// Per source, a mutex serializes check -> append -> record.
//
// The record: key = the delivery id, value = the raw body, headers factory.webhook.source
// ("github"|"jira"), factory.webhook.event (X-GitHub-Event, or JIRA's body field webhookEvent)
// and factory.webhook.delivery.
//
// Outcomes are counted in factory_webhook_deliveries_total{source,outcome}
// (metrics_routes.h): accepted, duplicate, bad_signature (missing or wrong), invalid (no
// delivery id, not JSON), rejected (disabled, no secret), failed (the append failed). Pings are
// not counted. The routes are public (signatures, not tokens) and audited: every delivery is a
// write with an audit row (action "webhook.<source>", actor "anonymous", its outcome and request
// id); the rows of refused deliveries are rate-limited per sender address (refusal_audit.h).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "base/mutex.h"
#include "factory/event.h"
#include "http/api.h"
#include "http/json_fast.h"
#include "http/json_input.h"
#include "http/metrics_routes.h"
#include "http/router.h"
#include "http/server.h"
#include "obs/logger.h"

namespace factory::http {
namespace {

namespace json = boost::json;

constexpr size_t kMaxDeliveryIdBytes = 256;
constexpr std::string_view kSignaturePrefix = "sha256=";

// One webhook endpoint. Shared by its route's handler (a Route is copyable, so the handler
// holds it by shared_ptr); the ApiContext it reads from outlives the server.
struct Hook {
  std::string source;            // "github", "jira": metric label, record header
  std::string path;              // "/hooks/github"
  std::string signature_header;  // as GitHub/JIRA send it, for messages
  std::string delivery_header;
  std::string stage;            // processed-table stage: "webhook.<source>"
  const WebhookConfig* config;  // borrowed from the ApiContext
  ApiContext* ctx;
  // FACTORY_WEBHOOK_KILL_AFTER_APPEND_for_test=1: the process SIGKILLs itself right after a
  // delivery's append, before anything else is recorded, so a crash test can hit that window.
  bool kill_after_append_for_test = false;
  base::Mutex mu;  // held around check -> append -> record
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
}

std::string details(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  json::object o;
  for (const auto& [k, v] : kv) o[k] = v;
  return json::serialize(o);
}

void count(const Hook& hook, WebhookOutcome outcome) {
  record_webhook_delivery(hook.ctx->metrics, hook.source, outcome);
}

Response refuse(const Hook& hook, WebhookOutcome outcome, Response r) {
  count(hook, outcome);
  return r;
}

// The signature check: 401 responses, or nullopt when the body is authentic.
std::optional<Response> check_signature(const Hook& hook, const Request& req) {
  const std::string& secret = hook.config->secret;
  if (secret.empty()) {
    return refuse(hook, WebhookOutcome::kRejected,
                  error_response(401, "unauthenticated",
                                 "no secret is configured for " + hook.path +
                                     ", so deliveries cannot be verified and are refused; set "
                                     "webhooks." +
                                     hook.source +
                                     ".secret_env (or secret_file) in factory.yaml to the "
                                     "secret configured on the sender, and restart factoryd",
                                 details({{"source", hook.source}})));
  }
  auto header = req.header(hook.signature_header);
  if (!header) {
    return refuse(hook, WebhookOutcome::kBadSignature,
                  error_response(401, "unauthenticated",
                                 "missing " + hook.signature_header +
                                     " header: this endpoint only takes deliveries signed "
                                     "with the webhook's secret (HMAC-SHA256)",
                                 details({{"header", hook.signature_header}})));
  }
  std::string given = lower(*header);
  if (!given.starts_with(kSignaturePrefix)) {
    return refuse(
        hook, WebhookOutcome::kBadSignature,
        error_response(401, "unauthenticated",
                       hook.signature_header + " must be sha256=<hex> (HMAC-SHA256); configure the "
                                               "webhook to sign with SHA-256",
                       details({{"header", hook.signature_header}})));
  }
  std::string expected = hmac_sha256_hex(secret, req.body);
  if (!constant_time_equal(std::string_view(given).substr(kSignaturePrefix.size()), expected)) {
    return refuse(hook, WebhookOutcome::kBadSignature,
                  error_response(401, "unauthenticated",
                                 hook.signature_header +
                                     " does not match the body: the secret differs from the "
                                     "sender's, or the body was changed on the way",
                                 details({{"header", hook.signature_header}})));
  }
  return std::nullopt;
}

Response deliver(Hook& hook, const Request& req) {
  if (!hook.config->enabled) {
    return refuse(hook, WebhookOutcome::kRejected,
                  error_response(404, "not_found",
                                 hook.path + " is disabled; set webhooks." + hook.source +
                                     ".enabled: true in factory.yaml to accept deliveries",
                                 details({{"source", hook.source}})));
  }
  if (auto refused = check_signature(hook, req)) return *refused;

  auto delivery_header = req.header(hook.delivery_header);
  std::string delivery(delivery_header.value_or(""));
  if (delivery.empty() || delivery.size() > kMaxDeliveryIdBytes || !printable(delivery)) {
    return refuse(hook, WebhookOutcome::kInvalid,
                  error_response(400, "invalid_argument",
                                 hook.delivery_header +
                                     " must carry the delivery's id (printable, at most 256 "
                                     "bytes): it is how repeated deliveries are recognised",
                                 details({{"header", hook.delivery_header}})));
  }
  // The body is only checked (a JSON object) and JIRA's webhookEvent read, never kept as a
  // document: simdjson answers the usual body, Boost.JSON the rest and every refusal.
  std::optional<std::string> jira_event;
  if (!simd_check_object_body(req.body, "webhookEvent", &jira_event)) {
    auto body = parse_body(req);
    if (!body.ok()) {
      return refuse(hook, WebhookOutcome::kInvalid,
                    status_response(body.status(), details({{"delivery", delivery}})));
    }
    if (const json::value* v = body->if_contains("webhookEvent"); v != nullptr && v->is_string()) {
      jira_event = std::string(v->as_string());
    }
  }
  std::string event;
  if (hook.source == "github") {
    event = std::string(req.header("X-GitHub-Event").value_or(""));
    if (event == "ping") {  // not a delivery: not counted
      json::object o{{"ping", true}, {"delivery", delivery}};
      return json_response(json::serialize(o));
    }
  } else if (jira_event) {
    event = std::move(*jira_event);
  }

  const WebhookConfig& config = *hook.config;
  // Delivery ids are printable (no '\n'), so the two kinds of id never collide.
  const EventId payload_id = event_id_for_bytes("payload\n" + req.body);
  const EventId ids[2] = {event_id_for_bytes(delivery), payload_id};
  base::MutexLock lock(&hook.mu);
  auto seen = hook.ctx->store->is_processed(hook.stage, ids);
  if (!seen.ok()) return refuse(hook, WebhookOutcome::kFailed, status_response(seen.status()));
  if ((*seen)[0] || (*seen)[1]) {
    count(hook, WebhookOutcome::kDuplicate);
    json::object o{{"duplicate", true}, {"delivery", delivery}};
    return json_response(json::serialize(o));
  }
  ProducerRecord record;
  record.key = delivery;
  record.value = req.body;
  record.headers = {{"factory.webhook.source", hook.source},
                    {"factory.webhook.event", event},
                    {"factory.webhook.delivery", delivery}};
  // The exactly-once step (see the top of this file): the log appends this delivery at most
  // once, whatever happened to an earlier copy after its append.
  record.idempotency_key = "factory." + hook.stage + "/payload/" + payload_id.hex();
  auto pos = hook.ctx->log->append(config.topic, {&record, 1});
  if (!pos.ok()) {
    if (pos.status().is_not_found()) {
      // The sender will retry later; 404 would read as "wrong URL".
      return refuse(
          hook, WebhookOutcome::kFailed,
          error_response(503, "unavailable",
                         "topic '" + config.topic + "' does not exist; create it " +
                             "(factoryd topics create " + config.topic + ") or point webhooks." +
                             hook.source + ".topic at an existing topic",
                         details({{"topic", config.topic}})));
    }
    return refuse(hook, WebhookOutcome::kFailed,
                  status_response(pos.status(), details({{"topic", config.topic}})));
  }
  if (hook.kill_after_append_for_test) ::kill(::getpid(), SIGKILL);
  if (Status s = hook.ctx->store->commit_processed(hook.stage, ids); !s.ok()) {
    // Produced but not recorded: harmless, a redelivery reaches the log, which skips it.
    // Answer as if recorded; a 5xx would only make the sender retry.
    obs::warn("webhook delivery not recorded as seen; the log deduplicates its redelivery",
              {{"source", hook.source}, {"delivery", delivery}, {"error", s.to_string()}});
  }
  if ((*pos)[0].duplicate) {  // appended before, by a copy whose process died before its row
    count(hook, WebhookOutcome::kDuplicate);
    json::object o{{"duplicate", true}, {"delivery", delivery}};
    return json_response(json::serialize(o));
  }
  count(hook, WebhookOutcome::kAccepted);
  json::object o{{"topic", config.topic},
                 {"partition", (*pos)[0].partition},
                 {"offset", (*pos)[0].offset.value()},
                 {"delivery", delivery}};
  return json_response(json::serialize(o), 202);
}

void add_hook(Router* router, ApiContext* ctx, std::string source, const WebhookConfig* config,
              std::string signature_header, std::string delivery_header) {
  auto hook = std::make_shared<Hook>();
  hook->source = source;
  hook->path = "/hooks/" + source;
  hook->signature_header = std::move(signature_header);
  hook->delivery_header = std::move(delivery_header);
  hook->stage = "webhook." + source;
  hook->config = config;
  hook->ctx = ctx;
  const char* kill_env = std::getenv("FACTORY_WEBHOOK_KILL_AFTER_APPEND_for_test");
  hook->kill_after_append_for_test = kill_env != nullptr && std::string_view(kill_env) == "1";
  router->add({.method = "POST",
               .pattern = hook->path,
               .role = Role::kPublic,
               .handler = [hook](const Request& req) { return deliver(*hook, req); },
               .body_limit = config->body_limit,
               .audited = true,  // a delivery is a write: who (the sender), result, request id
               .action = "webhook." + source});
}

}  // namespace

void add_webhook_routes(Router* router, ApiContext* ctx) {
  add_hook(router, ctx, "github", &ctx->github, "X-Hub-Signature-256", "X-GitHub-Delivery");
  add_hook(router, ctx, "jira", &ctx->jira, "X-Hub-Signature", "X-Atlassian-Webhook-Identifier");
}

}  // namespace factory::http
