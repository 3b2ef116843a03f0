// Integration: who may submit and join. Tokens on the client API, no
// listening beyond loopback without credentials, private local mode, and no
// worker as root by accident.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

class TokenFile {
 public:
  explicit TokenFile(const std::string& token) {
    char path[] = "/tmp/drover-token-XXXXXX";
    int fd = mkstemp(path);
    ssize_t ignored = write(fd, token.data(), token.size());
    (void)ignored;
    close(fd);
    path_ = path;
  }
  ~TokenFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Security, TheClientApiWantsTheToken) {
  TokenFile good("s3cret-token"), bad("not-the-token");
  TestCluster cluster({"--token-file", good.path()});
  cluster.AddWorker(1);
  std::vector<std::string> base = {BinPath("drover"), "--coordinator", cluster.client_target()};

  auto with = [&](std::vector<std::string> extra, std::vector<std::string> env = {}) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProgram(argv, "", env);
  };
  CommandResult none = with({"run", "--kernel", "echo", "x"});
  EXPECT_EQ(none.exit_code, 3);
  EXPECT_NE(none.err.find("needs a token"), std::string::npos) << none.err;
  CommandResult wrong = with({"--token-file", bad.path(), "jobs"});
  EXPECT_EQ(wrong.exit_code, 3);
  // A token that was given is said to be refused, with where it came from.
  EXPECT_NE(wrong.err.find(absl::StrCat("refused the token from --token-file ", bad.path())), std::string::npos)
      << wrong.err;
  CommandResult wrong_env = with({"jobs"}, {"DROVER_TOKEN=not-the-token"});
  EXPECT_EQ(wrong_env.exit_code, 3);
  EXPECT_NE(wrong_env.err.find("refused the token from DROVER_TOKEN"), std::string::npos) << wrong_env.err;

  cluster.set_token_file(good.path());
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  EXPECT_EQ(cluster.Drover({"jobs"}).out.find("echo"), std::string::npos);  // nothing was submitted
  CommandResult right = cluster.Drover({"run", "--kernel", "echo", "ok"});
  EXPECT_EQ(right.out, "ok\n") << right.err;
  CommandResult from_env = with({"run", "--kernel", "echo", "env"}, {"DROVER_TOKEN=s3cret-token"});
  EXPECT_EQ(from_env.out, "env\n") << from_env.err;
  EXPECT_NE(cluster.coordinator().Log().find(": no token"), std::string::npos);
  EXPECT_NE(cluster.coordinator().Log().find(": a wrong token"), std::string::npos);
}

TEST(Security, NoListeningBeyondLoopbackWithoutCredentials) {
  CommandResult clients = RunProgram({BinPath("drover-coordinator"), "--listen-clients", "0.0.0.0:0",
                                      "--listen-workers", "tcp://127.0.0.1:0"});
  EXPECT_EQ(clients.exit_code, 2);
  EXPECT_NE(clients.err.find("refusing to listen beyond loopback"), std::string::npos) << clients.err;
  CommandResult workers = RunProgram({BinPath("drover-coordinator"), "--listen-clients", "127.0.0.1:0",
                                      "--listen-workers", "tcp://0.0.0.0:0"});
  EXPECT_EQ(workers.exit_code, 2);
  CommandResult metrics = RunProgram({BinPath("drover-coordinator"), "--listen-clients", "127.0.0.1:0",
                                      "--listen-workers", "tcp://127.0.0.1:0", "--no-auth", "--metrics", "0.0.0.0:0"});
  EXPECT_EQ(metrics.exit_code, 2);
  EXPECT_NE(metrics.err.find("metrics: no --token-file"), std::string::npos) << metrics.err;

  ChildProcess insecure({BinPath("drover-coordinator"), "--listen-clients", "0.0.0.0:0", "--listen-workers",
                         "tcp://127.0.0.1:0", "--insecure"});
  EXPECT_TRUE(WaitUntil([&] { return insecure.Log().find("--insecure: listening without credentials") !=
                                     std::string::npos; }))
      << insecure.Log();
  EXPECT_TRUE(insecure.Running());
}

TEST(Security, OversizeJobsAreRefusedAndTheCoordinatorServesOn) {
  TestCluster cluster({"--max-item-bytes", "8"});
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult big = cluster.Drover({"run", "--kernel", "echo", "short", "much-too-long-an-item"});
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.err.find("item 2 has 21 bytes; this coordinator takes items of at most 8 bytes"), std::string::npos) << big.err;
  EXPECT_EQ(cluster.Drover({"run", "--kernel", "echo", "fine"}).out, "fine\n");
}

TEST(Security, AWorkerDoesNotRunAsRootByAccident) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to check the refusal";
  CommandResult r = RunProgram({BinPath("drover-worker"), "--coordinator", "127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("refusing to run as root"), std::string::npos) << r.err;
}

TEST(Security, LocalModeSocketsAreNotUsableByAnotherUser) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs root and setpriv";
  std::string mark = absl::StrCat("DROVER_TEST_MARK=", absl::Uniform<uint64_t>(absl::BitGen()));
  std::vector<std::string> argv = {BinPath("drover"), "run", "--local", "-j", "1", "--kernel", "sleep_ms"};
  for (int i = 0; i < 100; ++i) argv.push_back("100");
  ChildProcess run(argv, {mark});
  // The coordinator's command line names its unix socket.
  std::string socket;
  ASSERT_TRUE(WaitUntil([&] {
    for (pid_t pid : ProcessesWithEnv(mark)) {
      std::ifstream file(absl::StrCat("/proc/", pid, "/cmdline"), std::ios::binary);
      std::stringstream text;
      text << file.rdbuf();
      std::string cmdline = text.str();
      size_t at = cmdline.find("unix:");
      if (at != std::string::npos) socket = cmdline.substr(at, cmdline.find('\0', at) - at);
    }
    return !socket.empty() && !run.Log().empty();
  }));
  std::string dir = socket.substr(5, socket.rfind('/') - 5);
  struct stat info;
  ASSERT_EQ(stat(dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  CommandResult other = RunProgram({"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                    BinPath("drover"), "--coordinator", socket, "jobs"});
  EXPECT_EQ(other.exit_code, 3);
  EXPECT_NE(other.err.find("cannot reach the coordinator"), std::string::npos) << other.err;
  EXPECT_EQ(other.out.find("sleep_ms"), std::string::npos) << other.out;
  run.Signal(SIGINT);
  run.Wait();
}

// Another user of this machine, as far as the CLI's token look-up goes.
std::vector<std::string> AnotherUsersEnvironment(const std::string& home) {
  return {absl::StrCat("HOME=", home), absl::StrCat("XDG_STATE_HOME=", home, "/state")};
}

TEST(Security, ALoopbackCoordinatorWithoutATokenMakesOneForItsUser) {
  char other[] = "/tmp/drover-other-XXXXXX";
  ASSERT_NE(mkdtemp(other), nullptr);
  std::string token_file;
  {
    TestCluster cluster;
    cluster.AddWorker(1);
    ASSERT_TRUE(cluster.WaitForWorkers(1));  // this user's CLI found the token
    const std::string port = cluster.client_target().substr(cluster.client_target().rfind(':') + 1);
    const char* state = std::getenv("XDG_STATE_HOME");
    token_file = absl::StrCat(state != nullptr && *state == '/' ? std::string(state)
                                                                 : absl::StrCat(std::getenv("HOME"), "/.local/state"),
                              "/drover/tokens/127.0.0.1:", port);
    struct stat info;
    ASSERT_EQ(stat(token_file.c_str(), &info), 0) << token_file;
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    ASSERT_EQ(stat(std::filesystem::path(token_file).parent_path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0700u);
    EXPECT_EQ(cluster.Drover({"run", "--kernel", "echo", "mine"}).out, "mine\n");
    // Someone without the file is refused, and nothing runs.
    CommandResult stranger = RunProgram({BinPath("drover"), "--coordinator", cluster.client_target(), "run", ":::",
                                         "x", "--", "touch", absl::StrCat(other, "/ran")},
                                        "", AnotherUsersEnvironment(other));
    EXPECT_NE(stranger.exit_code, 0);
    EXPECT_NE(stranger.err.find("needs a token"), std::string::npos) << stranger.err;
    EXPECT_FALSE(std::filesystem::exists(absl::StrCat(other, "/ran")));
    cluster.coordinator().Signal(SIGTERM);
    ASSERT_TRUE(cluster.coordinator().Wait().has_value());
  }
  EXPECT_FALSE(std::filesystem::exists(token_file)) << "a stopped coordinator leaves its token file behind";
  EXPECT_FALSE(std::filesystem::exists(token_file + ".owner"));
  std::filesystem::remove_all(other);
}

TEST(Security, TheTokenFileOfAKilledCoordinatorIsRemovedByTheNextOne) {
  std::string token_file;
  {
    TestCluster killed;
    const std::string port = killed.client_target().substr(killed.client_target().rfind(':') + 1);
    const char* state = std::getenv("XDG_STATE_HOME");
    token_file = absl::StrCat(state != nullptr && *state == '/' ? std::string(state)
                                                                 : absl::StrCat(std::getenv("HOME"), "/.local/state"),
                              "/drover/tokens/127.0.0.1:", port);
    ASSERT_TRUE(std::filesystem::exists(token_file));
    ASSERT_TRUE(std::filesystem::exists(token_file + ".owner"));
    killed.coordinator().Signal(SIGKILL);
    ASSERT_TRUE(killed.coordinator().Wait().has_value());
  }
  ASSERT_TRUE(std::filesystem::exists(token_file)) << "(SIGKILL leaves it: the case swept)";
  TestCluster next;  // another port: it sweeps what dead coordinators left
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(token_file); })) << token_file;
  EXPECT_FALSE(std::filesystem::exists(token_file + ".owner"));
}

TEST(Security, NoAuthOnLoopbackLetsAnyLocalUserInAndSaysSo) {
  char other[] = "/tmp/drover-other-XXXXXX";
  ASSERT_NE(mkdtemp(other), nullptr);
  TestCluster cluster({"--no-auth"});
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult stranger = RunProgram({BinPath("drover"), "--coordinator", cluster.client_target(), "run",
                                       "--kernel", "echo", "anyone"},
                                      "", AnotherUsersEnvironment(other));
  EXPECT_EQ(stranger.out, "anyone\n") << stranger.err;
  EXPECT_NE(cluster.coordinator().Log().find("--no-auth: any local user can submit jobs"), std::string::npos);
  std::filesystem::remove_all(other);
}

}  // namespace
}  // namespace drover::testing
