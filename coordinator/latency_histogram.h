// A fixed-bucket histogram of durations in seconds, cheap to update on the
// loop thread and read whole for Prometheus (coordinator/metrics.h). Bounds
// run from 1 ms to 5 minutes, wide enough for chunk run times and fsyncs.
#ifndef DROVER_COORDINATOR_LATENCY_HISTOGRAM_H_
#define DROVER_COORDINATOR_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"

namespace drover {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kUpperBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                          0.25,  0.5,    1,     2.5,  10,    60,   300};

  void Observe(absl::Duration duration) {
    const double seconds = absl::ToDoubleSeconds(duration);
    size_t bucket = 0;
    while (bucket < kUpperBounds.size() && seconds > kUpperBounds[bucket]) ++bucket;
    ++counts_[bucket];
    sum_seconds_ += seconds;
  }
  // Observations in bucket i (not cumulative); the last bucket is above every bound.
  const std::array<uint64_t, kUpperBounds.size() + 1>& counts() const { return counts_; }
  double sum_seconds() const { return sum_seconds_; }

 private:
  std::array<uint64_t, kUpperBounds.size() + 1> counts_{};
  double sum_seconds_ = 0;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_LATENCY_HISTOGRAM_H_
