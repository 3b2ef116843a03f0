// `drover run --local`: a private coordinator and N worker processes on
// loopback, started as child processes and always stopped again.
#ifndef DROVER_CLIENT_LOCAL_CLUSTER_H_
#define DROVER_CLIENT_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace drover {

struct LocalClusterOptions {
  int workers = 1;                    // worker processes
  int slots_per_worker = 1;           // like multiprocessing.Pool: one process per core
  std::string bin_dir;                // where drover-coordinator and drover-worker are
  std::vector<std::string> plugins;   // passed to every worker as --plugin
  // Called (from a monitor thread) when a child exits while the cluster runs.
  std::function<void(const std::string& what)> on_child_exit;
};

// The children share one process group and die with the process that
// started them (PR_SET_PDEATHSIG), so a crash of the parent leaves no orphans.
// They talk over an ipc:// and a unix: socket inside a fresh 0700 directory,
// and clients need a random token as well: other users cannot reach them.
// Their logs go to files in a private temporary directory, removed by Stop()
// unless something went wrong.
// Start() and Stop() belong to one thread; client_target() is thread-safe.
class LocalCluster {
 public:
  // Starts the coordinator (sockets in the private directory) and the workers.
  // Errors: kNotFound (binaries missing), kUnavailable (a child failed to start).
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(LocalClusterOptions options);
  ~LocalCluster();  // Stop() if not done yet

  const std::string& client_target() const { return client_target_; }
  const std::string& token() const { return token_; }
  const std::string& log_dir() const { return log_dir_; }

  // SIGINTs the group (workers and coordinator stop at once, running tasks are
  // killed), SIGKILLs whatever is left after a few seconds, reaps every
  // child and removes the log directory (kept if `keep_logs`).
  void Stop(bool keep_logs);

 private:
  LocalCluster() = default;
  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_file,
                              int keep_fd);
  void Monitor();
  bool AllExited() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exited_ == spawned_; }

  LocalClusterOptions options_;
  std::string log_dir_;
  std::string client_target_;
  std::string token_;
  pid_t group_ = 0;
  std::thread monitor_;
  bool stopped_ = false;

  absl::Mutex mu_;
  int spawned_ ABSL_GUARDED_BY(mu_) = 0;
  int exited_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<pid_t, std::string>> children_ ABSL_GUARDED_BY(mu_);  // pid, role
};

}  // namespace drover

#endif  // DROVER_CLIENT_LOCAL_CLUSTER_H_
