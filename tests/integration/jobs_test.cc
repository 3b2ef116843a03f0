// Integration: jobs through a real coordinator and real workers on loopback,
// driven with the real `drover` CLI.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

std::vector<std::string> Numbers(int from, int to) {
  std::vector<std::string> lines;
  for (int i = from; i < to; ++i) lines.push_back(absl::StrCat(i));
  return lines;
}

TEST(Jobs, TopShowsWorkersAndJobsWithTheirProgress) {
  TestCluster cluster;
  cluster.AddWorker(2, {"--name", "top-test-worker"});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::vector<std::string> submit = {"submit", "--kernel", "sleep_ms", "--chunk", "1", "--name", "top-test-job"};
  for (int i = 0; i < 40; ++i) submit.push_back("200");
  const std::string job = Lines(cluster.Drover(submit).out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return cluster.Drover({"status", job}).out.find(" 0/40 done") == std::string::npos; }));
  CommandResult top = cluster.Drover({"top", "--once", "--interval", "0.5"});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("workers 1 (0 draining)   slots "), std::string::npos) << top.out;
  const std::vector<std::string> lines = Lines(top.out);
  auto worker_line = std::find_if(lines.begin(), lines.end(), [](const std::string& line) {
    return line.find("top-test-worker") != std::string::npos;
  });
  ASSERT_NE(worker_line, lines.end()) << top.out;
  EXPECT_NE(worker_line->find("/2 "), std::string::npos) << *worker_line;  // busy of its 2 slots
  auto job_line = std::find_if(lines.begin(), lines.end(), [&](const std::string& line) {
    return absl::StartsWith(line, job + " ") && line.find("top-test-job") != std::string::npos;
  });
  ASSERT_NE(job_line, lines.end()) << top.out;
  EXPECT_NE(job_line->find("RUNNING"), std::string::npos) << *job_line;
  EXPECT_EQ(job_line->find(" 0/s"), std::string::npos) << *job_line;  // tasks finish while it looks: a rate
  EXPECT_EQ(cluster.Drover({"cancel", job}).exit_code, 0);
}

TEST(Jobs, ResultsComeInInputOrderAcrossSeveralWorkers) {
  TestCluster cluster;
  for (int i = 0; i < 3; ++i) cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(3));
  std::vector<std::string> items;
  for (int i = 0; i < 1000; ++i) items.push_back(absl::StrCat("item ", i, " with spaces"));
  std::string input = absl::StrCat(absl::StrJoin(items, "\n"), "\n");

  CommandResult ordered = cluster.Drover({"run", "--kernel", "echo", "--each-line", "-", "--chunk", "7"}, input);
  EXPECT_EQ(ordered.exit_code, 0) << ordered.err;
  EXPECT_EQ(Lines(ordered.out), items);

  CommandResult unordered = cluster.Drover(
      {"run", "--kernel", "echo", "--each-line", "-", "--chunk", "7", "--unordered"}, input);
  EXPECT_EQ(unordered.exit_code, 0) << unordered.err;
  std::vector<std::string> got = Lines(unordered.out);
  std::sort(got.begin(), got.end());
  std::vector<std::string> want = items;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST(Jobs, EveryChunkSizeCoversEveryItemOnce) {
  TestCluster cluster;
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  for (const char* chunk : {"1", "3", "9", "10", "11", "1000"}) {
    CommandResult r = cluster.Drover({"run", "--kernel", "echo", "--range", "0:10", "--chunk", chunk});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Lines(r.out), Numbers(0, 10)) << "chunk " << chunk;
  }
  CommandResult empty = cluster.Drover({"run", "--kernel", "echo", "--range", "5:5"});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "");
}

TEST(Jobs, AHundredThousandItems) {
  TestCluster cluster;
  cluster.AddWorker(2);
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(2));
  CommandResult r = cluster.Drover({"run", "--kernel", "echo", "--range", "0:100000", "--chunk", "100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), Numbers(0, 100000));

  CommandResult sum = cluster.Drover({"run", "--kernel", "echo", "--range", "0:100000", "--reduce", "sum"});
  EXPECT_EQ(sum.exit_code, 0) << sum.err;
  EXPECT_EQ(sum.out, "4999950000\n");
}

TEST(Jobs, ReductionIsExactPast64Bits) {
  TestCluster cluster;
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "sum_squares", "--reduce", "sum", "10000000",
                                    "10000000", "10000000", "10000000"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1333333133333340000000\n");
}

TEST(Jobs, FailingTasksAreReportedAndTheRestOfTheJobGoesOn) {
  TestCluster cluster;
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "sum_squares", "3", "x", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "5\n14\n");
  EXPECT_NE(r.err.find("task 2 failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("want an integer item"), std::string::npos) << r.err;

  CommandResult json = cluster.Drover({"--json", "run", "--kernel", "sum_squares", "3", "x"});
  EXPECT_EQ(json.exit_code, 1);
  std::vector<std::string> lines = Lines(json.out);
  ASSERT_EQ(lines.size(), 2u) << json.out;
  EXPECT_EQ(lines[0].rfind(R"({"index":0,"ok":true,"output":"5","outputBytes":"","error":"")", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[1].find(R"("index":1,)"), std::string::npos);
  EXPECT_NE(lines[1].find("want an integer item"), std::string::npos);
}

TEST(Jobs, AnUnknownKernelIsRefusedAtSubmit) {
  TestCluster cluster;
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "nope", "a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown kernel 'nope'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sum_squares"), std::string::npos) << r.err;  // says what exists
}

TEST(Jobs, AWorkerThatJoinsMidJobTakesWork) {
  TestCluster cluster;
  cluster.AddWorker(1, {"--name", "first"});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::vector<std::string> args = {"submit", "--kernel", "sleep_ms"};
  for (int i = 0; i < 80; ++i) args.push_back("20");
  CommandResult submitted = cluster.Drover(args);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] {
    return cluster.Drover({"status", job}).out.find(" 0/80 done") == std::string::npos;
  }));
  cluster.AddWorker(1, {"--name", "second"});
  CommandResult waited = cluster.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  CommandResult workers = cluster.Drover({"--json", "workers"});
  std::vector<std::string> lines = Lines(workers.out);
  ASSERT_EQ(lines.size(), 2u) << workers.out;
  for (const std::string& line : lines) {
    EXPECT_NE(line.find("chunksDone"), std::string::npos) << "a worker did nothing: " << line;
  }
  CommandResult results = cluster.Drover({"results", job});
  EXPECT_EQ(Lines(results.out).size(), 80u);
}

TEST(Jobs, PluginKernelsRunAndAThrowingKernelFailsOnlyItsTask) {
  TestCluster cluster;
  cluster.AddWorker(2, {"--plugin", DROVER_EXAMPLE_PLUGIN, "--plugin", DROVER_THROWING_PLUGIN});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult reverse = cluster.Drover({"run", "--kernel", "reverse", "abc", "hello world"});
  EXPECT_EQ(reverse.exit_code, 0) << reverse.err;
  EXPECT_EQ(reverse.out, "cba\ndlrow olleh\n");

  CommandResult thrown = cluster.Drover({"run", "--kernel", "throw_on", "a", "boom", "c"});
  EXPECT_EQ(thrown.exit_code, 1);
  EXPECT_EQ(thrown.out, "a\nc\n");
  EXPECT_NE(thrown.err.find("boom went the kernel"), std::string::npos) << thrown.err;

  // The worker survived: it still serves.
  CommandResult after = cluster.Drover({"run", "--kernel", "word_count", "one two three"});
  EXPECT_EQ(after.out, "3\n");
}

TEST(Jobs, RequiredLabelsSendAJobToTheRightWorkers) {
  TestCluster cluster;
  cluster.AddWorker(1, {"--name", "plain"});
  cluster.AddWorker(1, {"--name", "fancy", "--label", "gpu=a100"});
  ASSERT_TRUE(cluster.WaitForWorkers(2));
  CommandResult r = cluster.Drover({"run", "--require", "gpu", "--range", "0:6", "--", "sh", "-c", "echo $DROVER_WORKER"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), std::vector<std::string>(6, "fancy"));
  CommandResult none = cluster.Drover({"run", "--require", "gpu=h100", "--kernel", "echo", "x"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("no connected worker has the labels gpu=h100"), std::string::npos) << none.err;
  CommandResult workers = cluster.Drover({"workers"});
  EXPECT_NE(workers.out.find("gpu=a100"), std::string::npos) << workers.out;
}

TEST(Jobs, ARunThatNoWorkerCanTakeSaysSoAndGoesOnWhenOneJoins) {
  TestCluster cluster;  // no worker yet: a Slurm worker step that died, say
  ChildProcess run({BinPath("drover"), "--coordinator", cluster.client_target(), "run", "--kernel", "echo", "a"});
  ASSERT_TRUE(WaitUntil([&] { return run.Log().find("no connected worker can run job 1") != std::string::npos; }))
      << run.Log();
  cluster.AddWorker(1);
  std::optional<int> status = run.Wait(absl::Seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 0) << run.Log();
  EXPECT_NE(run.Log().find("\na\n"), std::string::npos) << run.Log();
}

TEST(Jobs, SubmitStatusWaitResultsAndJobs) {
  TestCluster cluster;
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "--range", "0:50", "--chunk", "5", "--name", "fifty"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);

  CommandResult waited = cluster.Drover({"wait", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_NE(waited.err.find("SUCCEEDED 50/50 done, 0 failed"), std::string::npos) << waited.err;

  CommandResult results = cluster.Drover({"results", job});
  EXPECT_EQ(Lines(results.out), Numbers(0, 50));
  CommandResult again = cluster.Drover({"results", job});  // kept: can be read twice
  EXPECT_EQ(Lines(again.out), Numbers(0, 50));
  CommandResult unordered = cluster.Drover({"results", "--unordered", job});
  EXPECT_EQ(Lines(unordered.out).size(), 50u);

  CommandResult status = cluster.Drover({"--json", "status", job});
  EXPECT_NE(status.out.find("\"state\":\"succeeded\""), std::string::npos) << status.out;
  CommandResult jobs = cluster.Drover({"jobs"});
  EXPECT_NE(jobs.out.find("fifty"), std::string::npos) << jobs.out;
  CommandResult missing = cluster.Drover({"status", "999"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no job 999"), std::string::npos);
}

TEST(Jobs, TasksListsEachTasksStateWorkerAndOutcome) {
  TestCluster cluster;
  cluster.AddWorker(2, {"--name", "lister"});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  // One task fails at once, one runs for long on a slot, the rest wait.
  CommandResult submitted =
      cluster.Drover({"submit", "--chunk", "1", ":::", "fail", "100", "100", "100", "100", "--", "sh", "-c",
                      "if [ $1 = fail ]; then echo boom >&2; exit 3; fi; sleep $1", "sh", "{}"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  // The worker reports when a chunk starts: the long task shows as running.
  ASSERT_TRUE(WaitUntil([&] {
    return Lines(cluster.Drover({"tasks", "--state", "running", job}).out).size() >= 2;  // the header and a row
  })) << cluster.Drover({"tasks", job}).out;
  CommandResult failed = cluster.Drover({"tasks", "--state", "failed", job});
  ASSERT_EQ(Lines(failed.out).size(), 2u) << failed.out;
  const std::string row = Lines(failed.out)[1];
  for (const char* part : {"1 ", "failed", "lister", " 3 ", "fail", "exit status 3"}) {
    EXPECT_NE(row.find(part), std::string::npos) << part << " in: " << row;
  }
  CommandResult json = cluster.Drover({"--json", "tasks", job});
  std::vector<std::string> tasks = Lines(json.out);
  ASSERT_EQ(tasks.size(), 5u) << json.out;
  EXPECT_EQ(tasks[0].rfind(R"({"index":0,"state":"failed","item":"fail")", 0), 0u) << tasks[0];
  EXPECT_NE(tasks[0].find(R"("exitCode":3)"), std::string::npos) << tasks[0];
  EXPECT_NE(json.out.find(R"("state":"running","item":"100")"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find(R"("worker":"lister","startedUnixUs":1)"), std::string::npos) << json.out;
  EXPECT_EQ(cluster.Drover({"cancel", job}).exit_code, 0);
  CommandResult cancelled = cluster.Drover({"tasks", "--state", "cancelled", job});
  EXPECT_EQ(Lines(cancelled.out).size(), 5u) << cancelled.out;  // header + the four never finished

  // A big job is listed a page at a time, from any task, to any length.
  const std::string big = Lines(cluster.Drover({"submit", "--kernel", "noop", "--range", "0:2500"}).out).at(0);
  ASSERT_EQ(cluster.Drover({"wait", "--quiet", big}).exit_code, 0);
  EXPECT_EQ(Lines(cluster.Drover({"--json", "tasks", big}).out).size(), 2500u);
  std::vector<std::string> some = Lines(cluster.Drover({"--json", "tasks", "--from", "1001", "--limit", "1200", big}).out);
  ASSERT_EQ(some.size(), 1200u);
  EXPECT_EQ(some.front().rfind(R"({"index":1000,"state":"succeeded","item":"1000")", 0), 0u) << some.front();
  EXPECT_EQ(cluster.Drover({"tasks", "--state", "bogus", big}).exit_code, 2);
  EXPECT_EQ(cluster.Drover({"tasks", "999"}).exit_code, 2);
}

TEST(Jobs, RetrySubmitsTheFailedAndNeverFinishedTasksAgain) {
  TestCluster cluster;
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  char dir[] = "/tmp/drover-retry-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // Items starting with "bad" fail until the file "fixed" exists.
  const std::string task = absl::StrCat("case $1 in bad*) [ -e ", dir, "/fixed ] || exit 4;; esac; echo $1");
  const std::string job = Lines(cluster.Drover({"submit", "--chunk", "1", ":::", "good1", "bad1", "good2", "bad2",
                                                "--", "sh", "-c", task, "sh", "{}"}).out).at(0);
  EXPECT_EQ(cluster.Drover({"wait", "--quiet", job}).exit_code, 1);
  CommandResult nothing = cluster.Drover({"retry", "--unfinished", job});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_NE(nothing.err.find("has no unfinished tasks"), std::string::npos) << nothing.err;
  std::ofstream(absl::StrCat(dir, "/fixed")).put('\n');
  CommandResult retried = cluster.Drover({"retry", job});
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  const std::string again = Lines(retried.out).at(0);
  EXPECT_EQ(cluster.Drover({"wait", "--quiet", again}).exit_code, 0);
  EXPECT_EQ(cluster.Drover({"results", again}).out, "bad1\nbad2\n");
  EXPECT_NE(cluster.Drover({"jobs"}).out.find("retry of job " + job), std::string::npos);

  // A cancelled job's tasks that never finished, from a range.
  const std::string slow = Lines(cluster.Drover({"submit", "--range", "0:20", "--", "sleep", "100"}).out).at(0);
  CommandResult running = cluster.Drover({"retry", slow});
  EXPECT_EQ(running.exit_code, 2);
  EXPECT_NE(running.err.find("has not finished"), std::string::npos) << running.err;
  ASSERT_EQ(cluster.Drover({"cancel", slow}).exit_code, 0);
  EXPECT_EQ(cluster.Drover({"retry", "--failed", slow}).exit_code, 2);  // none failed
  const std::string rest = Lines(cluster.Drover({"retry", "--unfinished", slow}).out).at(0);
  CommandResult listed = cluster.Drover({"--json", "tasks", "--limit", "1", rest});
  EXPECT_NE(listed.out.find(R"("index":0,)"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(R"("item":"0")"), std::string::npos) << listed.out;
  EXPECT_NE(cluster.Drover({"status", rest}).out.find("/20 done"), std::string::npos);
  EXPECT_EQ(cluster.Drover({"cancel", rest}).exit_code, 0);
  std::filesystem::remove_all(dir);
}

TEST(Jobs, CancelStopsAJobAndTheWorkersMoveOn) {
  TestCluster cluster;
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  // Tasks of 100 s on both slots: if the workers kept running them, nothing
  // else could run for 100 s.
  CommandResult submitted = cluster.Drover({"submit", "--range", "0:4", "--", "sleep", "100"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] {
    return cluster.Drover({"--json", "workers"}).out.find("\"slotsBusy\":2") != std::string::npos;
  })) << "the tasks never started";
  CommandResult cancelled = cluster.Drover({"cancel", job});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_NE(cancelled.out.find("CANCELLED"), std::string::npos);
  CommandResult waited = cluster.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 1);
  // The workers killed the cancelled tasks: a new job runs at once (well
  // within the 100 s the tasks would have taken).
  CommandResult next = RunProgram({"/usr/bin/timeout", "20", BinPath("drover"), "--coordinator", cluster.client_target(),
                                   "run", "--kernel", "echo", "still here"});
  EXPECT_EQ(next.exit_code, 0) << "exit 124 means it waited for the cancelled tasks: " << next.err;
  EXPECT_EQ(next.out, "still here\n");
  CommandResult status = cluster.Drover({"status", job});
  EXPECT_NE(status.out.find("CANCELLED"), std::string::npos);
  // Its results say it was cancelled: a reader never takes them for all of them.
  CommandResult results = cluster.Drover({"results", job});
  EXPECT_EQ(results.exit_code, 1);
  EXPECT_NE(results.err.find(absl::StrCat("job ", job, " was cancelled")), std::string::npos) << results.err;
  // Cancelling a finished job says so in words.
  CommandResult again = cluster.Drover({"cancel", job});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("has already finished (cancelled): nothing to cancel"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace drover::testing
