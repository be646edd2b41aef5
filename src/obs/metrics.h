// Prometheus metrics: a small registry of counters, gauges and histograms rendered in the text
// exposition format 0.0.4 (what GET /metrics answers). The shape is prometheus-cpp's, much
// smaller: a Family has a name, help text and fixed label NAMES; its children, one per tuple of
// label VALUES, are created on first use and live as long as the registry.
//
// Hot paths look a child up once and keep the pointer; recording is then one relaxed atomic
// (Counter::inc, Gauge::set) or two (Histogram::observe) with no lock:
//
//   auto& appends = obs::default_registry().counter(
//       "factory_log_appends_total", "Append calls that succeeded.", {"topic"});
//   obs::Counter* c = appends.labels({"jira-events"});  // takes the family's mutex; cache it
//   c->inc();                                           // lock-free
//
// Values computed at scrape time (end offsets, lag, runs by state) come from collectors, which
// write whole families through a Writer when render() runs.
//
// Naming (checked where cheap, by convention otherwise): a `factory_` prefix, base units
// (seconds, bytes), `_total` on counters, `_seconds` on durations. Label values must come from a
// bounded set (topic, binding, DAG, state names from config): never run ids, ticket ids or raw
// paths, since every distinct tuple is a series kept forever.
//
// Why a process-wide default registry: the log, the runtime and the scheduler record from deep
// inside their hot paths, and each is also used without a daemon (CLI commands, tests,
// benchmarks). Threading a Registry* through every constructor and options struct would touch
// every caller for no gain: a process exposes one /metrics. default_registry() is that one;
// components record into it unconditionally (cheaply), and only the daemon renders it. Tests
// that need isolation make their own Registry.
//
// Thread-safety: everything is safe to call concurrently. Registering a family and creating a
// child take a mutex; recording into a child does not. render() may run concurrently with
// recording: counters it reads are each exact but not a cross-metric snapshot; a histogram's
// buckets, _count and +Inf are always consistent with each other.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/mutex.h"

namespace factory::obs {

enum class MetricType { kCounter, kGauge, kHistogram };
std::string_view metric_type_name(MetricType type);  // "counter", "gauge", "histogram"

// A monotonically increasing integer count. Thread-safe, lock-free.
class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (a timestamp, a state, a size). Thread-safe, lock-free.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, inclusive: v <= le) plus their sum.
// Thread-safe, lock-free. Each observation lands in exactly one bucket; cumulative counts, +Inf
// and _count are derived from one read of every bucket, so they always agree.
class Histogram {
 public:
  // *bounds must outlive the Histogram (its Family owns them); strictly increasing, finite.
  explicit Histogram(std::span<const double> bounds);

  void observe(double v);  // NaN is ignored

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;
  std::span<const double> bounds() const { return bounds_; }

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (the last is +Inf)
  std::atomic<double> sum_{0};
};

// Bucket bounds in seconds: 100 us .. 10 s, for request, append and stage-call latencies.
std::span<const double> latency_buckets();
// Bucket bounds in seconds: 100 ms .. 1 day, for task tries and DAG runs.
std::span<const double> long_duration_buckets();

// {name, value} pairs for Writer::sample.
using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Builds the exposition text. Collectors receive one from render(); a family is declared, then
// its samples follow:
//   w.family("factory_log_end_offset", "Next offset to be written.", MetricType::kGauge);
//   w.sample({{"topic", t}, {"partition", p}}, end);
// Declaring a family already written with the same type appends to it; with another type its
// samples are dropped (and a warning logged), since the output would be invalid. Not
// thread-safe; owned by one render() call.
class Writer {
 public:
  Writer();
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void family(std::string_view name, std::string_view help, MetricType type);
  // A sample of the current family. Label names must be valid (aborts otherwise); values are
  // escaped here.
  void sample(Labels labels, double value);
  // A sample named <family><suffix> with labels as parallel lists and an optional `le` label
  // ("" = none): how families write their children and histogram series.
  void sample_row(std::string_view suffix, std::span<const std::string> names,
                  std::span<const std::string> values, std::string_view le, double value);

  // Families sorted by name: HELP, TYPE, then the samples; families without samples omitted.
  std::string finish();

 private:
  struct Entry;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
  Entry* current_ = nullptr;  // null: samples are dropped (conflicting redeclaration)
};

using Collector = std::function<void(Writer&)>;

// Text helpers (exposed for the validator in tests and for collectors).
std::string escape_label_value(std::string_view v);  // \ " and newline escaped
std::string escape_help(std::string_view v);         // \ and newline escaped
std::string format_value(double v);                  // shortest round-trip; +Inf, -Inf, NaN
bool valid_metric_name(std::string_view name);       // [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_label_name(std::string_view name);        // [a-zA-Z_][a-zA-Z0-9_]*, not "__" prefixed

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  virtual void collect(Writer& w) const = 0;

 protected:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// One metric name and its children. labels() returns the child for a tuple of label values,
// creating it on first use; the pointer stays valid as long as the Registry. Passing a number
// of values different from the number of label names is a programming error (aborts).
template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {});

  T* labels(std::initializer_list<std::string_view> values) {
    return labels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  T* labels(std::span<const std::string_view> values);
  // The child of a family without labels (created with the family).
  T* get() { return labels(std::span<const std::string_view>()); }

  const std::vector<double>& bounds() const { return bounds_; }
  void collect(Writer& w) const override;

 private:
  // Orders label-value tuples; transparent, so a lookup needs no std::string copies.
  struct Less {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(
          a.begin(), a.end(), b.begin(), b.end(),
          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };

  const std::vector<double> bounds_;  // histograms only
  mutable base::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>, Less> children_ GUARDED_BY(mu_);
};

// The families and collectors of one process (or one test).
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Return the family with that name, registering it on first use. Registering the same name
  // again with the same type and label names (and bounds) returns the first family, so
  // components may register from several places; anything else (another type or labels, an
  // invalid name, bounds not strictly increasing) is a programming error and aborts naming it.
  Family<Counter>& counter(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string_view name, std::string_view help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names,
                               std::span<const double> bounds = latency_buckets());

  // Adds a scrape-time collector, called by every render() until removed; returns its id.
  // A collector must not add or remove collectors. remove_collector() waits for a render in
  // progress, so after it returns the collector is never called again (its captures may die).
  uint64_t add_collector(Collector fn);
  void remove_collector(uint64_t id);

  // The exposition text (format 0.0.4) of every family, every collector and then `extra` (a
  // collector owned by the caller, e.g. the /metrics handler's view of the daemon).
  std::string render(const Collector& extra = {}) const;

 private:
  template <typename T>
  Family<T>& get_or_add(std::string_view name, std::string_view help,
                        std::vector<std::string> label_names, std::vector<double> bounds);

  mutable base::Mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_ GUARDED_BY(mu_);

  mutable base::Mutex collect_mu_;  // held while collectors run (see remove_collector)
  uint64_t next_collector_id_ GUARDED_BY(collect_mu_) = 1;
  std::map<uint64_t, Collector> collectors_ GUARDED_BY(collect_mu_);
};

// The process-wide registry (see the header comment for why). Never destroyed.
Registry& default_registry();

}  // namespace factory::obs
