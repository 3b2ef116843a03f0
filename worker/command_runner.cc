// Implements command_runner.h with posix_spawn, two pipes and poll.
#include "worker/command_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace drover {
namespace {

constexpr int kPollMs = 50;

// The worker's environment with `extra` ("K=V") added or replacing entries.
std::vector<std::string> BuildEnvironment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> by_key;
  auto add = [&](const std::string& entry) {
    size_t eq = entry.find('=');
    by_key[entry.substr(0, eq)] = entry;
  };
  for (char** e = environ; *e != nullptr; ++e) add(*e);
  for (const std::string& entry : extra) add(entry);
  std::vector<std::string> env;
  env.reserve(by_key.size());
  for (auto& [key, entry] : by_key) env.push_back(std::move(entry));
  return env;
}

// Appends what can be read from `fd` to `out` up to `cap`; drains the rest.
// Returns false at end of file.
bool ReadSome(int fd, std::string* out, uint64_t cap, bool* truncated) {
  char buffer[65536];
  ssize_t n = read(fd, buffer, sizeof(buffer));
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  size_t room = out->size() < cap ? cap - out->size() : 0;
  size_t keep = std::min(room, static_cast<size_t>(n));
  out->append(buffer, keep);
  if (keep < static_cast<size_t>(n)) *truncated = true;
  return true;
}

}  // namespace

CommandOutcome RunCommand(const CommandTask& task, const std::atomic<bool>& cancelled,
                          ProcessGroups* groups) {
  CommandOutcome outcome;
  if (task.argv.empty()) {
    outcome.start_error = "empty command";
    return outcome;
  }
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    outcome.start_error = absl::StrCat("cannot create pipes: ", strerror(errno));
    return outcome;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  if (!task.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, task.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT}) sigaddset(&defaults, s);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);  // its own process group, led by the task
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_USEVFORK);

  std::vector<std::string> argv_strings = task.argv;
  std::vector<std::string> env_strings = BuildEnvironment(task.env);
  std::vector<char*> argv, envp;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  absl::Time start = absl::Now();
  pid_t pid = -1;
  int spawned = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  close(err[1]);
  if (spawned != 0) {
    close(out[0]);
    close(err[0]);
    outcome.start_error = absl::StrCat("cannot run '", task.argv[0], "': ", strerror(spawned));
    if (spawned == ENOENT && !task.cwd.empty() && access(task.cwd.c_str(), X_OK) != 0) {
      outcome.start_error = absl::StrCat("cannot change to directory '", task.cwd, "'");
    }
    return outcome;
  }
  groups->Add(pid);

  absl::Time deadline = task.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                                   : start + task.timeout;
  absl::Time kill_at = absl::InfiniteFuture();
  bool out_open = true, err_open = true, exited = false, killed = false;
  int status = 0;
  rusage usage{};
  // Readable when the task exits, so its end is seen at once (-1 if the kernel lacks pidfds:
  // then a short poll stands in).
  int exit_fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  absl::Time stop_reading_at = absl::InfiniteFuture();
  while (out_open || err_open || !exited) {
    if (!exited && wait4(pid, &status, WNOHANG, &usage) == pid) {
      exited = true;
      outcome.duration = absl::Now() - start;
      kill(-pid, SIGKILL);  // background grandchildren go with it
      // Something outside the group (setsid) may still hold the pipes: read
      // what comes for a moment, then stop.
      stop_reading_at = absl::Now() + absl::Seconds(1);
    }
    absl::Time now = absl::Now();
    if (exited) {
      if (now >= stop_reading_at) break;
    } else if (!killed && cancelled.load(std::memory_order_relaxed)) {
      outcome.cancelled = true;
      kill(-pid, SIGKILL);
      killed = true;
    } else if (!outcome.timed_out && now >= deadline) {
      outcome.timed_out = true;
      kill(-pid, SIGTERM);
      kill_at = now + task.kill_grace;
    } else if (!killed && now >= kill_at) {
      kill(-pid, SIGKILL);
      killed = true;
    }
    if (!out_open && !err_open && exited) break;
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0},
                     {err_open ? err[0] : -1, POLLIN, 0},
                     {exited ? -1 : exit_fd, POLLIN, 0}};
    int wait_ms = (!out_open && !err_open && exit_fd < 0) ? 1 : kPollMs;
    poll(fds, 3, wait_ms);
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      out_open = ReadSome(out[0], &outcome.stdout_data, task.max_output_bytes, &outcome.stdout_truncated);
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      err_open = ReadSome(err[0], &outcome.stderr_data, task.max_output_bytes, &outcome.stderr_truncated);
    }
  }
  close(out[0]);
  close(err[0]);
  if (exit_fd >= 0) close(exit_fd);
  groups->Remove(pid);
  outcome.max_rss_kb = static_cast<uint64_t>(usage.ru_maxrss);
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  return outcome;
}

std::string DescribeFailure(const CommandOutcome& outcome, const CommandTask& task) {
  if (!outcome.start_error.empty()) return outcome.start_error;
  if (outcome.cancelled) return "cancelled";
  if (outcome.timed_out) return absl::StrCat("timed out after ", absl::FormatDuration(task.timeout));
  if (outcome.signal != 0) {
    return absl::StrCat("killed by signal ", outcome.signal, " (", strsignal(outcome.signal), ")");
  }
  if (outcome.exit_code != 0) return absl::StrCat("exit status ", outcome.exit_code);
  return "";
}

}  // namespace drover
