// Keeps the process groups of running command tasks known to a small reaper
// process, which kills them all if the worker dies (even by SIGKILL), so a
// crashed worker leaves no task, grandchild or orphan behind.
#ifndef DROVER_WORKER_PROCESS_GROUPS_H_
#define DROVER_WORKER_PROCESS_GROUPS_H_

#include <sys/types.h>

#include "absl/status/status.h"

namespace drover {

// Start() once, before any thread starts (it forks). A task's child process
// registers its own group (WriteAddLine into fd(), between fork and exec, so
// the group is known before the task runs); Remove() is thread-safe (one
// atomic pipe write).
class ProcessGroups {
 public:
  ProcessGroups() = default;
  ~ProcessGroups();  // closes the pipe: the reaper kills what is left and exits
  ProcessGroups(const ProcessGroups&) = delete;
  ProcessGroups& operator=(const ProcessGroups&) = delete;

  // Forks the reaper. Errors: kInternal if pipe or fork fails. Without a
  // successful Start(), fd() is -1 and Remove does nothing (tasks are still killed by the
  // worker itself, just not after a crash).
  absl::Status Start();

  void Remove(pid_t group);
  // The pipe to the reaper (-1 before Start()).
  int fd() const { return pipe_; }

  // Writes the line that registers `group` into `fd`. Async-signal-safe (no
  // allocation): for a vfork child between fork and exec.
  static void WriteAddLine(int fd, pid_t group);

 private:
  int pipe_ = -1;
};

}  // namespace drover

#endif  // DROVER_WORKER_PROCESS_GROUPS_H_
