// Implements process_groups.h: a forked reaper reads "+PGID"/"-PGID" lines and,
// at end of file (the worker is gone), SIGKILLs every group still listed.
#include "worker/process_groups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>

namespace drover {
namespace {

[[noreturn]] void ReaperMain(int fd) {
  setsid();  // signals sent to the worker's group do not reach the reaper
  prctl(PR_SET_NAME, "drover-reaper");
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  std::set<pid_t> groups;
  char buffer[4096];
  std::string pending;
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      if (line.size() < 2) continue;
      pid_t group = static_cast<pid_t>(std::atol(line.c_str() + 1));
      if (group <= 1) continue;
      if (line[0] == '+') groups.insert(group);
      if (line[0] == '-') groups.erase(group);
    }
  }
  for (pid_t group : groups) kill(-group, SIGKILL);
  _exit(0);
}

}  // namespace

absl::Status ProcessGroups::Start() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    close(fds[1]);
    // Keep nothing else of the worker open (sockets, log files).
    for (int fd = 3; fd < 1024; ++fd) {
      if (fd != fds[0]) close(fd);
    }
    ReaperMain(fds[0]);
  }
  close(fds[0]);
  pipe_ = fds[1];
  return absl::OkStatus();
}

void ProcessGroups::WriteAddLine(int fd, pid_t group) {
  if (fd < 0) return;
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + group % 10);
    group /= 10;
  } while (group > 0);
  char line[24];
  int at = 0;
  line[at++] = '+';
  while (n > 0) line[at++] = digits[--n];
  line[at++] = '\n';
  ssize_t ignored = write(fd, line, static_cast<size_t>(at));  // < PIPE_BUF: atomic
  (void)ignored;
}

void ProcessGroups::Remove(pid_t group) {
  if (pipe_ < 0) return;
  char line[32];
  int n = std::snprintf(line, sizeof(line), "-%d\n", static_cast<int>(group));
  ssize_t ignored = write(pipe_, line, static_cast<size_t>(n));
  (void)ignored;
}

ProcessGroups::~ProcessGroups() {
  if (pipe_ >= 0) close(pipe_);
}

}  // namespace drover
