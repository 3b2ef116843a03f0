// Tests coordinator/job.h: dispatch order, exactly-once results, re-queueing,
// result order and the stream-mode window.
#include "coordinator/job.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1000);
using Outcome = Job::ResultOutcome;

v1::JobSpec RangeSpec(int64_t items, uint32_t chunk, bool stream = false) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(items);
  spec.set_chunk_size(chunk);
  spec.set_stream_results(stream);
  return spec;
}

// The result a well-behaved worker sends for `chunk` (echo of the range).
v1::ChunkResult EchoResult(const v1::Chunk& chunk) {
  v1::ChunkResult result;
  result.set_job_id(chunk.job_id());
  result.set_chunk_index(chunk.chunk_index());
  result.set_attempt(chunk.attempt());
  v1::ChunkOutputs* out = result.mutable_outputs();
  out->set_first_index(chunk.first_index());
  uint32_t count = static_cast<uint32_t>(chunk.range().end() - chunk.range().start());
  out->set_item_count(count);
  for (int64_t v = chunk.range().start(); v < chunk.range().end(); ++v) {
    std::string text = std::to_string(v);
    out->mutable_outputs()->append(text);
    out->add_output_sizes(static_cast<uint32_t>(text.size()));
  }
  return result;
}

std::vector<uint64_t> FirstIndexes(const v1::ResultBatch& batch) {
  std::vector<uint64_t> firsts;
  for (const auto& chunk : batch.chunks()) firsts.push_back(chunk.first_index());
  return firsts;
}

TEST(Job, DispatchesChunksInOrderAndFinishesWhenAllAreDone) {
  Job job(1, RangeSpec(10, 3), kNow);
  EXPECT_EQ(job.Status().state(), v1::JOB_STATE_QUEUED);
  std::vector<v1::Chunk> chunks;
  while (auto chunk = job.NextChunk(kNow)) chunks.push_back(*chunk);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[3].range().start(), 9);
  EXPECT_EQ(chunks[3].range().end(), 10);
  EXPECT_EQ(job.Status().state(), v1::JOB_STATE_RUNNING);
  for (const auto& chunk : chunks) EXPECT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kRecorded);
  EXPECT_EQ(job.Status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.Status().done_items(), 10u);
}

TEST(Job, TheFirstResultOfAChunkWinsAndLaterOnesAreDropped) {
  Job job(1, RangeSpec(4, 2), kNow);
  v1::Chunk first = *job.NextChunk(kNow);
  job.Requeue(first.chunk_index(), first.attempt());
  v1::Chunk again = *job.NextChunk(kNow);
  EXPECT_EQ(again.chunk_index(), first.chunk_index());
  EXPECT_EQ(again.attempt(), 2u);
  EXPECT_EQ(job.OnResult(EchoResult(first), kNow), Outcome::kRecorded);   // the lost worker's late result counts
  EXPECT_EQ(job.OnResult(EchoResult(again), kNow), Outcome::kDuplicate);  // the duplicate does not
  EXPECT_EQ(job.Status().done_items(), 2u);
}

TEST(Job, RequeueOfAFinishedChunkIsIgnored) {
  Job job(1, RangeSpec(4, 2), kNow);
  v1::Chunk chunk = *job.NextChunk(kNow);
  ASSERT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kRecorded);
  job.Requeue(chunk.chunk_index(), chunk.attempt());
  v1::Chunk next = *job.NextChunk(kNow);
  EXPECT_EQ(next.chunk_index(), 1u);
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
}

TEST(Job, MalformedResultIsDroppedAndTheChunkStaysOpen) {
  Job job(1, RangeSpec(4, 2), kNow);
  v1::Chunk chunk = *job.NextChunk(kNow);
  v1::ChunkResult bad = EchoResult(chunk);
  bad.mutable_outputs()->set_item_count(7);
  EXPECT_EQ(job.OnResult(std::move(bad), kNow), Outcome::kMalformed);
  v1::ChunkResult sizes_wrong = EchoResult(chunk);
  sizes_wrong.mutable_outputs()->mutable_outputs()->append("extra");
  EXPECT_EQ(job.OnResult(std::move(sizes_wrong), kNow), Outcome::kMalformed);
  EXPECT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kRecorded);
}

TEST(Job, OrderedReadersWaitForGapsUnorderedReadersDoNot) {
  Job job(1, RangeSpec(6, 2), kNow);
  v1::Chunk c0 = *job.NextChunk(kNow), c1 = *job.NextChunk(kNow), c2 = *job.NextChunk(kNow);
  ASSERT_EQ(job.OnResult(EchoResult(c2), kNow), Outcome::kRecorded);
  ASSERT_EQ(job.OnResult(EchoResult(c1), kNow), Outcome::kRecorded);

  ResultCursor ordered;
  ResultCursor unordered;
  unordered.ordered = false;
  v1::ResultBatch batch;
  bool end = true;
  job.PullResults(&ordered, 100, &batch, &end);
  EXPECT_EQ(batch.chunks_size(), 0);  // chunk 0 is not done
  EXPECT_FALSE(end);
  batch.Clear();
  job.PullResults(&unordered, 100, &batch, &end);
  EXPECT_EQ(FirstIndexes(batch), (std::vector<uint64_t>{4, 2}));  // completion order

  ASSERT_EQ(job.OnResult(EchoResult(c0), kNow), Outcome::kRecorded);
  batch.Clear();
  job.PullResults(&ordered, 100, &batch, &end);
  EXPECT_EQ(FirstIndexes(batch), (std::vector<uint64_t>{0, 2, 4}));
  EXPECT_TRUE(end);
}

TEST(Job, StreamModeDropsDeliveredResultsAndBoundsDispatch) {
  const uint64_t window = Job::kStreamWindowChunks;
  Job job(1, RangeSpec(static_cast<int64_t>(window) * 3, 1, /*stream=*/true), kNow);
  ASSERT_TRUE(job.AttachReader().ok());
  EXPECT_EQ(job.AttachReader().code(), absl::StatusCode::kFailedPrecondition);
  uint64_t dispatched = 0;
  while (auto chunk = job.NextChunk(kNow)) {
    ++dispatched;
    ASSERT_EQ(job.OnResult(EchoResult(*chunk), kNow), Outcome::kRecorded);
  }
  EXPECT_EQ(dispatched, window);  // nothing read yet: dispatch pauses at the window
  ResultCursor cursor;
  v1::ResultBatch batch;
  bool end = false;
  job.PullResults(&cursor, 1000, &batch, &end);
  EXPECT_EQ(batch.chunks_size(), 1000);
  EXPECT_TRUE(job.NextChunk(kNow).has_value());  // reading opened the window again
  batch.Clear();
  job.PullResults(&cursor, 1000, &batch, &end);
  EXPECT_EQ(batch.chunks(0).first_index(), 1000u);  // delivered results are gone, not re-sent
}

TEST(Job, CancelStopsDispatchAndDropsLaterResults) {
  Job job(1, RangeSpec(10, 2), kNow);
  v1::Chunk chunk = *job.NextChunk(kNow);
  ASSERT_TRUE(job.Cancel(kNow).ok());
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
  EXPECT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kDuplicate);
  EXPECT_EQ(job.Status().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.Cancel(kNow).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Job, FailedItemsMakeTheJobFailed) {
  Job job(1, RangeSpec(2, 2), kNow);
  v1::Chunk chunk = *job.NextChunk(kNow);
  v1::ChunkResult result = EchoResult(chunk);
  v1::ItemError* error = result.mutable_outputs()->add_errors();
  error->set_offset(1);
  error->set_message("bad");
  ASSERT_EQ(job.OnResult(std::move(result), kNow), Outcome::kRecorded);
  EXPECT_EQ(job.Status().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.Status().failed_items(), 1u);
}

TEST(Job, EmptyJobSucceedsAtOnce) {
  Job job(1, RangeSpec(0, 5), kNow);
  EXPECT_EQ(job.Status().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
}

TEST(ValidateJobSpec, SaysWhatIsWrong) {
  v1::JobSpec spec;
  EXPECT_EQ(ValidateJobSpec(spec).code(), absl::StatusCode::kInvalidArgument);
  spec.set_kernel("echo");
  EXPECT_EQ(ValidateJobSpec(spec).code(), absl::StatusCode::kInvalidArgument);  // no items
  spec.mutable_items()->mutable_range()->set_start(5);
  EXPECT_EQ(ValidateJobSpec(spec).code(), absl::StatusCode::kInvalidArgument);  // 5 > 0
  spec.mutable_items()->mutable_range()->set_end(9);
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  spec.set_reduce(static_cast<v1::Reduce>(99));
  EXPECT_EQ(ValidateJobSpec(spec).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover
