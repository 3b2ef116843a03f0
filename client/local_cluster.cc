// Implements local_cluster.h with fork/exec, a ready pipe and waitpid.
#include "client/local_cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/owned_dirs.h"
#include "common/token.h"

namespace drover {
namespace {

// Keeps DIR's logs for the user: removes the token, the sockets and the owner file.
void KeepLocalDirLogs(const std::string& dir) {
  std::error_code ignored;
  for (const char* name : {"token", "workers", "client", kOwnerFileName}) {
    std::filesystem::remove(std::filesystem::path(dir) / name, ignored);
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return "stopped";
}

// Reads one line from `fd` within `timeout`. Errors: kUnavailable.
absl::StatusOr<std::string> ReadLine(int fd, absl::Duration timeout) {
  std::string line;
  absl::Time deadline = absl::Now() + timeout;
  while (!absl::EndsWith(line, "\n")) {
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) <= 0) {
      return absl::UnavailableError("the coordinator did not report its addresses in time");
    }
    char buffer[256];
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return absl::UnavailableError("the coordinator exited before it was ready");
    line.append(buffer, static_cast<size_t>(n));
  }
  return std::string(absl::StripTrailingAsciiWhitespace(line));
}

}  // namespace

absl::StatusOr<pid_t> LocalCluster::Spawn(const std::vector<std::string>& argv,
                                          const std::string& log_file, int keep_fd) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log < 0) return absl::UnavailableError(absl::StrCat("cannot create ", log_file));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return absl::UnavailableError("fork failed");
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    if (setpgid(0, group_) != 0) _exit(127);  // outside the group it could not be stopped
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    if (keep_fd >= 0) {
      int flags = fcntl(keep_fd, F_GETFD);
      fcntl(keep_fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log);
  if (group_ == 0) group_ = pid;
  setpgid(pid, group_);  // also here, so the group exists whichever runs first
  absl::MutexLock lock(&mu_);
  ++spawned_;
  children_.emplace_back(pid, std::filesystem::path(log_file).stem().string());
  return pid;
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(LocalClusterOptions options) {
  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  cluster->options_ = std::move(options);
  const std::string coordinator_bin = cluster->options_.bin_dir + "/drover-coordinator";
  const std::string worker_bin = cluster->options_.bin_dir + "/drover-worker";
  for (const std::string& bin : {coordinator_bin, worker_bin}) {
    if (access(bin.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("cannot find ", bin,
                                              " (set DROVER_BIN_DIR to the folder of drover's programs)"));
    }
  }
  const char* tmp_env = getenv("TMPDIR");
  const std::string tmp = tmp_env && *tmp_env ? tmp_env : "/tmp";
  SweepStaleDirs(tmp, "drover-local-");  // of earlier runs killed before they could clean up
  std::string dir_template = tmp + "/drover-local-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot create a directory like ", dir_template));
  }
  cluster->log_dir_ = dir_template;  // mkdtemp makes it mode 0700
  if (absl::Status claimed = ClaimDir(cluster->log_dir_); !claimed.ok()) return claimed;

  // Private: sockets in the 0700 directory, and a token clients must show.
  cluster->token_ = NewToken();
  const std::string token_file = cluster->log_dir_ + "/token";
  {
    int fd = open(token_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, cluster->token_.data(), cluster->token_.size()) !=
                      static_cast<ssize_t>(cluster->token_.size())) {
      if (fd >= 0) close(fd);
      return absl::UnavailableError(absl::StrCat("cannot write ", token_file));
    }
    close(fd);
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return absl::UnavailableError("pipe failed");
  absl::StatusOr<pid_t> coordinator = cluster->Spawn(
      {coordinator_bin, "--listen-workers", absl::StrCat("ipc://", cluster->log_dir_, "/workers"),
       "--listen-clients", absl::StrCat("unix:", cluster->log_dir_, "/client"), "--token-file", token_file,
       "--ready-fd", absl::StrCat(ready[1])},
      cluster->log_dir_ + "/coordinator.log", ready[1]);
  close(ready[1]);
  if (!coordinator.ok()) {
    close(ready[0]);
    return coordinator.status();
  }
  cluster->monitor_ = std::thread([c = cluster.get()] { c->Monitor(); });
  absl::StatusOr<std::string> line = ReadLine(ready[0], absl::Seconds(15));
  close(ready[0]);
  if (!line.ok()) {
    cluster->Stop(/*keep_logs=*/true);
    return absl::UnavailableError(absl::StrCat(line.status().message(), "; see ",
                                               cluster->log_dir_, "/coordinator.log"));
  }
  std::string workers_endpoint;
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "workers=")) workers_endpoint = std::string(field);
    if (absl::ConsumePrefix(&field, "clients=")) cluster->client_target_ = std::string(field);
  }
  for (int i = 0; i < cluster->options_.workers; ++i) {
    std::vector<std::string> argv = {worker_bin, "--coordinator", workers_endpoint, "--slots",
                                     absl::StrCat(cluster->options_.slots_per_worker), "--name",
                                     absl::StrCat("local-", i + 1)};
    if (geteuid() == 0) argv.push_back("--allow-root");  // whoever runs drover as root already is
    for (const std::string& plugin : cluster->options_.plugins) {
      argv.push_back("--plugin");
      argv.push_back(plugin);
    }
    absl::StatusOr<pid_t> worker =
        cluster->Spawn(argv, absl::StrCat(cluster->log_dir_, "/worker-", i + 1, ".log"), -1);
    if (!worker.ok()) {
      cluster->Stop(/*keep_logs=*/true);
      return worker.status();
    }
  }
  return cluster;
}

void LocalCluster::Monitor() {
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);  // drover's only children are the cluster's
    if (pid < 0) {
      if (errno == EINTR) continue;
      absl::MutexLock lock(&mu_);
      if (stopping_ && AllExited()) return;
      if (errno == ECHILD) {
        // No child in the group yet (or any more): wait for a spawn or the stop.
        mu_.AwaitWithTimeout(absl::Condition(
                                 +[](LocalCluster* c) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                   return c->stopping_ || c->spawned_ > c->exited_;
                                 },
                                 this),
                             absl::Milliseconds(100));
        if (stopping_ && AllExited()) return;
      }
      continue;
    }
    std::string role;
    bool report;
    {
      absl::MutexLock lock(&mu_);
      ++exited_;
      for (const auto& [child, name] : children_) {
        if (child == pid) role = name;
      }
      report = !stopping_;
    }
    if (report && options_.on_child_exit) {
      options_.on_child_exit(absl::StrCat("local ", role, " (pid ", pid, ") ", DescribeExit(status),
                                          "; its log is in ", log_dir_));
    }
  }
}

void LocalCluster::Stop(bool keep_logs) {
  if (stopped_) return;
  stopped_ = true;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (group_ != 0) kill(-group_, SIGINT);  // stop now (SIGTERM would let workers drain)
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &LocalCluster::AllExited), absl::Seconds(3))) {
      if (group_ != 0) kill(-group_, SIGKILL);
      for (const auto& [pid, role] : children_) kill(pid, SIGKILL);
      if (!mu_.AwaitWithTimeout(absl::Condition(this, &LocalCluster::AllExited), absl::Seconds(5))) {
        std::fprintf(stderr, "drover: some local processes did not exit after SIGKILL\n");
        stopping_ = true;
        exited_ = spawned_;  // lets the monitor thread end
      }
    }
  }
  if (monitor_.joinable()) monitor_.join();
  if (keep_logs && !log_dir_.empty()) KeepLocalDirLogs(log_dir_);
  if (!keep_logs && !log_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(log_dir_, ignored);
  }
}

LocalCluster::~LocalCluster() { Stop(/*keep_logs=*/false); }

}  // namespace drover
