// Implements start_spacing.h.
#include "worker/start_spacing.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"

namespace drover {

bool StartSpacing::MayStart(uint64_t job_id, double rate, absl::Time now, absl::Time* wait_until) {
  const absl::Duration min_gap = absl::Seconds(kMinShareOfInterval / rate);
  auto it = last_.find(job_id);
  if (it != last_.end() && now < it->second.start + it->second.min_gap) {
    *wait_until = it->second.start + it->second.min_gap;
    return false;
  }
  last_[job_id] = {now, min_gap};
  if (last_.size() > prune_above_) {
    // An entry whose gap has passed delays nothing: forgetting it changes no answer.
    absl::erase_if(last_, [&](const auto& entry) { return entry.second.start + entry.second.min_gap <= now; });
    prune_above_ = std::max<size_t>(16, 2 * last_.size());
  }
  return true;
}

}  // namespace drover
