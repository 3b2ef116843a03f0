// Integration: `drover run --local` starts a private cluster and leaves no
// process behind, also on Ctrl-C and when a worker crashes.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

// The workers' task reapers exit as soon as their worker is gone: allow them a moment.
bool NoneLeft(const std::string& mark) {
  return WaitUntil([&] { return ProcessesWithEnv(mark).empty(); }, absl::Seconds(10));
}

pid_t ParentOf(pid_t pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(file, line);
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(line.substr(paren + 2));
  std::string state;
  pid_t parent = 0;
  fields >> state >> parent;
  return parent;
}

std::string Cmdline(pid_t pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  std::string s = text.str();
  for (char& c : s) c = c == '\0' ? ' ' : c;
  return s;
}

TEST(LocalMode, TheClassicPoolMapExample) {
  std::string mark = UniqueTestMark();
  CommandResult r = RunProgram({BinPath("drover"), "run", "--local", "-j", "4", "--kernel", "sum_squares",
                                "10000000", "10000000", "10000000", "10000000"},
                               "", {mark});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "333333283333335000000\n333333283333335000000\n333333283333335000000\n"
                   "333333283333335000000\n");
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(NoneLeft(mark));
}

TEST(LocalMode, AMillionNoopTasksInChunks) {
  std::string mark = UniqueTestMark();
  CommandResult r = RunProgram({BinPath("drover"), "run", "--local", "-j", "2", "--kernel", "noop",
                                "--range", "0:1000000", "--chunk", "1000", "--reduce", "count"},
                               "", {mark});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1000000\n");
  EXPECT_TRUE(NoneLeft(mark));
}

TEST(LocalMode, CtrlCStopsEverything) {
  std::string mark = UniqueTestMark();
  std::vector<std::string> argv = {BinPath("drover"), "run", "--local", "-j", "2", "--kernel", "sleep_ms"};
  for (int i = 0; i < 200; ++i) argv.push_back("100");
  ChildProcess drover(argv, {mark});
  // drover, its coordinator, two workers (and their reapers), and the first result printed.
  ASSERT_TRUE(WaitUntil([&] { return ProcessesWithEnv(mark).size() >= 4 && !drover.Log().empty(); }))
      << drover.Log();
  drover.Signal(SIGINT);
  std::optional<int> status = drover.Wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 130) << drover.Log();
  EXPECT_TRUE(NoneLeft(mark));
}

TEST(LocalMode, AWorkerCrashIsSurvivedAndCleanedUp) {
  std::string mark = UniqueTestMark();
  std::vector<std::string> argv = {BinPath("drover"), "run", "--local", "-j", "2", "--kernel", "sleep_ms"};
  for (int i = 0; i < 40; ++i) argv.push_back("50");
  ChildProcess drover(argv, {mark});
  ASSERT_TRUE(WaitUntil([&] { return !drover.Log().empty(); })) << "no result appeared";
  pid_t victim = 0;
  for (pid_t pid : ProcessesWithEnv(mark)) {
    // The worker itself, not its task reaper (a forked child with the same command line).
    if (Cmdline(pid).find("local-1") != std::string::npos && ParentOf(pid) == drover.pid()) victim = pid;
  }
  ASSERT_NE(victim, 0);
  kill(victim, SIGKILL);
  std::optional<int> status = drover.Wait(absl::Seconds(60));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 0) << drover.Log();
  std::string log = drover.Log();
  EXPECT_NE(log.find("was killed by signal 9"), std::string::npos) << log;
  int fifties = 0;
  for (const std::string& line : Lines(log)) fifties += line == "50" ? 1 : 0;
  EXPECT_EQ(fifties, 40) << log;  // every result, once
  EXPECT_TRUE(NoneLeft(mark));
}

TEST(LocalMode, ADirectoryLeftByAKilledRunIsSweptByTheNext) {
  char tmp[] = "/tmp/drover-sweep-XXXXXX";
  ASSERT_NE(mkdtemp(tmp), nullptr);
  const std::string tmpdir = tmp;
  auto local_dirs = [&] {
    std::vector<std::string> dirs;
    for (const auto& entry : std::filesystem::directory_iterator(tmpdir)) dirs.push_back(entry.path().string());
    return dirs;
  };
  ChildProcess killed({BinPath("drover"), "run", "--local", "-j", "1", ":::", "x", "--", "sh", "-c", "sleep 60"},
                      {absl::StrCat("TMPDIR=", tmpdir)});
  ASSERT_TRUE(WaitUntil([&] {
    std::vector<std::string> dirs = local_dirs();
    return dirs.size() == 1 && std::filesystem::exists(dirs[0] + "/token");
  }));
  const std::string left = local_dirs().at(0);
  killed.Signal(SIGKILL);
  ASSERT_TRUE(killed.Wait().has_value());
  EXPECT_TRUE(std::filesystem::exists(left + "/token"));  // its token and sockets stayed behind
  CommandResult next = RunProgram({BinPath("drover"), "run", "--local", "-j", "1", "--kernel", "echo", "ok"}, "",
                                  {absl::StrCat("TMPDIR=", tmpdir)});
  EXPECT_EQ(next.out, "ok\n") << next.err;
  EXPECT_FALSE(std::filesystem::exists(left)) << "the dead run's directory was not swept";
  EXPECT_TRUE(local_dirs().empty());  // and the new run removed its own
  std::filesystem::remove_all(tmpdir);
}

}  // namespace
}  // namespace drover::testing
