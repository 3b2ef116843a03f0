// Integration: nothing lost and nothing twice when workers or the coordinator
// die (kill -9, SIGSTOP), with the coordinator's journal (--state-dir).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

std::vector<std::string> SleepJob(int items, int ms = 30) {
  std::vector<std::string> args = {"submit", "--kernel", "sleep_ms", "--chunk", "2"};
  for (int i = 0; i < items; ++i) args.push_back(absl::StrCat(ms));
  return args;
}

bool Started(TestCluster& cluster, const std::string& job, int total) {
  return WaitUntil([&] {
    return cluster.Drover({"status", job}).out.find(absl::StrCat(" 0/", total, " done")) == std::string::npos;
  });
}

// Two one-slot workers, registered.
bool AddTwoWorkers(TestCluster& cluster) {
  cluster.AddWorker(1);
  cluster.AddWorker(1);
  return cluster.WaitForWorkers(2);
}

class StateDir {
 public:
  StateDir() {
    char dir[] = "/tmp/drover-state-XXXXXX";
    path_ = mkdtemp(dir);
  }
  ~StateDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Durability, ACoordinatorKilledMidJobComesBackWithEverything) {
  StateDir state;
  TestCluster cluster({"--state-dir", state.path(), "--worker-timeout", "2", "--heartbeat", "0.3"}, FreePort(), FreePort());
  cluster.AddWorker(2);
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(2));
  std::string before = Lines(cluster.Drover({"submit", "--kernel", "echo", "--range", "0:5"}).out).at(0);
  ASSERT_EQ(cluster.Drover({"wait", "--quiet", before}).exit_code, 0);
  std::string job = Lines(cluster.Drover(SleepJob(80)).out).at(0);
  ASSERT_TRUE(Started(cluster, job, 80));
  ChildProcess waiter({BinPath("drover"), "--coordinator", cluster.client_target(), "wait", "--quiet", job});

  cluster.RestartCoordinator();

  std::optional<int> waited = waiter.Wait(absl::Seconds(60));
  ASSERT_TRUE(waited.has_value());
  EXPECT_EQ(WEXITSTATUS(*waited), 0) << waiter.Log();
  CommandResult results = cluster.Drover({"results", job});
  EXPECT_EQ(Lines(results.out), std::vector<std::string>(80, "30"));
  EXPECT_NE(cluster.Drover({"status", job}).out.find("80/80 done, 0 failed"), std::string::npos);
  CommandResult old = cluster.Drover({"results", before});  // finished before the crash: still there
  EXPECT_EQ(Lines(old.out), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

TEST(Durability, AGrpcJobCompletesWhenItsWorkerRegistersAgainMidJob) {
  EchoServer echo;
  StateDir state;
  TestCluster cluster({"--state-dir", state.path(), "--worker-timeout", "2", "--heartbeat", "0.3"}, FreePort(), FreePort());
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::vector<std::string> args = {"submit", "--grpc", echo.address(), "--method", "/drover.echo.v1.Echo/Say",
                                   "--concurrency", "8", "--chunk", "1", ":::"};
  for (int i = 0; i < 16; ++i) args.push_back(R"({"message":"m","latencyMs":3000})");
  CommandResult submitted = cluster.Drover(args);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] {
    return TotalWorkerField(cluster.Drover({"--json", "workers"}).out, "ioCallsInFlight") > 0;
  }));

  // The worker drops what it holds and registers again; the chunks it held
  // come back to it (or another) and must run, not be dropped as cancelled.
  cluster.RestartCoordinator();
  ChildProcess waiter({BinPath("drover"), "--coordinator", cluster.client_target(), "wait", "--quiet", job});
  std::optional<int> waited = waiter.Wait(absl::Seconds(60));
  ASSERT_TRUE(waited.has_value()) << "the job never finished";
  EXPECT_EQ(WEXITSTATUS(*waited), 0) << waiter.Log();
  EXPECT_EQ(Lines(cluster.Drover({"results", job}).out).size(), 16u);
}

TEST(Durability, ATornJournalIsCutAndTheCoordinatorStarts) {
  StateDir state;
  {
    TestCluster cluster({"--state-dir", state.path()});
    cluster.AddWorker(1);
    ASSERT_TRUE(cluster.WaitForWorkers(1));
    std::string job = Lines(cluster.Drover({"submit", "--kernel", "echo", "a", "b"}).out).at(0);
    ASSERT_EQ(cluster.Drover({"wait", "--quiet", job}).exit_code, 0);
    cluster.Drover({"submit", "--kernel", "echo", "--range", "0:3"});
  }
  std::string journal = state.path() + "/journal";
  std::filesystem::resize_file(journal, std::filesystem::file_size(journal) - 1);
  TestCluster restarted({"--state-dir", state.path()});
  CommandResult jobs = restarted.Drover({"jobs"});
  EXPECT_EQ(jobs.exit_code, 0) << restarted.coordinator().Log();
  EXPECT_NE(restarted.coordinator().Log().find("cutting"), std::string::npos) << restarted.coordinator().Log();
  CommandResult results = restarted.Drover({"results", "1"});
  EXPECT_EQ(results.out, "a\nb\n");
}

TEST(Durability, AStateDirThatCannotBeUsedStopsTheCoordinatorWithAReason) {
  StateDir state;
  std::string file = state.path() + "/file";
  ASSERT_EQ(RunProgram({"/usr/bin/touch", file}).exit_code, 0);
  CommandResult r = RunProgram({BinPath("drover-coordinator"), "--state-dir", file + "/state",
                                "--listen-workers", "tcp://127.0.0.1:0", "--listen-clients", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--state-dir: cannot create state directory"), std::string::npos) << r.err;
}

TEST(Durability, ASecondCoordinatorOnTheSameClientPortRefusesToStart) {
  TestCluster cluster;
  const std::string port = cluster.client_target().substr(cluster.client_target().rfind(':') + 1);
  CommandResult second =
      RunProgram({"/usr/bin/timeout", "20", BinPath("drover-coordinator"), "--listen-workers", "tcp://127.0.0.1:0",
                  "--listen-clients", absl::StrCat("127.0.0.1:", port)});
  EXPECT_EQ(second.exit_code, 1) << second.err;  // gRPC's SO_REUSEPORT would have let it share the port
  EXPECT_NE(second.err.find("cannot listen for clients"), std::string::npos) << second.err;
  EXPECT_EQ(cluster.Drover({"jobs"}).exit_code, 0);  // and the first one's token file is still there
}

TEST(Durability, ASecondCoordinatorOnTheSameStateDirRefusesToStart) {
  StateDir state;
  TestCluster cluster({"--state-dir", state.path()});
  CommandResult second =
      RunProgram({"/usr/bin/timeout", "20", BinPath("drover-coordinator"), "--state-dir", state.path(),
                  "--listen-workers", "tcp://127.0.0.1:0", "--listen-clients", "127.0.0.1:0"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find(absl::StrCat("another coordinator (pid ", cluster.coordinator().pid(), ")")),
            std::string::npos)
      << second.err;
  EXPECT_EQ(cluster.Drover({"jobs"}).exit_code, 0);  // the first serves on
}

TEST(Durability, AStoppedWorkerIsLostItsWorkMovesAndItRejoinsWithoutDuplicates) {
  TestCluster cluster({"--worker-timeout", "1", "--heartbeat", "0.2"});
  ChildProcess& stopped = cluster.AddWorker(2, {"--name", "stopped"});
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(2));
  // Chunks of 2 s (two 1 s tasks): one the stopped worker holds cannot have
  // finished between seeing it held and stopping the worker.
  std::string job = Lines(cluster.Drover(SleepJob(8, 1000)).out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return ChunksHeldBy(cluster, "stopped") > 0; }));
  stopped.Signal(SIGSTOP);
  CommandResult waited = cluster.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  stopped.Signal(SIGCONT);
  EXPECT_TRUE(cluster.WaitForWorkers(2));  // it registers again
  EXPECT_EQ(Lines(cluster.Drover({"results", job}).out), std::vector<std::string>(8, "1000"));
  EXPECT_NE(cluster.Drover({"status", job}).out.find("8/8 done, 0 failed"), std::string::npos);
  EXPECT_NE(cluster.coordinator().Log().find("silent for more than"), std::string::npos);
  EXPECT_GT(ChunksRequeuedFromLostWorkers(cluster.coordinator().Log()), 0);  // what it held ran elsewhere
}

TEST(Durability, WorkersKilledAgainAndAgainLoseNothing) {
  TestCluster cluster({"--worker-timeout", "1", "--heartbeat", "0.2"});
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  // 12.5 s on the first worker alone: work is left for the third victim even
  // when each takes seconds to start (ASan on a busy machine: 5 s was not).
  std::string job = Lines(cluster.Drover(SleepJob(100, 250)).out).at(0);
  for (int round = 0; round < 3; ++round) {
    const std::string name = absl::StrCat("victim", round);
    ChildProcess& victim = cluster.AddWorker(2, {"--name", name});
    ASSERT_TRUE(WaitUntil([&] { return ChunksHeldBy(cluster, name) > 0; })) << name << " never held work";
    victim.Signal(SIGKILL);
    EXPECT_EQ(cluster.Drover({"status", job}).out.find("100/100 done"), std::string::npos) << "finished too soon";
  }
  CommandResult waited = cluster.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  EXPECT_GT(ChunksRequeuedFromLostWorkers(cluster.coordinator().Log()), 2);  // each victim's went back
  EXPECT_EQ(Lines(cluster.Drover({"results", job}).out), std::vector<std::string>(100, "250"));
}

TEST(Durability, KeptResultsLiveOnDiskNotInTheCoordinatorsMemory) {
  if (kAddressSanitizer) GTEST_SKIP() << "memory figures under AddressSanitizer say nothing";
  StateDir state;
  TestCluster cluster({"--state-dir", state.path()});
  ASSERT_TRUE(AddTwoWorkers(cluster));
  const pid_t coordinator = cluster.coordinator().pid();
  const int64_t rss_before_kb = ProcStatusKb(coordinator, "VmRSS");
  // 600 tasks of 200 kB output each: 120 MB of kept results.
  CommandResult submitted =
      cluster.Drover({"submit", "--range", "0:600", "--", "sh", "-c", "head -c 200000 /dev/zero"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  ASSERT_EQ(cluster.Drover({"wait", job}).exit_code, 0);
  const std::string file = absl::StrCat(state.path(), "/results/", job);
  EXPECT_GE(std::filesystem::file_size(file), 600u * 200000);
  const int64_t peak_kb = ProcStatusKb(coordinator, "VmHWM");
  EXPECT_LT(peak_kb, rss_before_kb + 60 * 1024) << "peak " << peak_kb << " kB, from " << rss_before_kb;
  CommandResult results = cluster.Drover({"results", job});
  EXPECT_EQ(results.exit_code, 0);
  EXPECT_EQ(results.out.size(), 600u * 200000);
  // The results survive a kill -9 and are read back from the same file.
  cluster.RestartCoordinator();
  EXPECT_EQ(cluster.Drover({"results", job}).out.size(), 600u * 200000);
}

// The private results directory a coordinator's log names.
std::string ResultsDirOf(ChildProcess& coordinator) {
  for (const std::string& line : Lines(coordinator.Log())) {
    size_t at = line.find("kept results go to ");
    if (at != std::string::npos) return line.substr(at + 19, line.find(' ', at + 19) - at - 19);
  }
  return "";
}

TEST(Durability, APrivateResultsDirectoryLeftByAKilledCoordinatorIsSweptByTheNext) {
  TestCluster cluster;
  const std::string left = ResultsDirOf(cluster.coordinator());
  ASSERT_FALSE(left.empty()) << cluster.coordinator().Log();
  cluster.RestartCoordinator();  // kill -9: it could not remove its directory; the next one does
  EXPECT_FALSE(std::filesystem::exists(left)) << left;
  const std::string own = ResultsDirOf(cluster.coordinator());
  EXPECT_TRUE(std::filesystem::exists(own + "/owner")) << own;
}

TEST(Durability, WithoutAStateDirKeptResultsGoToAPrivateDirectoryRemovedAtExit) {
  TestCluster cluster;
  cluster.AddWorker(1);
  CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "kept"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  EXPECT_EQ(cluster.Drover({"results", Lines(submitted.out).at(0)}).out, "kept\n");
  const std::string dir = ResultsDirOf(cluster.coordinator());
  ASSERT_FALSE(dir.empty()) << cluster.coordinator().Log();
  struct stat info {};
  ASSERT_EQ(stat(dir.c_str(), &info), 0) << dir;
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  EXPECT_EQ(cluster.Drover({"shutdown"}).exit_code, 0);
  EXPECT_TRUE(cluster.coordinator().Wait().has_value());
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

TEST(Durability, ForgetRemovesFinishedJobsFromMemoryAndDiskForGood) {
  StateDir state;
  TestCluster cluster({"--state-dir", state.path()});
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult kept = cluster.Drover({"submit", "--range", "0:50", "--", "sh", "-c", "head -c 100000 /dev/zero"});
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  const std::string job = Lines(kept.out).at(0);
  ASSERT_EQ(cluster.Drover({"wait", job}).exit_code, 0);
  const std::string file = absl::StrCat(state.path(), "/results/", job);
  ASSERT_TRUE(std::filesystem::exists(file));

  CommandResult running = cluster.Drover({"submit", "--kernel", "sleep_ms", "60000"});
  const std::string busy = Lines(running.out).at(0);
  CommandResult refused = cluster.Drover({"forget", busy, job});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("cancel it first"), std::string::npos) << refused.err;
  EXPECT_TRUE(std::filesystem::exists(file));  // nothing forgotten

  CommandResult forgot = cluster.Drover({"forget", job});
  EXPECT_EQ(forgot.exit_code, 0) << forgot.err;
  EXPECT_EQ(forgot.out, absl::StrCat("forgot job ", job, "\n"));
  EXPECT_FALSE(std::filesystem::exists(file));
  EXPECT_EQ(cluster.Drover({"status", job}).exit_code, 2);
  cluster.RestartCoordinator();  // kill -9: the forgetting was durable
  EXPECT_EQ(cluster.Drover({"status", job}).exit_code, 2);
  EXPECT_EQ(cluster.Drover({"status", busy}).exit_code, 0);
  EXPECT_EQ(cluster.Drover({"forget"}).exit_code, 2);  // nothing named: a usage error
}

TEST(Durability, ForgottenJobsGiveTheirMemoryBack) {
  if (kAddressSanitizer) GTEST_SKIP() << "memory figures under AddressSanitizer say nothing";
  TestCluster cluster;  // no workers: the jobs wait, holding their items
  const pid_t coordinator = cluster.coordinator().pid();
  std::string lines;
  for (int i = 0; i < 100000; ++i) lines += absl::StrCat("item-", i, "\n");
  const int64_t rss_before_kb = ProcStatusKb(coordinator, "VmRSS");
  std::vector<std::string> forget = {"forget"};
  for (int j = 0; j < 20; ++j) {
    CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "--each-line", "-"}, lines);
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    forget.push_back(Lines(submitted.out).at(0));
  }
  const int64_t rss_loaded_kb = ProcStatusKb(coordinator, "VmRSS");
  EXPECT_GT(rss_loaded_kb, rss_before_kb + 40 * 1024);  // 2 M listed items are held
  for (size_t j = 1; j < forget.size(); ++j) ASSERT_EQ(cluster.Drover({"cancel", forget[j]}).exit_code, 0);
  ASSERT_EQ(cluster.Drover(forget).exit_code, 0);
  const int64_t rss_after_kb = ProcStatusKb(coordinator, "VmRSS");
  // At least nine tenths of what the jobs took is given back (about 99% is:
  // what stays is allocator and gRPC buffer slack).
  EXPECT_LT(rss_after_kb - rss_before_kb, (rss_loaded_kb - rss_before_kb) / 10)
      << "before " << rss_before_kb << " kB, loaded " << rss_loaded_kb << " kB, after " << rss_after_kb << " kB";
  EXPECT_EQ(Lines(cluster.Drover({"jobs"}).out).size(), 1u);  // the header only
}

TEST(Durability, ForgettingCompactsTheJournalAndRestartReadsOnlyWhatIsLive) {
  StateDir state;
  TestCluster cluster({"--state-dir", state.path()});  // no workers: the jobs wait
  std::string lines;
  for (int i = 0; i < 100000; ++i) lines += absl::StrCat("item-", i, "\n");
  std::vector<std::string> jobs;
  for (int j = 0; j < 12; ++j) {
    CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "--each-line", "-"}, lines);
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    jobs.push_back(Lines(submitted.out).at(0));
  }
  const std::string journal = state.path() + "/journal";
  const auto full = std::filesystem::file_size(journal);
  EXPECT_GT(full, 12u * 1000000);
  std::vector<std::string> forget = {"forget"};
  for (size_t j = 1; j < jobs.size(); ++j) {  // all but the first
    ASSERT_EQ(cluster.Drover({"cancel", jobs[j]}).exit_code, 0);
    forget.push_back(jobs[j]);
  }
  ASSERT_EQ(cluster.Drover(forget).exit_code, 0);
  const auto compacted = std::filesystem::file_size(journal);
  EXPECT_LT(compacted, full / 6) << full << " -> " << compacted;
  cluster.RestartCoordinator();  // kill -9, then a restart that reads the compacted journal
  CommandResult listed = cluster.Drover({"jobs", "--json"});
  ASSERT_EQ(Lines(listed.out).size(), 1u) << listed.out;
  EXPECT_NE(listed.out.find(absl::StrCat("\"jobId\":", jobs[0], ",")), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("\"totalItems\":100000,"), std::string::npos) << listed.out;
}

TEST(Durability, A200MegabyteEachLineFileIsStreamedToDiskPastTheItemLimit) {
  if (kAddressSanitizer) GTEST_SKIP() << "memory figures under AddressSanitizer say nothing";
  StateDir state;
  TestCluster cluster({"--state-dir", state.path()});
  ASSERT_TRUE(AddTwoWorkers(cluster));
  // 10.5 M lines of 19 bytes: past --max-items (10 M) and the 64 MiB request limit.
  const std::string file = state.path() + "/lines.txt";
  {
    std::ofstream out(file, std::ios::binary);
    char line[32];
    for (int i = 0; i < 10'500'000; ++i) {
      std::snprintf(line, sizeof(line), "line-%013d\n", i);
      out.write(line, 19);
    }
  }
  ASSERT_EQ(std::filesystem::file_size(file), 10'500'000u * 19);
  const pid_t coordinator = cluster.coordinator().pid();
  CommandResult submitted = cluster.Drover({"submit", "--kernel", "noop", "--each-line", file});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  EXPECT_GE(std::filesystem::file_size(absl::StrCat(state.path(), "/results/", job, ".items")), 10'500'000u * 18);
  ASSERT_EQ(cluster.Drover({"wait", job}).exit_code, 0);
  CommandResult status = cluster.Drover({"status", job});
  EXPECT_NE(status.out.find("10500000/10500000 done"), std::string::npos) << status.out;
  // Held inline, the items alone would take ~600 MB.
  const int64_t peak_kb = ProcStatusKb(coordinator, "VmHWM");
  EXPECT_LT(peak_kb, 400 * 1024) << "peak " << peak_kb << " kB";
  // The items come back after a kill -9: the job's record names them, they are on disk.
  cluster.RestartCoordinator();
  EXPECT_NE(cluster.Drover({"status", job}).out.find("10500000/10500000 done"), std::string::npos);
}

TEST(Durability, AForgetKilledAtAnyMomentForgetsTheJobOrKeepsItWhole) {
  StateDir state;
  TestCluster cluster({"--state-dir", state.path()});
  CommandResult kept = cluster.Drover({"submit", "--kernel", "echo", "--range", "0:5"});  // live, no workers
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  std::string lines;
  for (int i = 0; i < 200000; ++i) lines += absl::StrCat("item-", i, "\n");
  absl::BitGen random;
  for (int round = 0; round < 8; ++round) {
    // Each forget makes the dead records outweigh the live ones: it compacts the journal.
    CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "--each-line", "-"}, lines);
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    const std::string job = Lines(submitted.out).at(0);
    ASSERT_EQ(cluster.Drover({"cancel", job}).exit_code, 0);
    ChildProcess forget({BinPath("drover"), "--coordinator", cluster.client_target(), "forget", job});
    // Not synchronisation: a random moment to crash at, before, during or after the compaction.
    absl::SleepFor(absl::Milliseconds(absl::Uniform(random, 0, 40)));
    cluster.RestartCoordinator();  // kill -9; the restart must find an intact journal
    forget.Signal(SIGKILL);  // it may have been still connecting: not to the new coordinator
    forget.Wait();
    EXPECT_FALSE(std::filesystem::exists(state.path() + "/journal.tmp"));
    CommandResult status = cluster.Drover({"status", job});
    if (status.exit_code == 0) {  // the forget was not durable yet: the job is whole
      EXPECT_NE(status.out.find("0/200000 done"), std::string::npos) << status.out;
      CommandResult again = cluster.Drover({"forget", job});
      // (A request the killed child had already sent may have forgotten it since.)
      EXPECT_TRUE(again.exit_code == 0 || again.err.find("no job") != std::string::npos) << again.err;
    }
    EXPECT_EQ(cluster.Drover({"status", Lines(kept.out).at(0)}).exit_code, 0) << "round " << round;
  }
  EXPECT_LT(std::filesystem::file_size(state.path() + "/journal"), 1u << 20);
}

}  // namespace
}  // namespace drover::testing
