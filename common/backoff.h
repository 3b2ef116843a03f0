// The one retry backoff drover uses (task retries on CPU slots, gRPC call
// retries on the I/O engine): 100 ms before the first retry, doubling, at most
// 5 s, times a random factor in [0.5, 1.5) so that retries spread out.
#ifndef DROVER_COMMON_BACKOFF_H_
#define DROVER_COMMON_BACKOFF_H_

#include <cstdint>

#include "absl/time/time.h"

namespace drover {

inline constexpr absl::Duration kFirstRetryBackoff = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxRetryBackoff = absl::Seconds(5);

// The wait before retry number `retry` (1 for the first). Thread-safe.
absl::Duration RetryBackoff(uint32_t retry);

}  // namespace drover

#endif  // DROVER_COMMON_BACKOFF_H_
