// The coordinator's core: jobs, the worker registry and dispatch, as plain
// state plus event functions. It never touches a socket: everything it sends
// goes through a WorkerOutbox, so it is tested without ZeroMQ or gRPC, with
// time passed in by the caller.
//
// Dispatch (scheduler_dispatch.cc) serves free slots before reserves: a chunk
// goes to a worker with a free CPU slot before any worker gets a chunk to hold
// beyond its slots; each free slot goes to the highest-priority job, among
// equals the one with the fewest chunks in flight (fair share); reserves
// (prefetch) follow each job's measured chunk time; and when a slot is free
// while another worker holds unstarted chunks, those are stolen back (Steal).
#ifndef DROVER_COORDINATOR_SCHEDULER_H_
#define DROVER_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/job.h"
#include "coordinator/latency_histogram.h"
#include "coordinator/journal_sink.h"
#include "coordinator/submit_intake.h"
#include "coordinator/worker_outbox.h"
#include "drover/v1/control.pb.h"
#include "drover/v1/service.pb.h"

namespace drover {

struct SchedulerOptions {
  absl::Duration heartbeat_interval = absl::Seconds(1);  // we send, and ask workers to send
  absl::Duration worker_timeout = absl::Seconds(5);      // silence after which a worker is lost
  uint32_t max_credit_per_worker = 1u << 16;             // a worker may not ask for more
  // Stamped on chunks; results carrying another are dropped (see control.proto).
  uint64_t instance = 0;
  // A finished job is forgotten this long after it finished (zero: kept until forgotten).
  absl::Duration keep_finished = absl::Hours(24 * 7);
  // A `drover run` job whose client never comes to read its results is cancelled after this.
  absl::Duration reader_timeout = absl::Seconds(30);
  // Limits on what a client may submit (a job over one is refused, kInvalidArgument).
  ItemLimits item_limits;
  uint64_t max_command_bytes = 128 << 10;  // a command's arguments and environment together
  // Largest ZeroMQ message taken from a worker; a peer sending more is disconnected.
  int64_t max_worker_message_bytes = int64_t{1} << 30;
};

// Not thread-safe: owned by the coordinator's loop thread.
class Scheduler {
 public:
  // `outbox` must outlive the scheduler. With a `journal` (may be null:
  // state in memory only), accepted jobs and cancellations are recorded in it
  // before they are acknowledged. Kept results go to `results` (null: a store
  // in memory, for tests), which must outlive the scheduler; SyncJournal
  // writes both.
  Scheduler(SchedulerOptions options, WorkerOutbox* outbox, JournalSink* journal = nullptr,
            ResultStore* results = nullptr);

  // Rebuilds jobs and results from journal records (at start, before any
  // event). Unfinished jobs whose results were streamed to a client that is
  // now gone are cancelled. Chunks not recorded as done will run again.
  void Restore(const std::vector<v1::JournalRecord>& records, absl::Time now);

  // Makes journal records of this turn durable (group commit). Call once per
  // loop turn, before results are served.
  void SyncJournal();

  // ---- events from workers ----
  // `key` is the peer's authenticated CURVE public key (empty without CURVE): a
  // registration is bound to the key its Hello came with, and messages for it
  // with another key (a peer that took over its routing id) are dropped.
  void OnWorkerMessage(const std::string& peer, v1::WorkerMessage message, absl::Time now,
                       absl::string_view key = {});
  // A peer spoke another protocol version: it is refused.
  void OnWrongVersion(const std::string& peer, absl::string_view why);
  // Declares silent workers lost and sends heartbeats; call about every 100 ms.
  void OnTick(absl::Time now);
  // Hands out chunks to workers with credit. Cheap when nothing changed.
  void Dispatch(absl::Time now);

  // ---- requests from clients ----
  // Errors: kInvalidArgument for a bad spec, a spec over the limits, or (with
  // workers connected) a kernel, labels or --cpus no connected worker offers;
  // kResourceExhausted/kUnavailable when the journal cannot be written.
  // A non-empty `idempotency_key` already given with a job still known
  // returns that job's id and makes no new job.
  // With `spool` (SubmitStream), the spec's items are spooled and the spool's
  // files become the job's. Thread: the loop's; `spool` was filled elsewhere.
  absl::StatusOr<uint64_t> Submit(v1::JobSpec spec, absl::Time now, const std::string& idempotency_key = "",
                                  ItemSpool* spool = nullptr);
  // What Submit checks first (spec, limits, a worker able to run it). Errors: kInvalidArgument.
  absl::Status CheckAdmission(const v1::JobSpec& spec) const;
  // Errors: kNotFound.
  absl::StatusOr<v1::JobStatus> GetJob(uint64_t job_id) const;
  std::vector<v1::JobStatus> ListJobs() const;
  // Errors: kNotFound, kFailedPrecondition (already finished).
  absl::StatusOr<v1::JobStatus> Cancel(uint64_t job_id, absl::Time now);
  // Removes finished jobs (`job_ids`, and those finished at least
  // `finished_older_than` ago when it is positive) with their results; durable
  // (journaled) before it returns. Returns the ids forgotten, in order.
  // Errors: kNotFound, kFailedPrecondition (a job still running; then nothing
  // is forgotten), or the journal's.
  absl::StatusOr<std::vector<uint64_t>> Forget(const std::vector<uint64_t>& job_ids,
                                               absl::Duration finished_older_than, absl::Time now);
  std::vector<v1::WorkerInfo> ListWorkers() const;
  // Tells a worker to finish what it holds, take nothing new and exit.
  // Errors: kNotFound.
  absl::StatusOr<v1::WorkerInfo> DrainWorker(const std::string& worker_id, absl::Time now);
  // Errors: kNotFound, kFailedPrecondition (a stream-mode job already has its reader).
  absl::Status AttachReader(uint64_t job_id);
  // See Job::TaskResult. Errors: kNotFound for an unknown job, or Job's.
  absl::StatusOr<v1::ChunkOutputs> TaskResult(uint64_t job_id, uint64_t index) const;
  // A new job of the finished job's failed and/or unfinished tasks (see
  // Job::ItemsToRetry), submitted as Submit does. Errors: kNotFound, Job's, Submit's.
  absl::StatusOr<uint64_t> Retry(const v1::RetryRequest& request, absl::Time now);
  // See Job::ListTasks. Errors: kNotFound for an unknown job.
  absl::StatusOr<v1::ListTasksReply> ListTasks(const v1::ListTasksRequest& request) const;
  // See Job::PullResults. Errors: kNotFound.
  absl::Status PullResults(uint64_t job_id, ResultCursor* cursor, uint64_t max_items,
                           v1::ResultBatch* batch, bool* end);
  // The reader of a stream-mode job went away before the end: nobody can
  // receive its results any more, so the job is cancelled.
  void ReaderGone(uint64_t job_id, absl::Time now);
  // Tells every worker to exit.
  void ShutdownWorkers(const std::string& reason);

  // Grows whenever any job's status or results change.
  uint64_t change_count() const { return change_count_; }
  // Grows whenever a job ends (its last result, a failure, a cancel).
  uint64_t jobs_ended_count() const { return jobs_ended_count_; }
  // Chunks workers gave back unstarted because another worker had a free slot.
  uint64_t chunks_stolen() const { return chunks_stolen_; }
  // Totals since this coordinator started (for --metrics); read on the loop thread.
  struct Counters {
    uint64_t tasks_done = 0;      // finished, successfully or not
    uint64_t tasks_failed = 0;
    uint64_t chunks_retried = 0;  // sent again: their worker was lost, or its result was malformed
    LatencyHistogram chunk_run_time;    // as the workers measured it
    LatencyHistogram journal_sync_time;  // results and journal made durable, per loop turn
  };
  const Counters& counters() const { return counters_; }

  // For tests and fuzzers: every chunk out on a worker is held by exactly one
  // worker with the attempt its job has in flight, workers' slot loads add up,
  // and the ready sets match the jobs. Errors: kInternal saying what is off.
  absl::Status CheckInvariants() const;

 private:
  using ChunkKey = std::pair<uint64_t, uint64_t>;  // (job id, chunk index)

  struct WorkerRecord {
    std::string peer;
    std::string key;      // authenticated CURVE public key (Z85), empty without CURVE
    uint64_t number = 0;  // registration number (internal)
    std::string id;       // its name, unique among registered workers (see number_by_id_)
    v1::Hello hello;
    absl::flat_hash_set<std::string> kernels;
    absl::flat_hash_set<std::string> labels;  // "key=value" and "key" for each label
    uint64_t credit = 0;     // CPU chunks it asked for
    uint64_t io_credit = 0;  // gRPC calls (items) its I/O engine asked for
    struct Held {
      uint32_t attempt = 0;
      uint32_t io_items = 0;  // gRPC chunks: their calls
      uint32_t cpus = 0;      // CPU chunks: the slots they occupy
      int64_t started_unix_us = 0;  // when the worker said it started (display only)
    };
    absl::flat_hash_map<ChunkKey, Held> held;
    absl::flat_hash_map<uint64_t, uint64_t> io_items_by_job;  // calls held, per gRPC job
    absl::flat_hash_set<uint64_t> descriptors_sent;            // gRPC jobs whose spec it has
    v1::WorkerLoad load;
    uint64_t cpu_load = 0;  // slots taken by held CPU chunks (above `slots`: a reserve)
    uint64_t steal_pending = 0;  // id of the Steal sent to it and not yet answered
    absl::Time steal_sent;
    uint64_t chunks_done = 0;
    bool draining = false;
    absl::Time last_heard;
    absl::Time last_sent;
    // Lost-Assign detection: chunks sent since Welcome, with marks taken each
    // heartbeat interval; a worker that reports having received fewer than a
    // mark at least 3 intervals old lost them in transit.
    uint64_t chunks_sent = 0;
    std::deque<std::pair<absl::Time, uint64_t>> sent_marks;
  };

  // (job priority negated, chunks in flight, job id): the order in which
  // CPU jobs with work get free slots.
  using ReadyKey = std::tuple<int64_t, uint64_t, uint64_t>;

  void OnHello(const std::string& peer, const v1::Hello& hello, absl::Time now, absl::string_view key);
  // Declares silent workers lost and sends heartbeats to quiet ones.
  void CheckLiveness(absl::Time now);
  // Cancels stream-mode jobs whose reader never came.
  void CancelUnreadJobs(absl::Time now);
  void OnReady(WorkerRecord& worker, v1::Ready* ready, absl::Time now);
  // Records the start times a worker reports for chunks it holds (ChunkStart).
  static void NoteStarted(WorkerRecord& worker, const google::protobuf::RepeatedPtrField<v1::ChunkStart>& started);

  // ---- dispatch (scheduler_dispatch.cc) ----
  static uint64_t FreeSlots(const WorkerRecord& worker);
  // Gives `worker` chunks for its free slots, then (second pass) for its
  // reserve, from the ready jobs in ReadyKey order.
  void FillFreeSlots(WorkerRecord& worker, v1::Assign* assign, absl::Time now);
  void FillReserve(WorkerRecord& worker, v1::Assign* assign, absl::Time now);
  void TakeCpuChunk(WorkerRecord& worker, Job* job, v1::Assign* assign, absl::Time now);
  // Adds chunks of gRPC `job` while `worker` has I/O credit, within the job's
  // concurrency, its bytes in flight and (rate_share > 0: calls per second
  // this worker makes) its rate.
  void TakeIoChunks(WorkerRecord& worker, Job* job, double rate_share, v1::Assign* assign, absl::Time now);
  // A job's --rate split evenly over the workers able to run it (0: no rate).
  double RateShare(const Job& job) const;
  // Asks workers holding reserves to give chunks back for `thieves`' free slots.
  void StealFor(const std::vector<WorkerRecord*>& thieves, absl::Time now);
  // Keeps the job's place in ready_jobs_ / io_jobs_ true after any change.
  void UpdateReady(Job* job);
  // Keeps hungry_ and reserve_holders_ true after the worker's load or credit changed.
  void UpdateWorkerSets(WorkerRecord& worker);

  void Release(WorkerRecord& worker, ChunkKey key);
  // Records results, accepting only those of chunks this worker holds (same attempt).
  void OnResults(WorkerRecord& worker, v1::Ready* ready, absl::Time now);
  // Records a chunk's result in its job (and the journal). False for a duplicate.
  bool RecordResult(Job* job, v1::ChunkResult&& result, absl::Time now);
  void StartDrain(WorkerRecord& worker, absl::Time now);
  // False (and the worker lost) when Assigns sent to it never arrived.
  bool AssignsArrivedOrLose(WorkerRecord& worker, uint64_t chunks_received, absl::Time now);
  v1::WorkerInfo Info(const WorkerRecord& worker) const;
  // Forgets the worker and requeues what it held. Logged as a warning, except
  // a worker that said goodbye holding nothing (it left; nothing was lost).
  void LoseWorker(const std::string& peer, absl::string_view why, absl::Time now, bool said_goodbye = false);
  void CancelOnWorkers(uint64_t job_id);
  // Drops a finished job from every table (after its forgetting is durable).
  void DropJob(uint64_t job_id);
  void RememberIdempotencyKey(uint64_t job_id, const std::string& key);
  // Rewrites the journal as the records of the jobs it knows now, when dead
  // records (forgotten jobs) take more than the live ones plus 16 KiB.
  void MaybeCompactJournal();
  void Send(WorkerRecord& worker, v1::CoordinatorMessage& message, absl::Time now);
  Job* FindJob(uint64_t job_id) const;
  // `name`, or `name-N` for the least N >= 2 that no registered worker has.
  std::string UniqueWorkerId(const std::string& name) const;
  // Whether `worker` may run `spec`: it offers the kernel and has the labels.
  static bool CanRun(const WorkerRecord& worker, const v1::JobSpec& spec);
  absl::Status CheckLimits(const v1::JobSpec& spec) const;

  // Constant after construction.
  const SchedulerOptions options_;
  WorkerOutbox* const outbox_;
  JournalSink* const journal_;
  std::unique_ptr<ResultStore> own_results_;  // when none is given
  ResultStore* const results_;
  bool journal_failing_ = false;

  std::map<std::string, WorkerRecord> workers_;  // by routing id (nodes never move)
  absl::flat_hash_map<uint64_t, WorkerRecord*> by_number_;
  // A worker's id is its name (Hello.name), kept for its life; a name already
  // taken by a registered worker gets "-2", "-3"... (UniqueWorkerId).
  absl::flat_hash_map<std::string, uint64_t> number_by_id_;
  // Result bytes received since the last malloc_trim, and when that was.
  static constexpr uint64_t kTrimAfterResultBytes = 64ull << 20;
  uint64_t result_bytes_since_trim_ = 0;
  absl::Time last_trim_ = absl::InfinitePast();
  uint64_t next_worker_number_ = 1;
  uint64_t total_slots_ = 0;  // of registered workers that are not draining
  std::map<uint64_t, std::unique_ptr<Job>> jobs_;
  std::set<uint64_t> runnable_;  // unfinished jobs, in submission order

  // Dispatch state, kept current by UpdateReady / UpdateWorkerSets so that a
  // dispatch looks only at what changed, never at every worker or job.
  std::set<ReadyKey> ready_jobs_;                      // CPU jobs with a chunk to send
  absl::flat_hash_map<uint64_t, ReadyKey> ready_key_;  // their keys, by job id
  std::set<uint64_t> io_jobs_;                         // gRPC jobs with a chunk to send
  absl::flat_hash_set<uint64_t> io_room_waiters_;     // gRPC jobs held back by their bytes in flight
  // Workers by number: with credit and a free slot, or I/O credit; holding
  // more CPU chunks than slots; whose credit or load changed since the last dispatch.
  absl::btree_set<uint64_t> hungry_;
  absl::btree_set<uint64_t> reserve_holders_;
  absl::btree_set<uint64_t> touched_;
  bool new_work_ = false;  // a job started having chunks to send
  uint64_t next_steal_id_ = 1;
  uint64_t chunks_stolen_ = 0;
  Counters counters_;

  uint64_t next_job_id_ = 1;
  // Submits' idempotency keys, both ways, for jobs still known.
  absl::flat_hash_map<std::string, uint64_t> job_by_idempotency_key_;
  absl::flat_hash_map<uint64_t, std::string> idempotency_key_of_;
  absl::Time next_expiry_check_ = absl::InfinitePast();  // of --keep-finished
  absl::Time last_tick_ = absl::InfinitePast();
  bool dispatch_needed_ = false;
  uint64_t change_count_ = 0;
  uint64_t jobs_ended_count_ = 0;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_SCHEDULER_H_
