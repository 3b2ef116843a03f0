// Tests worker/chunk_runner.h with the built-in kernels and a test kernel.
#include "worker/chunk_runner.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace drover {
namespace {

absl::Status Throws(std::string_view, std::string*) { throw std::runtime_error("kaboom"); }

class ChunkRunnerTest : public ::testing::Test {
 protected:
  ChunkRunnerTest() : registry_(KernelRegistry::WithBuiltins()) {
    registry_.Add("throws", &Throws, "always throws");
  }

  v1::ChunkResult Run(const std::string& kernel, std::vector<std::string> items,
                      v1::Reduce reduce = v1::REDUCE_NONE) {
    v1::Chunk chunk;
    chunk.set_job_id(3);
    chunk.set_chunk_index(5);
    chunk.set_attempt(2);
    chunk.set_kernel(kernel);
    chunk.set_reduce(reduce);
    chunk.set_first_index(50);
    for (auto& item : items) chunk.mutable_inline_()->add_items(item);
    return RunChunk(Context(), chunk, not_cancelled_);
  }

  // Output i of a result.
  static std::string Output(const v1::ChunkResult& result, int i) {
    const auto& out = result.outputs();
    size_t at = 0;
    for (int k = 0; k < i; ++k) at += out.output_sizes(k);
    return out.outputs().substr(at, out.output_sizes(i));
  }

  RunContext Context() { return RunContext{&registry_, nullptr, "test-worker", 1, "", nullptr}; }

  KernelRegistry registry_;
  std::atomic<bool> not_cancelled_{false};
};

TEST_F(ChunkRunnerTest, SumSquaresIsExactPast64Bits) {
  v1::ChunkResult result = Run("sum_squares", {"10000000", "3"});
  EXPECT_EQ(result.job_id(), 3u);
  EXPECT_EQ(result.chunk_index(), 5u);
  EXPECT_EQ(result.attempt(), 2u);
  EXPECT_EQ(result.outputs().first_index(), 50u);
  EXPECT_EQ(Output(result, 0), "333333283333335000000");
  EXPECT_EQ(Output(result, 1), "5");  // 0 + 1 + 4
}

TEST_F(ChunkRunnerTest, CountPrimesCountsAHalfOpenInterval) {
  v1::ChunkResult result = Run("count_primes", {"0:100", "2:3", "5:5"});
  EXPECT_EQ(Output(result, 0), "25");
  EXPECT_EQ(Output(result, 1), "1");
  EXPECT_EQ(Output(result, 2), "0");
}

TEST_F(ChunkRunnerTest, RangeItemsAreDecimalText) {
  v1::Chunk chunk;
  chunk.set_kernel("echo");
  chunk.mutable_range()->set_start(-2);
  chunk.mutable_range()->set_end(2);
  v1::ChunkResult result = RunChunk(Context(), chunk, not_cancelled_);
  ASSERT_EQ(result.outputs().item_count(), 4u);
  EXPECT_EQ(result.outputs().outputs(), "-2-101");
  EXPECT_EQ(Output(result, 0), "-2");
}

TEST_F(ChunkRunnerTest, AllEmptyOutputsAreSentWithoutSizes) {
  v1::ChunkResult result = Run("noop", {"a", "b", "c"});
  EXPECT_EQ(result.outputs().item_count(), 3u);
  EXPECT_EQ(result.outputs().output_sizes_size(), 0);
  EXPECT_TRUE(result.outputs().outputs().empty());
}

TEST_F(ChunkRunnerTest, AFailingItemIsRecordedAndTheOthersRun) {
  v1::ChunkResult result = Run("sum_squares", {"4", "four", "2"});
  ASSERT_EQ(result.outputs().errors_size(), 1);
  EXPECT_EQ(result.outputs().errors(0).offset(), 1u);
  EXPECT_NE(result.outputs().errors(0).message().find("want an integer item"), std::string::npos);
  EXPECT_EQ(Output(result, 0), "14");
  EXPECT_EQ(Output(result, 1), "");
  EXPECT_EQ(Output(result, 2), "1");
}

TEST_F(ChunkRunnerTest, AThrowingKernelFailsItsItemsOnly) {
  v1::ChunkResult result = Run("throws", {"x", "y"});
  ASSERT_EQ(result.outputs().errors_size(), 2);
  EXPECT_NE(result.outputs().errors(0).message().find("kaboom"), std::string::npos);
}

TEST_F(ChunkRunnerTest, AnUnknownKernelFailsEveryItem) {
  v1::ChunkResult result = Run("missing", {"x", "y"});
  ASSERT_EQ(result.outputs().errors_size(), 2);
  EXPECT_NE(result.outputs().errors(1).message().find("no kernel 'missing'"), std::string::npos);
}

TEST_F(ChunkRunnerTest, ReductionSendsOnePartialPerChunk) {
  v1::ChunkResult result = Run("sum_squares", {"10000000", "10000000", "oops"}, v1::REDUCE_SUM);
  EXPECT_TRUE(result.outputs().outputs().empty());
  EXPECT_EQ(result.outputs().partial().value(), "666666566666670000000");
  EXPECT_EQ(result.outputs().partial().count(), 2u);
  ASSERT_EQ(result.outputs().errors_size(), 1);
  EXPECT_EQ(result.outputs().errors(0).offset(), 2u);
}

TEST_F(ChunkRunnerTest, ACancelledRunStopsEarly) {
  std::atomic<bool> cancelled{true};
  v1::Chunk chunk;
  chunk.set_kernel("sleep_ms");
  chunk.mutable_range()->set_start(1000);
  chunk.mutable_range()->set_end(1100);
  v1::ChunkResult result = RunChunk(Context(), chunk, cancelled);
  EXPECT_TRUE(result.outputs().outputs().empty());  // not a single 1-second sleep ran
}

}  // namespace
}  // namespace drover
