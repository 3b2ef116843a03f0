// Integration: graceful drain, retries, tasks that crash workers, kernel timeouts.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

std::string SubmitSleeps(TestCluster& cluster, int items, const std::string& ms) {
  std::vector<std::string> args = {"submit", "--kernel", "sleep_ms"};
  for (int i = 0; i < items; ++i) args.push_back(ms);
  return Lines(cluster.Drover(args).out).at(0);
}

bool Holding(TestCluster& cluster) {
  return WaitUntil([&] { return TotalWorkerField(cluster.Drover({"--json", "workers"}).out, "chunksHeld") > 0; });
}

TEST(Drain, SigtermFinishesWhatTheWorkerHoldsThenExits) {
  TestCluster cluster;
  ChildProcess& worker = cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::string job = SubmitSleeps(cluster, 20, "100");
  ASSERT_TRUE(Holding(cluster));
  worker.Signal(SIGTERM);
  std::optional<int> status = worker.Wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 0) << worker.Log();
  EXPECT_NE(cluster.coordinator().Log().find("left: said goodbye (drained)"), std::string::npos)
      << cluster.coordinator().Log();
  cluster.AddWorker(2);  // the rest of the job goes to a new worker
  EXPECT_EQ(cluster.Drover({"wait", "--quiet", job}).exit_code, 0);
  EXPECT_EQ(Lines(cluster.Drover({"results", job}).out), std::vector<std::string>(20, "100"));
}

TEST(Drain, TasksStoppedWithTheirWorkerRunElsewhereAndDoNotFail) {
  // What Slurm's scancel, systemd's stop and Kubernetes' termination do: every
  // process of the worker gets SIGTERM, its tasks included.
  TestCluster cluster;
  ChildProcess& doomed = cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  const std::string marker = absl::StrCat(::testing::TempDir(), "drover-stop-", getpid());
  std::FILE* f = std::fopen(marker.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  // The task waits while the marker exists (on the doomed worker), and then
  // answers. It carries a mark of this test: its job id alone is no mark (the
  // Slurm test's tasks, running beside this test, belonged to a job 1 too, and
  // got this test's SIGTERM).
  const std::string env = UniqueTestMark();
  CommandResult submitted =
      cluster.Drover({"submit", ":::", "x", "--", "env", env, "sh", "-c",
                      absl::StrCat("if [ -e ", marker, " ]; then exec sleep 600; fi; echo {}")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return !ProcessesWithEnv(env).empty(); }));
  std::filesystem::remove(marker);
  doomed.Signal(SIGTERM);
  for (pid_t task : ProcessesWithEnv(env)) kill(task, SIGTERM);
  std::optional<int> status = doomed.Wait();
  ASSERT_TRUE(status.has_value());
  cluster.AddWorker(1);
  CommandResult waited = cluster.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err << cluster.Drover({"--json", "results", job}).out;
  EXPECT_EQ(Lines(cluster.Drover({"results", job}).out), std::vector<std::string>{"x"});
  EXPECT_NE(doomed.Log().find("a task was stopped with the worker; giving the chunk back"), std::string::npos)
      << doomed.Log();
}

TEST(Drain, TheCliDrainsAWorkerById) {
  TestCluster cluster;
  ChildProcess& worker = cluster.AddWorker(1, {"--name", "drain-me"});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::string job = SubmitSleeps(cluster, 10, "100");
  ASSERT_TRUE(Holding(cluster));
  CommandResult drained = cluster.Drover({"workers", "drain", "drain-me"});  // its name is its id
  EXPECT_EQ(drained.exit_code, 0) << drained.err;
  EXPECT_NE(drained.out.find("is draining"), std::string::npos);
  std::optional<int> status = worker.Wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_NE(cluster.coordinator().Log().find("left: said goodbye (drained)"), std::string::npos);
  EXPECT_EQ(cluster.Drover({"workers", "drain", "no-such-worker"}).exit_code, 2);
}

TEST(Retries, AFlakyTaskSucceedsOnItsRetry) {
  TestCluster cluster;
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  char dir[] = "/tmp/drover-retries-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // Fails the first time it sees an item, succeeds the next.
  std::string flaky = absl::StrCat("if [ -e ", dir, "/$1 ]; then echo ok-$1; else touch ", dir, "/$1; exit 1; fi");
  CommandResult once = cluster.Drover({"run", ":::", "a", "b", "--", "sh", "-c", flaky, "sh", "{}"});
  EXPECT_EQ(once.exit_code, 1);
  std::filesystem::remove_all(std::string(dir) + "/a");
  std::filesystem::remove_all(std::string(dir) + "/b");
  CommandResult retried = cluster.Drover({"run", "--retries", "1", ":::", "a", "b", "--", "sh", "-c", flaky, "sh", "{}"});
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(retried.out, "ok-a\nok-b\n");
  std::filesystem::remove_all(dir);
}

TEST(Retries, ATaskThatKillsItsWorkersFailsAfterALimit) {
  TestCluster cluster({"--worker-timeout", "0.5", "--heartbeat", "0.1"});
  for (int i = 0; i < 3; ++i) cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(3));
  // The task SIGKILLs the worker that runs it.
  CommandResult r = cluster.Drover({"run", ":::", "x", "--", "sh", "-c", "kill -9 $PPID; sleep 5"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("its worker was lost 3 times"), std::string::npos) << r.err;
}

TEST(Timeouts, AKernelThatOverrunsIsReportedAndTheWorkerCarriesOn) {
  TestCluster cluster;
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "sleep_ms", "--timeout", "100ms", "1", "400", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "1\n2\n");
  EXPECT_NE(r.err.find("task 2 failed: took"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("over the timeout of 100ms"), std::string::npos) << r.err;
  EXPECT_EQ(cluster.Drover({"run", "--kernel", "echo", "fine"}).out, "fine\n");
}

}  // namespace
}  // namespace drover::testing
