#include "runtime/mark_pruner.h"

#include <algorithm>

namespace factory::runtime {

std::optional<int64_t> MarkPruner::observe(int64_t now_ms, const Positions& starts,
                                           const Positions& ends, int64_t keep_ms) {
  // A snapshot is passed when retention dropped, in every partition it noted, everything below
  // its end; a partition no longer there (its topic deleted) has dropped everything. The newest
  // passed snapshot decides, and the ones before it are no longer needed.
  auto passed = [&](const Snapshot& s) {
    for (const auto& [tp, end] : s.ends) {
      auto it = starts.find(tp);
      if (it != starts.end() && it->second < end) return false;
    }
    return true;
  };
  for (size_t i = snapshots_.size(); i-- > 0;) {
    if (passed(snapshots_[i])) {
      cutoff_ = snapshots_[i].at_ms - kClockMarginMs;
      snapshots_.erase(snapshots_.begin(), snapshots_.begin() + static_cast<long>(i) + 1);
      break;
    }
  }
  snapshots_.push_back({now_ms, ends});
  while (snapshots_.size() > kMaxSnapshots) snapshots_.pop_front();
  if (!cutoff_) return std::nullopt;
  return std::min(*cutoff_, now_ms - keep_ms);
}

}  // namespace factory::runtime
