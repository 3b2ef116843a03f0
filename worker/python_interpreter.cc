// Implements python_interpreter.h: the process is started with vfork +
// execve as command tasks are (own process group, registered with the reaper
// before it runs, killed if the worker dies), and spoken to in frames.
#include "worker/python_interpreter.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "worker/command_runner.h"
#include "worker/python_task_runner_source.h"

extern char** environ;

namespace drover {
namespace {

// How a reaped process ended, as a task failure reads.
std::string DescribeEnd(int status) {
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("exited with status ", WEXITSTATUS(status));
}

void AppendU32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint32_t ReadU32(const char* data) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << (8 * i);
  return value;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // EPIPE: the interpreter is gone (SIGPIPE is ignored)
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Starts the interpreter with vfork + execve in its own process group, which
// the child registers with the reaper before execve (as command_runner.cc
// does, with every signal blocked across vfork and only async-signal-safe
// calls in the child): requests on its fd 0, replies on its fd 3, stdout and
// stderr the worker's, and no other descriptor. Returns the pid (-1: errno says why); `*exec_errno` is
// set when execve failed.
pid_t Spawn(const char* path, char* const* argv, int reaper, int requests, int replies,
            volatile int* exec_errno) {
  sigset_t all, saved, none;
  sigfillset(&all);
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  const pid_t pid = vfork();
  if (pid == 0) {
    setpgid(0, 0);
    ProcessGroups::WriteAddLine(reaper, getpid());
    // Copies above 3 first, so that no pipe end is overwritten (or left
    // close-on-exec) whichever numbers it has.
    const int in = fcntl(requests, F_DUPFD, 10);
    const int out = fcntl(replies, F_DUPFD, 10);
    dup2(in, STDIN_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO);  // the user's prints go to the worker's log
    dup2(out, 3);
    close(in);
    close(out);
    close_range(4, ~0u, 0);  // nothing else of the worker's (see command_runner.cc)
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT}) sigaction(s, &default_action, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(path, argv, environ);
    *exec_errno = errno;
    _exit(127);
  }
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  errno = fork_errno;
  return pid;
}

}  // namespace

bool PythonRunsCalls(const std::string& python) {
  int lookup_error = 0;
  const std::string program = FindProgram(python, &lookup_error);
  if (program.empty()) return false;
  std::string name = python;
  std::string flag = "-c";
  std::string script = "import cloudpickle";
  char* argv[] = {name.data(), flag.data(), script.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

PythonInterpreter::PythonInterpreter(std::string python, ProcessGroups* groups)
    : python_(std::move(python)), groups_(groups) {}

PythonInterpreter::~PythonInterpreter() { Stop(); }

bool PythonInterpreter::Start(std::string* error) {
  int lookup_error = 0;
  const std::string program = FindProgram(python_, &lookup_error);
  if (program.empty()) {
    *error = absl::StrCat("cannot run '", python_, "': ", strerror(lookup_error));
    return false;
  }
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) {
    *error = absl::StrCat("pipe: ", strerror(errno));
    return false;
  }
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    *error = absl::StrCat("pipe: ", strerror(errno));
    close(to_child[0]);
    close(to_child[1]);
    return false;
  }
  std::string name = python_, flag = "-c", script = kPythonTaskRunner;
  char* argv[] = {name.data(), flag.data(), script.data(), nullptr};
  volatile int exec_errno = 0;
  const pid_t pid = Spawn(program.c_str(), argv, groups_ != nullptr ? groups_->fd() : -1, to_child[0],
                          from_child[1], &exec_errno);
  const int fork_errno = errno;
  close(to_child[0]);
  close(from_child[1]);
  if (pid < 0 || exec_errno != 0) {
    *error = pid < 0 ? absl::StrCat("vfork: ", strerror(fork_errno))
                     : absl::StrCat("cannot run '", python_, "': ", strerror(exec_errno));
    if (pid > 0) {
      waitpid(pid, nullptr, 0);
      if (groups_ != nullptr) groups_->Remove(pid);
    }
    close(to_child[1]);
    close(from_child[0]);
    return false;
  }
  pid_ = pid;
  requests_ = to_child[1];
  replies_ = from_child[0];
  loaded_function_.clear();
  return true;
}

std::string PythonInterpreter::Stop() {
  if (pid_ <= 0) return "";
  close(requests_);
  close(replies_);
  requests_ = replies_ = -1;
  kill(-pid_, SIGKILL);  // its children too
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  if (groups_ != nullptr) groups_->Remove(pid_);
  pid_ = -1;
  loaded_function_.clear();
  inbox_.clear();
  return DescribeEnd(status);
}

void AppendFrame(std::string* out, char kind, absl::string_view payload) {
  out->push_back(kind);
  AppendU32(out, static_cast<uint32_t>(payload.size()));
  out->append(payload.data(), payload.size());
}

bool PythonInterpreter::Receive(char* kind, std::string* payload, absl::Time deadline,
                                const std::atomic<bool>& cancelled, std::string* why) {
  // Reads as much as is there (several replies at a time), keeping what is
  // past this frame in inbox_ for the next.
  while (inbox_.size() < 5 || inbox_.size() < 5 + static_cast<size_t>(ReadU32(inbox_.data() + 1))) {
    if (cancelled.load(std::memory_order_relaxed)) {
      *why = "cancelled";
      return false;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      *why = "timeout";
      return false;
    }
    pollfd p{replies_, POLLIN, 0};
    // At most 50 ms, to see a cancel; less when the deadline is nearer.
    const int wait_ms = deadline - now < absl::Milliseconds(50)
                            ? static_cast<int>(absl::ToInt64Milliseconds(deadline - now) + 1)
                            : 50;
    if (poll(&p, 1, wait_ms) <= 0) continue;
    char buffer[65536];
    ssize_t n = read(replies_, buffer, sizeof(buffer));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      *why = "eof";
      return false;
    }
    inbox_.append(buffer, static_cast<size_t>(n));
  }
  const size_t size = ReadU32(inbox_.data() + 1);
  *kind = inbox_[0];
  payload->assign(inbox_, 5, size);
  inbox_.erase(0, 5 + size);
  return true;
}

std::vector<PythonOutcome> PythonInterpreter::CallAll(const std::string& function,
                                                     const std::vector<absl::string_view>& arguments,
                                                     absl::Duration timeout, const std::atomic<bool>& cancelled) {
  std::vector<PythonOutcome> outcomes;
  outcomes.reserve(arguments.size());
  while (outcomes.size() < arguments.size()) {
    PythonOutcome outcome;
    if (pid_ <= 0 && !Start(&outcome.error)) {
      while (outcomes.size() < arguments.size()) outcomes.push_back(outcome);
      break;
    }
    // The calls not made yet go in one frame (after the function, when it is
    // new to this interpreter), in one write; the answers come one by one.
    std::string batch;
    AppendU32(&batch, static_cast<uint32_t>(arguments.size() - outcomes.size()));
    for (size_t i = outcomes.size(); i < arguments.size(); ++i) {
      AppendU32(&batch, static_cast<uint32_t>(arguments[i].size()));
      batch.append(arguments[i].data(), arguments[i].size());
    }
    std::string frames;
    if (function != loaded_function_) AppendFrame(&frames, 'F', function);
    AppendFrame(&frames, 'B', batch);
    const bool sent = WriteAll(requests_, frames.data(), frames.size());
    if (sent) loaded_function_ = function;
    std::string why = sent ? "" : "eof";
    while (sent && outcomes.size() < arguments.size()) {
      const absl::Time deadline =
          timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
      char kind = 0;
      std::string payload;
      if (!Receive(&kind, &payload, deadline, cancelled, &why)) break;
      PythonOutcome& next = outcomes.emplace_back();
      if (kind == 'R') {
        next.ok = true;
        next.output = std::move(payload);
        continue;
      }
      const uint32_t size = payload.size() >= 4 ? ReadU32(payload.data()) : 0;
      if (kind != 'E' || payload.size() < 4 || size > payload.size() - 4) {
        outcomes.pop_back();
        why = "a reply that is not a drover frame";
        break;
      }
      next.error = payload.substr(4, size);
      next.output = payload.substr(4 + size);
    }
    if (outcomes.size() == arguments.size()) break;
    // The interpreter is stopped: the call it was making fails; the rest go
    // to a fresh one (unless cancelled).
    const std::string ended = Stop();
    if (why == "timeout") {
      outcome.error =
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " (the interpreter was killed)");
    } else if (why == "cancelled") {
      outcome.error = "cancelled";
    } else if (why == "eof") {
      outcome.error = absl::StrCat("the Python interpreter ", ended, " during the call (a new one takes the next)");
    } else {
      outcome.error = absl::StrCat("the Python interpreter sent ", why, "; it was stopped");
    }
    outcomes.push_back(outcome);
    if (why == "cancelled") {
      while (outcomes.size() < arguments.size()) outcomes.push_back(outcome);
    }
  }
  return outcomes;
}

PythonOutcome PythonInterpreter::Call(const std::string& function, absl::string_view arguments,
                                      absl::Duration timeout, const std::atomic<bool>& cancelled) {
  return std::move(CallAll(function, {arguments}, timeout, cancelled).front());
}

}  // namespace drover
