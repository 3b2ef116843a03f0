// Tests coordinator/result_store.h on a real directory: records come back by
// offset once synced, survive reopening, a torn tail is cut back, and
// forgetting a job removes its file.
#include "coordinator/result_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace drover {
namespace {

v1::ChunkOutputs Outputs(uint64_t first, const std::string& text) {
  v1::ChunkOutputs outputs;
  outputs.set_first_index(first);
  outputs.set_item_count(1);
  outputs.set_outputs(text);
  outputs.add_output_sizes(static_cast<uint32_t>(text.size()));
  return outputs;
}

class ResultStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/drover-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ResultStoreTest, RecordsAreReadableByOffsetOnceSynced) {
  auto store = *ResultStore::Open(dir_ + "/results", /*durable=*/true);
  const uint64_t a = store->Append(7, Outputs(0, "alpha"));
  const uint64_t b = store->Append(7, Outputs(1, "beta"));
  EXPECT_EQ(store->readable_end(7), 0u);  // nothing written yet
  EXPECT_GT(store->appended_end(7), b);
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_EQ(store->readable_end(7), store->appended_end(7));
  uint64_t next = 0;
  absl::StatusOr<v1::ChunkOutputs> first = store->Read(7, a, &next);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->outputs(), "alpha");
  EXPECT_EQ(next, b);
  EXPECT_EQ(store->Read(7, b, &next)->outputs(), "beta");
  EXPECT_EQ(next, store->readable_end(7));
  EXPECT_EQ(store->total_bytes(), std::filesystem::file_size(dir_ + "/results/7"));
}

TEST_F(ResultStoreTest, ReopenedStoreReplaysRecordsAndCutsATornTail) {
  {
    auto store = *ResultStore::Open(dir_, true);
    store->Append(3, Outputs(0, "kept"));
    store->Append(3, Outputs(1, "also kept"));
    ASSERT_TRUE(store->Sync().ok());
  }
  const std::string path = dir_ + "/3";
  const auto intact = std::filesystem::file_size(path);
  {
    int fd = open(path.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "\x40\x00\x00\x00torn", 8), 8);  // half a record, as a crash leaves it
    close(fd);
  }
  auto store = *ResultStore::Open(dir_, true);
  std::vector<std::string> replayed;
  ASSERT_TRUE(store->Replay(3, [&](uint64_t, v1::ChunkOutputs&& o) { replayed.push_back(o.outputs()); }).ok());
  EXPECT_EQ(replayed, (std::vector<std::string>{"kept", "also kept"}));
  EXPECT_EQ(std::filesystem::file_size(path), intact);
  // Appends continue after the last good record.
  const uint64_t next = store->Append(3, Outputs(2, "new"));
  EXPECT_EQ(next, intact);
  ASSERT_TRUE(store->Sync().ok());
  uint64_t after = 0;
  EXPECT_EQ(store->Read(3, next, &after)->outputs(), "new");
}

TEST_F(ResultStoreTest, ReplayReadsRecordsAcrossItsReadBlocks) {
  std::vector<std::string> written;
  {
    auto store = *ResultStore::Open(dir_, true);
    for (int i = 0; i < 2000; ++i) {
      written.push_back(i % 500 == 7 ? std::string(100000 + i, 'a' + i % 26) : absl::StrCat("small-", i));
      store->Append(4, Outputs(static_cast<uint64_t>(i), written.back()));
    }
    ASSERT_TRUE(store->Sync().ok());
  }
  auto store = *ResultStore::Open(dir_, true);
  std::vector<std::string> replayed;
  std::vector<uint64_t> offsets;
  ASSERT_TRUE(store->Replay(4, [&](uint64_t offset, v1::ChunkOutputs&& o) {
                offsets.push_back(offset);
                replayed.push_back(o.outputs());
              }).ok());
  EXPECT_EQ(replayed, written);
  uint64_t next = 0;
  EXPECT_EQ(store->Read(4, offsets[1507], &next)->outputs(), written[1507]);  // the offsets are right
  EXPECT_EQ(store->readable_end(4), std::filesystem::file_size(dir_ + "/4"));
}

TEST_F(ResultStoreTest, ForgetRemovesTheFileAndStoredJobsListsTheRest) {
  auto store = *ResultStore::Open(dir_, true);
  store->Append(1, Outputs(0, "one"));
  store->Append(2, Outputs(0, "two"));
  ASSERT_TRUE(store->Sync().ok());
  std::vector<uint64_t> jobs = store->StoredJobs();
  std::sort(jobs.begin(), jobs.end());
  EXPECT_EQ(jobs, (std::vector<uint64_t>{1, 2}));
  store->Forget(1);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/1"));
  EXPECT_EQ(store->StoredJobs(), (std::vector<uint64_t>{2}));
  EXPECT_EQ(store->total_bytes(), std::filesystem::file_size(dir_ + "/2"));
}

TEST_F(ResultStoreTest, AFailedWriteKeepsThePendingRecordsForTheNextSync) {
  auto store = *ResultStore::Open(dir_ + "/results", true);
  store->Append(5, Outputs(0, "waits"));
  std::filesystem::remove_all(dir_ + "/results");  // the directory is gone: the file cannot be made
  EXPECT_FALSE(store->Sync().ok());
  EXPECT_EQ(store->readable_end(5), 0u);  // never shown
  ASSERT_EQ(mkdir((dir_ + "/results").c_str(), 0700), 0);
  ASSERT_TRUE(store->Sync().ok());
  uint64_t next = 0;
  EXPECT_EQ(store->Read(5, 0, &next)->outputs(), "waits");
}

TEST_F(ResultStoreTest, SpooledItemsBecomeTheJobsAndAreReadAChunkAtATime) {
  auto store = *ResultStore::Open(dir_, true);
  {
    auto spool = *ItemSpool::Create(dir_);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(spool->Add(i % 7 == 0 ? "" : absl::StrCat("item-", i)).ok());
    ASSERT_TRUE(spool->Finish().ok());
    EXPECT_EQ(spool->count(), 1000u);
    ASSERT_TRUE(store->AdoptItems(9, spool.get()).ok());
  }  // an adopted spool's files stay
  google::protobuf::RepeatedPtrField<std::string> items;
  ASSERT_TRUE(store->ReadItems(9, 0, 3, &items).ok());
  ASSERT_TRUE(store->ReadItems(9, 998, 2, &items).ok());
  EXPECT_EQ(std::vector<std::string>(items.begin(), items.end()),
            (std::vector<std::string>{"", "item-1", "item-2", "item-998", "item-999"}));
  EXPECT_EQ(store->ReadItems(9, 999, 2, &items).code(), absl::StatusCode::kDataLoss);  // past the end
  EXPECT_EQ(store->StoredJobs(), (std::vector<uint64_t>{9}));
  store->Forget(9);
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(ResultStoreTest, ASpoolNotAdoptedLeavesNothingBehind) {
  {
    auto spool = *ItemSpool::Create(dir_);
    ASSERT_TRUE(spool->Add("abandoned").ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
  // One left by a coordinator that stopped mid-stream is removed at open.
  { std::ofstream(dir_ + "/spool-abc123") << "x"; }
  auto store = *ResultStore::Open(dir_, true);
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

}  // namespace
}  // namespace drover
