// How big a job's chunks are and how many each worker slot holds in reserve,
// learned from the job's own measured run times (never carried over from
// another job).
//
// Automatic sizing (JobSpec.chunk_size 0) aims for chunks of about
// kTargetChunkTime and never more than a fair share of what is left: at most
// remaining / (2 x slots) items (guided self-scheduling), so chunks shrink
// towards the end of the job and the tail is short. Until the first result is
// measured a chunk is one item.
//
// Prefetch (chunks a slot holds beyond the one it runs) exists only to hide
// the round trip to the coordinator for short chunks: it is the number of
// chunks that fit in kPrefetchTime, 0 until a chunk has been measured, and
// at most kMaxJobReserve over all slots.
#ifndef DROVER_COORDINATOR_CHUNK_SIZER_H_
#define DROVER_COORDINATOR_CHUNK_SIZER_H_

#include <cstdint>

#include "absl/time/time.h"

namespace drover {

// Not thread-safe: owned by its Job.
class ChunkSizer {
 public:
  static constexpr absl::Duration kTargetChunkTime = absl::Milliseconds(25);
  static constexpr absl::Duration kPrefetchTime = absl::Milliseconds(20);
  static constexpr uint64_t kMaxAutoChunk = 1 << 20;
  static constexpr uint32_t kMaxPrefetchPerSlot = 1024;
  // A job's chunks in reserve over the whole cluster stay under this: more
  // hides no more round trips, and a wide window of chunks in flight costs the
  // coordinator cache misses and reordering (1,000 workers x 1,024 did). At
  // most a quarter of a stream-mode job's window (Job::kStreamWindowChunks):
  // results waiting for an earlier one to be delivered in order must not close
  // the window, or dispatch trickles a chunk per result delivered.
  static constexpr uint64_t kMaxJobReserve = 1 << 15;

  // `fixed_size` > 0: every chunk has that many items (the user's --chunk).
  explicit ChunkSizer(uint32_t fixed_size) : fixed_size_(fixed_size) {}

  bool automatic() const { return fixed_size_ == 0; }

  // A chunk of `items` items ran for `run_time`.
  void Record(uint64_t items, absl::Duration run_time);
  bool measured() const { return measured_items_ > 0; }

  // Items in the next chunk, when `remaining` items are not yet cut and
  // `slots` CPU slots (>= 1) can run the job. At least 1, at most `remaining`.
  uint64_t NextSize(uint64_t remaining, uint64_t slots) const;

  // Chunks each of `slots` slots may hold beyond the one it runs, for chunks of `size`.
  uint32_t PrefetchPerSlot(uint64_t size, uint64_t slots) const;

 private:
  const uint32_t fixed_size_;
  uint64_t measured_items_ = 0;
  double measured_ns_ = 0;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_CHUNK_SIZER_H_
