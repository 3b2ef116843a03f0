// Implements command_runner.h with posix_spawn, two pipes and poll.
#include "worker/command_runner.h"

#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// Starts the task with vfork + execve in a new process group. The child
// registers its group with the reaper *before* execve, so no task can run
// unknown to it: a worker killed at any instant leaves nothing behind. The
// child makes only async-signal-safe calls, with every signal blocked until
// just before execve (as posix_spawn does), and keeps no descriptor but 0-2.
// Errors: kFailedPrecondition for a
// cwd that cannot be entered, else the exec error's text.
absl::StatusOr<pid_t> Spawn(const std::string& program, char* const* argv, char* const* envp,
                            const std::string& cwd, int out, int err, ProcessGroups* groups) {
  const int reaper = groups->fd();
  const char* path = program.c_str();
  const char* dir = cwd.empty() ? nullptr : cwd.c_str();
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  sigset_t all, saved, none;
  sigfillset(&all);
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  volatile int failed_step = 0;  // written by the child (vfork shares memory)
  volatile int failed_errno = 0;
  pid_t pid = vfork();
  if (pid == 0) {
    setpgid(0, 0);
    ProcessGroups::WriteAddLine(reaper, getpid());
    dup2(null_fd, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    // Nothing else of the worker's reaches the task, whether or not it was
    // made close-on-exec (libcurl's sockets and socketpair are not).
    close_range(3, ~0u, 0);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT}) sigaction(s, &default_action, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dir != nullptr && chdir(dir) != 0) {
      failed_errno = errno;
      failed_step = 1;
      _exit(127);
    }
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(path, argv, envp);
    failed_errno = errno;
    failed_step = 2;
    _exit(127);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) return absl::InternalError(absl::StrCat("vfork failed: ", strerror(fork_errno)));
  if (failed_step != 0) {
    waitpid(pid, nullptr, 0);
    groups->Remove(pid);
    if (failed_step == 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot change to directory '", cwd, "': ", strerror(failed_errno)));
    }
    return absl::UnknownError(strerror(failed_errno));
  }
  return pid;
}

}  // namespace

std::string FindProgram(const std::string& name, int* error) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  *error = ENOENT;
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) {
      struct stat info;
      if (stat(candidate.c_str(), &info) == 0 && S_ISREG(info.st_mode)) return candidate;
    } else if (errno == EACCES) {
      *error = EACCES;
    }
  }
  return "";
}

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
  std::vector<std::string> argv_strings = task.argv;
  std::vector<std::string> env_strings = BuildEnvironment(task.env);
  std::vector<char*> argv, envp;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int lookup_error = 0;
  std::string program = FindProgram(task.argv[0], &lookup_error);

  absl::Time start = absl::Now();
  absl::StatusOr<pid_t> spawned =
      program.empty() ? absl::StatusOr<pid_t>(absl::Status(absl::StatusCode::kNotFound, strerror(lookup_error)))
                      : Spawn(program, argv.data(), envp.data(), task.cwd, out[1], err[1], groups);
  close(out[1]);
  close(err[1]);
  if (!spawned.ok()) {
    close(out[0]);
    close(err[0]);
    outcome.start_error = spawned.status().code() == absl::StatusCode::kFailedPrecondition
                              ? std::string(spawned.status().message())
                              : absl::StrCat("cannot run '", task.argv[0], "': ", spawned.status().message());
    return outcome;
  }
  const pid_t pid = *spawned;

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
