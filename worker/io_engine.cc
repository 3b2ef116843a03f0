// Implements io_engine.h. Each call is a small state machine driven by events
// from one grpc::CompletionQueue that the engine's threads poll: a unary call
// takes one event (Finish), a server-streaming call one per step (start,
// write, each read, finish); a retry waits on a grpc::Alarm in the same queue.
#include "worker/io_engine.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_codec.h"
#include "common/items.h"
#include "common/backoff.h"
#include "common/log.h"

namespace drover {
namespace {

// A server-streaming call whose responses pass this is cancelled and failed.
constexpr size_t kMaxResponseBytes = 16 << 20;
// Jobs (their codecs) and targets (their channels) remembered; past this many,
// jobs unused for kForgetTargetsAfter are forgotten.
constexpr size_t kMaxCachedTargets = 1024;
constexpr absl::Duration kForgetTargetsAfter = absl::Minutes(30);

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return bytes;
}

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK",        "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",      "UNIMPLEMENTED",  "INTERNAL",         "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// What every call of one job needs: constant once made, shared by its calls.
struct CallTarget {
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<const GrpcCodec> codec;  // null when `error` is set
  std::string error;                        // why no call can be made
  std::string method;
  std::vector<std::pair<std::string, std::string>> metadata;
  absl::Duration deadline = absl::InfiniteDuration();
};

// One chunk's calls report here; the last one hands the result to the engine.
struct ChunkState {
  explicit ChunkState(v1::Chunk&& chunk_in) : chunk(std::move(chunk_in)) {}
  const v1::Chunk chunk;
  std::shared_ptr<std::atomic<bool>> cancelled;
  absl::Mutex mu;
  std::vector<std::string> outputs ABSL_GUARDED_BY(mu);
  std::vector<std::string> errors ABSL_GUARDED_BY(mu);  // empty: the item succeeded
  std::vector<v1::TaskInfo> tasks ABSL_GUARDED_BY(mu);
  uint32_t remaining ABSL_GUARDED_BY(mu) = 0;
};

// Anything whose address is a completion-queue tag.
class Tagged {
 public:
  virtual ~Tagged() = default;
  virtual void Proceed(bool ok) = 0;
};

}  // namespace

class IoEngine::Impl {
 public:
  class Call;

  Impl(int threads, std::string worker_name, Wakeup* on_finished)
      : worker_name_(std::move(worker_name)), on_finished_(on_finished) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Poll(); });
  }

  // Queues the chunks for an engine thread, which starts their calls (so
  // gRPC's work stays on the engine threads, not the caller's).
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
    return static_cast<uint32_t>(live_count_);
  }
  int threads() const { return static_cast<int>(threads_.size()); }
  void Shutdown();

  // Called by a call (on an engine thread) when it has ended for good.
  void CallEnded(Call* call, uint64_t job_id);
  // Records item `offset`'s outcome; the chunk's last item finishes it.
  void RecordItem(const std::shared_ptr<ChunkState>& chunk, uint32_t offset, std::string output,
                  std::string error, v1::TaskInfo task);
  grpc::CompletionQueue* queue() { return &queue_; }

 private:
  void Poll();
  // On an engine thread: starts the calls of the chunks Push() queued.
  void StartQueued();
  void Start(v1::Chunk&& chunk_message);

  // Fires on the completion queue after Push() to run StartQueued().
  class Kick : public Tagged {
   public:
    explicit Kick(Impl* engine) : engine_(engine) {}
    void Proceed(bool ok) override { engine_->StartQueued(); }
   private:
    Impl* engine_;
  };
  using JobKey = std::pair<uint64_t, uint64_t>;  // (coordinator instance, job id)
  std::shared_ptr<const CallTarget> TargetFor(const v1::Chunk& chunk);
  std::shared_ptr<grpc::Channel> ChannelFor(const v1::GrpcSpec& spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishChunk(const std::shared_ptr<ChunkState>& chunk) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string worker_name_;
  Wakeup* const on_finished_;
  grpc::CompletionQueue queue_;
  std::vector<std::thread> threads_;
  Kick kick_{this};
  grpc::Alarm kick_alarm_;  // set only while kick_pending_, under mu_

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, absl::flat_hash_set<Call*>> live_ ABSL_GUARDED_BY(mu_);  // by job
  absl::flat_hash_map<uint64_t, std::shared_ptr<std::atomic<bool>>> cancelled_ ABSL_GUARDED_BY(mu_);
  int64_t live_count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
  struct CachedTarget {
    std::shared_ptr<const CallTarget> target;
    absl::Time last_used;
  };
  absl::flat_hash_map<JobKey, CachedTarget> targets_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ChunkResult> finished_ ABSL_GUARDED_BY(mu_);
  uint64_t finished_chunks_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t finished_items_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::Chunk> queued_ ABSL_GUARDED_BY(mu_);
  bool kick_pending_ ABSL_GUARDED_BY(mu_) = false;
};

// One item's call, through its attempts. Events arrive on engine threads one
// at a time (a call never has two operations outstanding), so the steps need
// no lock; `mu_` only orders Cancel() (any thread) against a new attempt.
class IoEngine::Impl::Call : public Tagged {
 public:
  Call(Impl* engine, std::shared_ptr<ChunkState> chunk, uint32_t offset,
       std::shared_ptr<const CallTarget> target, std::string request)
      : engine_(engine),
        chunk_(std::move(chunk)),
        offset_(offset),
        target_(std::move(target)),
        request_(std::move(request)),
        max_attempts_(1 + chunk_->chunk.retries()) {}

  uint64_t job_id() const { return chunk_->chunk.job_id(); }

  ~Call() override {
    unary_.reset();  // they live in the call's arena, which the context owns
    stream_.reset();
  }

  void StartAttempt() {
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
      if (!cancelled) {
        ++attempt_;
        in_backoff_ = false;
        responses_.clear();
        response_bytes_ = 0;
        unary_.reset();  // the previous attempt's call, before its context
        stream_.reset();
        context_ = std::make_unique<grpc::ClientContext>();
        if (target_->deadline != absl::InfiniteDuration()) {
          context_->set_deadline(absl::ToChronoTime(absl::Now() + target_->deadline));
        }
        for (const auto& [key, value] : target_->metadata) context_->AddMetadata(key, value);
        attempt_started_ = absl::Now();
        grpc::GenericStub stub(target_->channel);
        if (!target_->codec->server_streaming()) {
          step_ = Step::kUnary;
          unary_ = stub.PrepareUnaryCall(context_.get(), target_->method, ToBuffer(request_), engine_->queue());
        } else {
          step_ = Step::kStart;
          stream_ = stub.PrepareCall(context_.get(), target_->method, engine_->queue());
        }
      }
    }
    if (cancelled) {
      step_ = Step::kDone;
      status_ = grpc::Status(grpc::StatusCode::CANCELLED, "job cancelled");
      End();
      return;
    }
    // Starting the operation is the last use of `this` here: its completion
    // may end (and delete) the call on another engine thread at once. A
    // Cancel() before the start is kept by the context and applied then.
    if (step_ == Step::kUnary) {
      unary_->StartCall();
      unary_->Finish(&response_, &status_, this);
    } else {
      stream_->StartCall(this);
    }
  }

  // Runs on an engine thread for each event of this call.
  void Proceed(bool ok) override {
    switch (step_) {
      case Step::kUnary:
        if (status_.ok()) responses_.push_back(FromBuffer(response_));
        AttemptEnded();
        return;
      case Step::kStart:
        if (!ok) return Finish();
        step_ = Step::kWrite;
        stream_->WriteLast(ToBuffer(request_), grpc::WriteOptions(), this);
        return;
      case Step::kWrite:
        if (!ok) return Finish();
        step_ = Step::kRead;
        stream_->Read(&response_, this);
        return;
      case Step::kRead:
        if (!ok) return Finish();
        responses_.push_back(FromBuffer(response_));
        response_bytes_ += responses_.back().size();
        if (response_bytes_ > kMaxResponseBytes && !too_large_) {
          too_large_ = true;
          absl::MutexLock lock(&mu_);
          context_->TryCancel();
        }
        stream_->Read(&response_, this);
        return;
      case Step::kFinish:
        if (too_large_) {
          status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 absl::StrCat("the responses passed ", kMaxResponseBytes >> 20,
                                              " MiB; the call was cancelled"));
          max_attempts_ = attempt_;  // no retry: it would end the same way
        }
        AttemptEnded();
        return;
      case Step::kBackoff:
        StartAttempt();  // a cancelled alarm (ok false) finds cancelled_ set
        return;
      case Step::kDone:
        return;
    }
  }

  // Any thread: ends the call soon with CANCELLED (no retry).
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (in_backoff_) {
      alarm_.Cancel();
    } else if (context_ != nullptr) {
      context_->TryCancel();
    }
  }

 private:
  enum class Step { kUnary, kStart, kWrite, kRead, kFinish, kBackoff, kDone };

  void Finish() {
    step_ = Step::kFinish;
    stream_->Finish(&status_, this);
  }

  void AttemptEnded() {
    latency_ = absl::Now() - attempt_started_;
    if (Retryable(status_.error_code()) && attempt_ < max_attempts_) {
      absl::MutexLock lock(&mu_);
      if (!cancelled_) {
        step_ = Step::kBackoff;
        in_backoff_ = true;
        alarm_.Set(engine_->queue(), absl::ToChronoTime(absl::Now() + RetryBackoff(attempt_)), this);
        return;
      }
    }
    End();
  }

  // Reports the outcome and deletes the call.
  void End() {
    step_ = Step::kDone;
    v1::TaskInfo task;
    task.set_grpc_code(CodeName(status_.error_code()));
    task.set_grpc_message(status_.error_message());
    task.set_attempts(attempt_);
    task.set_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(latency_)));
    std::string output;
    std::string error;
    if (status_.ok()) {
      absl::StatusOr<std::string> decoded = target_->codec->DecodeResponses(responses_);
      if (decoded.ok()) {
        output = *std::move(decoded);
      } else {
        error = std::string(decoded.status().message());
      }
    } else {
      error = absl::StrCat(CodeName(status_.error_code()), ": ", status_.error_message());
      if (attempt_ > 1) absl::StrAppend(&error, " (after ", attempt_, " attempts)");
    }
    engine_->RecordItem(chunk_, offset_, std::move(output), std::move(error), std::move(task));
    engine_->CallEnded(this, job_id());
  }

  Impl* const engine_;
  const std::shared_ptr<ChunkState> chunk_;
  const uint32_t offset_;
  const std::shared_ptr<const CallTarget> target_;
  const std::string request_;
  uint32_t max_attempts_;

  Step step_ = Step::kDone;
  uint32_t attempt_ = 0;
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
  bool in_backoff_ ABSL_GUARDED_BY(mu_) = false;
};

void IoEngine::Impl::Poll() {
  pthread_setname_np(pthread_self(), "drover-io");  // seen in top -H, /proc and the tests
  void* tag = nullptr;
  bool ok = false;
  while (queue_.Next(&tag, &ok)) static_cast<Tagged*>(tag)->Proceed(ok);
}

std::shared_ptr<grpc::Channel> IoEngine::Impl::ChannelFor(const v1::GrpcSpec& spec) {
  std::string key = absl::StrCat(spec.target(), spec.tls() ? "\1" : "\0", spec.ca_pem());
  auto it = channels_.find(key);
  if (it != channels_.end()) return it->second;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (spec.tls()) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = spec.ca_pem();
    credentials = grpc::SslCredentials(options);
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(static_cast<int>(kMaxResponseBytes));
  // drover retries calls itself (with its own counts and backoff); gRPC's
  // retry layer would only add per-call work (measured: see docs/PERFORMANCE.md).
  arguments.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto channel = grpc::CreateCustomChannel(spec.target(), credentials, arguments);
  if (channels_.size() >= kMaxCachedTargets) channels_.clear();
  channels_.emplace(key, channel);
  return channel;
}

std::shared_ptr<const CallTarget> IoEngine::Impl::TargetFor(const v1::Chunk& chunk) {
  const v1::GrpcSpec& spec = chunk.grpc();
  const JobKey key{chunk.coordinator_instance(), chunk.job_id()};
  absl::MutexLock lock(&mu_);
  // Descriptors come with a job's first chunk to this worker only.
  if (spec.descriptor_set().empty() && !spec.raw()) {
    auto it = targets_.find(key);
    if (it != targets_.end()) {
      it->second.last_used = absl::Now();
      return it->second.target;
    }
  }
  auto target = std::make_shared<CallTarget>();
  target->method = spec.method();
  target->channel = ChannelFor(spec);
  absl::StatusOr<std::shared_ptr<const GrpcCodec>> codec = GrpcCodec::Create(spec);
  if (spec.descriptor_set().empty() && !spec.raw()) {
    target->error = "this worker never received the job's descriptors (a protocol error)";
  } else if (codec.ok()) {
    target->codec = *std::move(codec);
  } else {
    target->error = std::string(codec.status().message());
  }
  for (const std::string& header : spec.metadata()) {
    size_t colon = header.find(':');
    if (colon == std::string::npos) continue;  // the client checked the form
    target->metadata.emplace_back(absl::AsciiStrToLower(absl::StripAsciiWhitespace(header.substr(0, colon))),
                                  std::string(absl::StripAsciiWhitespace(header.substr(colon + 1))));
  }
  if (spec.deadline_ms() > 0) target->deadline = absl::Milliseconds(spec.deadline_ms());
  if (targets_.size() >= kMaxCachedTargets) {
    // Forget jobs unused for a long time (a running job, even a paced one,
    // comes back sooner; the map may grow past the mark otherwise).
    const absl::Time stale = absl::Now() - kForgetTargetsAfter;
    absl::erase_if(targets_, [stale](const auto& entry) { return entry.second.last_used < stale; });
  }
  targets_[key] = CachedTarget{target, absl::Now()};
  return target;
}

void IoEngine::Impl::Push(std::vector<v1::Chunk> chunks) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  for (v1::Chunk& chunk : chunks) queued_.push_back(std::move(chunk));
  if (!kick_pending_) {
    kick_pending_ = true;
    kick_alarm_.Set(&queue_, gpr_now(GPR_CLOCK_MONOTONIC), &kick_);
  }
}

void IoEngine::Impl::StartQueued() {
  // One thread at a time, in arrival order (a job's first chunk carries its
  // descriptors): kick_pending_ stays set until the queue is empty.
  while (true) {
    std::vector<v1::Chunk> chunks;
    {
      absl::MutexLock lock(&mu_);
      if (queued_.empty()) {
        kick_pending_ = false;
        return;
      }
      chunks.swap(queued_);
    }
    for (v1::Chunk& chunk : chunks) Start(std::move(chunk));
  }
}

void IoEngine::Impl::Start(v1::Chunk&& chunk_message) {
  std::shared_ptr<const CallTarget> target = TargetFor(chunk_message);
  auto chunk = std::make_shared<ChunkState>(std::move(chunk_message));
  const uint32_t count = ChunkItemCount(chunk->chunk);
  std::vector<Call*> calls;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    auto& flag = cancelled_[chunk->chunk.job_id()];
    if (flag == nullptr) flag = std::make_shared<std::atomic<bool>>(false);
    chunk->cancelled = flag;
  }
  {
    absl::MutexLock lock(&chunk->mu);
    chunk->outputs.resize(count);
    chunk->errors.resize(count);
    chunk->tasks.resize(count);
    chunk->remaining = count;
  }
  if (count == 0 || chunk->cancelled->load()) {
    FinishChunk(chunk);  // a cancelled job's chunk is dropped
    return;
  }
  ChunkItems items(chunk->chunk);
  for (uint32_t i = 0; i < count; ++i) {
    absl::StatusOr<std::string> request =
        target->codec != nullptr ? target->codec->EncodeRequest(items.Get(i))
                                 : absl::StatusOr<std::string>(absl::InvalidArgumentError(target->error));
    if (!request.ok()) {
      RecordItem(chunk, i, "", std::string(request.status().message()), v1::TaskInfo());
      continue;
    }
    calls.push_back(new Call(this, chunk, i, target, *std::move(request)));
  }
  if (calls.empty()) return;  // every item failed to encode: the chunk is finished
  {
    absl::MutexLock lock(&mu_);
    auto& live = live_[chunk->chunk.job_id()];
    // Cancelled (or shut down) since the check above: the calls end at once.
    const bool dropped = shut_down_ || chunk->cancelled->load();
    for (Call* call : calls) {
      live.insert(call);
      if (dropped) call->Cancel();
    }
    live_count_ += static_cast<int64_t>(calls.size());
  }
  for (Call* call : calls) call->StartAttempt();
}

void IoEngine::Impl::RecordItem(const std::shared_ptr<ChunkState>& chunk, uint32_t offset, std::string output,
                                std::string error, v1::TaskInfo task) {
  bool last;
  {
    absl::MutexLock lock(&chunk->mu);
    chunk->outputs[offset] = std::move(output);
    chunk->errors[offset] = std::move(error);
    chunk->tasks[offset] = std::move(task);
    last = --chunk->remaining == 0;
  }
  if (last) FinishChunk(chunk);
}

void IoEngine::Impl::FinishChunk(const std::shared_ptr<ChunkState>& chunk) {
  const v1::Chunk& in = chunk->chunk;
  v1::ChunkResult result;
  result.set_job_id(in.job_id());
  result.set_chunk_index(in.chunk_index());
  result.set_attempt(in.attempt());
  result.set_coordinator_instance(in.coordinator_instance());
  v1::ChunkOutputs* out = result.mutable_outputs();
  out->set_first_index(in.first_index());
  out->set_worker(worker_name_);
  {
    absl::MutexLock lock(&chunk->mu);
    out->set_item_count(static_cast<uint32_t>(chunk->outputs.size()));
    for (size_t i = 0; i < chunk->outputs.size(); ++i) {
      out->mutable_outputs()->append(chunk->outputs[i]);
      out->add_output_sizes(static_cast<uint32_t>(chunk->outputs[i].size()));
      if (!chunk->errors[i].empty()) {
        v1::ItemError* error = out->add_errors();
        error->set_offset(static_cast<uint32_t>(i));
        error->set_message(chunk->errors[i]);
      }
      *out->add_tasks() = std::move(chunk->tasks[i]);
    }
  }
  bool first;
  {
    absl::MutexLock lock(&mu_);
    // One wake-up per batch: the I/O thread takes everything that is waiting.
    first = finished_chunks_ == 0;
    ++finished_chunks_;
    finished_items_ += out->item_count();
    if (!chunk->cancelled->load()) finished_.push_back(std::move(result));
  }
  if (first) on_finished_->Notify();
}

void IoEngine::Impl::CallEnded(Call* call, uint64_t job_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(job_id);
    if (it != live_.end()) {
      it->second.erase(call);
      if (it->second.empty()) live_.erase(it);
    }
    --live_count_;
  }
  delete call;
}

void IoEngine::Impl::CancelJob(uint64_t job_id) {
  absl::MutexLock lock(&mu_);
  auto& flag = cancelled_[job_id];
  if (flag == nullptr) flag = std::make_shared<std::atomic<bool>>(false);
  flag->store(true);
  auto it = live_.find(job_id);
  if (it == live_.end()) return;
  // Cancel() only flags the call and asks gRPC to cancel; it never waits.
  for (Call* call : it->second) call->Cancel();
}

void IoEngine::Impl::DropAll() {
  absl::MutexLock lock(&mu_);
  // Every chunk held now is dropped: its flag stays set (so late results are
  // not reported) while the map starts afresh for the next registration.
  for (auto& [job_id, flag] : cancelled_) flag->store(true);
  for (auto& [job_id, calls] : live_) {
    for (Call* call : calls) call->Cancel();
  }
  cancelled_.clear();
  targets_.clear();  // the coordinator sends descriptors again
  for (const v1::Chunk& chunk : queued_) {
    ++finished_chunks_;
    finished_items_ += ChunkItemCount(chunk);
  }
  queued_.clear();
}

void IoEngine::Impl::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  DropAll();
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
