// Tests worker/slot_pool.h: work stealing takes back only chunks that have not
// started, latest queued first, and they count as finished.
#include "worker/slot_pool.h"

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "worker/kernel_registry.h"

namespace drover {
namespace {

absl::Notification* g_release = nullptr;
absl::Notification* g_started = nullptr;

// Blocks its slot until the test releases it.
absl::Status Blocks(std::string_view, std::string*) {
  g_started->Notify();
  g_release->WaitForNotification();
  return absl::OkStatus();
}

v1::Chunk KernelChunk(uint64_t job, uint64_t index, const std::string& kernel) {
  v1::Chunk chunk;
  chunk.set_job_id(job);
  chunk.set_chunk_index(index);
  chunk.set_attempt(1);
  chunk.set_kernel(kernel);
  chunk.mutable_inline_()->add_items("x");
  return chunk;
}

TEST(SlotPool, StealTakesOnlyUnstartedChunksLatestFirst) {
  absl::Notification release, started;
  g_release = &release;
  g_started = &started;
  KernelRegistry registry = KernelRegistry::WithBuiltins();
  registry.Add("blocks", &Blocks, "waits for the test");
  Wakeup wakeup;
  SlotPool pool(1, RunContext{&registry, nullptr, "test", 0, "", nullptr}, &wakeup);
  std::vector<v1::Chunk> chunks;
  chunks.push_back(KernelChunk(1, 0, "blocks"));
  chunks.push_back(KernelChunk(1, 1, "echo"));
  chunks.push_back(KernelChunk(2, 0, "echo"));
  chunks.push_back(KernelChunk(1, 2, "echo"));
  pool.Push(std::move(chunks));
  started.WaitForNotification();  // chunk (1, 0) runs and holds the only slot

  std::vector<v1::ChunkRef> taken = pool.Steal(5, {1});
  ASSERT_EQ(taken.size(), 2u);  // job 1's queued chunks, not the running one, not job 2's
  EXPECT_EQ(taken[0].chunk_index(), 2u);
  EXPECT_EQ(taken[1].chunk_index(), 1u);
  EXPECT_EQ(taken[0].attempt(), 1u);
  uint64_t finished = 0;
  EXPECT_TRUE(pool.TakeFinished(&finished).empty());
  EXPECT_EQ(finished, 2u);  // given back counts as finished (credit is granted again)

  release.Notify();
  std::vector<v1::ChunkResult> results;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (results.size() < 2 && absl::Now() < deadline) {
    for (v1::ChunkResult& r : pool.TakeFinished(&finished)) results.push_back(std::move(r));
  }
  ASSERT_EQ(results.size(), 2u);  // the running chunk and job 2's: never the stolen ones
  EXPECT_EQ(results[0].job_id(), 1u);
  EXPECT_EQ(results[0].chunk_index(), 0u);
  EXPECT_GT(results[0].run_ns(), 0u);
  EXPECT_EQ(results[1].job_id(), 2u);
  EXPECT_TRUE(pool.Steal(5, {}).empty());
}

}  // namespace
}  // namespace drover
