// One job in the coordinator: its spec, which chunks are dispatched, in flight
// and done, its results, and its life cycle. Chunks are not stored up front:
// chunk i is recomputed from the spec when it is dispatched (or re-dispatched).
#ifndef DROVER_COORDINATOR_JOB_H_
#define DROVER_COORDINATOR_JOB_H_

#include <cstdint>
#include <deque>
#include <map>
#include <algorithm>
#include <optional>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/reduce.h"
#include "drover/v1/control.pb.h"
#include "drover/v1/service.pb.h"

namespace drover {

// Where one results reader is in a job's results. Owned by the reader.
struct ResultCursor {
  bool ordered = true;
  uint64_t next_chunk = 0;      // ordered: next chunk to deliver
  uint64_t next_position = 0;   // unordered (kept results): position in completion order
};

// Not thread-safe: owned by the coordinator's loop thread (through Scheduler).
// Calls of a gRPC job in flight per worker when its spec does not say.
inline constexpr uint32_t kDefaultGrpcConcurrency = 256;

class Job {
 public:
  // In stream mode at most this many chunks, or bytes of results, wait
  // undelivered; dispatch pauses beyond that (bounded memory for `drover run`).
  static constexpr uint64_t kStreamWindowChunks = 1 << 16;
  static constexpr uint64_t kStreamWindowBytes = 256ull << 20;
  // PullResults stops adding chunks once a batch holds this many output bytes.
  static constexpr uint64_t kMaxBatchBytes = 4ull << 20;

  // `spec` must be valid (see ValidateJobSpec).
  Job(uint64_t id, v1::JobSpec spec, absl::Time now);

  uint64_t id() const { return id_; }
  const v1::JobSpec& spec() const { return spec_; }
  bool finished() const;

  // The next chunk to send (re-queued ones first, then new ones in order,
  // skipping chunks already done), recorded as in flight with a new attempt
  // number; nullopt when there is nothing to send now.
  std::optional<v1::Chunk> NextChunk(absl::Time now);
  // A worker holding (chunk, attempt) was lost: queue the chunk again unless it
  // is done or was re-dispatched since. When the chunk has already been lost
  // max_attempts() times it is not queued: the result to record instead (every
  // task failed, saying so) is returned, so a task that crashes workers is
  // never retried forever.
  std::optional<v1::ChunkResult> Requeue(uint64_t chunk_index, uint32_t attempt);
  uint32_t max_attempts() const { return 1 + std::max<uint32_t>(spec_.retries(), 2); }

  enum class ResultOutcome { kRecorded, kDuplicate, kMalformed };
  // Records a chunk's result, taking its outputs (the first good result wins).
  // kDuplicate: the chunk is done or the job finished; kMalformed: it does not
  // match the chunk. In both cases `result` is left as it was.
  ResultOutcome OnResult(v1::ChunkResult&& result, absl::Time now);

  // Stops the job. Returns kFailedPrecondition if it had already finished.
  absl::Status Cancel(absl::Time now);

  v1::JobStatus Status() const;

  // Moves up to about `max_items` results after `*cursor` into `*batch`.
  // Sets `*end` when the reader has everything it will ever get.
  // In stream mode delivered results are dropped from memory.
  void PullResults(ResultCursor* cursor, uint64_t max_items, v1::ResultBatch* batch, bool* end);

  // The kept result of the chunk holding task `index`. Errors: kOutOfRange (no
  // such task), kUnavailable (not finished yet), kFailedPrecondition (results
  // were streamed, not kept).
  absl::StatusOr<v1::ChunkOutputs> TaskResult(uint64_t index) const;

  // Stream mode allows one reader; returns kFailedPrecondition for a second.
  absl::Status AttachReader();
  bool stream_results() const { return spec_.stream_results(); }
  bool reader_attached() const { return reader_attached_; }
  absl::Time submitted() const { return submitted_; }

 private:
  void SetState(v1::JobState next, absl::Time now);
  bool IsDone(uint64_t chunk_index) const {
    return chunk_index < done_below_ || done_above_.contains(chunk_index);
  }
  bool WindowAllows(uint64_t chunk_index) const;
  void MarkDone(uint64_t chunk_index);
  uint64_t StreamWindowBase() const;

  // Constant after construction.
  const uint64_t id_;
  const v1::JobSpec spec_;
  const uint32_t chunk_size_;
  const uint64_t total_items_;
  const uint64_t total_chunks_;
  const absl::Time submitted_;

  v1::JobState state_ = v1::JOB_STATE_QUEUED;
  absl::Time finished_at_ = absl::InfinitePast();

  // Dispatch.
  uint64_t next_new_chunk_ = 0;
  std::deque<uint64_t> requeued_;
  absl::flat_hash_map<uint64_t, uint32_t> in_flight_;  // chunk -> attempt of its latest dispatch
  absl::flat_hash_map<uint64_t, uint32_t> attempts_;   // chunk -> attempts so far, for re-queued chunks

  // Completion: every chunk below done_below_ is done, plus those in done_above_.
  uint64_t done_below_ = 0;
  absl::btree_set<uint64_t> done_above_;
  uint64_t done_chunks_ = 0;
  uint64_t done_items_ = 0;
  uint64_t failed_items_ = 0;
  Reducer reducer_;

  // Results not yet dropped, by chunk; in keep mode also the completion order.
  std::map<uint64_t, v1::ChunkOutputs> results_;
  std::vector<uint64_t> completion_order_;
  uint64_t result_bytes_ = 0;
  bool reader_attached_ = false;
};

// Checks a job spec from a client. Errors: kInvalidArgument saying what is wrong.
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

}  // namespace drover

#endif  // DROVER_COORDINATOR_JOB_H_
