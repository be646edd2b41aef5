// ErrorBudget: the rolling window of one DAG's error budget (ErrorBudgetSpec in dag.h,
// `error_budget:` in docs/dags.md) and whether it is breached.
//
// The scheduler records a sample for each task instance of the budget's stage that succeeds
// (passed = the boolean `field` of its output), calls update() once per step, and acts on the
// transitions: kBreached (failures / samples > max_failure_ratio with at least min_samples in
// the window) triggers the postmortem DAG and pauses auto-approval; kRecovered ends the
// breach, so the next crossing is a new breach. Between the two there is no flapping: a
// breach ends only when a verdict says the ratio is back at or below the maximum (at least
// min_samples, ratio <= max) or when the window is empty; fewer samples than min_samples keep
// the current state.
//
// The window is kept in kBuckets buckets of window_ms / kBuckets (at least 1 ms), so its state
// has a fixed size however many samples arrive: a sample counts while its bucket is one of the
// last kBuckets, i.e. for between 59/60 and all of the window. encode()/decode() write and read
// that state (the buckets, the breach flag and count) as a small JSON text the scheduler keeps
// in scheduler_kv under kv_key(dag_id), in the same transaction as the step that changed it: a
// restart keeps the window and the breach, so it neither forgets samples nor triggers a breach
// twice.
//
// Not thread-safe; the owner (the scheduler's loop) serializes. ErrorBudgetState is a value.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "factory/status.h"
#include "scheduler/dag.h"
#include "store/meta_store.h"

namespace factory::scheduler {

// One budget as the API, the CLI and /metrics show it.
struct ErrorBudgetState {
  std::string dag_id;
  ErrorBudgetSpec spec;
  int64_t samples = 0;   // in the window
  int64_t failures = 0;  // of them
  double ratio = 0;      // failures / samples; 0 with no samples
  bool in_breach = false;
  int64_t breaches = 0;                // since the DAG's budget was first kept
  int64_t last_breach_ms = 0;          // when the last breach began; 0 never
  std::string last_postmortem_run_id;  // the run the last breach triggered; "" none
};

class ErrorBudget {
 public:
  static constexpr int kBuckets = 60;

  ErrorBudget(std::string dag_id, const ErrorBudgetSpec& spec);

  // The scheduler_kv key of a DAG's budget state: "scheduler.error_budget.<dag_id>".
  static std::string kv_key(std::string_view dag_id);

  // Counts one verdict at at_ms (a time before the newest sample counts in the newest bucket).
  void record(int64_t at_ms, bool passed);
  enum class Change { kNone, kBreached, kRecovered };
  // Drops the buckets that left the window at now_ms, recomputes the counts and decides the
  // breach (see above). kBreached also counts the breach and stamps last_breach_ms.
  Change update(int64_t now_ms);
  // Remembers the run a breach triggered (shown in the state, kept by encode()).
  void set_postmortem_run(std::string run_id);

  // As of the last update().
  ErrorBudgetState state() const;
  // True when record(), a transition or set_postmortem_run() changed what encode() writes
  // since the last take_dirty(); clears the flag.
  bool take_dirty();

  // {"v":1,"bucket_ms":..,"buckets":[[index,samples,failures],..],"in_breach":..,"breaches":..,
  //  "last_breach_ms":..,"last_postmortem_run_id":..}
  std::string encode() const;
  // Restores what encode() wrote, re-bucketing when the window (so bucket_ms) changed since.
  // InvalidArgument (state unchanged) for text that is not such a JSON object.
  Status decode(std::string_view text);

 private:
  struct Bucket {
    int64_t index;  // at_ms / bucket_ms
    int64_t samples;
    int64_t failures;
  };
  void add(int64_t index, int64_t samples, int64_t failures);

  std::string dag_id_;
  ErrorBudgetSpec spec_;
  int64_t bucket_ms_;
  std::deque<Bucket> buckets_;  // ascending index
  int64_t samples_ = 0;
  int64_t failures_ = 0;
  bool in_breach_ = false;
  int64_t breaches_ = 0;
  int64_t last_breach_ms_ = 0;
  std::string last_postmortem_run_id_;
  bool dirty_ = false;
};

// A failure ratio as people read it: 0.0204 -> "2.04%", 0.05 -> "5%", 1/3 -> "33.3%".
std::string percent_text(double ratio);

// The budget of `dag` (which has one) as last stored in *store; an empty window when nothing
// is stored, or when the stored state is unreadable, which *unreadable (when given) then says.
// Errors: the store's.
Result<ErrorBudget> load_error_budget(store::MetaStore* store, const Dag& dag,
                                      Status* unreadable = nullptr);

// The budgets of `dags` (those with one) as stored in *store, evaluated at now_ms: what a
// scheduler would report, read without one (the CLI beside a stopped daemon). Unreadable
// stored state reads as an empty window. Errors: the store's.
Result<std::vector<ErrorBudgetState>> read_error_budgets(store::MetaStore* store,
                                                         const std::vector<Dag>& dags,
                                                         int64_t now_ms);

}  // namespace factory::scheduler
