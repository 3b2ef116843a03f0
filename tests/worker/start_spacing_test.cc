// Unit tests for StartSpacing: paced starts that come due together go one
// at a time, no closer than 3/4 of an interval.
#include "worker/start_spacing.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(StartSpacing, StartsDueTogetherAfterAStallGoThreeQuartersOfAnIntervalApart) {
  StartSpacing spacing;
  absl::Time wait_until;
  // 100 a second: planned 10 ms apart; a 50 ms stall makes five due at once.
  const absl::Time late = kT0 + absl::Milliseconds(50);
  EXPECT_TRUE(spacing.MayStart(7, 100, late, &wait_until));
  for (int i = 1; i < 5; ++i) {
    EXPECT_FALSE(spacing.MayStart(7, 100, late, &wait_until)) << i;
    EXPECT_EQ(wait_until, late + absl::Microseconds(7500));
  }
  EXPECT_TRUE(spacing.MayStart(7, 100, late + absl::Microseconds(7500), &wait_until));
  EXPECT_FALSE(spacing.MayStart(7, 100, late + absl::Microseconds(8000), &wait_until));
  EXPECT_EQ(wait_until, late + absl::Microseconds(15000));
}

TEST(StartSpacing, OnTimeStartsAndOtherJobsAreNotDelayed) {
  StartSpacing spacing;
  absl::Time wait_until;
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(spacing.MayStart(1, 100, kT0 + absl::Milliseconds(10 * i), &wait_until)) << i;
    EXPECT_TRUE(spacing.MayStart(2, 100, kT0 + absl::Milliseconds(10 * i), &wait_until)) << i;
  }
  // A start a little early (a timer's jitter) is not held back.
  EXPECT_TRUE(spacing.MayStart(1, 100, kT0 + absl::Milliseconds(98), &wait_until));
}

TEST(StartSpacing, ForgetsJobsWhoseGapHasPassed) {
  StartSpacing spacing;
  absl::Time wait_until;
  for (uint64_t job = 0; job < 10000; ++job) {
    ASSERT_TRUE(spacing.MayStart(job, 1000, kT0 + absl::Milliseconds(static_cast<int64_t>(job)), &wait_until));
  }
  EXPECT_LT(spacing.size(), 40u);
  // A job still inside its gap is remembered.
  EXPECT_FALSE(spacing.MayStart(9999, 1000, kT0 + absl::Milliseconds(9999), &wait_until));
}

}  // namespace
}  // namespace drover
