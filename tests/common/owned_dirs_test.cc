// Tests common/owned_dirs.h: stale owned files are swept, live ones kept, and
// DirectoryLock makes a sweep and a claim in one directory take turns.
#include "common/owned_dirs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace drover {
namespace {

class TempDir {
 public:
  TempDir() {
    char dir[] = "/tmp/drover-owned-test-XXXXXX";
    path_ = mkdtemp(dir);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void Touch(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A pid that is certainly dead: a child that has exited and been reaped.
pid_t DeadPid() {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

TEST(OwnedFiles, AFileOfADeadOwnerIsSweptAndALiveOwnersIsKept) {
  TempDir dir;
  Touch(dir.path() + "/dead", "t1");
  Touch(dir.path() + "/dead.owner", std::to_string(DeadPid()) + " 1\n");
  Touch(dir.path() + "/live", "t2");
  ASSERT_TRUE(ClaimPath(dir.path() + "/live.owner").ok());

  EXPECT_EQ(SweepStaleOwnedFiles(dir.path()), 1);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/dead"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/dead.owner"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/live"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/live.owner"));
}

TEST(OwnedFiles, ADirectoryLockIsHeldAgainstOtherProcessesUntilItGoes) {
  TempDir dir;
  auto locked_elsewhere = [&] {
    pid_t child = fork();
    if (child == 0) {
      int fd = open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
      _exit(flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WEXITSTATUS(status) == 1;
  };
  {
    DirectoryLock lock(dir.path());
    EXPECT_TRUE(locked_elsewhere());
  }
  EXPECT_FALSE(locked_elsewhere());
  DirectoryLock missing(dir.path() + "/not-there");  // nothing to lock, and no hang
}

}  // namespace
}  // namespace drover
