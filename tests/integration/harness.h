// Helpers for integration tests: start the real drover binaries as processes
// on loopback with free ports, run CLI commands and capture their output.
#ifndef DROVER_TESTS_INTEGRATION_HARNESS_H_
#define DROVER_TESTS_INTEGRATION_HARNESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace drover::testing {

std::string BinPath(const std::string& program);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs a program to completion with `input` on stdin and extra environment
// entries ("K=V"). A program still running after `timeout` is killed and the
// test fails: a hang is a bug.
CommandResult RunProgram(const std::vector<std::string>& argv, const std::string& input = "",
                         const std::vector<std::string>& extra_env = {},
                         absl::Duration timeout = absl::Seconds(120));

// Polls `condition` until it holds or `timeout` passes. Returns whether it held.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(30));

// Whether this build runs under AddressSanitizer (memory figures then mean little).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// A field of /proc/PID/status in kB (VmRSS, VmHWM), or -1.
int64_t ProcStatusKb(pid_t pid, absl::string_view field);

// A child process whose stdout and stderr go to a log file. Killed (SIGKILL)
// and reaped on destruction if still running.
class ChildProcess {
 public:
  // `ready_fd_out`, if given, receives the read end of a pipe whose write end
  // the child has as file descriptor 3.
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
               int* ready_fd_out = nullptr);
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  void Signal(int signal_number);
  // The wait status once exited within `timeout`, else nullopt.
  std::optional<int> Wait(absl::Duration timeout = absl::Seconds(30));
  bool Running();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// A coordinator on free loopback ports plus workers added on demand.
class TestCluster {
 public:
  // Listens on free ports, or on `worker_port`/`client_port` when given
  // (a coordinator restarted on the same ports).
  explicit TestCluster(std::vector<std::string> coordinator_flags = {}, int worker_port = 0,
                       int client_port = 0);
  // Kills the coordinator (SIGKILL) and starts it again with the same flags and ports.
  void RestartCoordinator();

  const std::string& client_target() const { return client_target_; }
  const std::string& worker_endpoint() const { return worker_endpoint_; }
  ChildProcess& coordinator() { return *coordinator_; }

  ChildProcess& AddWorker(int slots, std::vector<std::string> extra_flags = {});
  ChildProcess& worker(int i) { return *workers_.at(i); }
  // Waits until `count` workers are registered (via `drover workers --json`).
  bool WaitForWorkers(int count);

  // From now on Drover() passes --token-file FILE.
  void set_token_file(std::string file) { token_file_ = std::move(file); }

  // Runs `drover --coordinator TARGET [--token-file FILE] args...`.
  CommandResult Drover(std::vector<std::string> args, const std::string& input = "");

 private:
  void StartCoordinator();

  std::vector<std::string> coordinator_flags_;
  int worker_port_ = 0;
  int client_port_ = 0;
  std::unique_ptr<ChildProcess> coordinator_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
  std::string client_target_;
  std::string worker_endpoint_;
  std::string token_file_;
};

// drover-echo on a free loopback port (the gRPC service I/O jobs call).
class EchoServer {
 public:
  explicit EchoServer(std::vector<std::string> extra_flags = {});
  const std::string& address() const { return address_; }  // HOST:PORT
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
};

// Reads a line "key: N" of /proc/PID/status (e.g. "Threads"); -1 if absent.
int ProcStatusValue(pid_t pid, const std::string& key);
// Threads of process `pid` whose name (/proc/PID/task/TID/comm) is `name`.
int ThreadsNamed(pid_t pid, const std::string& name);

// Pids of live processes whose environment contains `entry` (e.g. "MARK=123").
std::vector<pid_t> ProcessesWithEnv(const std::string& entry);
// "DROVER_TEST_MARK=<random>": an environment entry that marks the processes
// of one test only (tests run beside each other, and beside the Slurm test).
std::string UniqueTestMark();

// Chunks held by the worker named `name`, from `drover --json workers` (0 if absent).
int ChunksHeldBy(TestCluster& cluster, const std::string& name);
// An integer field summed over the workers of `drover --json workers` output.
int TotalWorkerField(const std::string& workers_json, const std::string& field);
// Chunks that went back to the queue when workers were lost, summed over a
// coordinator log's "... lost: ...; N chunk(s) go back to the queue" lines.
int ChunksRequeuedFromLostWorkers(const std::string& coordinator_log);

// Splits text into lines (without the newlines).
std::vector<std::string> Lines(const std::string& text);

}  // namespace drover::testing

#endif  // DROVER_TESTS_INTEGRATION_HARNESS_H_
