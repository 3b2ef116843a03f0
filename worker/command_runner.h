// Runs one command task as a child process (fork + execve) in its own process group,
// capturing stdout and stderr (up to a cap each, without deadlock however much
// it prints), with a timeout, and leaving nothing of it running afterwards.
#ifndef DROVER_WORKER_COMMAND_RUNNER_H_
#define DROVER_WORKER_COMMAND_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "worker/process_groups.h"

namespace drover {

struct CommandTask {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::vector<std::string> env;   // "K=V" entries added to the worker's environment
  std::string cwd;                // empty: the worker's directory
  absl::Duration timeout = absl::InfiniteDuration();
  absl::Duration kill_grace = absl::Seconds(2);  // SIGTERM, then SIGKILL after this
  uint64_t max_output_bytes = 1 << 20;           // per stream
};

struct CommandOutcome {
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  int exit_code = -1;      // -1 when killed by a signal or not started
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  absl::Duration duration;
  uint64_t max_rss_kb = 0;
  std::string start_error;  // non-empty when the program could not be started
};

// Thread-safe; called from slot threads. The task's process group is
// registered with `groups` while it runs, so it is killed even if the worker
// dies. When `cancelled` turns true the group is killed at once. After the
// task's main process exits, whatever is left of its group (background
// grandchildren) is killed too.
CommandOutcome RunCommand(const CommandTask& task, const std::atomic<bool>& cancelled,
                          ProcessGroups* groups);

// The path execve() needs for `name` (a PATH search when it has no '/'), or
// "" with `*error` set (ENOENT or EACCES). Call it before fork: a vfork child
// may only make async-signal-safe calls.
std::string FindProgram(const std::string& name, int* error);

// "exit status 3", "killed by signal 11 (Segmentation fault)", "timed out after 1s", ...
// or empty for a success (exit status 0).
std::string DescribeFailure(const CommandOutcome& outcome, const CommandTask& task);

}  // namespace drover

#endif  // DROVER_WORKER_COMMAND_RUNNER_H_
