// Implements harness.h.
#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace drover::testing {
namespace {

// Every program a test starts keeps its state (token files of loopback
// coordinators) in a directory of this test process, never in the user's
// ~/.local/state, where a coordinator killed by another test may have left a
// token file for the same port.
class PrivateStateHome {
 public:
  PrivateStateHome() {
    char pattern[] = "/tmp/drover-test-state-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return;
    path_ = pattern;
    setenv("XDG_STATE_HOME", path_.c_str(), 1);
  }
  ~PrivateStateHome() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }

 private:
  std::string path_;
};
const PrivateStateHome private_state_home;

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// This process's environment with `extra` ("NAME=VALUE") added, replacing
// variables of the same names.
std::vector<std::string> Environment(const std::vector<std::string>& extra) {
  auto name_of = [](absl::string_view entry) { return entry.substr(0, entry.find('=') + 1); };
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    bool replaced = false;
    for (const std::string& x : extra) replaced = replaced || name_of(x) == name_of(*e);
    if (!replaced) env.emplace_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

}  // namespace

std::string BinPath(const std::string& program) { return absl::StrCat(DROVER_BIN_DIR, "/", program); }

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

CommandResult RunProgram(const std::vector<std::string>& argv_in, const std::string& input,
                         const std::vector<std::string>& extra_env, absl::Duration timeout) {
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> env = Environment(extra_env);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  std::vector<char*> args = Pointers(argv);
  std::vector<char*> envp = Pointers(env);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  CommandResult result;
  size_t written = 0;
  int in_fd = in[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  bool out_open = true, err_open = true;
  absl::Time deadline = absl::Now() + timeout;
  while (out_open || err_open) {
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0},
                     {in_fd, POLLOUT, 0}};
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << "timed out (a hang): " << absl::StrJoin(argv_in, " ");
      break;
    }
    poll(fds, 3, left);
    char buffer[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
        if (n > 0) {
          (i == 0 ? result.out : result.err).append(buffer, static_cast<size_t>(n));
        } else {
          (i == 0 ? out_open : err_open) = false;
        }
      }
    }
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv_in,
                           const std::vector<std::string>& extra_env, int* ready_fd_out) {
  std::vector<std::string> argv = argv_in;
  std::vector<std::string> env = Environment(extra_env);
  std::vector<char*> args = Pointers(argv);
  std::vector<char*> envp = Pointers(env);
  char path[] = "/tmp/drover-test-log-XXXXXX";
  int log = mkstemp(path);
  log_path_ = path;
  int ready[2] = {-1, -1};
  if (ready_fd_out != nullptr && pipe(ready) != 0) ADD_FAILURE() << "pipe failed";
  pid_ = fork();
  if (pid_ == 0) {
    dup2(log, 1);
    dup2(log, 2);
    if (ready[1] >= 0) dup2(ready[1], 3);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(log);
  if (ready_fd_out != nullptr) {
    close(ready[1]);
    *ready_fd_out = ready[0];
  }
}

ChildProcess::~ChildProcess() {
  if (Running()) {
    kill(pid_, SIGKILL);
    Wait(absl::Seconds(10));
  }
  unlink(log_path_.c_str());
}

void ChildProcess::Signal(int signal_number) {
  if (!status_) kill(pid_, signal_number);  // never a reaped pid (it may belong to another process by now)
}

bool ChildProcess::Running() {
  if (status_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

std::optional<int> ChildProcess::Wait(absl::Duration timeout) {
  WaitUntil([this] { return !Running(); }, timeout);
  return status_;
}

std::string ChildProcess::Log() const {
  std::ifstream file(log_path_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// A field of /proc/PID/status in kB (VmRSS, VmHWM), or -1.
int64_t ProcStatusKb(pid_t pid, absl::string_view field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    int64_t kb = 0;
    if (absl::ConsumePrefix(&rest, field) && absl::ConsumePrefix(&rest, ":") &&
        absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(rest), " kB"), &kb)) {
      return kb;
    }
  }
  return -1;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TestCluster::TestCluster(std::vector<std::string> coordinator_flags, int worker_port, int client_port)
    : coordinator_flags_(std::move(coordinator_flags)), worker_port_(worker_port), client_port_(client_port) {
  StartCoordinator();
}

void TestCluster::RestartCoordinator() {
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  StartCoordinator();
}

void TestCluster::StartCoordinator() {
  std::vector<std::string> argv = {BinPath("drover-coordinator"), "--listen-workers",
                                   absl::StrCat("tcp://127.0.0.1:", worker_port_), "--listen-clients",
                                   absl::StrCat("127.0.0.1:", client_port_), "--ready-fd", "3"};
  argv.insert(argv.end(), coordinator_flags_.begin(), coordinator_flags_.end());
  int ready = -1;
  coordinator_ = std::make_unique<ChildProcess>(argv, std::vector<std::string>{}, &ready);
  std::string line;
  char c;
  pollfd p{ready, POLLIN, 0};
  while (poll(&p, 1, 20000) > 0 && read(ready, &c, 1) == 1 && c != '\n') line.push_back(c);
  close(ready);
  client_target_.clear();
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    if (absl::ConsumePrefix(&field, "workers=")) worker_endpoint_ = std::string(field);
    if (absl::ConsumePrefix(&field, "clients=")) client_target_ = std::string(field);
  }
  if (client_target_.empty()) ADD_FAILURE() << "coordinator did not start: " << coordinator_->Log();
}

ChildProcess& TestCluster::AddWorker(int slots, std::vector<std::string> extra_flags) {
  std::vector<std::string> argv = {BinPath("drover-worker"), "--coordinator", worker_endpoint_,
                                   "--slots", absl::StrCat(slots)};
  if (geteuid() == 0) argv.push_back("--allow-root");  // CI runs as root
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  workers_.push_back(std::make_unique<ChildProcess>(argv));
  return *workers_.back();
}

bool TestCluster::WaitForWorkers(int count) {
  return WaitUntil([&] {
    CommandResult r = Drover({"workers", "--json"});
    return r.exit_code == 0 && static_cast<int>(Lines(r.out).size()) >= count;
  });
}

CommandResult TestCluster::Drover(std::vector<std::string> args, const std::string& input) {
  if (!token_file_.empty()) args.insert(args.begin(), {"--token-file", token_file_});
  args.insert(args.begin(), {BinPath("drover"), "--coordinator", client_target_});
  return RunProgram(args, input);
}

EchoServer::EchoServer(std::vector<std::string> extra_flags) {
  std::vector<std::string> argv = {BinPath("drover-echo"), "--listen", "127.0.0.1:0", "--ready-fd", "3"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  int ready = -1;
  process_ = std::make_unique<ChildProcess>(argv, std::vector<std::string>{}, &ready);
  char c;
  pollfd p{ready, POLLIN, 0};
  while (poll(&p, 1, 20000) > 0 && read(ready, &c, 1) == 1 && c != '\n') address_.push_back(c);
  close(ready);
  if (address_.empty()) ADD_FAILURE() << "drover-echo did not start: " << process_->Log();
}

int ProcStatusValue(pid_t pid, const std::string& key) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    int value = 0;
    if (absl::ConsumePrefix(&rest, key + ":") && absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &value)) {
      return value;
    }
  }
  return -1;
}

int ThreadsNamed(pid_t pid, const std::string& name) {
  std::string dir_path = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(dir_path.c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat(dir_path, "/", entry->d_name, "/comm"));
    std::string line;
    if (std::getline(comm, line) && line == name) ++count;
  }
  closedir(dir);
  return count;
}

std::vector<pid_t> ProcessesWithEnv(const std::string& entry) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* d = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(atoi(d->d_name));
    if (pid <= 0 || pid == getpid()) continue;
    std::ifstream file(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    for (absl::string_view var : absl::StrSplit(text.str(), '\0')) {
      if (var == entry) {
        // A zombie has exited; only live processes count.
        std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
        std::string line;
        std::getline(stat, line);
        size_t paren = line.rfind(')');
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z') {
          pids.push_back(pid);
        }
        break;
      }
    }
  }
  closedir(proc);
  return pids;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::string UniqueTestMark() {
  return absl::StrCat("DROVER_TEST_MARK=", absl::Uniform<uint64_t>(absl::BitGen()));
}

int ChunksHeldBy(TestCluster& cluster, const std::string& name) {
  CommandResult r = cluster.Drover({"--json", "workers"});
  for (const std::string& line : Lines(r.out)) {
    if (line.find(absl::StrCat("\"name\":\"", name, "\"")) == std::string::npos) continue;
    size_t at = line.find("\"chunksHeld\":");
    return at == std::string::npos ? 0 : std::atoi(line.c_str() + at + 13);
  }
  return 0;
}

int TotalWorkerField(const std::string& workers_json, const std::string& field) {
  const std::string key = absl::StrCat("\"", field, "\":");
  int total = 0;
  for (const std::string& line : Lines(workers_json)) {
    size_t at = line.find(key);
    if (at != std::string::npos) total += std::atoi(line.c_str() + at + key.size());
  }
  return total;
}

int ChunksRequeuedFromLostWorkers(const std::string& coordinator_log) {
  int total = 0;
  const std::string tail = " chunk(s) go back to the queue";
  for (const std::string& line : Lines(coordinator_log)) {
    size_t end = line.find(tail);
    if (line.find(" lost: ") == std::string::npos || end == std::string::npos) continue;
    size_t start = line.rfind(' ', end - 1);
    total += std::atoi(line.c_str() + start + 1);
  }
  return total;
}

}  // namespace drover::testing
