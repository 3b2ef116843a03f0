// Implements io_call.h.
#include "worker/io_call.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/backoff.h"

namespace drover {
namespace {

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

// "16 MiB", or the bytes when not a whole number of MiB.
std::string SizeText(uint64_t bytes) {
  return bytes % (1 << 20) == 0 ? absl::StrCat(bytes >> 20, " MiB") : absl::StrCat(bytes, " bytes");
}

// With --at-most-once: a call that ended so may have been carried out by the server.
bool OutcomeUnknown(grpc::StatusCode code) {
  return code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::UNKNOWN ||
         code == grpc::StatusCode::INTERNAL;
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

IoCall::IoCall(IoCallHost* host, std::shared_ptr<IoChunk> chunk, uint32_t offset,
               std::shared_ptr<const CallTarget> target, std::string request)
    : host_(host),
      chunk_(std::move(chunk)),
      offset_(offset),
      target_(std::move(target)),
      request_(std::move(request)),
      max_attempts_(target_->at_most_once ? 1 : 1 + chunk_->chunk().retries()) {}

IoCall::~IoCall() {
  unary_.reset();  // they live in the call's arena, which the context owns
  stream_.reset();
}

void IoCall::StartAttempt() {
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancelled_;
    if (!cancelled) {
      ++attempt_;
      waiting_ = false;
      responses_.clear();
      response_bytes_ = 0;
      unary_.reset();  // the previous attempt's call, before its context
      stream_.reset();
      context_ = std::make_unique<grpc::ClientContext>();
      if (target_->deadline != absl::InfiniteDuration()) {
        context_->set_deadline(absl::ToChronoTime(absl::Now() + target_->deadline));
        // A retry to a server that has answered before waits for it to be back
        // (within the deadline) instead of failing at once while gRPC's
        // reconnect backoff runs; a target never reached fails fast.
        context_->set_wait_for_ready(attempt_ > 1 && target_->answered.load());
      }
      // With --at-most-once there is one attempt, and it waits for the server
      // (within the deadline, if any): a call that never reached it was never made.
      if (target_->at_most_once) context_->set_wait_for_ready(true);
      for (const auto& [key, value] : target_->metadata) context_->AddMetadata(key, value);
      // So a server can tell a repeated call (at-least-once delivery) from a new one.
      context_->AddMetadata("drover-job", absl::StrCat(chunk_->chunk().job_id()));
      context_->AddMetadata("drover-task", absl::StrCat(chunk_->chunk().first_index() + offset_ + 1));
      context_->AddMetadata("drover-attempt", absl::StrCat(attempt_));
      attempt_started_ = absl::Now();
      if (attempt_ == 1) first_started_ = attempt_started_;
      grpc::GenericStub stub(target_->channel);
      if (!target_->codec->server_streaming()) {
        step_ = Step::kUnary;
        unary_ = stub.PrepareUnaryCall(context_.get(), target_->method, ToBuffer(request_), host_->queue());
      } else {
        step_ = Step::kStart;
        stream_ = stub.PrepareCall(context_.get(), target_->method, host_->queue());
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

void IoCall::StartAt(absl::Time when) {
  absl::MutexLock lock(&mu_);
  step_ = Step::kWait;
  paced_ = true;
  waiting_ = true;
  alarm_.Set(host_->queue(), absl::ToChronoTime(cancelled_ ? absl::Now() : when), this);
}

void IoCall::Proceed(bool ok) {
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
      if (response_bytes_ > target_->max_response_bytes && !too_large_) {
        too_large_ = true;
        absl::MutexLock lock(&mu_);
        context_->TryCancel();
      }
      stream_->Read(&response_, this);
      return;
    case Step::kFinish:
      if (too_large_) {
        status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               absl::StrCat("the responses passed ", SizeText(target_->max_response_bytes),
                                            " (--max-response); the call was cancelled"));
        max_attempts_ = attempt_;  // no retry: it would end the same way
      }
      AttemptEnded();
      return;
    case Step::kWait:
      if (paced_ && ok) {
        absl::Time wait_until;
        if (!host_->MayStartPaced(job_id(), chunk_->chunk().grpc().rate(), absl::Now(), &wait_until)) {
          return StartAt(wait_until);
        }
      }
      paced_ = false;
      StartAttempt();  // a cancelled alarm (ok false) finds cancelled_ set
      return;
    case Step::kDone:
      return;
  }
}

void IoCall::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (waiting_) {
    alarm_.Cancel();
  } else if (context_ != nullptr) {
    context_->TryCancel();
  }
}

void IoCall::Finish() {
  step_ = Step::kFinish;
  stream_->Finish(&status_, this);
}

void IoCall::AttemptEnded() {
  latency_ = absl::Now() - attempt_started_;
  if (status_.error_code() != grpc::StatusCode::UNAVAILABLE) target_->answered.store(true);
  if (status_.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
      absl::StrContains(status_.error_message(), "larger than max")) {
    // This side's own limit on a response: every attempt would end the same way.
    status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           absl::StrCat("the response passed ", SizeText(target_->max_response_bytes),
                                        " (--max-response; ", status_.error_message(), ")"));
    max_attempts_ = attempt_;
  }
  if (Retryable(status_.error_code()) && attempt_ < max_attempts_) {
    absl::MutexLock lock(&mu_);
    if (!cancelled_) {
      step_ = Step::kWait;
      waiting_ = true;
      alarm_.Set(host_->queue(), absl::ToChronoTime(absl::Now() + RetryBackoff(attempt_)), this);
      return;
    }
  }
  End();
}

void IoCall::End() {
  step_ = Step::kDone;
  v1::TaskInfo task;
  task.set_grpc_code(CodeName(status_.error_code()));
  task.set_grpc_message(status_.error_message());
  task.set_attempts(attempt_);
  task.set_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(latency_)));
  if (first_started_ != absl::Time()) task.set_started_unix_us(absl::ToUnixMicros(first_started_));
  if (attempt_ > 0) {
    task.set_total_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - first_started_)));
  }
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
    if (target_->at_most_once && OutcomeUnknown(status_.error_code())) {
      error = absl::StrCat("outcome unknown (--at-most-once: not made again): ", error);
    }
    if (attempt_ > 1) absl::StrAppend(&error, " (after ", attempt_, " attempts)");
  }
  if (chunk_->Record(offset_, std::move(output), std::move(error), std::move(task))) host_->ChunkFinished(chunk_);
  host_->CallEnded(this);
}

}  // namespace drover
