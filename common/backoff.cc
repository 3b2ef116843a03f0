// Implements backoff.h.
#include "common/backoff.h"

#include <algorithm>

#include "absl/random/random.h"

namespace drover {

absl::Duration RetryBackoff(uint32_t retry) {
  const uint32_t doublings = std::min<uint32_t>(retry > 0 ? retry - 1 : 0, 10);
  const absl::Duration base = std::min(kMaxRetryBackoff, kFirstRetryBackoff * (1 << doublings));
  thread_local absl::BitGen random;
  return base * absl::Uniform(random, 0.5, 1.5);
}

}  // namespace drover
