// Tests worker/job_flags.h: a flag reaches every chunk of its job, and the
// table keeps only the jobs some chunk still holds.
#include "worker/job_flags.h"

#include <gtest/gtest.h>

#include <vector>

namespace drover {
namespace {

TEST(JobFlags, CancelReachesEveryHolderAndLaterChunksGetAFreshFlag) {
  JobFlags flags;
  JobFlags::Flag first = flags.For(7);
  JobFlags::Flag second = flags.For(7);
  EXPECT_EQ(first, second);
  flags.Cancel(7);
  EXPECT_TRUE(first->load());
  EXPECT_FALSE(flags.For(7)->load());  // a new coordinator's job 7
}

TEST(JobFlags, OnlyJobsWithChunksInHandAreKept) {
  JobFlags flags;
  std::vector<JobFlags::Flag> held;
  for (uint64_t job = 0; job < 10; ++job) held.push_back(flags.For(job));
  for (uint64_t job = 10; job < 100000; ++job) flags.For(job);  // chunks that finished at once
  EXPECT_LT(flags.size(), 200u);
  for (uint64_t job = 0; job < 10; ++job) EXPECT_EQ(flags.For(job), held[job]);  // never dropped while held
  flags.CancelAll();
  for (const JobFlags::Flag& flag : held) EXPECT_TRUE(flag->load());
  EXPECT_EQ(flags.size(), 0u);
}

}  // namespace
}  // namespace drover
