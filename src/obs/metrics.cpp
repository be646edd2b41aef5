#include "obs/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "obs/logger.h"

namespace factory::obs {
namespace {

constexpr double kLatencyBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
constexpr double kLongBuckets[] = {0.1, 0.5, 1,    5,    10,   30,    60,
                                   300, 600, 1800, 3600, 7200, 21600, 86400};

// A misuse of the registry is a bug in factoryd, found by the first test that registers it.
[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "factoryd: metrics: %s\n", what.c_str());
  std::abort();
}

template <typename T>
constexpr MetricType type_of() {
  if constexpr (std::is_same_v<T, Counter>) return MetricType::kCounter;
  if constexpr (std::is_same_v<T, Gauge>) return MetricType::kGauge;
  return MetricType::kHistogram;
}

double value_of(const Counter& c) { return static_cast<double>(c.value()); }
double value_of(const Gauge& g) { return g.value(); }

void append_label(std::string* out, std::string_view name, std::string_view value, bool* first) {
  out->push_back(*first ? '{' : ',');
  *first = false;
  out->append(name);
  out->append("=\"");
  out->append(escape_label_value(value));
  out->push_back('"');
}

}  // namespace

std::string_view metric_type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::span<const double> latency_buckets() { return kLatencyBuckets; }
std::span<const double> long_duration_buckets() { return kLongBuckets; }

// ---------------------------------------------------------------------------------------------
// Histogram

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // The first bound >= v: buckets are "less than or equal".
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Writer

struct Writer::Entry {
  std::string help;
  MetricType type;
  std::string samples;
  std::string_view name;  // the map key
};

Writer::Writer() = default;
Writer::~Writer() = default;

void Writer::family(std::string_view name, std::string_view help, MetricType type) {
  if (!valid_metric_name(name)) die("invalid metric name '" + std::string(name) + "'");
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    auto e = std::make_unique<Entry>();
    e->help = std::string(help);
    e->type = type;
    it = entries_.emplace(std::string(name), std::move(e)).first;
    it->second->name = it->first;
  } else if (it->second->type != type) {
    warn("metrics: a collector redeclared a family with another type; its samples are dropped",
         {{"metric", name},
          {"type", metric_type_name(it->second->type)},
          {"redeclared_as", metric_type_name(type)}});
    current_ = nullptr;
    return;
  }
  current_ = it->second.get();
}

void Writer::sample(Labels labels, double value) {
  if (!current_) return;
  std::string& out = current_->samples;
  out.append(current_->name);
  bool first = true;
  for (const auto& [name, v] : labels) {
    if (!valid_label_name(name)) {
      die("invalid label name '" + std::string(name) + "' on " + std::string(current_->name));
    }
    append_label(&out, name, v, &first);
  }
  if (!first) out.push_back('}');
  out.push_back(' ');
  out.append(format_value(value));
  out.push_back('\n');
}

void Writer::sample_row(std::string_view suffix, std::span<const std::string> names,
                        std::span<const std::string> values, std::string_view le, double value) {
  if (!current_) return;
  std::string& out = current_->samples;
  out.append(current_->name);
  out.append(suffix);
  bool first = true;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    append_label(&out, names[i], values[i], &first);
  }
  if (!le.empty()) append_label(&out, "le", le, &first);
  if (!first) out.push_back('}');
  out.push_back(' ');
  out.append(format_value(value));
  out.push_back('\n');
}

std::string Writer::finish() {
  std::string out;
  for (const auto& [name, e] : entries_) {
    if (e->samples.empty()) continue;
    out += "# HELP " + name + " " + escape_help(e->help) + "\n";
    out += "# TYPE " + name + " " + std::string(metric_type_name(e->type)) + "\n";
    out += e->samples;
  }
  current_ = nullptr;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Families

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : FamilyBase(std::move(name), std::move(help), type_of<T>(), std::move(label_names)),
      bounds_(std::move(bounds)) {
  if (label_names_.empty()) get();  // an unlabelled metric is exposed (as 0) from the start
}

template <typename T>
T* Family<T>::labels(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size()) {
    die(name_ + " has " + std::to_string(label_names_.size()) + " labels, given " +
        std::to_string(values.size()) + " values");
  }
  base::MutexLock lock(&mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return it->second.get();
  std::unique_ptr<T> child;
  if constexpr (std::is_same_v<T, Histogram>) {
    child = std::make_unique<Histogram>(std::span<const double>(bounds_));
  } else {
    child = std::make_unique<T>();
  }
  T* p = child.get();
  children_.emplace(std::vector<std::string>(values.begin(), values.end()), std::move(child));
  return p;
}

template <typename T>
void Family<T>::collect(Writer& w) const {
  w.family(name_, help_, type_);
  base::MutexLock lock(&mu_);
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      Histogram::Snapshot s = child->snapshot();
      for (size_t i = 0; i < bounds_.size(); ++i) {
        w.sample_row("_bucket", label_names_, values, format_value(bounds_[i]),
                     static_cast<double>(s.cumulative[i]));
      }
      w.sample_row("_bucket", label_names_, values, "+Inf", static_cast<double>(s.count));
      w.sample_row("_sum", label_names_, values, "", s.sum);
      w.sample_row("_count", label_names_, values, "", static_cast<double>(s.count));
    } else {
      w.sample_row("", label_names_, values, "", value_of(*child));
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---------------------------------------------------------------------------------------------
// Registry

Registry::Registry() = default;
Registry::~Registry() = default;

template <typename T>
Family<T>& Registry::get_or_add(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names, std::vector<double> bounds) {
  const std::string what = "metric '" + std::string(name) + "'";
  if (!valid_metric_name(name)) die(what + ": invalid name");
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!valid_label_name(l)) die(what + ": invalid label name '" + l + "'");
    if (type_of<T>() == MetricType::kHistogram && l == "le") die(what + ": label 'le' is reserved");
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == l) die(what + ": label '" + l + "' given twice");
    }
  }
  if (type_of<T>() == MetricType::kHistogram) {
    if (bounds.empty()) die(what + ": a histogram needs at least one bucket bound");
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        die(what + ": bucket bounds must be finite and strictly increasing");
      }
    }
  }
  base::MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    auto* f = dynamic_cast<Family<T>*>(it->second.get());
    if (!f) {
      die(what + " registered again as a " + std::string(metric_type_name(type_of<T>())) +
          "; it is a " + std::string(metric_type_name(it->second->type())));
    }
    if (f->label_names() != label_names) die(what + " registered again with other label names");
    if (f->bounds() != bounds) die(what + " registered again with other bucket bounds");
    return *f;
  }
  auto f = std::make_unique<Family<T>>(std::string(name), std::string(help), std::move(label_names),
                                       std::move(bounds));
  Family<T>* p = f.get();
  families_.emplace(std::string(name), std::move(f));
  return *p;
}

Family<Counter>& Registry::counter(std::string_view name, std::string_view help,
                                   std::vector<std::string> label_names) {
  return get_or_add<Counter>(name, help, std::move(label_names), {});
}

Family<Gauge>& Registry::gauge(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names) {
  return get_or_add<Gauge>(name, help, std::move(label_names), {});
}

Family<Histogram>& Registry::histogram(std::string_view name, std::string_view help,
                                       std::vector<std::string> label_names,
                                       std::span<const double> bounds) {
  return get_or_add<Histogram>(name, help, std::move(label_names),
                               std::vector<double>(bounds.begin(), bounds.end()));
}

uint64_t Registry::add_collector(Collector fn) {
  base::MutexLock lock(&collect_mu_);
  uint64_t id = next_collector_id_++;
  collectors_.emplace(id, std::move(fn));
  return id;
}

void Registry::remove_collector(uint64_t id) {
  base::MutexLock lock(&collect_mu_);
  collectors_.erase(id);
}

std::string Registry::render(const Collector& extra) const {
  Writer w;
  std::vector<const FamilyBase*> families;
  {
    base::MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& [name, f] : families_) families.push_back(f.get());
  }
  // Families are never removed, so the pointers outlive the lock.
  for (const FamilyBase* f : families) f->collect(w);
  {
    base::MutexLock lock(&collect_mu_);
    for (const auto& [id, fn] : collectors_) fn(w);
  }
  if (extra) extra(w);
  return w.finish();
}

Registry& default_registry() {
  static Registry* registry = new Registry();  // never destroyed: recorded into until exit
  return *registry;
}

}  // namespace factory::obs
