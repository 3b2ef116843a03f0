// Integration: the worker's --health-file (what Kubernetes probes and other
// supervisors check) is renewed while the worker is registered, and goes stale
// when its coordinator is gone.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "absl/time/clock.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

absl::Time Modified(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return absl::InfinitePast();
  return absl::TimeFromTimespec(info.st_mtim);
}

TEST(HealthFile, IsRenewedWhileRegisteredAndNotWithoutACoordinator) {
  std::string dir = std::filesystem::temp_directory_path() / ("drover-health-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string file = dir + "/health";
  TestCluster cluster;
  cluster.AddWorker(1, {"--health-file", file});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  ASSERT_TRUE(WaitUntil([&] { return Modified(file) != absl::InfinitePast(); })) << "never written";
  absl::Time first = Modified(file);
  EXPECT_TRUE(WaitUntil([&] { return Modified(file) > first; })) << "not renewed";

  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().Wait();
  // The worker notices the silence (after its coordinator timeout, 10 s) and
  // stops renewing: the file grows older than three renewal periods.
  EXPECT_TRUE(WaitUntil([&] { return absl::Now() - Modified(file) > absl::Seconds(3); }, absl::Seconds(40)));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace drover::testing
