// The worker's protocol state as plain state plus events, with no socket,
// thread or clock of its own: registration (Hello until Welcome, again after a
// Reregister or a silent coordinator), the two credit ledgers (CPU chunks and
// I/O calls), draining, work stealing and heartbeats. What it sends goes
// through a CoordinatorLink; the work itself is done by a WorkRunner (the slot
// pool and the I/O engine in drover-worker, fakes in tests). See
// docs/PROTOCOL.md for the messages.
#ifndef DROVER_WORKER_WORKER_CORE_H_
#define DROVER_WORKER_WORKER_CORE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "drover/v1/control.pb.h"

namespace drover {

// Where the core's messages go. Called on the core's thread; must not block.
class CoordinatorLink {
 public:
  virtual ~CoordinatorLink() = default;
  virtual void Send(v1::WorkerMessage& message) = 0;
};

// What runs the chunks. Called on the core's thread.
class WorkRunner {
 public:
  virtual ~WorkRunner() = default;
  virtual void Push(std::vector<v1::Chunk> cpu_chunks, std::vector<v1::Chunk> io_chunks) = 0;
  virtual void CancelJob(uint64_t job_id) = 0;
  // Drops everything held; nothing of it is reported.
  virtual void DropAll() = 0;
  // Takes back up to `max_chunks` unstarted CPU chunks of `job_ids` (empty: any).
  virtual std::vector<v1::ChunkRef> Steal(uint32_t max_chunks, const std::vector<uint64_t>& job_ids) = 0;
  // Results finished since the last call; `*cpu_chunks` and `*io_chunks` get
  // how many chunks of each kind finished or were dropped, `*io_items` the
  // calls of the I/O ones.
  virtual std::vector<v1::ChunkResult> TakeFinished(uint64_t* cpu_chunks, uint64_t* io_chunks,
                                                    uint64_t* io_items) = 0;
  // CPU chunks that started on a slot since the last call.
  virtual std::vector<v1::ChunkStart> TakeStarted() = 0;
  virtual v1::WorkerLoad Load() = 0;
};

struct WorkerIdentity {
  std::string name;
  std::string host;
  uint32_t pid = 0;
  uint32_t slots = 1;
  uint32_t io_capacity = 0;
  bool python = false;  // runs Python calls
  std::vector<std::string> kernels;
  std::vector<std::string> labels;
};

// Not thread-safe: owned by the worker's I/O thread. Time is passed in.
class WorkerCore {
 public:
  // The most CPU chunks granted per slot beyond the one it runs: a ceiling;
  // the coordinator decides how many it sends.
  static constexpr uint64_t kMaxPrefetchPerSlot = 1024;
  // Hello is sent again until a Welcome comes: after 0.5 s, doubling up to 5 s.
  static constexpr absl::Duration kFirstHelloRetry = absl::Milliseconds(500);
  static constexpr absl::Duration kMaxHelloRetry = absl::Seconds(5);
  // How long a task killed by a stop signal waits for the worker's own stop.
  static constexpr absl::Duration kStopSignalGrace = absl::Seconds(1);

  // `link` and `runner` must outlive the core. `coordinator_timeout`: silence
  // after which held work is dropped and the worker registers again.
  WorkerCore(WorkerIdentity identity, absl::Duration coordinator_timeout, CoordinatorLink* link,
             WorkRunner* runner);

  // Sends the first Hello.
  void Start(absl::Time now);
  // A message from the coordinator. Returns kFailedPrecondition when the
  // coordinator refused this worker (the worker should stop).
  absl::Status OnMessage(const v1::CoordinatorMessage& message, absl::Time now);
  // Sends finished results and the credit there is room for. Call after
  // anything may have finished, and at least every second: a result whose task
  // died of SIGTERM, SIGINT or SIGHUP while the worker is not draining waits
  // kStopSignalGrace for the worker's own stop (then its chunk goes back)
  // before it is sent as a failure.
  void SendResultsAndCredit(absl::Time now);
  // Hello retries, heartbeats, and giving up on a silent coordinator.
  void OnTick(absl::Time now);
  // Takes nothing new from now on; exits once what is held is finished.
  void Drain(absl::Time now);
  // Says Goodbye if registered (the worker is stopping).
  void SayGoodbye(const std::string& reason);

  bool registered() const { return registered_; }
  bool draining() const { return draining_; }
  // The coordinator answered this worker's drain (it is there to take the last results).
  bool drain_acknowledged() const { return drain_acknowledged_; }
  // The coordinator said Shutdown.
  bool shut_down() const { return shut_down_; }
  // Draining, nothing held, and no Assign can still be on its way (the
  // coordinator answered the drain, or it is gone or silent).
  bool DrainDone(absl::Time now) const;
  // Chunks received and not finished.
  uint64_t held() const { return received_ - finished_; }
  absl::Duration heartbeat_interval() const { return heartbeat_interval_; }

 private:
  // A command chunk with a task killed by SIGTERM, SIGINT or SIGHUP: while the
  // worker drains, that is the worker being stopped, not the task failing.
  static bool StoppedWithTheWorker(const v1::ChunkResult& result);
  void SendHello(absl::Time now);
  // Adds the runner's newly started chunks to started_ and drops those whose
  // result is in `finished`.
  void NoteStarted(const std::vector<v1::ChunkResult>& finished);
  void Send(v1::WorkerMessage& message);
  // Forgets the registration and everything held, and says Hello again.
  void StartOver(absl::Time now);
  uint64_t CpuCreditToGrant() const;
  uint64_t IoCreditToGrant(bool sending_anyway) const;

  // Constant after construction.
  const WorkerIdentity identity_;
  const absl::Duration configured_coordinator_timeout_;
  CoordinatorLink* const link_;
  WorkRunner* const runner_;

  bool registered_ = false;
  bool shut_down_ = false;
  bool draining_ = false;
  bool drain_acknowledged_ = false;
  absl::Duration heartbeat_interval_ = absl::Seconds(1);
  absl::Duration coordinator_timeout_;
  absl::Time last_hello_ = absl::InfinitePast();
  absl::Duration hello_retry_ = kFirstHelloRetry;
  absl::Time last_heard_ = absl::InfinitePast();
  absl::Time last_sent_ = absl::InfinitePast();
  absl::Time now_ = absl::InfinitePast();  // of the latest event
  // CPU chunks started and not yet reported (ChunkStart), sent with the
  // next Ready or Heartbeat unless their result goes first.
  std::vector<v1::ChunkStart> started_;
  struct AwaitingStop {
    absl::Time until;
    v1::ChunkResult result;
  };
  std::deque<AwaitingStop> awaiting_stop_;  // oldest first
  uint64_t received_ = 0;  // chunks received
  uint64_t received_at_registration_ = 0;
  uint64_t finished_ = 0;  // chunks finished, dropped or given back
  // The CPU ledger, in chunks.
  uint64_t cpu_received_ = 0;
  uint64_t cpu_finished_ = 0;
  uint64_t outstanding_credit_ = 0;  // granted and not yet received
  // The I/O engine's credit is counted in calls (items), not chunks.
  uint64_t io_received_items_ = 0;
  uint64_t io_finished_items_ = 0;
  uint64_t io_outstanding_credit_ = 0;
};

}  // namespace drover

#endif  // DROVER_WORKER_WORKER_CORE_H_
