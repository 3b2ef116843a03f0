// drover-worker's engine: registers with a coordinator over a ZeroMQ DEALER,
// takes chunks with credit-based flow control, runs them on CPU slots and
// sends back results. See docs/PROTOCOL.md for the messages.
#ifndef DROVER_WORKER_WORKER_H_
#define DROVER_WORKER_WORKER_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/wakeup.h"
#include "worker/kernel_registry.h"
#include "worker/process_groups.h"

namespace drover {

struct WorkerOptions {
  std::string coordinator;  // ZeroMQ endpoint, e.g. tcp://127.0.0.1:7341
  int slots = 0;            // CPU slots; 0 means the number of cores
  std::string name;         // shown in `drover workers`; empty means HOST-PID
  std::vector<std::string> labels;  // "key=value" or "key"; jobs select workers with --require
  // CURVE (all three, Z85, or none): this worker's key pair and the coordinator's public key.
  std::string curve_public_key;
  std::string curve_secret_key;
  std::string coordinator_public_key;
  // The I/O engine for gRPC jobs: calls it may hold at once, and the threads
  // that drive them (fixed, however many calls are in flight).
  uint32_t io_capacity = 4096;
  int io_threads = 1;
  // The Python interpreter for Python calls (one process per slot, started at
  // a slot's first call); empty: this worker runs none.
  std::string python;
  // When set, the file's mtime is renewed about every second while the worker
  // is registered: a liveness/readiness probe can check that it is recent.
  std::string health_file;
  // How long the coordinator may stay silent before the worker drops its work
  // and registers again.
  absl::Duration coordinator_timeout = absl::Seconds(10);
  // How long Stop() waits for running kernels before giving up on them.
  absl::Duration stop_grace = absl::Seconds(5);
};

// Run() is called on one thread, which becomes the worker's I/O thread (it
// alone owns the ZeroMQ socket). Stop() may be called from any thread or from
// a signal handler.
class Worker {
 public:
  // `registry` must outlive the worker and not change while it runs;
  // `groups` (may be null) keeps command tasks' process groups known to a reaper.
  Worker(WorkerOptions options, const KernelRegistry* registry, ProcessGroups* groups = nullptr);

  // Runs until the coordinator says Shutdown, Stop() is called, a drain
  // (Drain() or the coordinator's Drain) completes, or the coordinator refuses
  // the worker. Waits (re-sending its Hello) while the
  // coordinator is not up yet.
  // Returns OK on a requested stop or shutdown; kFailedPrecondition when
  // refused (message says why); kInternal if running kernels did not stop
  // within stop_grace (the caller should exit the process at once).
  absl::Status Run();

  void Stop();
  // Finishes the chunks held, takes nothing new, then exits (Run() returns OK).
  // Thread-safe and async-signal-safe, like Stop().
  void Drain();

 private:
  WorkerOptions options_;
  const KernelRegistry* registry_;
  ProcessGroups* groups_;
  Wakeup wakeup_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> drain_requested_{false};
};

}  // namespace drover

#endif  // DROVER_WORKER_WORKER_H_
