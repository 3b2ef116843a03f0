// Implements job.h.
#include "coordinator/job.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_codec.h"
#include "common/items.h"
#include "common/log.h"

namespace drover {
namespace {

constexpr uint32_t kMaxChunkSize = 1u << 24;

bool IsFinished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

bool IsLegalMove(v1::JobState from, v1::JobState to) {
  switch (from) {
    case v1::JOB_STATE_QUEUED:
      return to == v1::JOB_STATE_RUNNING || IsFinished(to);
    case v1::JOB_STATE_RUNNING:
      return IsFinished(to);
    default:
      return false;
  }
}

// A worker's report must describe exactly the chunk it was given.
absl::Status CheckOutputs(const v1::ChunkOutputs& out, uint64_t first_index, uint32_t count,
                          bool reduces) {
  if (out.first_index() != first_index || out.item_count() != count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result covers items ", out.first_index(), "+", out.item_count(), ", expected ",
        first_index, "+", count));
  }
  if (out.tasks_size() != 0 && static_cast<uint32_t>(out.tasks_size()) != count) {
    return absl::InvalidArgumentError("task details do not match the item count");
  }
  if (!reduces) {
    if (out.output_sizes_size() != 0 && static_cast<uint32_t>(out.output_sizes_size()) != count) {
      return absl::InvalidArgumentError("output_sizes does not match the item count");
    }
    uint64_t total = 0;
    for (uint32_t size : out.output_sizes()) total += size;
    if (total != out.outputs().size()) {
      return absl::InvalidArgumentError("output sizes do not add up to the output bytes");
    }
  }
  for (const v1::ItemError& error : out.errors()) {
    if (error.offset() >= count) return absl::InvalidArgumentError("error offset out of range");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  const bool command = spec.has_command();
  const int kinds = (spec.kernel().empty() ? 0 : 1) + (command ? 1 : 0) + (spec.has_grpc() ? 1 : 0);
  if (kinds != 1) {
    return absl::InvalidArgumentError(kinds == 0 ? "the job names no kernel, command or gRPC method"
                                                 : "a job runs one of a kernel, a command or gRPC calls");
  }
  if (spec.has_grpc()) {
    const v1::GrpcSpec& grpc = spec.grpc();
    if (grpc.target().empty()) return absl::InvalidArgumentError("the gRPC job has no target");
    if (absl::StatusOr<std::pair<std::string, std::string>> method = SplitMethodPath(grpc.method()); !method.ok()) {
      return method.status();
    }
    if (!grpc.raw() && grpc.descriptor_set().empty()) {
      return absl::InvalidArgumentError("a JSON gRPC job needs the method's descriptors (or use raw items)");
    }
    if (spec.reduce() != v1::REDUCE_NONE) {
      return absl::InvalidArgumentError("--reduce works with kernels, not gRPC calls");
    }
    if (!(grpc.rate() >= 0)) return absl::InvalidArgumentError("--rate must be a positive number");
  }
  if (command && spec.command().argv_size() == 0) {
    return absl::InvalidArgumentError("the command is empty");
  }
  if (command && spec.reduce() != v1::REDUCE_NONE) {
    return absl::InvalidArgumentError("--reduce works with kernels, not commands");
  }
  switch (spec.items().source_case()) {
    case v1::ItemSource::kRange:
      if (spec.items().range().start() > spec.items().range().end()) {
        return absl::InvalidArgumentError("range start is greater than its end");
      }
      if (spec.items().range().step() < 0) return absl::InvalidArgumentError("negative range step");
      // Chunk bounds are computed as start + count*step: keep them inside 64 bits.
      if (static_cast<__int128>(spec.items().range().end()) + std::max<int64_t>(spec.items().range().step(), 1) >
          static_cast<__int128>(INT64_MAX)) {
        return absl::InvalidArgumentError("the range reaches too close to the largest 64-bit integer");
      }
      break;
    case v1::ItemSource::kInline:
      break;
    case v1::ItemSource::SOURCE_NOT_SET:
      return absl::InvalidArgumentError("the job has no items (give items, a range or a file)");
  }
  if (spec.chunk_size() > kMaxChunkSize) {
    return absl::InvalidArgumentError(absl::StrCat("chunk size ", spec.chunk_size(),
                                                   " is above the maximum ", kMaxChunkSize));
  }
  if (!v1::Reduce_IsValid(spec.reduce())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown reduction ", spec.reduce()));
  }
  return absl::OkStatus();
}

Job::Job(uint64_t id, v1::JobSpec spec, absl::Time now)
    : id_(id),
      spec_(std::move(spec)),
      chunk_size_(std::max<uint32_t>(spec_.chunk_size(), 1)),
      total_items_(ItemCount(spec_.items())),
      total_chunks_(ChunkCount(total_items_, chunk_size_)),
      submitted_(now),
      reducer_(spec_.reduce()) {
  if (total_chunks_ == 0) SetState(v1::JOB_STATE_SUCCEEDED, now);
}

bool Job::finished() const { return IsFinished(state_); }

void Job::SetState(v1::JobState next, absl::Time now) {
  if (next == state_) return;
  if (!IsLegalMove(state_, next)) {
    LogError(absl::StrCat("job ", id_, ": illegal state change ", v1::JobState_Name(state_),
                          " -> ", v1::JobState_Name(next), " ignored"));
    return;
  }
  state_ = next;
  if (finished()) finished_at_ = now;
}

uint64_t Job::StreamWindowBase() const {
  if (results_.empty()) return done_below_;
  return std::min(results_.begin()->first, done_below_);
}

bool Job::WindowAllows(uint64_t chunk_index) const {
  if (!spec_.stream_results()) return true;
  return chunk_index < StreamWindowBase() + kStreamWindowChunks && result_bytes_ < kStreamWindowBytes;
}

std::optional<v1::Chunk> Job::NextChunk(absl::Time now) {
  if (finished()) return std::nullopt;
  uint64_t index;
  while (true) {
    if (!requeued_.empty()) {
      index = requeued_.front();
      requeued_.pop_front();
    } else if (next_new_chunk_ < total_chunks_ && WindowAllows(next_new_chunk_)) {
      index = next_new_chunk_++;
    } else {
      return std::nullopt;
    }
    if (!IsDone(index)) break;  // done already (restored from the journal)
  }
  uint32_t attempt = 1;
  if (auto it = attempts_.find(index); it != attempts_.end()) attempt = ++it->second;
  in_flight_[index] = attempt;
  if (state_ == v1::JOB_STATE_QUEUED) SetState(v1::JOB_STATE_RUNNING, now);

  v1::Chunk chunk;
  chunk.set_job_id(id_);
  chunk.set_chunk_index(index);
  chunk.set_attempt(attempt);
  if (spec_.has_command()) {
    *chunk.mutable_command() = spec_.command();
  } else if (spec_.has_grpc()) {
    *chunk.mutable_grpc() = spec_.grpc();
  } else {
    chunk.set_kernel(spec_.kernel());
  }
  chunk.set_reduce(spec_.reduce());
  chunk.set_retries(spec_.retries());
  chunk.set_kernel_timeout_ms(spec_.kernel_timeout_ms());
  FillChunkItems(spec_.items(), BoundsOfChunk(total_items_, chunk_size_, index), &chunk);
  return chunk;
}

std::optional<v1::ChunkResult> Job::Requeue(uint64_t chunk_index, uint32_t attempt) {
  if (finished()) return std::nullopt;
  auto it = in_flight_.find(chunk_index);
  if (it == in_flight_.end() || it->second != attempt) return std::nullopt;  // done, or sent again
  if (attempt >= max_attempts()) {
    ChunkBounds bounds = BoundsOfChunk(total_items_, chunk_size_, chunk_index);
    v1::ChunkResult failed;
    failed.set_job_id(id_);
    failed.set_chunk_index(chunk_index);
    failed.set_attempt(attempt);
    failed.mutable_outputs()->set_first_index(bounds.first_index);
    failed.mutable_outputs()->set_item_count(bounds.count);
    std::string why = absl::StrCat("its worker was lost ", attempt,
                                   " times while running it (does the task crash workers?)");
    for (uint32_t i = 0; i < bounds.count; ++i) {
      v1::ItemError* error = failed.mutable_outputs()->add_errors();
      error->set_offset(i);
      error->set_message(why);
    }
    if (spec_.reduce() != v1::REDUCE_NONE) failed.mutable_outputs()->mutable_partial();
    return failed;
  }
  in_flight_.erase(it);
  attempts_.try_emplace(chunk_index, attempt);
  requeued_.push_back(chunk_index);
  return std::nullopt;
}

void Job::MarkDone(uint64_t chunk_index) {
  ++done_chunks_;
  if (chunk_index != done_below_) {
    done_above_.insert(chunk_index);
    return;
  }
  ++done_below_;
  while (!done_above_.empty() && *done_above_.begin() == done_below_) {
    done_above_.erase(done_above_.begin());
    ++done_below_;
  }
}

Job::ResultOutcome Job::OnResult(v1::ChunkResult&& result, absl::Time now) {
  uint64_t index = result.chunk_index();
  if (finished() || IsDone(index)) return ResultOutcome::kDuplicate;
  if (index >= total_chunks_) return ResultOutcome::kMalformed;
  ChunkBounds bounds = BoundsOfChunk(total_items_, chunk_size_, index);
  bool reduces = spec_.reduce() != v1::REDUCE_NONE;
  if (absl::Status ok = CheckOutputs(result.outputs(), bounds.first_index, bounds.count, reduces);
      !ok.ok()) {
    LogWarning(absl::StrCat("job ", id_, " chunk ", index, ": dropped a malformed result: ",
                            ok.message()));
    return ResultOutcome::kMalformed;
  }
  if (state_ == v1::JOB_STATE_QUEUED) SetState(v1::JOB_STATE_RUNNING, now);  // (replayed results)
  in_flight_.erase(index);
  attempts_.erase(index);
  // A re-queued copy that has not gone out again is simply skipped.
  if (!requeued_.empty()) std::erase(requeued_, index);
  MarkDone(index);
  done_items_ += bounds.count;
  failed_items_ += static_cast<uint64_t>(result.outputs().errors_size());

  v1::ChunkOutputs outputs = std::move(*result.mutable_outputs());
  if (reduces) {
    (void)reducer_.Merge(outputs.partial());  // a failed reduction shows in Status()
    outputs.clear_partial();
  }
  result_bytes_ += outputs.outputs().size();
  results_.emplace(index, std::move(outputs));
  if (!spec_.stream_results()) completion_order_.push_back(index);

  if (done_chunks_ == total_chunks_) {
    SetState(failed_items_ == 0 ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_FAILED, now);
  }
  return ResultOutcome::kRecorded;
}

absl::Status Job::Cancel(absl::Time now) {
  if (finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", id_, " has already finished (", v1::JobState_Name(state_), ")"));
  }
  SetState(v1::JOB_STATE_CANCELLED, now);
  requeued_.clear();
  in_flight_.clear();
  return absl::OkStatus();
}

v1::JobStatus Job::Status() const {
  v1::JobStatus status;
  status.set_job_id(id_);
  status.set_name(spec_.name());
  status.set_kernel(spec_.has_command() ? absl::StrCat("$ ", spec_.command().argv(0))
                    : spec_.has_grpc()  ? absl::StrCat("grpc ", spec_.grpc().method())
                                        : spec_.kernel());
  status.set_state(state_);
  status.set_total_items(total_items_);
  status.set_done_items(done_items_);
  status.set_failed_items(failed_items_);
  status.set_total_chunks(total_chunks_);
  status.set_reduce(spec_.reduce());
  if (spec_.reduce() != v1::REDUCE_NONE) *status.mutable_reduction() = reducer_.ToPartial();
  status.set_submitted_unix_ms(absl::ToUnixMillis(submitted_));
  if (finished()) status.set_finished_unix_ms(absl::ToUnixMillis(finished_at_));
  return status;
}

absl::StatusOr<v1::ChunkOutputs> Job::TaskResult(uint64_t index) const {
  if (index >= total_items_) {
    return absl::OutOfRangeError(absl::StrCat("job ", id_, " has tasks 1 to ", total_items_));
  }
  if (spec_.stream_results()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id_, "'s results were streamed to `drover run` and not kept (use drover submit)"));
  }
  auto it = results_.find(index / chunk_size_);
  if (it == results_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("task ", index + 1, " of job ", id_, " has not finished"));
  }
  return it->second;
}

absl::Status Job::AttachReader() {
  if (!spec_.stream_results()) return absl::OkStatus();
  if (reader_attached_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id_, " streams its results to the client that submitted it; they are not kept"));
  }
  reader_attached_ = true;
  return absl::OkStatus();
}

void Job::PullResults(ResultCursor* cursor, uint64_t max_items, v1::ResultBatch* batch,
                      bool* end) {
  uint64_t items = 0;
  uint64_t bytes = 0;
  const bool stream = spec_.stream_results();
  while (items < max_items && bytes < kMaxBatchBytes) {
    std::map<uint64_t, v1::ChunkOutputs>::iterator it;
    if (cursor->ordered) {
      it = results_.find(cursor->next_chunk);
    } else if (stream) {
      it = results_.begin();
    } else {
      it = cursor->next_position < completion_order_.size()
               ? results_.find(completion_order_[cursor->next_position])
               : results_.end();
    }
    if (it == results_.end()) break;
    items += std::max<uint32_t>(it->second.item_count(), 1);
    bytes += it->second.outputs().size();
    if (cursor->ordered) ++cursor->next_chunk;
    if (!cursor->ordered && !stream) ++cursor->next_position;
    if (stream) {
      result_bytes_ -= it->second.outputs().size();
      *batch->add_chunks() = std::move(it->second);
      results_.erase(it);
    } else {
      *batch->add_chunks() = it->second;
    }
  }
  if (!finished()) {
    *end = false;
  } else if (cursor->ordered) {
    *end = cursor->next_chunk >= total_chunks_ || !results_.contains(cursor->next_chunk);
  } else {
    *end = stream ? results_.empty() : cursor->next_position >= completion_order_.size();
  }
}

}  // namespace drover
