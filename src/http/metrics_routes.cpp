// GET /metrics and the HTTP/webhook recorders (metrics_routes.h).
//
// The handler renders the registry (counters and histograms the log, runtime, scheduler and
// server record as they go) plus the daemon's scrape-time view, computed from the ApiContext
// on each scrape: end offsets, group offsets and lag, runs and task instances by state,
// pending approvals, stage counts and circuit breakers, error budgets and the auto-approval
// switch, build info. That view is passed to Registry::render() as its `extra` collector
// instead of being registered in the registry:
// the registry is process-wide and outlives any one ApiContext (tests start several daemons in
// one process), so a registered collector could outlive the pointers it reads; the route
// cannot.
#include "http/metrics_routes.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <utility>

#include "http/api.h"
#include "obs/logger.h"
#include "obs/metrics.h"
#include "scheduler/dag.h"
#include "scheduler/error_budget.h"

#ifndef FACTORYD_VERSION
#define FACTORYD_VERSION "unknown"
#endif

namespace factory::http {
namespace {

using obs::MetricType;

obs::Registry& registry_or_default(obs::Registry* registry) {
  return registry ? *registry : obs::default_registry();
}

std::string_view method_label(std::string_view m) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (m == known) return known;
  }
  return "other";
}

void warn_scrape(std::string_view what, const Status& s) {
  obs::warn("metrics: part of the scrape is missing", {{"source", what}, {"error", s.to_string()}});
}

void collect_log(Log* log, obs::Writer& w) {
  struct Row {
    std::string topic;
    std::string partition;
    double start, end, bytes;
  };
  std::vector<Row> rows;
  for (const std::string& topic : log->list_topics()) {
    auto info = log->describe_topic(topic);
    if (!info.ok()) continue;  // deleted since list_topics
    for (const PartitionInfo& p : info->partitions) {
      rows.push_back({topic, std::to_string(p.partition), static_cast<double>(p.log_start.value()),
                      static_cast<double>(p.log_end.value()), static_cast<double>(p.size_bytes)});
    }
  }
  w.family("factory_log_end_offset", "The offset the next record appended to the partition gets.",
           MetricType::kGauge);
  for (const Row& r : rows) w.sample({{"topic", r.topic}, {"partition", r.partition}}, r.end);
  w.family("factory_log_start_offset", "The partition's first readable offset (after retention).",
           MetricType::kGauge);
  for (const Row& r : rows) w.sample({{"topic", r.topic}, {"partition", r.partition}}, r.start);
  w.family("factory_log_partition_size_bytes", "Bytes stored for the partition.",
           MetricType::kGauge);
  for (const Row& r : rows) w.sample({{"topic", r.topic}, {"partition", r.partition}}, r.bytes);

  std::vector<GroupDescription> groups;
  for (const std::string& g : log->list_groups()) {
    auto d = log->describe_group(g);
    if (d.ok()) groups.push_back(std::move(*d));
  }
  w.family("factory_consumer_group_committed_offset",
           "The group's committed offset (the next to consume) on the partition.",
           MetricType::kGauge);
  for (const auto& g : groups) {
    for (const auto& p : g.partitions) {
      if (!p.committed) continue;
      w.sample({{"group", g.group}, {"topic", p.topic}, {"partition", std::to_string(p.partition)}},
               static_cast<double>(p.committed->value()));
    }
  }
  w.family("factory_consumer_group_lag",
           "Records between the group's committed offset (or the log start) and the log end.",
           MetricType::kGauge);
  for (const auto& g : groups) {
    for (const auto& p : g.partitions) {
      w.sample({{"group", g.group}, {"topic", p.topic}, {"partition", std::to_string(p.partition)}},
               static_cast<double>(p.lag));
    }
  }
}

// Runs and task instances by current state. Every state of every known DAG is written (0 when
// none), so "no runs running" is a 0 an alert can see, not a missing series.
void collect_store(ApiContext* ctx, obs::Writer& w) {
  auto counts = ctx->store->count_by_state();
  if (!counts.ok()) {
    warn_scrape("store.count_by_state", counts.status());
  } else {
    std::map<std::pair<std::string, std::string>, double> runs, tasks;
    if (ctx->scheduler) {
      for (const scheduler::Dag& dag : ctx->scheduler->dags()) {
        for (auto s : {scheduler::RunState::kQueued, scheduler::RunState::kRunning,
                       scheduler::RunState::kSuccess, scheduler::RunState::kFailed,
                       scheduler::RunState::kCancelled}) {
          runs[{dag.dag_id, std::string(scheduler::run_state_name(s))}] = 0;
        }
        for (int s = 0; s <= static_cast<int>(scheduler::TaskState::kRemoved); ++s) {
          auto name = scheduler::task_state_name(static_cast<scheduler::TaskState>(s));
          tasks[{dag.dag_id, std::string(name)}] = 0;
        }
      }
    }
    for (const auto& c : counts->runs) runs[{c.dag_id, c.state}] = static_cast<double>(c.count);
    for (const auto& c : counts->tasks) tasks[{c.dag_id, c.state}] = static_cast<double>(c.count);
    w.family("factory_dag_runs_in_state", "DAG runs currently in each state.", MetricType::kGauge);
    for (const auto& [k, v] : runs) w.sample({{"dag", k.first}, {"state", k.second}}, v);
    w.family("factory_task_instances_in_state", "Task instances currently in each state.",
             MetricType::kGauge);
    for (const auto& [k, v] : tasks) w.sample({{"dag", k.first}, {"state", k.second}}, v);
  }

  auto pending = ctx->store->list_approvals("pending");
  if (!pending.ok()) {
    warn_scrape("store.list_approvals", pending.status());
    return;
  }
  double oldest_age_s = 0;
  if (!pending->empty()) {  // oldest first
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    oldest_age_s = std::max<int64_t>(0, now_ms - pending->front().requested_ms) / 1e3;
  }
  w.family("factory_approvals_pending", "Approvals waiting for a decision.", MetricType::kGauge);
  w.sample({}, static_cast<double>(pending->size()));
  w.family("factory_approval_oldest_pending_age_seconds",
           "How long the oldest pending approval has waited (0 when none).", MetricType::kGauge);
  w.sample({}, oldest_age_s);
}

void collect_engine(runtime::Engine* engine, obs::Writer& w) {
  const std::vector<runtime::BindingStats> stats = engine->stats();
  w.family("factory_stage_events_total",
           "Events a binding finished, by outcome: ok, failed (an attempt that will be retried), "
           "dead_letter, skipped_duplicate (already processed), routed, recovered (a fenced "
           "intent resolved after a crash).",
           MetricType::kCounter);
  for (const auto& s : stats) {
    const std::pair<const char*, int64_t> outcomes[] = {{"ok", s.processed},
                                                        {"failed", s.retries},
                                                        {"dead_letter", s.dead_lettered},
                                                        {"skipped_duplicate", s.duplicates},
                                                        {"routed", s.routed},
                                                        {"recovered", s.recovered}};
    for (const auto& [outcome, n] : outcomes) {
      w.sample({{"binding", s.binding}, {"stage", s.stage}, {"outcome", outcome}},
               static_cast<double>(n));
    }
  }
  w.family("factory_stage_workers", "Workers (consumer-group members) of a binding.",
           MetricType::kGauge);
  for (const auto& s : stats) w.sample({{"binding", s.binding}, {"stage", s.stage}}, s.workers);
  w.family("factory_stage_backpressure_paused",
           "1 while the binding holds polling because its output topic's consumers lag.",
           MetricType::kGauge);
  for (const auto& s : stats) w.sample({{"binding", s.binding}}, s.paused ? 1 : 0);
  w.family("factory_stage_backpressure_pauses_total", "Times a binding's worker paused polling.",
           MetricType::kCounter);
  for (const auto& s : stats) {
    w.sample({{"binding", s.binding}}, static_cast<double>(s.backpressure_pauses));
  }
  w.family("factory_stage_refused_total",
           "Events dead-lettered because a topic refused their output or route (no such topic, "
           "or a record over its max.message.bytes).",
           MetricType::kCounter);
  for (const auto& s : stats) w.sample({{"binding", s.binding}}, static_cast<double>(s.refused));
  w.family("factory_stage_dead_letters_by_reference_total",
           "Dead letters too big for the dead-letter topic, stored as a reference to the source "
           "record.",
           MetricType::kCounter);
  for (const auto& s : stats) {
    w.sample({{"binding", s.binding}}, static_cast<double>(s.letters_by_reference));
  }
  w.family("factory_stage_batch_failures_total",
           "Batches read again because the log or the store failed after the stage ran.",
           MetricType::kCounter);
  for (const auto& s : stats) {
    w.sample({{"binding", s.binding}}, static_cast<double>(s.batch_failures));
  }

  using State = runtime::CircuitBreaker::State;
  w.family("factory_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
           MetricType::kGauge);
  for (const auto& s : stats) {
    for (size_t i = 0; i < s.breakers.size() && i < s.breaker_names.size(); ++i) {
      const State st = s.breakers[i].state;
      w.sample({{"binding", s.binding}, {"breaker", s.breaker_names[i]}}, st == State::kClosed ? 0
                                                                          : st == State::kHalfOpen
                                                                              ? 1
                                                                              : 2);
    }
  }
  w.family("factory_circuit_breaker_opened_total", "Times the breaker opened.",
           MetricType::kCounter);
  for (const auto& s : stats) {
    for (size_t i = 0; i < s.breakers.size() && i < s.breaker_names.size(); ++i) {
      w.sample({{"binding", s.binding}, {"breaker", s.breaker_names[i]}},
               static_cast<double>(s.breakers[i].times_opened));
    }
  }
  w.family("factory_circuit_breaker_rejected_calls_total",
           "Calls the breaker refused while open or half-open.", MetricType::kCounter);
  for (const auto& s : stats) {
    for (size_t i = 0; i < s.breakers.size() && i < s.breaker_names.size(); ++i) {
      w.sample({{"binding", s.binding}, {"breaker", s.breaker_names[i]}},
               static_cast<double>(s.breakers[i].rejected_calls));
    }
  }
}

// The auto-approval switch and each DAG's error budget (Scheduler::error_budgets).
void collect_error_budgets(scheduler::Scheduler* sched, obs::Writer& w) {
  w.family("factory_auto_approval_paused",
           "1 while auto-approval is paused (by an error budget breach or an operator).",
           MetricType::kGauge);
  w.sample({}, sched->auto_approval_paused() ? 1 : 0);
  const std::vector<scheduler::ErrorBudgetState> budgets = sched->error_budgets();
  if (budgets.empty()) return;
  w.family("factory_error_budget_ratio",
           "Failed samples / samples in the DAG's error budget window (0 with none).",
           MetricType::kGauge);
  for (const auto& b : budgets) w.sample({{"dag", b.dag_id}}, b.ratio);
  w.family("factory_error_budget_samples", "Samples (e.g. gate verdicts) in the budget window.",
           MetricType::kGauge);
  for (const auto& b : budgets) w.sample({{"dag", b.dag_id}}, static_cast<double>(b.samples));
  w.family("factory_error_budget_max_failure_ratio",
           "The ratio above which the DAG's error budget is breached.", MetricType::kGauge);
  for (const auto& b : budgets) w.sample({{"dag", b.dag_id}}, b.spec.max_failure_ratio);
  w.family("factory_error_budget_in_breach", "1 while the DAG's error budget is breached.",
           MetricType::kGauge);
  for (const auto& b : budgets) w.sample({{"dag", b.dag_id}}, b.in_breach ? 1 : 0);
  w.family("factory_error_budget_breaches_total",
           "Times the DAG's error budget was breached (each triggered its postmortem DAG once).",
           MetricType::kCounter);
  for (const auto& b : budgets) w.sample({{"dag", b.dag_id}}, static_cast<double>(b.breaches));
}

void collect_daemon(ApiContext* ctx, obs::Writer& w) {
  w.family("factory_build_info", "Always 1; the labels describe the running factoryd.",
           MetricType::kGauge);
  w.sample({{"version", FACTORYD_VERSION}}, 1);
  w.family("factory_ready", "1 when /readyz answers ready (log, store and scheduler open).",
           MetricType::kGauge);
  w.sample({}, ctx->ready.load() ? 1 : 0);
  if (ctx->log) collect_log(ctx->log, w);
  if (ctx->store) collect_store(ctx, w);
  if (ctx->engine) collect_engine(ctx->engine, w);
  if (ctx->scheduler) collect_error_budgets(ctx->scheduler, w);
}

}  // namespace

void add_metrics_routes(Router* router, ApiContext* ctx) {
  router->add({.method = "GET",
               .pattern = "/metrics",
               .role = Role::kViewer,
               .handler = [ctx](const Request&) {
                 obs::Registry& registry = registry_or_default(ctx->metrics);
                 Response r;
                 r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                 r.body = registry.render([ctx](obs::Writer& w) { collect_daemon(ctx, w); });
                 return r;
               }});
}

void record_http_request(obs::Registry* registry, const RequestRecord& record) {
  obs::Registry& reg = registry_or_default(registry);
  static constexpr std::string_view kRequests = "factory_http_requests_total";
  static constexpr std::string_view kDuration = "factory_http_request_duration_seconds";
  const std::string_view route =
      record.route.empty() ? std::string_view("unmatched") : std::string_view(record.route);
  const std::string code = record.status >= 100 && record.status <= 599
                               ? std::to_string(record.status)
                               : std::string("other");
  reg.counter(kRequests, "HTTP requests answered, by route pattern, method and status code.",
              {"route", "method", "code"})
      .labels({route, method_label(record.method), code})
      ->inc();
  reg.histogram(kDuration, "Time to read, handle and answer a request, by route pattern.",
                {"route"})
      .labels({route})
      ->observe(record.duration_s);
}

std::string_view webhook_outcome_name(WebhookOutcome outcome) {
  switch (outcome) {
    case WebhookOutcome::kAccepted:
      return "accepted";
    case WebhookOutcome::kDuplicate:
      return "duplicate";
    case WebhookOutcome::kBadSignature:
      return "bad_signature";
    case WebhookOutcome::kInvalid:
      return "invalid";
    case WebhookOutcome::kRejected:
      return "rejected";
    case WebhookOutcome::kFailed:
      return "failed";
  }
  return "failed";
}

void record_webhook_delivery(obs::Registry* registry, std::string_view source,
                             WebhookOutcome outcome) {
  const std::string_view src = source == "github" || source == "jira" ? source : "other";
  registry_or_default(registry)
      .counter("factory_webhook_deliveries_total", "Webhook deliveries received, by outcome.",
               {"source", "outcome"})
      .labels({src, webhook_outcome_name(outcome)})
      ->inc();
}

}  // namespace factory::http
