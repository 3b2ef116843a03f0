// Integration: workers join only with CURVE keys the coordinator admits, and
// talk only to the coordinator whose key they were given.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

class Keys {
 public:
  Keys() {
    char dir[] = "/tmp/drover-keys-XXXXXX";
    dir_ = mkdtemp(dir);
    for (const char* name : {"coordinator", "good", "bad", "other"}) {
      CommandResult r = RunProgram({BinPath("drover"), "keygen", Path(name)});
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    RunProgram({"/bin/cp", Path("good") + ".pub", dir_ + "/authorized"});
  }
  ~Keys() { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string authorized() const { return dir_ + "/authorized"; }

 private:
  std::string dir_;
};

std::vector<std::string> WorkerWith(const std::string& endpoint, const Keys& keys, const std::string& key,
                                    const std::string& server) {
  std::vector<std::string> argv = {BinPath("drover-worker"), "--coordinator", endpoint, "--slots", "1",
                                   "--curve-key", keys.Path(key) + ".key", "--coordinator-key",
                                   keys.Path(server) + ".pub"};
  if (geteuid() == 0) argv.push_back("--allow-root");
  return argv;
}

TEST(Curve, KeygenWritesPrivateKeyFiles) {
  Keys keys;
  struct stat info;
  for (const char* suffix : {".key", ".pub"}) {
    ASSERT_EQ(stat((keys.Path("good") + suffix).c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << suffix;
  }
  CommandResult again = RunProgram({BinPath("drover"), "keygen", keys.Path("good")});
  EXPECT_NE(again.exit_code, 0);  // never overwrites a key
}

TEST(Curve, OnlyAuthorizedWorkersJoinAndRun) {
  Keys keys;
  TestCluster cluster({"--curve-key", keys.Path("coordinator") + ".key", "--authorized-keys", keys.authorized()});
  ChildProcess good(WorkerWith(cluster.worker_endpoint(), keys, "good", "coordinator"));
  ChildProcess bad(WorkerWith(cluster.worker_endpoint(), keys, "bad", "coordinator"));
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::optional<int> refused = bad.Wait();
  ASSERT_TRUE(refused.has_value()) << "a refused worker keeps waiting";
  EXPECT_EQ(WEXITSTATUS(*refused), 1);
  EXPECT_NE(bad.Log().find("refused this worker's key"), std::string::npos) << bad.Log();
  EXPECT_NE(cluster.coordinator().Log().find("not in the authorized keys"), std::string::npos);
  CommandResult workers = cluster.Drover({"--json", "workers"});
  EXPECT_EQ(Lines(workers.out).size(), 1u) << workers.out;  // only the good one
  CommandResult r = cluster.Drover({"run", "--range", "0:4", "--", "sh", "-c", "echo {}"});
  EXPECT_EQ(r.out, "0\n1\n2\n3\n") << r.err;
}

TEST(Curve, AWorkerWithTheWrongCoordinatorKeyCannotConnect) {
  Keys keys;
  TestCluster cluster({"--curve-key", keys.Path("coordinator") + ".key", "--authorized-keys", keys.authorized()});
  ChildProcess lost(WorkerWith(cluster.worker_endpoint(), keys, "good", "other"));
  std::optional<int> status = lost.Wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(lost.Log().find("security handshake with the coordinator failed"), std::string::npos) << lost.Log();
  EXPECT_TRUE(cluster.coordinator().Running());
}

TEST(Curve, ACoordinatorWithKeysAndATokenMayListenBeyondLoopback) {
  Keys keys;
  RunProgram({"/bin/sh", "-c", absl::StrCat("echo t0ken > ", keys.Path("token"))});
  int ready = -1;
  ChildProcess coordinator({BinPath("drover-coordinator"), "--listen-workers", "tcp://0.0.0.0:0",
                            "--listen-clients", "0.0.0.0:0", "--curve-key", keys.Path("coordinator") + ".key",
                            "--authorized-keys", keys.authorized(), "--token-file", keys.Path("token"),
                            "--ready-fd", "3"},
                           {}, &ready);
  char c;
  EXPECT_EQ(read(ready, &c, 1), 1) << coordinator.Log();  // it started and reported its addresses
  close(ready);
  EXPECT_TRUE(coordinator.Running());
}

}  // namespace
}  // namespace drover::testing
