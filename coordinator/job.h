// One job in the coordinator: its spec, which chunks are cut, in flight and
// done, its results, and its life cycle. Items are not stored: a chunk's items
// are recomputed from the spec when it is dispatched (or re-dispatched). Kept
// results are in a ResultStore (on disk); the job holds their offsets.
#ifndef DROVER_COORDINATOR_JOB_H_
#define DROVER_COORDINATOR_JOB_H_

#include <cstdint>
#include <deque>
#include <map>
#include <algorithm>
#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/reduce.h"
#include "coordinator/chunk_sizer.h"
#include "coordinator/result_store.h"
#include "drover/v1/control.pb.h"
#include "drover/v1/service.pb.h"

namespace drover {

// A Submit's idempotency key has at most this many bytes.
constexpr size_t kMaxIdempotencyKeyBytes = 128;
// A job's --retries is at most this.
constexpr uint32_t kMaxRetries = 100;

// Where one results reader is in a job's results. Owned by the reader.
struct ResultCursor {
  bool ordered = true;
  uint64_t next_item = 0;       // ordered: first item of the next chunk to deliver
  uint64_t next_position = 0;   // unordered (kept results): offset in the job's results file
};

// Not thread-safe: owned by the coordinator's loop thread (through Scheduler).
//
// Chunks are cut from the items as the job runs (their size from its
// ChunkSizer) and numbered from 0; a chunk keeps its bounds for life, so a
// re-dispatched chunk is the same chunk with a higher attempt number.
class Job {
 public:
  // In stream mode at most this many chunks are undelivered or in flight, and
  // at most this many bytes of results wait undelivered; dispatch pauses
  // beyond that (bounded memory for `drover run`).
  static constexpr uint64_t kStreamWindowChunks = 1 << 17;
  static constexpr uint64_t kStreamWindowBytes = 256ull << 20;
  // PullResults stops adding chunks once a batch holds this many output bytes.
  static constexpr uint64_t kMaxBatchBytes = 4ull << 20;

  // `spec` must be valid (see ValidateJobSpec). Kept results (not
  // stream_results) go to `store`, which must outlive the job.
  // `stream_window_bytes`: kStreamWindowBytes but in tests.
  Job(uint64_t id, v1::JobSpec spec, absl::Time now, ResultStore* store,
      uint64_t stream_window_bytes = kStreamWindowBytes);

  uint64_t id() const { return id_; }
  const v1::JobSpec& spec() const { return spec_; }
  bool finished() const;
  bool cancelled() const { return state_ == v1::JOB_STATE_CANCELLED; }
  int32_t priority() const { return spec_.priority(); }
  // CPU slots one chunk occupies on a worker with `slots` slots.
  uint32_t CpusPerChunk(uint32_t slots) const;

  // Whether NextChunk would return a chunk now.
  bool HasWork() const;
  // Chunks out on workers now, and their items.
  uint64_t chunks_in_flight() const { return in_flight_; }
  uint64_t done_items() const { return done_items_; }  // finished, successfully or not
  uint64_t failed_items() const { return failed_items_; }
  uint64_t items_in_flight() const { return items_in_flight_; }
  // Mean output bytes per item over the results so far (at least 1); nullopt
  // before the first result. Bounds the bytes of gRPC calls in flight.
  std::optional<uint64_t> MeanOutputBytes() const {
    if (measured_items_ == 0) return std::nullopt;
    return std::max<uint64_t>(1, measured_bytes_ / measured_items_);
  }
  // Bytes of results waiting for a stream-mode reader (in memory or spilled).
  uint64_t undelivered_bytes() const { return result_bytes_ + spilled_bytes_; }
  // The attempt of chunk `index` if it is out on a worker, else 0.
  uint32_t AttemptInFlight(uint64_t index) const {
    auto it = open_.find(index);
    return it == open_.end() || it->second.queued ? 0 : it->second.attempt;
  }

  // The next chunk to send (re-queued ones first, then a new one cut for
  // `slots` CPU slots able to run the job, of at most `max_items` items),
  // recorded as in flight with a new attempt number; nullopt when there is
  // nothing to send now.
  std::optional<v1::Chunk> NextChunk(absl::Time now, uint64_t slots = 1, uint64_t max_items = UINT64_MAX);
  // Chunks each slot may hold beyond the one it runs (see ChunkSizer).
  uint32_t PrefetchPerSlot(uint64_t slots) const;

  // A worker holding (chunk, attempt) was lost: queue the chunk again unless it
  // is done or was re-dispatched since. When the chunk has already been lost
  // max_attempts() times it is not queued: the result to record instead (every
  // task failed, saying so) is returned, so a task that crashes workers is
  // never retried forever.
  std::optional<v1::ChunkResult> Requeue(uint64_t chunk_index, uint32_t attempt);
  // Fails every item not done yet with `why` (an --at-most-once job restored
  // after a restart: any of them may have been called already).
  void FailRemaining(absl::string_view why, absl::Time now);
  // A worker gave (chunk, attempt) back unstarted (work stealing): queue it
  // again without counting a loss. Returns false if it was not in flight so.
  bool Return(uint64_t chunk_index, uint32_t attempt);
  uint32_t max_attempts() const { return 1 + std::clamp<uint32_t>(spec_.retries(), 2, kMaxRetries); }

  enum class ResultOutcome { kRecorded, kDuplicate, kMalformed };
  // Records a chunk's result, taking its outputs (the first good result wins).
  // kDuplicate: the chunk is done, unknown, or the job finished; kMalformed: it
  // does not match the chunk. In both cases `result` is left as it was.
  ResultOutcome OnResult(v1::ChunkResult&& result, absl::Time now);
  // Replays a kept result read from the store at `offset` (at start): its items are done.
  void RestoreResult(uint64_t offset, v1::ChunkOutputs&& outputs, absl::Time now);

  // Stops the job. Returns kFailedPrecondition if it had already finished.
  absl::Status Cancel(absl::Time now);
  // Stream mode: forgets results no reader will take (its reader left), in
  // memory and spilled to the store.
  void DropUndelivered();

  v1::JobStatus ToProto() const;

  // Moves up to about `max_items` results after `*cursor` into `*batch`.
  // Sets `*end` when the reader has everything it will ever get.
  // In stream mode delivered results are dropped from memory. Kept results
  // are read from the store, only once written (durable with a state dir).
  void PullResults(ResultCursor* cursor, uint64_t max_items, v1::ResultBatch* batch, bool* end);

  // The kept result of the chunk holding task `index`. Errors: kOutOfRange (no
  // such task), kUnavailable (not finished yet), kFailedPrecondition (results
  // were streamed, not kept).
  absl::StatusOr<v1::ChunkOutputs> TaskResult(uint64_t index) const;

  // What the scheduler knows of an open chunk on a worker, for ListTasks.
  struct HeldChunk {
    std::string worker;           // its id
    int64_t started_unix_us = 0;  // 0: not reported started
  };
  // ListTasks for this job (see service.proto): tasks from
  // request.start_index() on in `request.state()`, looking at a bounded number
  // of them; `held` maps chunk indexes on workers to their holder. Kept
  // results are read from the store. Loop thread only.
  void ListTasks(const v1::ListTasksRequest& request, const absl::flat_hash_map<uint64_t, HeldChunk>& held,
                 v1::ListTasksReply* reply) const;

  // The items of this finished job's failed tasks (`failed`) and of those that
  // never finished (`unfinished`), in task order, at most `max_items` of them.
  // Errors: kFailedPrecondition (not finished; results streamed, not kept;
  // none), kInvalidArgument (more than max_items), or the store's.
  absl::StatusOr<std::vector<std::string>> ItemsToRetry(bool failed, bool unfinished, uint64_t max_items) const;

  // Stream mode allows one reader; returns kFailedPrecondition for a second.
  absl::Status AttachReader();
  bool stream_results() const { return spec_.stream_results(); }
  bool reader_attached() const { return reader_attached_; }
  absl::Time submitted() const { return submitted_; }
  absl::Time finished_at() const { return finished_at_; }  // InfinitePast while running
  // At start: when a job restored as finished really finished (not the restart's time).
  void RestoreFinishedAt(absl::Time when) {
    if (finished()) finished_at_ = when;
  }

 private:
  // A chunk cut from the items and not done yet.
  struct OpenChunk {
    uint64_t first = 0;
    uint32_t count = 0;
    uint32_t attempt = 0;  // of its latest dispatch
    uint32_t losses = 0;   // dispatches that ended with a lost worker
    bool queued = false;   // waiting in requeued_, not on a worker
    absl::Time dispatched = absl::InfinitePast();
  };

  void SetState(v1::JobState next, absl::Time now);
  bool WindowAllows() const;
  // Whether `items` more may be dispatched under the spec's max_parallel.
  bool ParallelAllows(uint64_t items) const;
  // Skips cut_cursor_ past items already done (restored from the journal).
  void SkipDone();
  uint64_t UncutEnd() const;  // end of the uncut run of items at cut_cursor_
  void PullKept(ResultCursor* cursor, uint64_t max_items, v1::ResultBatch* batch, bool* end);
  bool IsDone(uint64_t first) const { return first < done_below_ || done_above_.contains(first); }
  void MarkDone(uint64_t first, uint64_t end);
  // Counts a chunk's outputs as done; keeps them (in the store, or until
  // delivered in stream mode) unless `stored_at` says they are stored already.
  void Record(uint64_t chunk_index, v1::ChunkOutputs&& outputs, absl::Time now,
              std::optional<uint64_t> stored_at = std::nullopt);
  v1::Chunk MakeChunk(uint64_t index, const OpenChunk& open) const;
  // Item `index` as text when the spec lists it or it is in a range; "" for
  // spooled items (job_listing.cc).
  std::string ItemText(uint64_t index) const;
  bool ItemDone(uint64_t index) const;
  // A result failing every item of `open` with `why`.
  v1::ChunkResult FailedResult(uint64_t chunk_index, uint32_t attempt, const OpenChunk& open,
                               absl::string_view why) const;

  // Constant after construction.
  const uint64_t id_;
  const v1::JobSpec spec_;
  const uint64_t total_items_;
  const absl::Time submitted_;
  const uint64_t stream_window_bytes_;

  v1::JobState state_ = v1::JOB_STATE_QUEUED;
  absl::Time finished_at_ = absl::InfinitePast();

  // Dispatch.
  ChunkSizer sizer_;
  uint64_t cut_cursor_ = 0;        // items below are cut or done
  uint64_t next_chunk_index_ = 0;
  absl::flat_hash_map<uint64_t, OpenChunk> open_;  // by chunk index
  std::deque<uint64_t> requeued_;
  uint64_t in_flight_ = 0;         // open chunks on workers
  uint64_t items_in_flight_ = 0;   // their items
  uint64_t measured_items_ = 0;    // items of the results recorded so far
  uint64_t measured_bytes_ = 0;    // and their output bytes

  // Completion, by item: every item below done_below_ is done, plus the
  // ranges [first, end) in done_above_.
  uint64_t done_below_ = 0;
  absl::btree_map<uint64_t, uint64_t> done_above_;
  uint64_t done_items_ = 0;
  uint64_t failed_items_ = 0;
  Reducer reducer_;

  // Stream mode: results not yet delivered, by first item: in memory up to
  // kStreamWindowBytes, past that in the store (their offsets in spilled_).
  std::map<uint64_t, v1::ChunkOutputs> results_;
  uint64_t result_bytes_ = 0;
  absl::btree_map<uint64_t, uint64_t> spilled_;
  uint64_t spilled_bytes_ = 0;
  // Keep mode: where each done chunk's outputs are in the store, by first item.
  ResultStore* const store_;
  absl::btree_map<uint64_t, uint64_t> kept_;
  bool reader_attached_ = false;
};


// Checks a job spec from a client. Errors: kInvalidArgument saying what is wrong.
absl::Status ValidateJobSpec(const v1::JobSpec& spec);

}  // namespace drover

#endif  // DROVER_COORDINATOR_JOB_H_
