// Per-job cancellation flags, shared by the job's queued and running chunks
// (SlotPool, IoEngine). An entry lives only while some chunk holds its flag,
// so a worker that sees millions of jobs keeps as many entries as it has work.
#ifndef DROVER_WORKER_JOB_FLAGS_H_
#define DROVER_WORKER_JOB_FLAGS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"

namespace drover {

// Not thread-safe: its owner guards it with the mutex that guards its chunks.
class JobFlags {
 public:
  using Flag = std::shared_ptr<std::atomic<bool>>;

  // The job's flag (made unset if there is none). Entries no chunk holds any
  // more are dropped now and then.
  Flag For(uint64_t job_id) {
    if (flags_.size() >= sweep_at_) {
      for (auto it = flags_.begin(); it != flags_.end();) {
        // Copies are made only here, under the owner's lock: 1 means nobody else holds it.
        if (it->second.use_count() == 1) {
          flags_.erase(it++);
        } else {
          ++it;
        }
      }
      sweep_at_ = std::max<size_t>(kFirstSweep, 2 * flags_.size());
    }
    Flag& flag = flags_[job_id];
    if (flag == nullptr) flag = std::make_shared<std::atomic<bool>>(false);
    return flag;
  }

  // Sets the job's flag (its chunks stop) and forgets it: chunks of this id
  // that come later (from a new coordinator) get a fresh one.
  void Cancel(uint64_t job_id) {
    auto it = flags_.find(job_id);
    if (it == flags_.end()) return;
    it->second->store(true);
    flags_.erase(it);
  }

  void CancelAll() {
    for (auto& [job_id, flag] : flags_) flag->store(true);
    flags_.clear();
  }

  size_t size() const { return flags_.size(); }

 private:
  static constexpr size_t kFirstSweep = 64;
  absl::flat_hash_map<uint64_t, Flag> flags_;
  size_t sweep_at_ = kFirstSweep;
};

}  // namespace drover

#endif  // DROVER_WORKER_JOB_FLAGS_H_
