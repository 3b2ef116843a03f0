// Tests common/reduce.h: exact 128-bit reductions.
#include "common/reduce.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Int128, PrintsAndParsesBeyond64Bits) {
  __int128 value = 0;
  ASSERT_TRUE(ParseInt128("333333283333335000000", &value).ok());
  EXPECT_EQ(Int128ToString(value), "333333283333335000000");
  ASSERT_TRUE(ParseInt128("-170141183460469231731687303715884105728", &value).ok());
  EXPECT_EQ(Int128ToString(value), "-170141183460469231731687303715884105728");
  EXPECT_EQ(Int128ToString(0), "0");
}

TEST(Int128, RejectsNonIntegersAndOverflow) {
  __int128 value = 0;
  EXPECT_EQ(ParseInt128("12x", &value).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseInt128("", &value).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseInt128("170141183460469231731687303715884105728", &value).code(),
            absl::StatusCode::kOutOfRange);
}

TEST(Reducer, SumIsExactPast64Bits) {
  Reducer sum(v1::REDUCE_SUM);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(sum.AddOutput("333333283333335000000").ok());
  EXPECT_EQ(sum.ToPartial().value(), "1333333133333340000000");
  EXPECT_EQ(sum.ToPartial().count(), 4u);
}

TEST(Reducer, OverflowFailsTheReductionInsteadOfWrapping) {
  Reducer sum(v1::REDUCE_SUM);
  ASSERT_TRUE(sum.AddOutput("170141183460469231731687303715884105727").ok());
  EXPECT_EQ(sum.AddOutput("1").code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(sum.ToPartial().error().empty());
}

TEST(Reducer, NonIntegerOutputFailsOnlyThatItem) {
  Reducer sum(v1::REDUCE_SUM);
  EXPECT_EQ(sum.AddOutput("abc").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(sum.AddOutput("5").ok());
  EXPECT_EQ(sum.ToPartial().value(), "5");
  EXPECT_TRUE(sum.ToPartial().error().empty());
}

TEST(Reducer, MinMaxCountAndMerge) {
  Reducer min(v1::REDUCE_MIN), max(v1::REDUCE_MAX), count(v1::REDUCE_COUNT);
  for (const char* v : {"4", "-2", "9"}) {
    ASSERT_TRUE(min.AddOutput(v).ok());
    ASSERT_TRUE(max.AddOutput(v).ok());
    ASSERT_TRUE(count.AddOutput(v).ok());
  }
  EXPECT_EQ(min.ToPartial().value(), "-2");
  EXPECT_EQ(max.ToPartial().value(), "9");
  EXPECT_EQ(count.ToPartial().value(), "3");

  Reducer total(v1::REDUCE_MIN);
  ASSERT_TRUE(total.Merge(min.ToPartial()).ok());
  v1::ReducePartial other;
  other.set_count(1);
  other.set_value("-7");
  ASSERT_TRUE(total.Merge(other).ok());
  EXPECT_EQ(total.ToPartial().value(), "-7");
  EXPECT_EQ(total.ToPartial().count(), 4u);
}

}  // namespace
}  // namespace drover
