// Integration: no slot idles while work waits. k tasks on k slots all start
// together, unstarted chunks are stolen by an idle worker, jobs share the
// workers, and a worker that joins mid-job gets work. Everything is observed
// from the tasks themselves (files they write), never from timing.
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

// A task that marks its start in DIR, then waits (up to 20 s) until N tasks
// have started; it prints "together" and succeeds only if they all did.
std::vector<std::string> WaitForAll(const std::string& dir, int n) {
  return {"sh", "-c",
          absl::StrCat("touch ", dir, "/started.{}; i=0; while [ $(ls ", dir, " | grep -c '^started') -lt ", n,
                       " ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; [ $(ls ", dir,
                       " | grep -c '^started') -ge ", n, " ] && echo together")};
}

class SchedulingTest : public ::testing::Test {
 protected:
  SchedulingTest() : cluster_({"--heartbeat", "0.2", "--worker-timeout", "3"}) {
    char dir[] = "/tmp/drover-sched-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  ~SchedulingTest() override { std::filesystem::remove_all(dir_); }

  // The value of `field` in each line of `drover --json results JOB`.
  std::vector<std::string> ResultField(const std::string& job, const std::string& field) {
    CommandResult r = cluster_.Drover({"--json", "results", job});
    std::vector<std::string> values;
    for (const std::string& line : Lines(r.out)) {
      std::string key = absl::StrCat("\"", field, "\":\"");
      size_t at = line.find(key);
      if (at == std::string::npos) continue;
      size_t start = at + key.size();
      values.push_back(line.substr(start, line.find('"', start) - start));
    }
    return values;
  }
  int HeldBy(const std::string& name) { return ChunksHeldBy(cluster_, name); }

  TestCluster cluster_;
  std::string dir_;
};

TEST_F(SchedulingTest, KTasksOnKOneSlotWorkersAllStartBeforeAnyFinishes) {
  for (int i = 0; i < 4; ++i) cluster_.AddWorker(1);
  ASSERT_TRUE(cluster_.WaitForWorkers(4));
  std::vector<std::string> args = {"run", "--range", "0:4", "--"};
  for (const std::string& a : WaitForAll(dir_, 4)) args.push_back(a);
  CommandResult r = cluster_.Drover(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), std::vector<std::string>(4, "together"));
}

TEST_F(SchedulingTest, TasksNeedingSeveralCpusAllStartWhenTheSlotsAreThere) {
  cluster_.AddWorker(2);
  cluster_.AddWorker(2);
  ASSERT_TRUE(cluster_.WaitForWorkers(2));
  std::vector<std::string> args = {"run", "--cpus", "2", "--range", "0:2", "--"};
  for (const std::string& a : WaitForAll(dir_, 2)) args.push_back(a);
  CommandResult r = cluster_.Drover(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), std::vector<std::string>(2, "together"));
}

// The first items take no time, so the job's chunks look short and "busy"
// (1 slot) takes all the others in reserve; they take 0.5 s each. Several
// quick items, not one: a reserve is sized by the mean run time so far, and a
// single quick item slowed by a loaded, sanitized machine (a few ms) left it
// too small (CI run of stop 26). A kernel, not a command, keeps quick items
// quick. Twelve slow items keep "busy" holding eight or more for about 2.5 s,
// longer than a poll of `drover workers` under ASan.
constexpr int kQuickItems = 8;
constexpr int kSlowItems = 12;
std::vector<std::string> QuickThenSlow() {
  std::vector<std::string> args = {"submit", "--kernel", "sleep_ms", "--chunk", "1", ":::"};
  for (int i = 0; i < kQuickItems; ++i) args.push_back("0");
  for (int i = 0; i < kSlowItems; ++i) args.push_back("500");
  return args;
}
std::vector<std::string> QuickThenSlowResults() {
  std::vector<std::string> results(kQuickItems, "0");
  results.resize(kQuickItems + kSlowItems, "500");
  return results;
}

TEST_F(SchedulingTest, AnIdleWorkerStealsUnstartedChunksAndEveryResultArrivesOnce) {
  cluster_.AddWorker(1, {"--name", "busy"});
  ASSERT_TRUE(cluster_.WaitForWorkers(1));
  CommandResult submitted = cluster_.Drover(QuickThenSlow());
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return HeldBy("busy") >= 8; }, absl::Seconds(10)))
      << "the busy worker never held a reserve";
  cluster_.AddWorker(1, {"--name", "idle"});
  CommandResult waited = cluster_.Drover({"wait", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;

  std::vector<std::string> workers = ResultField(job, "worker");
  ASSERT_EQ(workers.size(), static_cast<size_t>(kQuickItems + kSlowItems));
  EXPECT_GT(std::count(workers.begin(), workers.end(), "idle"), 0)
      << "every chunk was held by 'busy' when 'idle' joined: it can only have run stolen ones";
  EXPECT_EQ(Lines(cluster_.Drover({"results", job}).out), QuickThenSlowResults());  // each once, in order
  EXPECT_NE(cluster_.Drover({"status", job}).out.find("20/20 done, 0 failed"), std::string::npos);
}

TEST_F(SchedulingTest, AWorkerKilledAroundAStealLosesNothing) {
  ChildProcess& busy = cluster_.AddWorker(1, {"--name", "busy"});
  ASSERT_TRUE(cluster_.WaitForWorkers(1));
  CommandResult submitted = cluster_.Drover(QuickThenSlow());
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return HeldBy("busy") >= 8; }, absl::Seconds(10)));
  cluster_.AddWorker(1, {"--name", "idle"});
  ASSERT_TRUE(cluster_.WaitForWorkers(2));  // the steal is asked for as soon as 'idle' has credit
  busy.Signal(SIGKILL);
  CommandResult waited = cluster_.Drover({"wait", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_EQ(Lines(cluster_.Drover({"results", job}).out), QuickThenSlowResults());
}

TEST_F(SchedulingTest, TwoJobsShareTheWorkers) {
  cluster_.AddWorker(1);
  cluster_.AddWorker(1);
  ASSERT_TRUE(cluster_.WaitForWorkers(2));
  const std::string mark = dir_ + "/second-started";
  // The first job's tasks say whether the second job had started when they began.
  CommandResult first = cluster_.Drover(
      {"submit", "--range", "0:6", "--", "sh", "-c",
       absl::StrCat("if [ -e ", mark, " ]; then echo after; else echo before; fi; sleep 0.5")});
  CommandResult second = cluster_.Drover(
      {"submit", "--range", "0:2", "--", "sh", "-c", absl::StrCat("touch ", mark, "; sleep 0.5")});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(cluster_.Drover({"wait", Lines(first.out).at(0)}).exit_code, 0);
  CommandResult outputs = cluster_.Drover({"results", Lines(first.out).at(0)});
  std::vector<std::string> lines = Lines(outputs.out);
  ASSERT_EQ(lines.size(), 6u);
  // First come does not take all: the second job got a slot as soon as one
  // was free, so the first job's last tasks started after it.
  EXPECT_EQ(lines[4], "after") << outputs.out;
  EXPECT_EQ(lines[5], "after") << outputs.out;
}

TEST_F(SchedulingTest, AWorkerJoiningMidJobGetsWorkAtOnce) {
  cluster_.AddWorker(1, {"--name", "early"});
  ASSERT_TRUE(cluster_.WaitForWorkers(1));
  const std::string late_started = dir_ + "/late";
  // Both tasks wait until a task has run on the late worker (or 20 s): if the
  // early worker kept both chunks, neither could finish.
  CommandResult submitted = cluster_.Drover(
      {"submit", "--range", "0:2", "--", "sh", "-c",
       absl::StrCat("[ \"$DROVER_WORKER\" = late ] && touch ", late_started, "; i=0; while [ ! -e ", late_started,
                    " ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; [ -e ", late_started, " ]")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return HeldBy("early") >= 1; }));
  cluster_.AddWorker(1, {"--name", "late"});
  CommandResult waited = cluster_.Drover({"wait", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  std::vector<std::string> workers = ResultField(job, "worker");
  EXPECT_GT(std::count(workers.begin(), workers.end(), "late"), 0);
}

}  // namespace
}  // namespace drover::testing
