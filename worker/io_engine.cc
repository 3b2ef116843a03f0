// Implements io_engine.h: the threads polling one grpc::CompletionQueue, the
// calls alive per job (to cancel them), cancellation flags, and finished
// chunks waiting for the I/O thread. A call's steps are in io_call.cc, a
// chunk's assembly in io_chunk.cc, channels and per-job codecs in io_targets.cc.
#include "worker/io_engine.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/items.h"
#include "common/log.h"
#include "worker/http_driver.h"
#include "worker/io_call.h"
#include "worker/io_chunk.h"
#include "worker/job_flags.h"
#include "worker/io_targets.h"
#include "worker/start_spacing.h"

namespace drover {

class IoEngine::Impl : public IoCallHost {
 public:
  Impl(int threads, std::string worker_name, Wakeup* on_finished)
      : worker_name_(std::move(worker_name)),
        on_finished_(on_finished),
        http_([this](const std::shared_ptr<IoChunk>& chunk) { ChunkFinished(chunk); }) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Poll(); });
  }

  // Queues gRPC chunks for an engine thread, which starts their calls (so
  // gRPC's work stays on the engine threads, not the caller's); hands HTTP
  // chunks to the HTTP driver.
  void Push(std::vector<v1::Chunk> chunks);
  void CancelJob(uint64_t job_id);
  void DropAll();
  std::vector<v1::ChunkResult> TakeFinished(uint64_t* chunks, uint64_t* items) {
    absl::MutexLock lock(&mu_);
    *chunks = std::exchange(finished_chunks_, 0);
    *items = std::exchange(finished_items_, 0);
    return std::exchange(finished_, {});
  }
  uint32_t calls_in_flight() const {
    absl::MutexLock lock(&mu_);
    return static_cast<uint32_t>(live_count_) + http_.in_flight();
  }
  int threads() const { return static_cast<int>(threads_.size()); }
  void Shutdown();

  // IoCallHost, on engine threads.
  grpc::CompletionQueue* queue() override { return &queue_; }
  void CallEnded(IoCall* call) override;
  void ChunkFinished(const std::shared_ptr<IoChunk>& chunk) override;
  bool MayStartPaced(uint64_t job_id, double rate, absl::Time now, absl::Time* wait_until) override {
    absl::MutexLock lock(&mu_);
    return spacing_.MayStart(job_id, rate, now, wait_until);
  }

 private:
  void Poll();
  // On an engine thread: starts the calls of the chunks Push() queued.
  void StartQueued();
  // Starts a gRPC chunk's calls.
  void Start(v1::Chunk&& chunk_message, JobFlags::Flag flag);
  // With --rate: when each of `count` calls of the job may start (empty:
  // now), evenly spaced at this worker's share, after the job's calls so far.
  std::vector<absl::Time> PacedStarts(const IoChunk& chunk, size_t count) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Fires on the completion queue after Push() to run StartQueued().
  class Kick : public Tagged {
   public:
    explicit Kick(Impl* engine) : engine_(engine) {}
    void Proceed(bool) override { engine_->StartQueued(); }

   private:
    Impl* engine_;
  };

  const std::string worker_name_;
  Wakeup* const on_finished_;
  grpc::CompletionQueue queue_;
  std::vector<std::thread> threads_;
  Kick kick_{this};
  grpc::Alarm kick_alarm_;  // set only while kick_pending_, under mu_
  IoTargets targets_;       // its own lock
  HttpDriver http_;         // HTTP jobs' requests, on its own thread

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, absl::flat_hash_set<IoCall*>> live_ ABSL_GUARDED_BY(mu_);  // by job
  // Jobs with --rate: when the job's next call may start on this worker.
  absl::flat_hash_map<uint64_t, absl::Time> next_start_ ABSL_GUARDED_BY(mu_);
  StartSpacing spacing_ ABSL_GUARDED_BY(mu_);  // gRPC jobs' paced starts as they go
  JobFlags cancelled_ ABSL_GUARDED_BY(mu_);
  int64_t live_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::ChunkResult> finished_ ABSL_GUARDED_BY(mu_);
  uint64_t finished_chunks_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_items_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Chunks not started yet, each with its job's cancellation flag (taken at
  // Push, so a cancel that comes before the start reaches them).
  std::vector<std::pair<v1::Chunk, JobFlags::Flag>> queued_ ABSL_GUARDED_BY(mu_);
  bool kick_pending_ ABSL_GUARDED_BY(mu_) = false;
};

void IoEngine::Impl::Poll() {
  pthread_setname_np(pthread_self(), "drover-io");  // seen in top -H, /proc and the tests
  void* tag = nullptr;
  bool ok = false;
  while (queue_.Next(&tag, &ok)) static_cast<Tagged*>(tag)->Proceed(ok);
}

void IoEngine::Impl::Push(std::vector<v1::Chunk> chunks) {
  // HTTP chunks go straight to the driver, which has its own thread: no hop
  // through the completion queue (and gRPC's timer thread) per chunk.
  std::vector<std::pair<std::shared_ptr<IoChunk>, std::vector<absl::Time>>> http_chunks;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    for (v1::Chunk& chunk : chunks) {
      JobFlags::Flag flag = cancelled_.For(chunk.job_id());
      if (!chunk.grpc().has_http()) {
        queued_.emplace_back(std::move(chunk), std::move(flag));
        continue;
      }
      auto io_chunk = std::make_shared<IoChunk>(std::move(chunk), std::move(flag));
      std::vector<absl::Time> starts;
      if (io_chunk->item_count() > 0 && !io_chunk->cancelled()) starts = PacedStarts(*io_chunk, io_chunk->item_count());
      http_chunks.emplace_back(std::move(io_chunk), std::move(starts));
    }
    if (!queued_.empty() && !kick_pending_) {
      kick_pending_ = true;
      kick_alarm_.Set(&queue_, gpr_now(GPR_CLOCK_MONOTONIC), &kick_);
    }
  }
  for (auto& [chunk, starts] : http_chunks) {
    if (chunk->item_count() == 0 || chunk->cancelled()) {
      ChunkFinished(chunk);  // a cancelled job's chunk is dropped
    } else {
      http_.Start(chunk, starts);
    }
  }
}

void IoEngine::Impl::StartQueued() {
  // One thread at a time, in arrival order (a job's first chunk carries its
  // descriptors): kick_pending_ stays set until the queue is empty.
  while (true) {
    std::vector<std::pair<v1::Chunk, JobFlags::Flag>> chunks;
    {
      absl::MutexLock lock(&mu_);
      if (queued_.empty()) {
        kick_pending_ = false;
        return;
      }
      chunks.swap(queued_);
    }
    for (auto& [chunk, flag] : chunks) Start(std::move(chunk), std::move(flag));
  }
}

std::vector<absl::Time> IoEngine::Impl::PacedStarts(const IoChunk& chunk, size_t count) {
  // The job's calls start evenly spaced at this worker's share of its rate
  // (the latest chunk's, as the coordinator re-divides it), one after
  // another across chunks; a pause is never made up with a burst.
  std::vector<absl::Time> starts;
  const double rate = chunk.chunk().grpc().rate();
  if (rate <= 0) return starts;
  absl::Time& next = next_start_[chunk.chunk().job_id()];
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < count; ++i) {
    starts.push_back(std::max(next, now));
    next = starts.back() + absl::Seconds(1 / rate);
  }
  return starts;
}

void IoEngine::Impl::Start(v1::Chunk&& chunk_message, JobFlags::Flag flag) {
  std::shared_ptr<const CallTarget> target = targets_.For(chunk_message);
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
  }
  auto chunk = std::make_shared<IoChunk>(std::move(chunk_message), std::move(flag));
  const uint32_t count = chunk->item_count();
  if (count == 0 || chunk->cancelled()) {
    ChunkFinished(chunk);  // a cancelled job's chunk is dropped
    return;
  }
  std::vector<IoCall*> calls;
  std::vector<absl::Time> paced_starts;  // with --rate: when each call starts
  ChunkItems items(chunk->chunk());
  for (uint32_t i = 0; i < count; ++i) {
    absl::StatusOr<std::string> request =
        target->codec != nullptr ? target->codec->EncodeRequest(items.Get(i))
                                 : absl::StatusOr<std::string>(absl::InvalidArgumentError(target->error));
    if (!request.ok()) {
      if (chunk->Record(i, "", std::string(request.status().message()), v1::TaskInfo())) ChunkFinished(chunk);
      continue;
    }
    calls.push_back(new IoCall(this, chunk, i, target, *std::move(request)));
  }
  if (calls.empty()) return;  // every item failed to encode: the chunk is finished
  {
    absl::MutexLock lock(&mu_);
    auto& live = live_[chunk->chunk().job_id()];
    // Cancelled (or shut down) since the check above: the calls end at once.
    const bool dropped = shut_down_ || chunk->cancelled();
    for (IoCall* call : calls) {
      live.insert(call);
      if (dropped) call->Cancel();
    }
    live_count_ += static_cast<int64_t>(calls.size());
    if (!dropped) paced_starts = PacedStarts(*chunk, calls.size());
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    if (i < paced_starts.size()) {
      calls[i]->StartAt(paced_starts[i]);
    } else {
      calls[i]->StartAttempt();
    }
  }
}

void IoEngine::Impl::ChunkFinished(const std::shared_ptr<IoChunk>& chunk) {
  v1::ChunkResult result = chunk->ToResult(worker_name_);
  bool first;
  {
    absl::MutexLock lock(&mu_);
    // One wake-up per batch: the I/O thread takes everything that is waiting.
    first = finished_chunks_ == 0;
    ++finished_chunks_;
    finished_items_ += chunk->item_count();
    if (!chunk->cancelled()) finished_.push_back(std::move(result));
    // An HTTP job's pacing is forgotten once its next start is due (a gRPC
    // job's when its last call ends, in CallEnded).
    if (chunk->chunk().grpc().has_http()) {
      auto next = next_start_.find(chunk->chunk().job_id());
      if (next != next_start_.end() && next->second <= absl::Now()) next_start_.erase(next);
    }
  }
  if (first) on_finished_->Notify();
}

void IoEngine::Impl::CallEnded(IoCall* call) {
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(call->job_id());
    if (it != live_.end()) {
      it->second.erase(call);
      if (it->second.empty()) {
        live_.erase(it);
        // A job with no calls left forgets its pacing once its next start is due.
        auto next = next_start_.find(call->job_id());
        if (next != next_start_.end() && next->second <= absl::Now()) next_start_.erase(next);
      }
    }
    --live_count_;
  }
  delete call;
}

void IoEngine::Impl::CancelJob(uint64_t job_id) {
  http_.CancelJob(job_id);
  absl::MutexLock lock(&mu_);
  cancelled_.Cancel(job_id);
  next_start_.erase(job_id);
  auto it = live_.find(job_id);
  if (it == live_.end()) return;
  // Cancel() only flags the call and asks gRPC to cancel; it never waits.
  for (IoCall* call : it->second) call->Cancel();
}

void IoEngine::Impl::DropAll() {
  {
    absl::MutexLock lock(&mu_);
    // Every chunk held now is dropped: its flag stays set (so late results are
    // not reported) while the map starts afresh for the next registration.
    cancelled_.CancelAll();
    next_start_.clear();
    for (auto& [job_id, calls] : live_) {
      for (IoCall* call : calls) call->Cancel();
    }
    for (const auto& [chunk, flag] : queued_) {
      ++finished_chunks_;
      finished_items_ += ChunkItemCount(chunk);
    }
    queued_.clear();
  }
  http_.CancelAll();
  targets_.ForgetJobs();  // the coordinator sends descriptors again
}

void IoEngine::Impl::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  DropAll();
  http_.Shutdown();
  {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_count_ == 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ended), absl::Seconds(10))) {
      LogWarning(absl::StrCat(live_count_, " gRPC call(s) did not end after cancellation"));
    }
  }
  queue_.Shutdown();
  for (std::thread& thread : threads_) thread.join();
}

uint32_t ChunkItemCount(const v1::Chunk& chunk) { return ChunkItems(chunk).count(); }

IoEngine::IoEngine(int threads, std::string worker_name, Wakeup* on_finished)
    : impl_(std::make_unique<Impl>(threads, std::move(worker_name), on_finished)) {}
IoEngine::~IoEngine() { impl_->Shutdown(); }
void IoEngine::Push(std::vector<v1::Chunk> chunks) { impl_->Push(std::move(chunks)); }
void IoEngine::CancelJob(uint64_t job_id) { impl_->CancelJob(job_id); }
void IoEngine::DropAll() { impl_->DropAll(); }
std::vector<v1::ChunkResult> IoEngine::TakeFinished(uint64_t* chunks, uint64_t* items) {
  return impl_->TakeFinished(chunks, items);
}
uint32_t IoEngine::calls_in_flight() const { return impl_->calls_in_flight(); }
int IoEngine::threads() const { return impl_->threads(); }
void IoEngine::Shutdown() { impl_->Shutdown(); }

}  // namespace drover
