// Tests coordinator/chunk_sizer.h: automatic chunk sizes from measured time,
// guided self-scheduling near the end, and prefetch that starts at zero.
#include "coordinator/chunk_sizer.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(ChunkSizer, AFixedSizeIsKeptButNeverPastTheEnd) {
  ChunkSizer sizer(100);
  EXPECT_FALSE(sizer.automatic());
  EXPECT_EQ(sizer.NextSize(1000, 4), 100u);
  EXPECT_EQ(sizer.NextSize(30, 4), 30u);
}

TEST(ChunkSizer, AutomaticSizesStartAtOneItemUntilMeasured) {
  ChunkSizer sizer(0);
  EXPECT_EQ(sizer.NextSize(1'000'000, 2), 1u);
  EXPECT_EQ(sizer.PrefetchPerSlot(1, 2), 0u);  // nothing held in reserve before a measurement
}

TEST(ChunkSizer, ChunksTakeAboutTheTargetTime) {
  ChunkSizer sizer(0);
  sizer.Record(10, absl::Microseconds(100));  // 10 us per item
  const uint64_t expected = ChunkSizer::kTargetChunkTime / absl::Microseconds(10);
  EXPECT_EQ(sizer.NextSize(100'000'000, 2), expected);
}

TEST(ChunkSizer, SlowItemsGetChunksOfOne) {
  ChunkSizer sizer(0);
  sizer.Record(1, absl::Seconds(1));
  EXPECT_EQ(sizer.NextSize(1000, 2), 1u);
  EXPECT_EQ(sizer.PrefetchPerSlot(1, 2), 0u);  // a 1 s chunk is never held in reserve
}

TEST(ChunkSizer, ChunksShrinkTowardsTheEndOfTheJob) {
  ChunkSizer sizer(0);
  sizer.Record(1'000'000, absl::Milliseconds(1));  // 1 ns per item: time alone would allow the maximum
  EXPECT_EQ(sizer.NextSize(100'000'000, 4), ChunkSizer::kMaxAutoChunk);
  EXPECT_EQ(sizer.NextSize(8000, 4), 1000u);  // at most remaining / (2 x slots)
  EXPECT_EQ(sizer.NextSize(3, 4), 1u);
}

TEST(ChunkSizer, PrefetchHidesRoundTripsOnlyForShortChunks) {
  ChunkSizer sizer(0);
  sizer.Record(1000, absl::Milliseconds(1));  // 1 us per item
  EXPECT_EQ(sizer.PrefetchPerSlot(1, 2), ChunkSizer::kMaxPrefetchPerSlot);
  EXPECT_EQ(sizer.PrefetchPerSlot(5000, 2), 4u);  // 5 ms chunks: 4 fit in 20 ms
  EXPECT_EQ(sizer.PrefetchPerSlot(25000, 2), 0u);  // 25 ms chunks: none
  // Many slots share one bound on the job's reserve.
  EXPECT_EQ(sizer.PrefetchPerSlot(1, 1000), ChunkSizer::kMaxJobReserve / 1000);
}

}  // namespace
}  // namespace drover
