// Integration: command tasks through the real coordinator, workers and CLI.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_.AddWorker(2);
    ASSERT_TRUE(cluster_.WaitForWorkers(1));
  }
  TestCluster cluster_;
};

TEST_F(CommandTest, ExitStatusesAndTheJobsExitCode) {
  CommandResult ok = cluster_.Drover({"run", ":::", "x", "y", "--", "true"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(cluster_.Drover({"status", "1"}).out.find("2/2 done"), std::string::npos);  // ::: gave two items
  CommandResult mixed = cluster_.Drover({"run", ":::", "0", "1", "3", "--", "sh", "-c", "exit {}"});
  EXPECT_EQ(mixed.exit_code, 1);
  EXPECT_NE(mixed.err.find("task 2 (1) failed: exit status 1"), std::string::npos) << mixed.err;
  EXPECT_NE(mixed.err.find("task 3 (3) failed: exit status 3"), std::string::npos) << mixed.err;
  CommandResult json = cluster_.Drover({"--json", "run", ":::", "3", "--", "sh", "-c", "exit {}"});
  EXPECT_NE(json.out.find(R"("exitCode":3)"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find(R"("item":"3")"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find(R"("worker":")"), std::string::npos) << json.out;
  EXPECT_EQ(json.out.find(R"("maxRssKb":0,)"), std::string::npos) << json.out;  // measured
}

TEST_F(CommandTest, ItemsAreSingleArgumentsWhateverTheyContain) {
  std::vector<std::string> items = {"two words", "it's", "\"quoted\"", "ünïcødé ✓", "-n", "--help", "$HOME", "*"};
  std::vector<std::string> args = {"run", ":::"};
  args.insert(args.end(), items.begin(), items.end());
  for (const char* a : {"--", "printf", "[%s]\\n"}) args.push_back(a);
  CommandResult r = cluster_.Drover(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> want;
  for (const auto& item : items) want.push_back("[" + item + "]");
  EXPECT_EQ(Lines(r.out), want);
}

TEST_F(CommandTest, PlaceholdersAndEnvironment) {
  CommandResult r = cluster_.Drover({"run", "--array", "1-10:3", "--", "sh", "-c",
                                     "echo {#}:{}:$DROVER_TASK_ID:$DROVER_ITEM:${DROVER_JOB_ID:+job}"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"1:1:1:1:job", "2:4:2:4:job", "3:7:3:7:job", "4:10:4:10:job"}));
  CommandResult appended = cluster_.Drover({"run", ":::", "x", "--", "echo", "item:"});
  EXPECT_EQ(appended.out, "item: x\n");  // no {}: the item goes last
  // GNU Parallel's path forms count as the item: nothing is appended.
  CommandResult paths = cluster_.Drover({"run", ":::", "img/a.png", "--", "echo", "out/{/.}.jpg", "{//}", "{.}"});
  EXPECT_EQ(paths.out, "out/a.jpg img img/a\n") << paths.err;
}

TEST_F(CommandTest, SeveralInputSourcesAndColumnsAsInGnuParallel) {
  // Every combination, the last source varying fastest; {N} is source N.
  CommandResult product = cluster_.Drover({"run", ":::", "a", "b", ":::", "1", "2", "--", "echo", "{2}-{1}"});
  EXPECT_EQ(product.out, "1-a\n2-a\n1-b\n2-b\n") << product.err;
  // :::+ goes in step with the source before; without placeholders each column is an argument.
  CommandResult linked = cluster_.Drover({"run", ":::", "a", "b", ":::+", "1", "2", "--", "echo"});
  EXPECT_EQ(linked.out, "a 1\nb 2\n") << linked.err;
  // :::: FILE reads a source from a file's lines.
  char path[] = "/tmp/drover-source-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_EQ(write(fd, "x\ny\n", 4), 4);
  close(fd);
  CommandResult file = cluster_.Drover({"run", ":::", "1", "::::", path, "--", "echo", "{1}{2}"});
  EXPECT_EQ(file.out, "1x\n1y\n") << file.err;
  unlink(path);
  EXPECT_EQ(cluster_.Drover({"run", "::::", "/nonexistent/items", "--", "echo"}).exit_code, 2);
  // --colsep splits one source; {} is the columns joined by spaces; a missing column is empty.
  CommandResult columns = cluster_.Drover({"run", "--colsep", "\\t", "--each-line", "-", "--", "echo",
                                           "{2}:{1}:{}:{3}."},
                                          "x\t1\ny\t2\n");
  EXPECT_EQ(columns.out, "1:x:x 1:.\n2:y:y 2:.\n") << columns.err;
  EXPECT_EQ(cluster_.Drover({"run", "--kernel", "echo", ":::", "a", ":::", "b"}).exit_code, 2);  // commands only
}

TEST_F(CommandTest, MaxParallelLimitsTheTasksRunningAtOnceOverTheCluster) {
  cluster_.AddWorker(2);  // 4 slots on two workers
  ASSERT_TRUE(cluster_.WaitForWorkers(2));
  char dir[] = "/tmp/drover-parallel-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // Each task marks itself running, and after a while prints how many tasks
  // are running (itself included): observed by the tasks themselves.
  const std::string task = absl::StrCat("touch ", dir, "/$1; sleep 0.3; ls ", dir, " | wc -l; rm ", dir, "/$1");
  CommandResult limited = cluster_.Drover({"run", "--max-parallel", "2", "--range", "0:8", "--chunk", "1", "--",
                                           "sh", "-c", task, "-", "{}"});
  EXPECT_EQ(limited.exit_code, 0) << limited.err;
  std::vector<std::string> seen = Lines(limited.out);
  ASSERT_EQ(seen.size(), 8u);
  for (const std::string& n : seen) EXPECT_TRUE(n == "1" || n == "2") << limited.out;
  // Without the limit the same job runs 4 at once.
  CommandResult free = cluster_.Drover({"run", "--range", "0:8", "--chunk", "1", "--", "sh", "-c", task, "-", "{}"});
  std::vector<std::string> unlimited = Lines(free.out);
  EXPECT_NE(std::find_if(unlimited.begin(), unlimited.end(), [](const std::string& n) { return n >= "3"; }),
            unlimited.end())
      << free.out;
  std::filesystem::remove_all(dir);
}

TEST_F(CommandTest, EachLineFromStdin) {
  CommandResult counted = cluster_.Drover({"run", "--each-line", "-", "--", "sh", "-c", "printf %s \"$1\" | wc -c", "sh", "{}"},
                                          "a\nbb\nccc\n");
  EXPECT_EQ(counted.exit_code, 0) << counted.err;
  EXPECT_EQ(Lines(counted.out), (std::vector<std::string>{"1", "2", "3"}));
  // -0: items end with NUL (find -print0) and may hold newlines.
  CommandResult nul = cluster_.Drover({"run", "-0", "--each-line", "-", "--", "printf", "[%s]\\n"},
                                      std::string("a b\nc\0d\0", 8));
  EXPECT_EQ(nul.out, "[a b\nc]\n[d]\n") << nul.err;
  EXPECT_EQ(cluster_.Drover({"run", "-0", ":::", "a", "--", "echo"}).exit_code, 2);  // -0 needs --each-line
}

TEST_F(CommandTest, FailuresHaveClearReasons) {
  CommandResult missing = cluster_.Drover({"run", ":::", "x", "--", "drover-no-such-program"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot run 'drover-no-such-program': No such file or directory"), std::string::npos)
      << missing.err;
  CommandResult segv = cluster_.Drover({"run", ":::", "x", "--", "sh", "-c", "kill -SEGV $$"});
  EXPECT_NE(segv.err.find("killed by signal 11"), std::string::npos) << segv.err;
  CommandResult slow = cluster_.Drover({"run", "--timeout", "300ms", ":::", "30", "--", "sleep", "{}"});
  EXPECT_NE(slow.err.find("timed out after 300ms"), std::string::npos) << slow.err;
  // The program's own words (the end of its stderr) come with the failure.
  CommandResult gzip = cluster_.Drover({"run", ":::", "file002.txt", "--", "sh", "-c",
                                        "echo \"gzip: $1: No such file or directory\" >&2; exit 1", "-", "{}"});
  EXPECT_EQ(gzip.exit_code, 1);
  EXPECT_NE(gzip.err.find("task 1 (file002.txt) failed: exit status 1\n"
                          "  | gzip: file002.txt: No such file or directory\n"),
            std::string::npos)
      << gzip.err;
  // The worker is fine after all of that.
  CommandResult after = cluster_.Drover({"run", ":::", "still", "--", "echo"});
  EXPECT_EQ(after.out, "still\n");
}

TEST_F(CommandTest, WaitSummarisesTheFailuresOfASubmittedJob) {
  CommandResult submitted = cluster_.Drover({"submit", ":::", "ok", "file001.txt", "file002.txt", "--", "sh", "-c",
                                             "[ $1 = ok ] || { echo \"gzip: $1: No such file\" >&2; exit 1; }",
                                             "-", "{}"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  CommandResult waited = cluster_.Drover({"wait", job});
  EXPECT_EQ(waited.exit_code, 1);
  EXPECT_NE(waited.err.find("task 2 (file001.txt) failed: exit status 1\n  | gzip: file001.txt: No such file\n"),
            std::string::npos)
      << waited.err;
  EXPECT_NE(waited.err.find("task 3 (file002.txt) failed"), std::string::npos) << waited.err;
  EXPECT_EQ(waited.err.find("task 1 "), std::string::npos) << waited.err;  // only the failures
  // The final line once, also for a job that had finished before the wait.
  const std::string final_line = absl::StrCat("job ", job, " FAILED 3/3 done, 2 failed");
  EXPECT_EQ(waited.err.find(final_line), waited.err.rfind(final_line)) << waited.err;
  EXPECT_EQ(waited.out, "");
}

TEST_F(CommandTest, AJobLogInGnuParallelsFormat) {
  char path[] = "/tmp/drover-joblog-XXXXXX";
  close(mkstemp(path));
  const double before = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  CommandResult run = cluster_.Drover({"run", "--joblog", path, ":::", "a", "b", "c", "--", "sh", "-c",
                                       "sleep 0.2; echo {}; [ {} != b ]"});
  EXPECT_EQ(run.exit_code, 1);
  std::vector<std::string> lines = Lines(RunProgram({"/bin/cat", path}).out);
  unlink(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand");
  for (int task = 1; task <= 3; ++task) {
    std::vector<std::string> fields = absl::StrSplit(lines[task], '\t');
    ASSERT_EQ(fields.size(), 9u) << lines[task];
    EXPECT_EQ(fields[0], absl::StrCat(task));
    EXPECT_FALSE(fields[1].empty());
    double started = 0, runtime = 0;
    ASSERT_TRUE(absl::SimpleAtod(fields[2], &started) && absl::SimpleAtod(fields[3], &runtime)) << lines[task];
    EXPECT_GE(started, before - 1) << lines[task];
    EXPECT_GE(runtime, 0.19) << lines[task];
    EXPECT_EQ(fields[5], "2");  // "a\n"
    EXPECT_EQ(fields[6], task == 2 ? "1" : "0");
    EXPECT_EQ(fields[7], "0");
    const std::string item(1, static_cast<char>('a' + task - 1));
    EXPECT_EQ(fields[8], absl::StrCat("sh -c sleep 0.2; echo ", item, "; [ ", item, " != b ]"));
  }
  EXPECT_EQ(cluster_.Drover({"run", "--joblog", "/nonexistent/dir/log", ":::", "a", "--", "echo"}).exit_code, 2);
}

TEST_F(CommandTest, TasksRunWhereTheUserSubmitsFrom) {
  char dir[] = "/tmp/drover-cwd-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::FILE* f = std::fopen(absl::StrCat(dir, "/a.txt").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("one\ntwo\n", f);
  std::fclose(f);
  // `ls *.txt | drover submit --each-line - -- wc -l {}` from that directory finds the files.
  CommandResult here = RunProgram({"/bin/sh", "-c", absl::StrCat("cd ", dir, " && exec ", BinPath("drover"),
                                                                 " --coordinator ", cluster_.client_target(),
                                                                 " run ::: a.txt -- wc -l {}")});
  EXPECT_EQ(here.exit_code, 0) << here.err;
  EXPECT_EQ(here.out, "2 a.txt\n");
  // --cwd - : the worker's own directory, where a.txt is not.
  CommandResult own = RunProgram({"/bin/sh", "-c", absl::StrCat("cd ", dir, " && exec ", BinPath("drover"),
                                                                " --coordinator ", cluster_.client_target(),
                                                                " run --cwd - ::: x -- pwd")});
  EXPECT_NE(own.out, absl::StrCat(dir, "\n")) << own.err;
  // A directory the worker cannot enter fails the task, saying so.
  CommandResult missing = cluster_.Drover({"run", "--cwd", "/nonexistent-drover-dir", ":::", "x", "--", "true"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot change to directory '/nonexistent-drover-dir'"), std::string::npos)
      << missing.err;
  std::filesystem::remove_all(dir);
}

TEST_F(CommandTest, LargeAndBinaryOutputArePreserved) {
  CommandResult big = cluster_.Drover({"run", "--max-output", "64M", ":::", "52428800", "--", "head", "-c", "{}", "/dev/zero"});
  EXPECT_EQ(big.exit_code, 0) << big.err;
  EXPECT_EQ(big.out.size(), 52428800u);
  CommandResult capped = cluster_.Drover({"--json", "run", ":::", "3000000", "--", "head", "-c", "{}", "/dev/zero"});
  EXPECT_NE(capped.out.find(R"("stdoutTruncated":true)"), std::string::npos);
  // Cut output is never silent.
  CommandResult cut = cluster_.Drover({"run", ":::", "3000000", "--", "head", "-c", "{}", "/dev/zero"});
  EXPECT_EQ(cut.out.size(), 1u << 20);
  EXPECT_NE(cut.err.find("warning: task 1's stdout passed --max-output and was cut"), std::string::npos) << cut.err;
  EXPECT_NE(cut.err.find("1 task(s) had output cut at --max-output"), std::string::npos) << cut.err;
  CommandResult binary = cluster_.Drover({"run", ":::", "x", "--", "printf", "\\000\\377\\376"});
  EXPECT_EQ(binary.out, std::string("\0\xff\xfe", 3));
}

TEST_F(CommandTest, OutputDirHoldsEachTasksStdoutAndStderrByteForByte) {
  char dir[] = "/tmp/drover-outputs-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string out_dir = absl::StrCat(dir, "/made/by/run");
  CommandResult r = cluster_.Drover({"run", "--output-dir", out_dir, "--output-name", "t{#}-{}", ":::", "200000",
                                     "3", "../up", "--", "sh", "-c",
                                     "f=$(mktemp); head -c $1 /dev/urandom >$f; cat $f; cat $f >&2; rm $f; "
                                     "[ \"$1\" != ../up ]", "sh", "{}"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");  // the outputs went to files
  EXPECT_NE(r.err.find("task 3 (../up) failed"), std::string::npos) << r.err;
  auto read = [&](const std::string& name) {
    std::ifstream in(absl::StrCat(out_dir, "/", name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (const auto& [name, size] : std::vector<std::pair<std::string, size_t>>{{"t1-200000", 200000}, {"t2-3", 3}}) {
    const std::string out = read(name + ".out");
    ASSERT_EQ(out.size(), size) << name;
    EXPECT_EQ(read(name + ".err"), out) << name;  // the task wrote the same bytes to both
  }
  EXPECT_TRUE(std::filesystem::exists(out_dir + "/t3-_.._up.out"));  // no way out of the directory
  EXPECT_FALSE(std::filesystem::exists(absl::StrCat(dir, "/made/by/up.out")));

  CommandResult same = cluster_.Drover({"run", "--output-dir", out_dir, "--output-name", "all", ":::", "a", "--",
                                        "echo"});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_NE(same.err.find("put {#} (the task number) or {} (its item) in it"), std::string::npos) << same.err;
  CommandResult blocked = cluster_.Drover({"run", "--output-dir", out_dir + "/t2-3.out/x", ":::", "a", "--", "echo"});
  EXPECT_EQ(blocked.exit_code, 2);
  EXPECT_NE(blocked.err.find("--output-dir: cannot make"), std::string::npos) << blocked.err;
  std::filesystem::remove_all(dir);
}

TEST_F(CommandTest, LogsShowsOneTasksStdoutAndStderr) {
  CommandResult submitted = cluster_.Drover({"submit", ":::", "a", "b", "--", "sh", "-c", "echo out-$1; echo err-$1 >&2; exit 2", "sh", "{}"});
  std::string job = Lines(submitted.out).at(0);
  EXPECT_EQ(cluster_.Drover({"wait", "--quiet", job}).exit_code, 1);
  CommandResult logs = cluster_.Drover({"logs", job, "2"});
  EXPECT_EQ(logs.out, "out-b\n");
  EXPECT_NE(logs.err.find("err-b\n"), std::string::npos) << logs.err;
  EXPECT_NE(logs.err.find("exit status 2"), std::string::npos) << logs.err;
  CommandResult json = cluster_.Drover({"--json", "logs", job, "1"});
  EXPECT_NE(json.out.find(R"("stderr":"err-a\n")"), std::string::npos) << json.out;
  EXPECT_EQ(cluster_.Drover({"logs", job, "3"}).exit_code, 2);
  CommandResult results = cluster_.Drover({"results", job});
  EXPECT_EQ(results.out, "out-a\nout-b\n");

  // A task that has not run yet, and then never will: each says which.
  std::string slow = Lines(cluster_.Drover({"submit", "--range", "0:100", "--", "sleep", "10"}).out).at(0);
  CommandResult waiting = cluster_.Drover({"logs", slow, "100"});
  EXPECT_NE(waiting.err.find("task 100 of job " + slow + " has not finished yet"), std::string::npos) << waiting.err;
  EXPECT_EQ(cluster_.Drover({"cancel", slow}).exit_code, 0);
  CommandResult never = cluster_.Drover({"logs", slow, "100"});
  EXPECT_NE(never.err.find("did not finish: the job was cancelled"), std::string::npos) << never.err;
}

TEST_F(CommandTest, CpusLimitHowManyTasksRunAtOnce) {
  char dir[] = "/tmp/drover-cpus-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // Each task holds a lock directory for 1 s; two at once would collide. With
  // --cpus ignored, the worker's two slots would start two tasks together
  // (they arrive in one Assign), so the collision would be certain, not luck.
  std::string script = absl::StrCat("mkdir ", dir, "/lock || exit 9; sleep 1; rmdir ", dir, "/lock");
  CommandResult r = cluster_.Drover({"run", "--cpus", "2", "--chunk", "1", "--range", "0:3", "--", "sh", "-c", script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  CommandResult unlimited = cluster_.Drover({"run", "--chunk", "1", "--range", "0:2", "--", "sh", "-c", script});
  EXPECT_EQ(unlimited.exit_code, 1) << "without --cpus two tasks run at once and collide";
  // More cpus than any worker has slots would never run: refused at submit.
  CommandResult too_many = cluster_.Drover({"run", "--cpus", "3", ":::", "a", "--", "true"});
  EXPECT_EQ(too_many.exit_code, 2);
  EXPECT_NE(too_many.err.find("cpus 3 is more than any connected worker has"), std::string::npos) << too_many.err;
  rmdir(dir);
}

TEST_F(CommandTest, CancelKillsRunningTasks) {
  std::string mark = UniqueTestMark();
  CommandResult submitted = cluster_.Drover({"submit", "--env", mark, "--range", "0:4", "--", "sleep", "60"});
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return ProcessesWithEnv(mark).size() == 2; }));  // two slots busy
  EXPECT_EQ(cluster_.Drover({"cancel", job}).exit_code, 0);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv(mark).empty(); }, absl::Seconds(10)));
}

TEST(CommandCrash, AKilledWorkerLeavesNoTaskBehind) {
  TestCluster cluster({"--worker-timeout", "1", "--heartbeat", "0.2"});
  ChildProcess& worker = cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::string mark = UniqueTestMark();
  // Each task also starts a grandchild in the background.
  cluster.Drover({"submit", "--env", mark, "--range", "0:2", "--", "sh", "-c", "sleep 60 & sleep 60"});
  ASSERT_TRUE(WaitUntil([&] { return ProcessesWithEnv(mark).size() >= 4; }));
  worker.Signal(SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return ProcessesWithEnv(mark).empty(); }, absl::Seconds(10)));
}

}  // namespace
}  // namespace drover::testing
