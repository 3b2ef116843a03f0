// Keeps the process groups of running command tasks known to a small reaper
// process, which kills them all if the worker dies (even by SIGKILL), so a
// crashed worker leaves no task, grandchild or orphan behind.
#ifndef DROVER_WORKER_PROCESS_GROUPS_H_
#define DROVER_WORKER_PROCESS_GROUPS_H_

#include <sys/types.h>

#include "absl/status/status.h"

namespace drover {

// Start() once, before any thread starts (it forks). Add()/Remove() are
// thread-safe (each is one atomic pipe write).
class ProcessGroups {
 public:
  ProcessGroups() = default;
  ~ProcessGroups();  // closes the pipe: the reaper kills what is left and exits
  ProcessGroups(const ProcessGroups&) = delete;
  ProcessGroups& operator=(const ProcessGroups&) = delete;

  // Forks the reaper. Errors: kInternal if pipe or fork fails. Without a
  // successful Start(), Add/Remove do nothing (tasks are still killed by the
  // worker itself, just not after a crash).
  absl::Status Start();

  void Add(pid_t group);
  void Remove(pid_t group);
  // The pipe to the reaper (-1 before Start()), for a child to write "+PID\n"
  // itself between fork and exec.
  int fd() const { return pipe_; }

 private:
  int pipe_ = -1;
};

}  // namespace drover

#endif  // DROVER_WORKER_PROCESS_GROUPS_H_
