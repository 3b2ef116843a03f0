// Keeps a job's paced starts (--rate) from bunching after a stall.
//
// The I/O engine plans a job's starts evenly at the worker's share of its
// rate. When the machine is busy or a thread stalls, several planned starts
// come due at once, and without a check they would all go together: a burst
// of up to a chunk. StartSpacing lets a start go only when at least 3/4 of an
// interval has passed since the job's previous start on this worker, so a
// stall is made up at 4/3 of the rate at most, never in a burst.
#ifndef DROVER_WORKER_START_SPACING_H_
#define DROVER_WORKER_START_SPACING_H_

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace drover {

// Not thread-safe: the owner serialises calls (the engine under its mutex,
// the HTTP driver on its thread).
class StartSpacing {
 public:
  // The closest two starts of a job may be, as a share of its interval.
  static constexpr double kMinShareOfInterval = 0.75;

  // A planned start of `job_id`, paced at `rate` (> 0) starts a second, is due
  // at `now`. Returns true, and records the start, if it may go now; false if
  // it must wait, with `*wait_until` set to when it may go.
  bool MayStart(uint64_t job_id, double rate, absl::Time now, absl::Time* wait_until);

  // Jobs remembered. Spent entries (those that no longer delay anything)
  // are dropped as new ones come, so this stays near the jobs being paced.
  size_t size() const { return last_.size(); }

 private:
  struct Last {
    absl::Time start;
    absl::Duration min_gap;
  };
  absl::flat_hash_map<uint64_t, Last> last_;
  size_t prune_above_ = 16;
};

}  // namespace drover

#endif  // DROVER_WORKER_START_SPACING_H_
