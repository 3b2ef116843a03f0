// Implements owned_dirs.h.
#include "common/owned_dirs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace drover {
namespace {

// Field 22 of /proc/PID/stat (start time in clock ticks), or "" if the process is gone.
std::string StartTime(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return "";
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

bool OwnerAlive(const std::string& owner_path) {
  std::ifstream owner(owner_path);
  pid_t pid = 0;
  std::string start;
  if (!(owner >> pid >> start) || pid <= 0) return true;  // unreadable: assume alive, leave it
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  return StartTime(pid) == start;
}

}  // namespace

absl::Status ClaimDir(const std::string& dir) { return ClaimPath(dir + "/" + kOwnerFileName); }

absl::Status ClaimPath(const std::string& path) {
  std::string text = absl::StrCat(getpid(), " ", StartTime(getpid()), "\n");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  close(fd);
  return absl::OkStatus();
}

int SweepStaleDirs(const std::string& tmp, absl::string_view prefix) {
  int removed = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(tmp, error)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, prefix)) continue;
    struct stat info;
    if (lstat(entry.path().c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || info.st_uid != geteuid()) continue;
    if (!std::filesystem::exists(entry.path() / kOwnerFileName, error)) continue;  // logs kept on purpose
    if (OwnerAlive((entry.path() / kOwnerFileName).string())) continue;
    std::error_code ignored;
    if (std::filesystem::remove_all(entry.path(), ignored) > 0) ++removed;
  }
  return removed;
}

int SweepStaleOwnedFiles(const std::string& dir) {
  int removed = 0;
  std::error_code error;
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, kOwnerSuffix) || name.size() == std::strlen(kOwnerSuffix)) continue;
    struct stat info;
    if (lstat(entry.path().c_str(), &info) != 0 || !S_ISREG(info.st_mode) || info.st_uid != geteuid()) continue;
    if (!OwnerAlive(entry.path().string())) stale.push_back(entry.path());
  }
  for (const std::filesystem::path& owner : stale) {
    std::string owned = owner.string();
    owned.resize(owned.size() - std::strlen(kOwnerSuffix));
    unlink(owned.c_str());
    if (unlink(owner.c_str()) == 0) ++removed;
  }
  return removed;
}

DirectoryLock::DirectoryLock(const std::string& dir)
    : fd_(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
  if (fd_ >= 0) {
    while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) close(fd_);  // releases the lock
}

}  // namespace drover
