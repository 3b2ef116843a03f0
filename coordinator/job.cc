// Implements job.h.
#include "coordinator/job.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/grpc_codec.h"
#include "common/status_ranges.h"
#include "common/items.h"
#include "common/job_state.h"
#include "common/log.h"
#include "coordinator/submit_intake.h"

namespace drover {
namespace {

constexpr uint32_t kMaxChunkSize = 1u << 24;
constexpr int32_t kMaxPriority = 1000000;

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

absl::Status ValidateHttpRequest(const v1::HttpRequest& http) {
  constexpr size_t kMaxMethodBytes = 32;
  if (http.method().size() > kMaxMethodBytes ||
      !std::all_of(http.method().begin(), http.method().end(), [](char c) { return absl::ascii_isupper(c); })) {
    return absl::InvalidArgumentError(absl::StrCat("http.method '",
                                                   absl::CHexEscape(http.method().substr(0, kMaxMethodBytes)),
                                                   "' is not an HTTP method (GET, POST...)"));
  }
  if (!http.url().empty() && !absl::StartsWith(http.url(), "http://") && !absl::StartsWith(http.url(), "https://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http.url '", absl::CHexEscape(http.url().substr(0, 100)), "' is not an http:// or https:// URL"));
  }
  if (absl::StatusOr<StatusRanges> ranges = ParseStatusRanges(http.accept_status()); !ranges.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("http.accept_status: ", ranges.status().message()));
  }
  return absl::OkStatus();
}

// What `drover jobs` shows an HTTP job runs: "http", its method and URL if given.
std::string HttpRuns(const v1::HttpRequest& http) {
  std::string runs = "http";
  for (const std::string* part : {&http.method(), &http.url()}) {
    if (!part->empty()) absl::StrAppend(&runs, " ", *part);
  }
  return runs;
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  const bool command = spec.has_command();
  const int kinds = (spec.kernel().empty() ? 0 : 1) + (command ? 1 : 0) + (spec.has_grpc() ? 1 : 0) +
                    (spec.has_python() ? 1 : 0);
  if (kinds != 1) {
    return absl::InvalidArgumentError(kinds == 0
                                          ? "the job names no kernel, command, gRPC method or Python function"
                                          : "a job runs one of a kernel, a command, gRPC calls or Python calls");
  }
  if (spec.has_python()) {
    if (spec.python().function().empty()) return absl::InvalidArgumentError("the Python job has no function");
    if (spec.items().has_range()) {
      return absl::InvalidArgumentError("a Python job's items are pickled arguments, not a range");
    }
    if (spec.reduce() != v1::REDUCE_NONE) {
      return absl::InvalidArgumentError("reduce works with kernel jobs, not Python calls");
    }
  }
  if (spec.has_grpc()) {
    const v1::GrpcSpec& grpc = spec.grpc();
    if (grpc.has_http()) {
      if (absl::Status http = ValidateHttpRequest(grpc.http()); !http.ok()) return http;
    } else {
      if (grpc.target().empty()) return absl::InvalidArgumentError("the gRPC job has no target");
      if (absl::StatusOr<std::pair<std::string, std::string>> method = SplitMethodPath(grpc.method());
          !method.ok()) {
        return method.status();
      }
      if (!grpc.raw() && grpc.descriptor_set().empty()) {
        return absl::InvalidArgumentError("a JSON gRPC job needs the method's descriptors (or use raw items)");
      }
    }
    if (spec.reduce() != v1::REDUCE_NONE) {
      return absl::InvalidArgumentError("reduce works with kernel jobs, not gRPC calls");
    }
    if (!(grpc.rate() >= 0) || grpc.rate() > 1e9) {
      return absl::InvalidArgumentError("grpc.rate must be a positive number of calls per second, at most 1e9");
    }
    if (grpc.max_response_bytes() > kMaxGrpcResponseLimit) {
      return absl::InvalidArgumentError(
          absl::StrCat("grpc.max_response_bytes is at most ", kMaxGrpcResponseLimit >> 20, " MiB"));
    }
    if (!grpc.lb_policy().empty() && grpc.lb_policy() != "round_robin" && grpc.lb_policy() != "pick_first") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown load-balancing policy '", grpc.lb_policy(), "' (pick_first or round_robin)"));
    }
  }
  if (command && spec.command().argv_size() == 0) {
    return absl::InvalidArgumentError("the command is empty");
  }
  if (command && spec.items().has_inline_()) {
    // An item becomes a command-line argument, which ends at its first NUL:
    // refuse rather than run the task on half of it.
    const auto& items = spec.items().inline_().items();
    for (int i = 0; i < items.size(); ++i) {
      if (items[i].find('\0') != std::string::npos) {
        return ItemWithNulError(i + 1);
      }
    }
  }
  if (command && spec.reduce() != v1::REDUCE_NONE) {
    return absl::InvalidArgumentError("reduce works with kernel jobs, not commands");
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
    case v1::ItemSource::kSpooled:
      break;
    case v1::ItemSource::SOURCE_NOT_SET:
      return absl::InvalidArgumentError("the job has no items (give items, a range or a file)");
  }
  if (spec.chunk_size() > kMaxChunkSize) {
    return absl::InvalidArgumentError(absl::StrCat("chunk size ", spec.chunk_size(),
                                                   " is above the maximum ", kMaxChunkSize));
  }
  if (spec.priority() > kMaxPriority || spec.priority() < -kMaxPriority) {
    return absl::InvalidArgumentError(absl::StrCat("priority ", spec.priority(), " is outside -", kMaxPriority,
                                                   "..", kMaxPriority));
  }
  if (!v1::Reduce_IsValid(spec.reduce())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown reduction ", spec.reduce()));
  }
  return absl::OkStatus();
}

Job::Job(uint64_t id, v1::JobSpec spec, absl::Time now, ResultStore* store, uint64_t stream_window_bytes)
    : id_(id),
      spec_(std::move(spec)),
      total_items_(ItemCount(spec_.items())),
      submitted_(now),
      stream_window_bytes_(stream_window_bytes),
      sizer_(spec_.chunk_size()),
      reducer_(spec_.reduce()),
      store_(store) {
  if (total_items_ == 0) SetState(v1::JOB_STATE_SUCCEEDED, now);
}

bool Job::finished() const { return IsFinished(state_); }

uint32_t Job::CpusPerChunk(uint32_t slots) const {
  if (!spec_.has_command()) return 1;
  return std::clamp<uint32_t>(spec_.command().cpus(), 1, std::max<uint32_t>(slots, 1));
}

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

static_assert(ChunkSizer::kMaxJobReserve * 4 <= Job::kStreamWindowChunks,
              "a job's reserve leaves room in its stream window for results delivered out of order");

bool Job::WindowAllows() const {
  if (!spec_.stream_results()) return true;
  return results_.size() + spilled_.size() + in_flight_ < kStreamWindowChunks &&
         result_bytes_ + spilled_bytes_ < stream_window_bytes_;
}

void Job::SkipDone() {
  while (cut_cursor_ < total_items_) {
    if (cut_cursor_ < done_below_) {
      cut_cursor_ = done_below_;
    } else if (auto it = done_above_.find(cut_cursor_); it != done_above_.end()) {
      cut_cursor_ = it->second;
    } else {
      return;
    }
  }
}

uint64_t Job::UncutEnd() const {
  auto next_done = done_above_.upper_bound(cut_cursor_);
  return next_done == done_above_.end() ? total_items_ : next_done->first;
}

bool Job::ParallelAllows(uint64_t items) const {
  const uint64_t limit = spec_.max_parallel();
  return limit == 0 || items_in_flight_ + items <= limit;
}

bool Job::HasWork() const {
  if (finished()) return false;
  if (!requeued_.empty()) return ParallelAllows(open_.at(requeued_.front()).count);
  return cut_cursor_ < total_items_ && WindowAllows() && ParallelAllows(1);
}

v1::Chunk Job::MakeChunk(uint64_t index, const OpenChunk& open) const {
  v1::Chunk chunk;
  chunk.set_job_id(id_);
  chunk.set_chunk_index(index);
  chunk.set_attempt(open.attempt);
  if (spec_.has_command()) {
    *chunk.mutable_command() = spec_.command();
  } else if (spec_.has_grpc()) {
    *chunk.mutable_grpc() = spec_.grpc();
  } else if (spec_.has_python()) {
    *chunk.mutable_python() = spec_.python();
  } else {
    chunk.set_kernel(spec_.kernel());
  }
  chunk.set_reduce(spec_.reduce());
  chunk.set_retries(spec_.retries());
  chunk.set_kernel_timeout_ms(spec_.kernel_timeout_ms());
  FillChunkItems(spec_.items(), ChunkBounds{open.first, open.count}, &chunk);
  if (spec_.items().has_spooled()) {
    auto* items = chunk.mutable_inline_()->mutable_items();
    if (absl::Status read = store_->ReadItems(id_, open.first, open.count, items); !read.ok()) {
      // The chunk goes out without its items: the worker fails its tasks, saying so.
      LogRateLimited(LogLevel::kError, absl::StrCat("items:", id_), read.ToString());
      items->Clear();
    }
  }
  return chunk;
}

std::optional<v1::Chunk> Job::NextChunk(absl::Time now, uint64_t slots, uint64_t max_items) {
  if (finished()) return std::nullopt;
  uint64_t index;
  if (!requeued_.empty()) {
    if (!ParallelAllows(open_.at(requeued_.front()).count)) return std::nullopt;
    index = requeued_.front();
    requeued_.pop_front();
  } else {
    SkipDone();
    if (cut_cursor_ >= total_items_ || !WindowAllows() || !ParallelAllows(1)) return std::nullopt;
    uint64_t end = UncutEnd();
    uint64_t size = std::clamp<uint64_t>(sizer_.NextSize(total_items_ - cut_cursor_, slots), 1, max_items);
    if (spec_.max_parallel() > 0) size = std::min<uint64_t>(size, spec_.max_parallel() - items_in_flight_);
    OpenChunk cut;
    cut.first = cut_cursor_;
    cut.count = static_cast<uint32_t>(std::min<uint64_t>(size, end - cut_cursor_));
    cut_cursor_ += cut.count;
    index = next_chunk_index_++;
    open_.emplace(index, cut);
  }
  OpenChunk& open = open_.at(index);
  ++open.attempt;
  open.queued = false;
  open.dispatched = now;
  ++in_flight_;
  items_in_flight_ += open.count;
  if (state_ == v1::JOB_STATE_QUEUED) SetState(v1::JOB_STATE_RUNNING, now);
  return MakeChunk(index, open);
}

uint32_t Job::PrefetchPerSlot(uint64_t slots) const {
  uint64_t remaining = total_items_ > cut_cursor_ ? total_items_ - cut_cursor_ : 1;
  return sizer_.PrefetchPerSlot(sizer_.NextSize(remaining, slots), slots);
}

std::optional<v1::ChunkResult> Job::Requeue(uint64_t chunk_index, uint32_t attempt) {
  if (finished()) return std::nullopt;
  auto it = open_.find(chunk_index);
  if (it == open_.end() || it->second.queued || it->second.attempt != attempt) return std::nullopt;
  OpenChunk& open = it->second;
  ++open.losses;
  if (spec_.has_grpc() && spec_.grpc().at_most_once()) {
    return FailedResult(chunk_index, attempt, open,
                        "outcome unknown (--at-most-once: not made again): its worker was lost while it held the "
                        "call");
  }
  if (open.losses >= max_attempts()) {
    return FailedResult(chunk_index, attempt, open,
                        absl::StrCat("its worker was lost ", open.losses,
                                     " times while running it (does the task crash workers?)"));
  }
  open.queued = true;
  --in_flight_;
  items_in_flight_ -= open.count;
  requeued_.push_back(chunk_index);
  return std::nullopt;
}

v1::ChunkResult Job::FailedResult(uint64_t chunk_index, uint32_t attempt, const OpenChunk& open,
                                  absl::string_view why) const {
  v1::ChunkResult failed;
  failed.set_job_id(id_);
  failed.set_chunk_index(chunk_index);
  failed.set_attempt(attempt);
  failed.mutable_outputs()->set_first_index(open.first);
  failed.mutable_outputs()->set_item_count(open.count);
  for (uint32_t i = 0; i < open.count; ++i) {
    v1::ItemError* error = failed.mutable_outputs()->add_errors();
    error->set_offset(i);
    error->set_message(std::string(why));
  }
  if (spec_.reduce() != v1::REDUCE_NONE) failed.mutable_outputs()->mutable_partial();
  return failed;
}

void Job::FailRemaining(absl::string_view why, absl::Time now) {
  while (std::optional<v1::Chunk> chunk = NextChunk(now, 1, kMaxChunkSize)) {
    const OpenChunk& open = open_.at(chunk->chunk_index());
    (void)OnResult(FailedResult(chunk->chunk_index(), chunk->attempt(), open, why), now);
  }
}

bool Job::Return(uint64_t chunk_index, uint32_t attempt) {
  if (finished()) return false;
  auto it = open_.find(chunk_index);
  if (it == open_.end() || it->second.queued || it->second.attempt != attempt) return false;
  it->second.queued = true;
  --in_flight_;
  items_in_flight_ -= it->second.count;
  requeued_.push_front(chunk_index);  // it was due before chunks not yet cut
  return true;
}

void Job::MarkDone(uint64_t first, uint64_t end) {
  if (first != done_below_) {
    done_above_.emplace(first, end);
    return;
  }
  done_below_ = end;
  while (!done_above_.empty() && done_above_.begin()->first == done_below_) {
    done_below_ = done_above_.begin()->second;
    done_above_.erase(done_above_.begin());
  }
}

void Job::Record(uint64_t chunk_index, v1::ChunkOutputs&& outputs, absl::Time now,
                 std::optional<uint64_t> stored_at) {
  const uint64_t first = outputs.first_index();
  const uint64_t count = outputs.item_count();
  MarkDone(first, first + count);
  done_items_ += count;
  failed_items_ += static_cast<uint64_t>(outputs.errors_size());
  if (spec_.reduce() != v1::REDUCE_NONE) {
    (void)reducer_.Merge(outputs.partial());  // a failed reduction shows in ToProto()
    outputs.clear_partial();
  }
  if (spec_.stream_results()) {
    const uint64_t size = outputs.outputs().size();
    if (result_bytes_ + size > stream_window_bytes_ && result_bytes_ > 0 && store_ != nullptr) {
      // Results that arrive while the reader is a window behind (calls
      // already in flight when dispatch paused) wait on disk, not in memory.
      spilled_bytes_ += size;
      spilled_.emplace(first, store_->Append(id_, outputs));
    } else {
      result_bytes_ += size;
      results_.emplace(first, std::move(outputs));
    }
  } else {
    kept_.emplace(first, stored_at ? *stored_at : store_->Append(id_, outputs));
  }
  if (done_items_ >= total_items_) {
    SetState(failed_items_ == 0 ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_FAILED, now);
  }
  // A restored result has no chunk number; chunks are numbered in item order,
  // so numbering past its items keeps new chunks apart from old ones.
  next_chunk_index_ = std::max(next_chunk_index_, stored_at ? first + count : chunk_index + 1);
}

Job::ResultOutcome Job::OnResult(v1::ChunkResult&& result, absl::Time now) {
  if (finished()) return ResultOutcome::kDuplicate;
  auto it = open_.find(result.chunk_index());
  if (it == open_.end()) return ResultOutcome::kDuplicate;
  const OpenChunk open = it->second;
  bool reduces = spec_.reduce() != v1::REDUCE_NONE;
  if (absl::Status ok = CheckOutputs(result.outputs(), open.first, open.count, reduces); !ok.ok()) {
    LogWarning(absl::StrCat("job ", id_, " chunk ", result.chunk_index(), ": dropped a malformed result: ",
                            ok.message()));
    return ResultOutcome::kMalformed;
  }
  if (result.run_ns() > 0) {
    sizer_.Record(open.count, absl::Nanoseconds(result.run_ns()));
  } else if (open.dispatched != absl::InfinitePast()) {
    sizer_.Record(open.count, now - open.dispatched);  // a worker that does not measure: round trip
  }
  if (open.queued) {
    std::erase(requeued_, result.chunk_index());
  } else {
    --in_flight_;
    items_in_flight_ -= open.count;
  }
  measured_items_ += open.count;
  measured_bytes_ += result.outputs().outputs().size();
  open_.erase(it);
  Record(result.chunk_index(), std::move(*result.mutable_outputs()), now);
  return ResultOutcome::kRecorded;
}

void Job::RestoreResult(uint64_t offset, v1::ChunkOutputs&& outputs, absl::Time now) {
  const uint64_t first = outputs.first_index();
  if (finished() || outputs.item_count() == 0 || first >= total_items_ ||
      outputs.item_count() > total_items_ - first || IsDone(first)) {
    return;
  }
  if (state_ == v1::JOB_STATE_QUEUED) SetState(v1::JOB_STATE_RUNNING, now);
  Record(/*chunk_index=*/0, std::move(outputs), now, offset);
}

absl::Status Job::Cancel(absl::Time now) {
  if (finished()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id_, " has already finished (", absl::AsciiStrToLower(absl::StripPrefix(v1::JobState_Name(state_), "JOB_STATE_")),
        "): nothing to cancel"));
  }
  SetState(v1::JOB_STATE_CANCELLED, now);
  requeued_.clear();
  open_.clear();
  in_flight_ = 0;
  items_in_flight_ = 0;
  if (!reader_attached_) DropUndelivered();  // nobody came to read them
  return absl::OkStatus();
}

void Job::DropUndelivered() {
  results_.clear();
  result_bytes_ = 0;
  if (!spilled_.empty()) store_->DropResults(id_);
  spilled_.clear();
  spilled_bytes_ = 0;
}

v1::JobStatus Job::ToProto() const {
  v1::JobStatus status;
  status.set_job_id(id_);
  status.set_name(spec_.name());
  status.set_kernel(spec_.kernel());
  status.set_runs(spec_.has_command() ? absl::StrCat("$ ", spec_.command().argv(0))
                  : spec_.grpc().has_http() ? HttpRuns(spec_.grpc().http())
                  : spec_.has_grpc()        ? absl::StrCat("grpc ", spec_.grpc().method())
                  : spec_.has_python()      ? std::string("python")
                                      : spec_.kernel());
  status.set_state(state_);
  status.set_total_items(total_items_);
  status.set_done_items(done_items_);
  status.set_failed_items(failed_items_);
  status.set_total_chunks(sizer_.automatic() ? next_chunk_index_ : ChunkCount(total_items_, spec_.chunk_size()));
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
        "job ", id_, "'s results were streamed to the client that submitted it and not kept (a job submitted "
        "without stream_results keeps them)"));
  }
  auto it = kept_.upper_bound(index);
  if (it != kept_.begin() && (--it)->second < store_->readable_end(id_)) {
    uint64_t next = 0;
    absl::StatusOr<v1::ChunkOutputs> outputs = store_->Read(id_, it->second, &next);
    if (!outputs.ok() || index < it->first + outputs->item_count()) return outputs;
  }
  if (state_ == v1::JOB_STATE_CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", index + 1, " of job ", id_, " did not finish: the job was cancelled"));
  }
  return absl::FailedPreconditionError(absl::StrCat("task ", index + 1, " of job ", id_, " has not finished yet"));
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
  if (!spec_.stream_results()) return PullKept(cursor, max_items, batch, end);
  uint64_t items = 0;
  uint64_t bytes = 0;
  while (items < max_items && bytes < kMaxBatchBytes) {
    auto it = cursor->ordered ? results_.find(cursor->next_item) : results_.begin();
    v1::ChunkOutputs outputs;
    if (it != results_.end()) {
      result_bytes_ -= it->second.outputs().size();
      outputs = std::move(it->second);
      results_.erase(it);
    } else {
      auto spilled = cursor->ordered ? spilled_.find(cursor->next_item) : spilled_.begin();
      if (spilled == spilled_.end() || spilled->second >= store_->readable_end(id_)) break;
      uint64_t next = 0;
      absl::StatusOr<v1::ChunkOutputs> read = store_->Read(id_, spilled->second, &next);
      if (!read.ok()) {
        LogRateLimited(LogLevel::kError, absl::StrCat("results:", id_), read.status().ToString());
        break;
      }
      outputs = *std::move(read);
      spilled_bytes_ -= std::min<uint64_t>(spilled_bytes_, outputs.outputs().size());
      spilled_.erase(spilled);
      if (spilled_.empty()) store_->DropResults(id_);  // every spilled result is delivered: free the disk
    }
    items += std::max<uint32_t>(outputs.item_count(), 1);
    bytes += outputs.outputs().size();
    if (cursor->ordered) cursor->next_item = outputs.first_index() + outputs.item_count();
    *batch->add_chunks() = std::move(outputs);
  }
  const bool more = cursor->ordered ? cursor->next_item < total_items_ && (results_.contains(cursor->next_item) ||
                                                                           spilled_.contains(cursor->next_item))
                                    : !results_.empty() || !spilled_.empty();
  *end = finished() && !more;
}

void Job::PullKept(ResultCursor* cursor, uint64_t max_items, v1::ResultBatch* batch, bool* end) {
  uint64_t items = 0;
  uint64_t bytes = 0;
  const uint64_t readable = store_->readable_end(id_);
  bool failed = false;
  while (items < max_items && bytes < kMaxBatchBytes) {
    uint64_t offset = cursor->next_position;
    if (cursor->ordered) {
      auto it = kept_.find(cursor->next_item);
      if (it == kept_.end()) break;
      offset = it->second;
    }
    if (offset >= readable) break;  // not written yet: shown once it is
    uint64_t next = 0;
    absl::StatusOr<v1::ChunkOutputs> outputs = store_->Read(id_, offset, &next);
    if (!outputs.ok()) {
      LogRateLimited(LogLevel::kError, absl::StrCat("results:", id_), outputs.status().ToString());
      failed = true;
      break;
    }
    items += std::max<uint32_t>(outputs->item_count(), 1);
    bytes += outputs->outputs().size();
    if (cursor->ordered) {
      cursor->next_item = outputs->first_index() + outputs->item_count();
    } else {
      cursor->next_position = next;
    }
    *batch->add_chunks() = *std::move(outputs);
  }
  if (!finished() || failed) {
    *end = false;
  } else if (cursor->ordered) {
    *end = cursor->next_item >= total_items_ || !kept_.contains(cursor->next_item);
  } else {
    *end = cursor->next_position >= store_->appended_end(id_);
  }
}

}  // namespace drover
