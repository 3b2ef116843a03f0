// The worker's CPU slots: a queue of chunks and N threads that run them.
#ifndef DROVER_WORKER_SLOT_POOL_H_
#define DROVER_WORKER_SLOT_POOL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/wakeup.h"
#include "drover/v1/control.pb.h"
#include "worker/chunk_runner.h"
#include "worker/job_flags.h"

namespace drover {

// Thread-safe. In the worker, Push/CancelJob/DropAll/TakeFinished are called by
// the I/O thread and the slot threads are internal. `on_finished` is notified
// whenever finished work is waiting to be taken. A command chunk needing N
// cpus occupies N slots: with S slots at most S/N such chunks run at once.
class SlotPool {
 public:
  // `context` (registry, process groups, worker name) must outlive the pool;
  // each slot thread runs chunks with its own slot number.
  SlotPool(int slots, RunContext context, Wakeup* on_finished);
  ~SlotPool();  // Shutdown(absl::InfiniteDuration()) if not done yet

  int slots() const { return static_cast<int>(threads_.size()); }

  void Push(std::vector<v1::Chunk> chunks);

  // Drops the job's queued chunks and stops its running ones at the next item
  // boundary. Their results are never reported (they still count as finished).
  void CancelJob(uint64_t job_id);

  // CancelJob for every job (used when the coordinator is lost).
  void DropAll();

  // Takes back up to `max_chunks` queued (never started) chunks of the jobs
  // in `job_ids` (empty: any job), latest queued first, for work stealing.
  // They count as finished (see TakeFinished) and will never run here.
  std::vector<v1::ChunkRef> Steal(uint32_t max_chunks, const std::vector<uint64_t>& job_ids);

  // Moves out the results finished since the last call; `*finished` gets how
  // many chunks finished or were dropped since then.
  std::vector<v1::ChunkResult> TakeFinished(uint64_t* finished);

  // Moves out the chunks that started on a slot since the last call (for
  // the coordinator's task listings).
  std::vector<v1::ChunkStart> TakeStarted();

  // CPU slots running a chunk now.
  int busy_slots() const;

  // Stops taking chunks, drops queued ones, and waits up to `grace` for running
  // kernels. Returns false if some kernel was still running (its thread is
  // then left detached; the process should exit).
  bool Shutdown(absl::Duration grace);

 private:
  struct Queued {
    v1::Chunk chunk;
    std::shared_ptr<std::atomic<bool>> cancelled;
  };

  void SlotLoop(int slot);
  bool HasWorkOrClosing() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closing_ || (!queue_.empty() && free_cpus_ >= CpusOf(queue_.front().chunk));
  }
  int CpusOf(const v1::Chunk& chunk) const;
  bool AllExited() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exited_ == total_slots_; }

  // Constant after construction.
  const RunContext context_;
  Wakeup* const on_finished_;
  const int total_slots_;
  std::vector<std::thread> threads_;

  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  JobFlags flags_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ChunkResult> finished_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ChunkStart> started_ ABSL_GUARDED_BY(mu_);
  uint64_t finished_count_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int free_cpus_ ABSL_GUARDED_BY(mu_);
  int exited_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ = false;  // touched only by Shutdown()'s caller
};

}  // namespace drover

#endif  // DROVER_WORKER_SLOT_POOL_H_
