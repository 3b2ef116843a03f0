// Implements command_runner.h with posix_spawn, two pipes and poll.
#include "worker/command_runner.h"

#include <fcntl.h>
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

// The path execve() needs for `name` (a PATH search when it has no '/'), or
// "" with `*error` set (ENOENT or EACCES). Done before fork: the child may only
// make async-signal-safe calls.
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

// Starts the task in a new process group, and registers that group with the
// reaper *before* the task may run (the child waits on a gate), so a worker
// killed at any moment leaves nothing behind. Errors: kFailedPrecondition for
// a cwd that cannot be entered, else the exec error's text.
absl::StatusOr<pid_t> Spawn(const std::string& program, char* const* argv, char* const* envp,
                            const std::string& cwd, int out, int err, ProcessGroups* groups) {
  int gate[2], report[2];
  if (pipe2(gate, O_CLOEXEC) != 0) return absl::InternalError(strerror(errno));
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(gate[0]);
    close(gate[1]);
    return absl::InternalError(strerror(errno));
  }
  const char* dir = cwd.empty() ? nullptr : cwd.c_str();
  pid_t pid = fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only, up to execve.
    setpgid(0, 0);
    close(gate[1]);
    char go;
    if (read(gate[0], &go, 1) != 1) _exit(127);  // the worker is gone
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT}) sigaction(s, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int failure[2] = {0, 0};
    if (dir != nullptr && chdir(dir) != 0) {
      failure[0] = 1;
      failure[1] = errno;
    } else {
      execve(program.c_str(), argv, envp);
      failure[1] = errno;
    }
    ssize_t ignored = write(report[1], failure, sizeof(failure));
    (void)ignored;
    _exit(127);
  }
  close(gate[0]);
  close(report[1]);
  if (pid < 0) {
    close(gate[1]);
    close(report[0]);
    return absl::InternalError(absl::StrCat("fork failed: ", strerror(errno)));
  }
  setpgid(pid, pid);  // also here, whichever runs first
  groups->Add(pid);
  ssize_t ignored = write(gate[1], "g", 1);
  (void)ignored;
  close(gate[1]);
  int failure[2] = {0, 0};
  ssize_t n;
  do {
    n = read(report[0], failure, sizeof(failure));  // end of file: execve succeeded
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    waitpid(pid, nullptr, 0);
    groups->Remove(pid);
    if (failure[0] == 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot change to directory '", cwd, "': ", strerror(failure[1])));
    }
    return absl::UnknownError(strerror(failure[1]));
  }
  return pid;
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
