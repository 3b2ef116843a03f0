// Unit tests for common/status_ranges.h.
#include "common/status_ranges.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(ParseStatusRanges, RangesAndSingleStatusesWithSuccessByDefault) {
  absl::StatusOr<StatusRanges> ranges = ParseStatusRanges("200-299,404");
  ASSERT_TRUE(ranges.ok()) << ranges.status();
  EXPECT_TRUE(InRanges(*ranges, 200));
  EXPECT_TRUE(InRanges(*ranges, 299));
  EXPECT_TRUE(InRanges(*ranges, 404));
  EXPECT_FALSE(InRanges(*ranges, 302));
  EXPECT_FALSE(InRanges(*ranges, 405));
  absl::StatusOr<StatusRanges> plain = ParseStatusRanges("");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(InRanges(*plain, 204));
  EXPECT_FALSE(InRanges(*plain, 404));
}

TEST(ParseStatusRanges, RefusesWhatIsNotAStatusRange) {
  for (const char* bad : {"2xx", "200-", "-200", "99", "600", "300-200", "200,,404", "200-299-300"}) {
    absl::StatusOr<StatusRanges> ranges = ParseStatusRanges(bad);
    EXPECT_EQ(ranges.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace drover
