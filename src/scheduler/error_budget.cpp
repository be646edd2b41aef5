#include "scheduler/error_budget.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include <boost/json.hpp>

namespace factory::scheduler {

namespace json = boost::json;

namespace {

constexpr char kKvPrefix[] = "scheduler.error_budget.";

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t int_at(const json::object& o, std::string_view key, bool* ok) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_int64()) {
    *ok = false;
    return 0;
  }
  return v->as_int64();
}

}  // namespace

ErrorBudget::ErrorBudget(std::string dag_id, const ErrorBudgetSpec& spec)
    : dag_id_(std::move(dag_id)),
      spec_(spec),
      bucket_ms_(std::max<int64_t>(1, spec.window_ms / kBuckets)) {}

std::string ErrorBudget::kv_key(std::string_view dag_id) { return kKvPrefix + std::string(dag_id); }

void ErrorBudget::add(int64_t index, int64_t samples, int64_t failures) {
  if (!buckets_.empty() && index <= buckets_.back().index) {
    // The newest bucket, or (a clock that went back, a re-bucketed state) an older one.
    auto it = std::lower_bound(buckets_.begin(), buckets_.end(), index,
                               [](const Bucket& b, int64_t i) { return b.index < i; });
    if (it != buckets_.end() && it->index == index) {
      it->samples += samples;
      it->failures += failures;
    } else {
      buckets_.insert(it, {index, samples, failures});
    }
  } else {
    buckets_.push_back({index, samples, failures});
  }
  samples_ += samples;
  failures_ += failures;
}

void ErrorBudget::record(int64_t at_ms, bool passed) {
  int64_t index = floor_div(at_ms, bucket_ms_);
  if (!buckets_.empty()) index = std::max(index, buckets_.back().index);
  add(index, 1, passed ? 0 : 1);
  dirty_ = true;
}

ErrorBudget::Change ErrorBudget::update(int64_t now_ms) {
  const int64_t oldest = floor_div(now_ms, bucket_ms_) - kBuckets + 1;
  while (!buckets_.empty() && buckets_.front().index < oldest) {
    samples_ -= buckets_.front().samples;
    failures_ -= buckets_.front().failures;
    buckets_.pop_front();
    dirty_ = true;  // keeps the stored state small; not needed for correctness
  }
  const bool verdict = samples_ >= spec_.min_samples;
  const double ratio = samples_ > 0 ? static_cast<double>(failures_) / samples_ : 0;
  if (!in_breach_ && verdict && ratio > spec_.max_failure_ratio) {
    in_breach_ = true;
    ++breaches_;
    last_breach_ms_ = now_ms;
    last_postmortem_run_id_.clear();
    dirty_ = true;
    return Change::kBreached;
  }
  if (in_breach_ && (samples_ == 0 || (verdict && ratio <= spec_.max_failure_ratio))) {
    in_breach_ = false;
    dirty_ = true;
    return Change::kRecovered;
  }
  return Change::kNone;
}

void ErrorBudget::set_postmortem_run(std::string run_id) {
  last_postmortem_run_id_ = std::move(run_id);
  dirty_ = true;
}

ErrorBudgetState ErrorBudget::state() const {
  ErrorBudgetState s;
  s.dag_id = dag_id_;
  s.spec = spec_;
  s.samples = samples_;
  s.failures = failures_;
  s.ratio = samples_ > 0 ? static_cast<double>(failures_) / samples_ : 0;
  s.in_breach = in_breach_;
  s.breaches = breaches_;
  s.last_breach_ms = last_breach_ms_;
  s.last_postmortem_run_id = last_postmortem_run_id_;
  return s;
}

bool ErrorBudget::take_dirty() { return std::exchange(dirty_, false); }

std::string ErrorBudget::encode() const {
  json::array buckets;
  for (const Bucket& b : buckets_) buckets.push_back(json::array{b.index, b.samples, b.failures});
  json::object o;
  o["v"] = 1;
  o["bucket_ms"] = bucket_ms_;
  o["buckets"] = std::move(buckets);
  o["in_breach"] = in_breach_;
  o["breaches"] = breaches_;
  o["last_breach_ms"] = last_breach_ms_;
  o["last_postmortem_run_id"] = last_postmortem_run_id_;
  return json::serialize(o);
}

Status ErrorBudget::decode(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("the stored error budget of DAG '" + dag_id_ +
                                    "' is unreadable (" + std::string(why) + ")");
  };
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return bad("not a JSON object");
  const json::object& o = v.get_object();
  bool ok = true;
  const int64_t bucket_ms = int_at(o, "bucket_ms", &ok);
  const int64_t breaches = int_at(o, "breaches", &ok);
  const int64_t last_breach_ms = int_at(o, "last_breach_ms", &ok);
  const json::value* in_breach = o.if_contains("in_breach");
  const json::value* list = o.if_contains("buckets");
  const json::value* run = o.if_contains("last_postmortem_run_id");
  if (!ok || bucket_ms <= 0 || !in_breach || !in_breach->is_bool() || !list || !list->is_array() ||
      !run || !run->is_string()) {
    return bad("missing or mistyped fields");
  }
  std::vector<Bucket> read;
  for (const json::value& b : list->get_array()) {
    if (!b.is_array() || b.get_array().size() != 3) return bad("a bucket is not [i, n, f]");
    const json::array& a = b.get_array();
    if (!a[0].is_int64() || !a[1].is_int64() || !a[2].is_int64() || a[2].get_int64() < 0 ||
        a[1].get_int64() < a[2].get_int64()) {
      return bad("a bucket's counts are not 0 <= failures <= samples");
    }
    read.push_back({a[0].get_int64(), a[1].get_int64(), a[2].get_int64()});
  }
  buckets_.clear();
  samples_ = failures_ = 0;
  for (const Bucket& b : read) {
    // Another window since: each old bucket moves to the new bucket holding its start.
    int64_t index = bucket_ms == bucket_ms_ ? b.index : floor_div(b.index * bucket_ms, bucket_ms_);
    add(index, b.samples, b.failures);
  }
  in_breach_ = in_breach->get_bool();
  breaches_ = breaches;
  last_breach_ms_ = last_breach_ms;
  last_postmortem_run_id_ = std::string(run->get_string());
  dirty_ = false;
  return Status();
}

std::string percent_text(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g%%", ratio * 100);
  return buf;
}

Result<ErrorBudget> load_error_budget(store::MetaStore* store, const Dag& dag, Status* unreadable) {
  ErrorBudget budget(dag.dag_id, *dag.error_budget);
  auto kv = store->get_kv(ErrorBudget::kv_key(dag.dag_id));
  if (!kv.ok()) return kv.status();
  if (*kv) {
    Status s = budget.decode(**kv);
    if (unreadable) *unreadable = s;
  }
  return budget;
}

Result<std::vector<ErrorBudgetState>> read_error_budgets(store::MetaStore* store,
                                                         const std::vector<Dag>& dags,
                                                         int64_t now_ms) {
  std::vector<ErrorBudgetState> out;
  for (const Dag& d : dags) {
    if (!d.error_budget) continue;
    auto loaded = load_error_budget(store, d);  // unreadable: an empty window, as the scheduler
    if (!loaded.ok()) return loaded.status();
    ErrorBudget& budget = *loaded;
    // Only the window moves here: a breach begins or ends in the scheduler, which acts on it.
    ErrorBudgetState before = budget.state();
    (void)budget.update(now_ms);
    ErrorBudgetState s = budget.state();
    s.in_breach = before.in_breach;
    s.breaches = before.breaches;
    s.last_breach_ms = before.last_breach_ms;
    s.last_postmortem_run_id = before.last_postmortem_run_id;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace factory::scheduler
