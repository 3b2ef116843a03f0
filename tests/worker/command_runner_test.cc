// Tests worker/command_runner.h with real child processes.
#include "worker/command_runner.h"
#include "worker/chunk_runner.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace drover {
namespace {

class CommandRunnerTest : public ::testing::Test {
 protected:
  CommandOutcome Run(std::vector<std::string> argv, CommandTask task = {}) {
    task.argv = std::move(argv);
    return RunCommand(task, not_cancelled_, &groups_);
  }
  std::atomic<bool> not_cancelled_{false};
  ProcessGroups groups_;  // not started: the tests check the worker's own cleanup
};

bool Alive(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t paren = line.rfind(')');
  return paren != std::string::npos && line[paren + 2] != 'Z';
}

TEST_F(CommandRunnerTest, ExitStatusesAreReported) {
  EXPECT_EQ(Run({"true"}).exit_code, 0);
  CommandOutcome f = Run({"false"});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(DescribeFailure(f, {}), "exit status 1");
  EXPECT_EQ(Run({"sh", "-c", "exit 3"}).exit_code, 3);
  EXPECT_EQ(DescribeFailure(Run({"true"}), {}), "");
}

TEST_F(CommandRunnerTest, ASignalIsReported) {
  CommandOutcome segv = Run({"sh", "-c", "kill -SEGV $$"});
  EXPECT_EQ(segv.exit_code, -1);
  EXPECT_EQ(segv.signal, SIGSEGV);
  EXPECT_NE(DescribeFailure(segv, {}).find("killed by signal 11"), std::string::npos);
}

TEST_F(CommandRunnerTest, LargeOutputOnBothStreamsDoesNotDeadlock) {
  CommandTask task;
  task.max_output_bytes = 64 << 20;
  CommandOutcome big = Run({"sh", "-c", "head -c 52428800 /dev/zero; head -c 3000000 /dev/zero >&2"}, task);
  EXPECT_EQ(big.exit_code, 0);
  EXPECT_EQ(big.stdout_data.size(), 52428800u);
  EXPECT_EQ(big.stderr_data.size(), 3000000u);
  EXPECT_FALSE(big.stdout_truncated);
}

TEST_F(CommandRunnerTest, OutputBeyondTheCapIsDroppedAndMarked) {
  CommandOutcome capped = Run({"sh", "-c", "head -c 5000000 /dev/zero"});
  EXPECT_EQ(capped.exit_code, 0);  // the task ran to the end
  EXPECT_EQ(capped.stdout_data.size(), 1u << 20);
  EXPECT_TRUE(capped.stdout_truncated);
  EXPECT_FALSE(capped.stderr_truncated);
}

TEST_F(CommandRunnerTest, BinaryOutputIsKeptExactly) {
  CommandOutcome binary = Run({"printf", "a\\000\\377\\n"});
  EXPECT_EQ(binary.stdout_data, std::string("a\0\xff\n", 4));
}

TEST_F(CommandRunnerTest, ATimeoutTerminatesTheTask) {
  CommandTask task;
  task.timeout = absl::Milliseconds(200);
  CommandOutcome slow = Run({"sleep", "30"}, task);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_EQ(slow.signal, SIGTERM);
  EXPECT_NE(DescribeFailure(slow, task).find("timed out after 200ms"), std::string::npos);
}

TEST_F(CommandRunnerTest, ATaskIgnoringSigtermIsKilledAfterTheGrace) {
  CommandTask task;
  task.timeout = absl::Milliseconds(100);
  task.kill_grace = absl::Milliseconds(100);
  CommandOutcome stubborn = Run({"sh", "-c", "trap '' TERM; sleep 30"}, task);
  EXPECT_TRUE(stubborn.timed_out);
  EXPECT_EQ(stubborn.signal, SIGKILL);
}

TEST_F(CommandRunnerTest, GrandchildrenDoNotOutliveTheirTask) {
  CommandOutcome parent = Run({"sh", "-c", "sleep 300 > /dev/null & echo $!"});
  EXPECT_EQ(parent.exit_code, 0);
  pid_t grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(parent.stdout_data), &grandchild));
  // SIGKILL is delivered asynchronously: allow it a moment to land.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Alive(grandchild) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(Alive(grandchild));
}

TEST_F(CommandRunnerTest, ADetachedDescendantHoldingThePipesDoesNotHangTheTask) {
  // setsid puts `sleep` outside the task's group; it keeps stdout open.
  CommandOutcome outcome = Run({"sh", "-c", "setsid sleep 30 & echo $!"});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_FALSE(outcome.timed_out);
  pid_t detached = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(outcome.stdout_data), &detached));
  kill(detached, SIGKILL);  // outside the task's group by design: the test cleans it up
}

TEST_F(CommandRunnerTest, AMissingOrNonExecutableProgramIsAClearFailure) {
  CommandOutcome missing = Run({"drover-no-such-program"});
  EXPECT_EQ(missing.start_error, "cannot run 'drover-no-such-program': No such file or directory");
  char path[] = "/tmp/drover-not-executable-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  CommandOutcome denied = Run({path});
  EXPECT_NE(denied.start_error.find("Permission denied"), std::string::npos) << denied.start_error;
  unlink(path);
}

TEST_F(CommandRunnerTest, CwdAndEnvironment) {
  CommandTask task;
  task.cwd = "/tmp";
  task.env = {"DROVER_TEST_VALUE=a b"};
  CommandOutcome out = Run({"sh", "-c", "pwd; echo \"$DROVER_TEST_VALUE\""}, task);
  EXPECT_EQ(out.stdout_data, "/tmp\na b\n");
  task.cwd = "/nonexistent-dir";
  EXPECT_FALSE(Run({"true"}, task).start_error.empty());
}

TEST_F(CommandRunnerTest, CancellingKillsTheTaskAtOnce) {
  std::atomic<bool> cancelled{false};
  CommandTask task;
  task.argv = {"sleep", "30"};
  absl::Notification returned;
  bool returned_in_time = false;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));  // lets the task start; the assertions are on the outcome
    cancelled = true;
    // "At once": well before the 30 s the task would take (a deadline, not a speed test).
    returned_in_time = returned.WaitForNotificationWithTimeout(absl::Seconds(5));
  });
  CommandOutcome outcome = RunCommand(task, cancelled, &groups_);
  returned.Notify();
  canceller.join();
  EXPECT_TRUE(returned_in_time) << "RunCommand went on for more than 5 s after the cancel";
  EXPECT_TRUE(outcome.cancelled);
  EXPECT_EQ(outcome.signal, SIGKILL);
}

TEST(Placeholders, AreReplacedEverywhere) {
  EXPECT_EQ(ExpandPlaceholders("in={} n={#} slot={%} {}", "x y", 7, 2), "in=x y n=7 slot=2 x y");
  EXPECT_EQ(ExpandPlaceholders("{ } {x}", "i", 1, 1), "{ } {x}");
}

// As GNU Parallel has them (its man page's examples, and Perl's dirname).
TEST(Placeholders, GnuParallelsPathForms) {
  auto expand = [](absl::string_view item) {
    return ExpandPlaceholders("{.}|{/}|{//}|{/.}", item, 1, 1);
  };
  EXPECT_EQ(expand("dir/sub.dir/file.txt"), "dir/sub.dir/file|file.txt|dir/sub.dir|file");
  EXPECT_EQ(expand("a.tar.gz"), "a.tar|a.tar.gz|.|a.tar");
  EXPECT_EQ(expand("dir.d/file"), "dir.d/file|file|dir.d|file");
  EXPECT_EQ(expand("/abs"), "/abs|abs|/|abs");
  EXPECT_EQ(expand("plain"), "plain|plain|.|plain");
  EXPECT_TRUE(UsesItem("x{/.}y"));
  EXPECT_TRUE(UsesItem("{//}"));
  EXPECT_FALSE(UsesItem("{#} {%}"));
}

TEST(Placeholders, ColumnsAreNumberedFromOne) {
  std::vector<absl::string_view> columns = {"a", "b c"};
  EXPECT_EQ(ExpandPlaceholders("{2}|{1}|{3}|{0}|{12x}", "a b c", 1, 1, &columns), "b c|a||{0}|{12x}");
  EXPECT_EQ(ExpandPlaceholders("{1}", "a", 1, 1), "{1}");  // no columns: left as it is
  EXPECT_TRUE(UsesItem("-{1}-", /*columns=*/true));
  EXPECT_FALSE(UsesItem("-{1}-", /*columns=*/false));
}

}  // namespace
}  // namespace drover
