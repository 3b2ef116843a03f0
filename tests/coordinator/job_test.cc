// Tests coordinator/job.h: dispatch order, exactly-once results, re-queueing,
// result order and the stream-mode window.
#include "coordinator/job.h"

#include <gtest/gtest.h>

#include <algorithm>

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

// Kept results go to a store; in memory here.
class JobTest : public ::testing::Test {
 protected:
  std::unique_ptr<ResultStore> store = ResultStore::InMemory();
};

TEST_F(JobTest, MaxParallelBoundsTheItemsOutAndTheChunkSize) {
  v1::JobSpec spec = RangeSpec(10, 5);
  spec.set_max_parallel(3);
  Job job(1, spec, kNow, store.get());
  std::optional<v1::Chunk> first = job.NextChunk(kNow);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->range().end() - first->range().start(), 3);  // cut to the limit, not 5
  EXPECT_FALSE(job.HasWork());
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
  ASSERT_EQ(job.OnResult(EchoResult(*first), kNow), Outcome::kRecorded);
  EXPECT_TRUE(job.HasWork());  // its result made room
  std::optional<v1::Chunk> second = job.NextChunk(kNow);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(job.items_in_flight(), 3u);
  // A chunk sent back (its worker lost) waits for room like any other.
  ASSERT_FALSE(job.Requeue(second->chunk_index(), second->attempt()).has_value());
  EXPECT_TRUE(job.HasWork());
  std::optional<v1::Chunk> again = job.NextChunk(kNow);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->chunk_index(), second->chunk_index());
  EXPECT_FALSE(job.HasWork());
}

TEST_F(JobTest, DispatchesChunksInOrderAndFinishesWhenAllAreDone) {
  Job job(1, RangeSpec(10, 3), kNow, store.get());
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_QUEUED);
  std::vector<v1::Chunk> chunks;
  while (auto chunk = job.NextChunk(kNow)) chunks.push_back(*chunk);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[3].range().start(), 9);
  EXPECT_EQ(chunks[3].range().end(), 10);
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_RUNNING);
  for (const auto& chunk : chunks) EXPECT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kRecorded);
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.ToProto().done_items(), 10u);
}

TEST_F(JobTest, StreamResultsPastTheWindowWaitOnDiskAndComeBackInOrder) {
  Job job(1, RangeSpec(6, 1, /*stream=*/true), kNow, store.get(), /*stream_window_bytes=*/2);
  ASSERT_TRUE(job.AttachReader().ok());
  std::vector<v1::Chunk> chunks;
  while (auto chunk = job.NextChunk(kNow)) chunks.push_back(*chunk);
  ASSERT_EQ(chunks.size(), 6u);  // nothing delivered yet: the window is open
  // Results of calls in flight arrive while the reader takes nothing: past
  // the window (2 bytes), they go to the store.
  for (auto it = chunks.rbegin(); it != chunks.rend(); ++it) job.OnResult(EchoResult(*it), kNow);
  EXPECT_EQ(job.undelivered_bytes(), 6u);
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_GE(store->total_bytes(), 4u);
  ResultCursor cursor;
  v1::ResultBatch batch;
  bool end = false;
  job.PullResults(&cursor, 100, &batch, &end);
  EXPECT_EQ(FirstIndexes(batch), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  std::string outputs;
  for (const auto& chunk : batch.chunks()) outputs += chunk.outputs();
  EXPECT_EQ(outputs, "012345");
  EXPECT_TRUE(end);
  EXPECT_EQ(job.undelivered_bytes(), 0u);
  EXPECT_EQ(store->total_bytes(), 0u);  // delivered: the disk is free again
}

TEST_F(JobTest, TheFirstResultOfAChunkWinsAndLaterOnesAreDropped) {
  Job job(1, RangeSpec(4, 2), kNow, store.get());
  v1::Chunk first = *job.NextChunk(kNow);
  job.Requeue(first.chunk_index(), first.attempt());
  v1::Chunk again = *job.NextChunk(kNow);
  EXPECT_EQ(again.chunk_index(), first.chunk_index());
  EXPECT_EQ(again.attempt(), 2u);
  EXPECT_EQ(job.OnResult(EchoResult(first), kNow), Outcome::kRecorded);   // the lost worker's late result counts
  EXPECT_EQ(job.OnResult(EchoResult(again), kNow), Outcome::kDuplicate);  // the duplicate does not
  EXPECT_EQ(job.ToProto().done_items(), 2u);
}

TEST_F(JobTest, RequeueOfAFinishedChunkIsIgnored) {
  Job job(1, RangeSpec(4, 2), kNow, store.get());
  v1::Chunk chunk = *job.NextChunk(kNow);
  ASSERT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kRecorded);
  job.Requeue(chunk.chunk_index(), chunk.attempt());
  v1::Chunk next = *job.NextChunk(kNow);
  EXPECT_EQ(next.chunk_index(), 1u);
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
}

TEST_F(JobTest, MalformedResultIsDroppedAndTheChunkStaysOpen) {
  Job job(1, RangeSpec(4, 2), kNow, store.get());
  v1::Chunk chunk = *job.NextChunk(kNow);
  v1::ChunkResult bad = EchoResult(chunk);
  bad.mutable_outputs()->set_item_count(7);
  EXPECT_EQ(job.OnResult(std::move(bad), kNow), Outcome::kMalformed);
  v1::ChunkResult sizes_wrong = EchoResult(chunk);
  sizes_wrong.mutable_outputs()->mutable_outputs()->append("extra");
  EXPECT_EQ(job.OnResult(std::move(sizes_wrong), kNow), Outcome::kMalformed);
  EXPECT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kRecorded);
}

TEST_F(JobTest, OrderedReadersWaitForGapsUnorderedReadersDoNot) {
  Job job(1, RangeSpec(6, 2), kNow, store.get());
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
  EXPECT_EQ(batch.chunks_size(), 0);  // kept results are shown only once written
  ASSERT_TRUE(store->Sync().ok());
  job.PullResults(&unordered, 100, &batch, &end);
  EXPECT_EQ(FirstIndexes(batch), (std::vector<uint64_t>{4, 2}));  // completion order

  ASSERT_EQ(job.OnResult(EchoResult(c0), kNow), Outcome::kRecorded);
  ASSERT_TRUE(store->Sync().ok());
  batch.Clear();
  job.PullResults(&ordered, 100, &batch, &end);
  EXPECT_EQ(FirstIndexes(batch), (std::vector<uint64_t>{0, 2, 4}));
  EXPECT_TRUE(end);
}

TEST_F(JobTest, StreamModeDropsDeliveredResultsAndBoundsDispatch) {
  const uint64_t window = Job::kStreamWindowChunks;
  Job job(1, RangeSpec(static_cast<int64_t>(window) * 3, 1, /*stream=*/true), kNow, store.get());
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

TEST_F(JobTest, CancelStopsDispatchAndDropsLaterResults) {
  Job job(1, RangeSpec(10, 2), kNow, store.get());
  v1::Chunk chunk = *job.NextChunk(kNow);
  ASSERT_TRUE(job.Cancel(kNow).ok());
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
  EXPECT_EQ(job.OnResult(EchoResult(chunk), kNow), Outcome::kDuplicate);
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(job.Cancel(kNow).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(JobTest, FailedItemsMakeTheJobFailed) {
  Job job(1, RangeSpec(2, 2), kNow, store.get());
  v1::Chunk chunk = *job.NextChunk(kNow);
  v1::ChunkResult result = EchoResult(chunk);
  v1::ItemError* error = result.mutable_outputs()->add_errors();
  error->set_offset(1);
  error->set_message("bad");
  ASSERT_EQ(job.OnResult(std::move(result), kNow), Outcome::kRecorded);
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.ToProto().failed_items(), 1u);
}

TEST_F(JobTest, EmptyJobSucceedsAtOnce) {
  Job job(1, RangeSpec(0, 5), kNow, store.get());
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(job.NextChunk(kNow).has_value());
}

v1::ChunkResult Measured(const v1::Chunk& chunk, absl::Duration run_time) {
  v1::ChunkResult result = EchoResult(chunk);
  result.set_run_ns(static_cast<uint64_t>(absl::ToInt64Nanoseconds(run_time)));
  return result;
}

uint64_t Items(const v1::Chunk& chunk) { return static_cast<uint64_t>(chunk.range().end() - chunk.range().start()); }

TEST_F(JobTest, AutomaticChunksCoverEveryItemOnceGrowThenShrink) {
  Job job(1, RangeSpec(100000, /*chunk=*/0), kNow, store.get());
  uint64_t expected_first = 0;
  std::vector<uint64_t> sizes;
  while (auto chunk = job.NextChunk(kNow, /*slots=*/2)) {
    EXPECT_EQ(chunk->first_index(), expected_first);
    expected_first += Items(*chunk);
    sizes.push_back(Items(*chunk));
    ASSERT_EQ(job.OnResult(Measured(*chunk, absl::Microseconds(Items(*chunk))), kNow), Outcome::kRecorded);
  }
  EXPECT_EQ(expected_first, 100000u);
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_GT(sizes.size(), 3u);
  EXPECT_EQ(sizes.front(), 1u);  // unmeasured: one item
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), 25000u);  // a fair share: 100000 / (2 x 2)
  EXPECT_EQ(sizes.back(), 1u);   // the tail shrinks to single items
  EXPECT_EQ(job.ToProto().total_chunks(), sizes.size());
}

TEST_F(JobTest, AChunkGivenBackIsNotALoss) {
  v1::JobSpec spec = RangeSpec(1, 1);
  Job job(1, spec, kNow, store.get());
  for (int i = 0; i < 10; ++i) {
    v1::Chunk chunk = *job.NextChunk(kNow);
    ASSERT_TRUE(job.Return(chunk.chunk_index(), chunk.attempt()));
    EXPECT_FALSE(job.Return(chunk.chunk_index(), chunk.attempt()));  // not on a worker any more
  }
  for (uint32_t lost = 1; lost < job.max_attempts(); ++lost) {
    v1::Chunk chunk = *job.NextChunk(kNow);
    EXPECT_FALSE(job.Requeue(chunk.chunk_index(), chunk.attempt()).has_value());
  }
  v1::Chunk last = *job.NextChunk(kNow);
  EXPECT_EQ(last.attempt(), 10u + job.max_attempts());
  std::optional<v1::ChunkResult> failed = job.Requeue(last.chunk_index(), last.attempt());
  ASSERT_TRUE(failed.has_value());  // lost max_attempts times: its task fails
  EXPECT_NE(failed->outputs().errors(0).message().find("lost 3 times"), std::string::npos);
}

TEST_F(JobTest, RestoredResultsAreSkippedAndTheGapsRunAgain) {
  Job job(1, RangeSpec(10, 0), kNow, store.get());
  for (auto [first, end] : {std::pair<int64_t, int64_t>{0, 3}, {5, 7}}) {
    v1::Chunk done;
    done.set_job_id(1);
    done.set_chunk_index(static_cast<uint64_t>(first));
    done.set_first_index(static_cast<uint64_t>(first));
    done.mutable_range()->set_start(first);
    done.mutable_range()->set_end(end);
    v1::ChunkOutputs outputs = EchoResult(done).outputs();
    const uint64_t offset = store->Append(1, outputs);
    ASSERT_TRUE(store->Sync().ok());
    job.RestoreResult(offset, v1::ChunkOutputs(outputs), kNow);
    job.RestoreResult(offset, std::move(outputs), kNow);  // a repeated record changes nothing
  }
  EXPECT_EQ(job.ToProto().done_items(), 5u);
  std::vector<std::pair<int64_t, int64_t>> cut;
  while (auto chunk = job.NextChunk(kNow)) {
    cut.emplace_back(chunk->range().start(), chunk->range().end());
    EXPECT_GE(chunk->chunk_index(), 6u);  // new chunk numbers: a late result of an old one cannot match
    ASSERT_EQ(job.OnResult(Measured(*chunk, absl::Seconds(1)), kNow), Outcome::kRecorded);
  }
  EXPECT_EQ(cut, (std::vector<std::pair<int64_t, int64_t>>{{3, 4}, {4, 5}, {7, 8}, {8, 9}, {9, 10}}));
  EXPECT_EQ(job.ToProto().state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(store->Sync().ok());
  ResultCursor cursor;
  v1::ResultBatch batch;
  bool end = false;
  job.PullResults(&cursor, 100, &batch, &end);
  EXPECT_EQ(FirstIndexes(batch), (std::vector<uint64_t>{0, 3, 4, 5, 7, 8, 9}));
  EXPECT_TRUE(end);
  EXPECT_EQ(job.TaskResult(6)->first_index(), 5u);  // task 7 is in the chunk of items 5..6
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

TEST(ValidateJobSpec, AnHttpJobSaysAMethodAndAnHttpUrlOnly) {
  v1::JobSpec spec;
  spec.mutable_items()->mutable_inline_()->add_items("hello");
  v1::HttpRequest* http = spec.mutable_grpc()->mutable_http();
  http->set_url("https://api.example/v1/score");
  http->set_method("POST");
  EXPECT_TRUE(ValidateJobSpec(spec).ok());
  http->set_method("POST\r\nX-Injected: 1");
  EXPECT_EQ(ValidateJobSpec(spec).code(), absl::StatusCode::kInvalidArgument);
  http->set_method("PUT");
  http->set_url("file:///etc/passwd");  // items go through libcurl: http and https only
  absl::Status status = ValidateJobSpec(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not an http:// or https:// URL"), std::string::npos) << status;
}

}  // namespace
}  // namespace drover
