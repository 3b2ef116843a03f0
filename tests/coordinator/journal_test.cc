// Tests coordinator/journal.h: records survive a reopen; a torn or corrupt
// tail is cut back to the last good record.
#include "coordinator/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace drover {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  JournalTest() {
    char dir[] = "/tmp/drover-journal-test-XXXXXX";
    dir_ = mkdtemp(dir);
  }
  ~JournalTest() override { std::filesystem::remove_all(dir_); }

  static v1::JournalRecord Submitted(uint64_t id) {
    v1::JournalRecord record;
    record.mutable_submitted()->set_job_id(id);
    record.mutable_submitted()->mutable_spec()->set_kernel("echo");
    return record;
  }

  std::vector<v1::JournalRecord> WriteThree() {
    std::vector<v1::JournalRecord> records;
    auto journal = Journal::Open(dir_, &records);
    if (!journal.ok()) {  // no dereference below a failure
      ADD_FAILURE() << journal.status();
      return records;
    }
    for (uint64_t id = 1; id <= 3; ++id) EXPECT_TRUE((*journal)->Append(Submitted(id)).ok());
    EXPECT_TRUE((*journal)->Sync().ok());
    return records;
  }

  std::vector<v1::JournalRecord> Reopen() {
    std::vector<v1::JournalRecord> records;
    auto journal = Journal::Open(dir_, &records);
    if (!journal.ok()) ADD_FAILURE() << journal.status();
    return records;
  }

  std::string File() { return dir_ + "/journal"; }

  std::string dir_;
};

TEST_F(JournalTest, RecordsSurviveAReopen) {
  EXPECT_TRUE(WriteThree().empty());
  std::vector<v1::JournalRecord> records = Reopen();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].submitted().job_id(), 3u);
}

TEST_F(JournalTest, ATornTailIsCutAndAppendingGoesOn) {
  WriteThree();
  std::filesystem::resize_file(File(), std::filesystem::file_size(File()) - 3);
  ASSERT_EQ(Reopen().size(), 2u);
  {
    std::vector<v1::JournalRecord> records;
    auto journal = Journal::Open(dir_, &records);
    (*journal)->Append(Submitted(9));
    ASSERT_TRUE((*journal)->Sync().ok());
  }
  std::vector<v1::JournalRecord> records = Reopen();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].submitted().job_id(), 9u);
}

TEST_F(JournalTest, AFlippedByteCutsFromThatRecordOn) {
  WriteThree();
  std::fstream file(File(), std::ios::in | std::ios::out | std::ios::binary);
  auto size = std::filesystem::file_size(File());
  file.seekg(static_cast<std::streamoff>(size - 2));
  char c;
  file.get(c);
  file.seekp(static_cast<std::streamoff>(size - 2));
  file.put(static_cast<char>(c ^ 0x40));
  file.close();
  EXPECT_EQ(Reopen().size(), 2u);
  EXPECT_EQ(Reopen().size(), 2u);  // and the cut is lasting
}

TEST_F(JournalTest, AStateDirThatCannotBeCreatedIsAClearError) {
  std::string file = dir_ + "/plain-file";
  std::ofstream(file) << "x";
  std::vector<v1::JournalRecord> records;
  auto journal = Journal::Open(file + "/state", &records);
  EXPECT_FALSE(journal.ok());
  EXPECT_NE(journal.status().message().find("cannot create state directory"), std::string::npos)
      << journal.status();
}

TEST_F(JournalTest, DiscardedRecordsAreNeverWritten) {
  std::vector<v1::JournalRecord> records;
  {
    auto journal = Journal::Open(dir_, &records);
    (*journal)->Append(Submitted(1));
    (*journal)->DiscardPending();
  }
  EXPECT_TRUE(Reopen().empty());
}

TEST_F(JournalTest, ARewriteReplacesTheJournalAndAppendsGoOnAfterIt) {
  WriteThree();
  std::vector<v1::JournalRecord> records;
  auto journal = Journal::Open(dir_, &records);
  ASSERT_TRUE(journal.ok()) << journal.status();
  const uint64_t before = (*journal)->size_bytes();
  uint64_t next_id = 2;  // keep job 2 only
  ASSERT_TRUE((*journal)->Rewrite([&](v1::JournalRecord* record) {
    if (next_id != 2) return false;
    *record = Submitted(next_id++);
    return true;
  }).ok());
  EXPECT_LT((*journal)->size_bytes(), before);
  EXPECT_EQ((*journal)->size_bytes(), std::filesystem::file_size(File()));
  ASSERT_TRUE((*journal)->Append(Submitted(4)).ok());
  ASSERT_TRUE((*journal)->Sync().ok());
  journal->reset();
  records = Reopen();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].submitted().job_id(), 2u);
  EXPECT_EQ(records[1].submitted().job_id(), 4u);
}

TEST_F(JournalTest, ACompactionCutShortLeavesTheOldJournal) {
  WriteThree();
  // A crash before the rename leaves journal.tmp beside the intact journal.
  { std::ofstream(dir_ + "/journal.tmp") << "half a compaction"; }
  EXPECT_EQ(Reopen().size(), 3u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/journal.tmp"));
}

TEST_F(JournalTest, ARewriteWithRecordsPendingIsRefused) {
  std::vector<v1::JournalRecord> records;
  auto journal = Journal::Open(dir_, &records);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE((*journal)->Append(Submitted(1)).ok());
  EXPECT_EQ((*journal)->Rewrite([](v1::JournalRecord*) { return false; }).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace drover
