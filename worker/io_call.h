// One gRPC call of the I/O engine (one item of a chunk), through its attempts:
// a small state machine driven by events from the engine's completion queue.
// A unary call takes one event (Finish), a server-streaming call one per step
// (start, write, each read, finish); a retry waits on a grpc::Alarm in the same
// queue. Internal to the I/O engine (io_engine.cc).
#ifndef DROVER_WORKER_IO_CALL_H_
#define DROVER_WORKER_IO_CALL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/io_chunk.h"
#include "worker/io_targets.h"

namespace drover {

// Anything whose address is a completion-queue tag.
class Tagged {
 public:
  virtual ~Tagged() = default;
  virtual void Proceed(bool ok) = 0;
};

class IoCall;

// What a call needs from its engine. Called on engine threads.
class IoCallHost {
 public:
  virtual ~IoCallHost() = default;
  virtual grpc::CompletionQueue* queue() = 0;
  // The call has ended for good and recorded its item; the host deletes it.
  virtual void CallEnded(IoCall* call) = 0;
  // The call's item was the last of its chunk: the chunk is finished.
  virtual void ChunkFinished(const std::shared_ptr<IoChunk>& chunk) = 0;
  // A paced start (StartAt) of a call of `job_id` at `rate` is due at `now`:
  // true if it may go; false if it waits until `*wait_until` (StartSpacing).
  virtual bool MayStartPaced(uint64_t job_id, double rate, absl::Time now, absl::Time* wait_until) = 0;
};

// Events arrive on engine threads one at a time (a call never has two
// operations outstanding), so the steps need no lock; `mu_` only orders
// Cancel() (any thread) against a new attempt. Deleted by its host after
// CallEnded(); starting an operation is always the last use of `this` in a
// step (its completion may end the call on another thread at once).
class IoCall : public Tagged {
 public:
  IoCall(IoCallHost* host, std::shared_ptr<IoChunk> chunk, uint32_t offset, std::shared_ptr<const CallTarget> target,
         std::string request);
  ~IoCall() override;

  uint64_t job_id() const { return chunk_->chunk().job_id(); }
  // Starts the next attempt (or ends the call if it was cancelled).
  void StartAttempt();
  // StartAttempt() at `when` (pacing a job with --rate), or later if the
  // host says the job's previous start was too recent.
  void StartAt(absl::Time when);
  // Runs on an engine thread for each event of this call.
  void Proceed(bool ok) override;
  // Any thread: ends the call soon with CANCELLED (no retry).
  void Cancel();

 private:
  // kWait: a retry's backoff or a paced start, on alarm_.
  enum class Step { kUnary, kStart, kWrite, kRead, kFinish, kWait, kDone };

  void Finish();
  void AttemptEnded();
  // Records the outcome in the chunk and tells the host.
  void End();

  IoCallHost* const host_;
  const std::shared_ptr<IoChunk> chunk_;
  const uint32_t offset_;
  const std::shared_ptr<const CallTarget> target_;
  const std::string request_;
  uint32_t max_attempts_;

  Step step_ = Step::kDone;
  uint32_t attempt_ = 0;
  absl::Time first_started_;
  absl::Time attempt_started_;
  absl::Duration latency_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream_;
  grpc::ByteBuffer response_;
  std::vector<std::string> responses_;
  size_t response_bytes_ = 0;
  bool too_large_ = false;
  grpc::Status status_;
  grpc::Alarm alarm_;

  absl::Mutex mu_;
  std::unique_ptr<grpc::ClientContext> context_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // on alarm_
  bool paced_ = false;  // the wait on alarm_ is a paced first start, not a retry's backoff
};

}  // namespace drover

#endif  // DROVER_WORKER_IO_CALL_H_
