// Integration: the CLI's usage errors, help and unreachable coordinators.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

TEST(Cli, MisuseExitsTwoWithAMessage) {
  const std::vector<std::vector<std::string>> misuses = {
      {},
      {"frobnicate"},
      {"run", "a", "b"},                                          // no --kernel
      {"run", "--kernel", "echo"},                                // no items
      {"run", "--kernel", "echo", "a", "--range", "0:3"},         // two kinds of items
      {"run", "--kernel", "echo", "--range", "5:1"},              // backwards range
      {"run", "--kernel", "echo", "--range", "x"},                // malformed range
      {"run", "--kernel", "echo", "--reduce", "avg", "1"},        // unknown reduction
      {"run", "--kernel", "echo", "--chunk", "0", "1"},           // empty chunks
      {"status"},                                                 // no job id
      {"--coordinator", "host:notaport", "jobs"},
  };
  for (const auto& args : misuses) {
    std::vector<std::string> argv = {BinPath("drover")};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunProgram(argv);
    EXPECT_EQ(r.exit_code, 2) << "args: " << ::testing::PrintToString(args) << "\n" << r.err;
    EXPECT_FALSE(r.err.empty() && r.out.empty()) << ::testing::PrintToString(args);
  }
}

TEST(Cli, MisuseSaysWhatToDo) {
  CommandResult bogus = RunProgram({BinPath("drover"), "-c", "127.0.0.1:1", "bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_NE(bogus.err.find("unknown command 'bogus'; `drover --help` lists the commands"), std::string::npos)
      << bogus.err;
  CommandResult none = RunProgram({BinPath("drover")});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("drover: give a command"), std::string::npos) << none.err;
  CommandResult help = RunProgram({BinPath("drover"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: drover [OPTIONS]"), std::string::npos) << help.out;
  // -j sizes --local's private cluster; it is not silently ignored without it.
  CommandResult workers = RunProgram({BinPath("drover"), "run", "-j", "2", "--kernel", "echo", "a"});
  EXPECT_EQ(workers.exit_code, 2);
  EXPECT_NE(workers.err.find("-j/--workers is the number of workers of --local's private cluster"),
            std::string::npos)
      << workers.err;
}

TEST(Cli, TheOrderOfItemsOptionsAndCommandIsExplained) {
  // GNU Parallel's order, with the command first.
  CommandResult after = RunProgram({BinPath("drover"), "run", "--", "echo", ":::", "a", "b"});
  EXPECT_EQ(after.exit_code, 2);
  EXPECT_NE(after.err.find("':::' comes before '--'"), std::string::npos) << after.err;
  // An option among the items.
  CommandResult option = RunProgram({BinPath("drover"), "run", ":::", "a", "--local", "--", "echo"});
  EXPECT_EQ(option.exit_code, 2);
  EXPECT_NE(option.err.find("'--local' after ':::' would be an item; options go before ':::'"), std::string::npos)
      << option.err;
  // Items that only look like options are items.
  CommandResult dashes = RunProgram({BinPath("drover"), "run", "--local", "-j", "1", ":::", "-x", "--not-an-option",
                                     "--", "echo"});
  EXPECT_EQ(dashes.out, "-x\n--not-an-option\n") << dashes.err;
}

TEST(Cli, KeygenMakesAPrivateDirectoryForTheKeys) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "drover-keygen-", getpid(), "/keys");
  CommandResult made = RunProgram({BinPath("drover"), "keygen", dir + "/coordinator"});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  struct stat info {};
  ASSERT_EQ(stat(dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  EXPECT_EQ(stat((dir + "/coordinator.key").c_str(), &info), 0);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST(Cli, HelpExplainsAndExitsZero) {
  CommandResult help = RunProgram({BinPath("drover"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
  CommandResult run_help = RunProgram({BinPath("drover"), "run", "--help"});
  EXPECT_NE(run_help.out.find("--local"), std::string::npos);
  EXPECT_NE(run_help.out.find("Usage: drover run [OPTIONS]"), std::string::npos) << run_help.out;
  EXPECT_EQ(run_help.out.find("{false}"), std::string::npos) << run_help.out;
  EXPECT_EQ(RunProgram({BinPath("drover-worker"), "--help"}).exit_code, 0);
  EXPECT_EQ(RunProgram({BinPath("drover-coordinator"), "--help"}).exit_code, 0);
}

TEST(Cli, AnUnreachableCoordinatorIsAClearErrorNotAHang) {
  // Port 1 on loopback refuses connections.
  CommandResult r = RunProgram({BinPath("drover"), "--coordinator", "127.0.0.1:1", "jobs"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("nothing listens at 127.0.0.1:1"), std::string::npos) << r.err;
}

TEST(Cli, WorkerListsItsKernelsAndRefusesBadPlugins) {
  CommandResult list = RunProgram({BinPath("drover-worker"), "--list-kernels", "--plugin", DROVER_EXAMPLE_PLUGIN});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  for (const char* kernel : {"noop", "echo", "sleep_ms", "sum_squares", "count_primes", "reverse"}) {
    EXPECT_NE(list.out.find(kernel), std::string::npos) << kernel;
  }
  CommandResult missing = RunProgram({BinPath("drover-worker"), "--plugin", "/nonexistent.so"});
  EXPECT_EQ(missing.exit_code, 2);
  CommandResult not_plugin = RunProgram({BinPath("drover-worker"), "--plugin", BinPath("drover")});
  EXPECT_EQ(not_plugin.exit_code, 1);
  EXPECT_NE(not_plugin.err.find("cannot load plugin"), std::string::npos) << not_plugin.err;
}

// Runs `shell_command` with its stdin, stdout and stderr on a pseudo-terminal
// (util-linux `script`); returns what the terminal received.
std::string OnATerminal(const std::string& shell_command) {
  CommandResult r = RunProgram({"/usr/bin/script", "-q", "-e", "-c", shell_command, "/dev/null"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return r.out;
}

// The lines a terminal shows: each "\r\n"-ended line as left by its last erase ("\r\033[K").
std::vector<std::string> ShownLines(const std::string& terminal) {
  std::vector<std::string> shown;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(terminal, "\r\n"))) {
    size_t erase = line.rfind("\r\033[K");
    shown.push_back(erase == std::string::npos ? line : line.substr(erase + 4));
  }
  return shown;
}

TEST(Cli, TheProgressBarIsDrawnOnATerminalStderrWhateverStdoutIs) {
  if (access("/usr/bin/script", X_OK) != 0) GTEST_SKIP() << "needs util-linux script";
  const std::string run = BinPath("drover") + " run --local -j 2 --kernel sleep_ms 200 200 200 200";
  char out_path[] = "/tmp/drover-bar-test-XXXXXX";
  close(mkstemp(out_path));

  // stdout to a file: the bar and the final line on the terminal, only results in the file.
  std::string terminal = OnATerminal(run + " > " + out_path);
  EXPECT_NE(terminal.find("\r\033[K["), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("SUCCEEDED 4/4 done, 0 failed"), std::string::npos) << terminal;
  EXPECT_EQ(RunProgram({"/bin/cat", out_path}).out, "200\n200\n200\n200\n");
  unlink(out_path);

  // Both on the terminal: each result on a line of its own, the bar erased around it.
  terminal = OnATerminal(run);
  std::vector<std::string> shown = ShownLines(terminal);
  EXPECT_EQ(std::count(shown.begin(), shown.end(), "200"), 4) << terminal;
  EXPECT_NE(terminal.find("SUCCEEDED 4/4 done"), std::string::npos) << terminal;

  // --no-progress: results only.
  terminal = OnATerminal(run + " --no-progress");
  EXPECT_EQ(terminal, "200\r\n200\r\n200\r\n200\r\n");
  // --bar draws it on a stderr that is not a terminal.
  CommandResult forced = RunProgram({BinPath("drover"), "run", "--local", "-j", "1", "--bar", "--kernel", "echo", "x"});
  EXPECT_NE(forced.err.find("SUCCEEDED 1/1 done"), std::string::npos) << forced.err;
  EXPECT_EQ(RunProgram({BinPath("drover"), "run", "--bar", "--no-progress", "--kernel", "echo", "x"}).exit_code, 2);
}

}  // namespace
}  // namespace drover::testing
