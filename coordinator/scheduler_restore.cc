// The Scheduler's restart: jobs and cancellations come back from the journal,
// kept results from the result store; chunks not recorded as done run again.
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/scheduler.h"

namespace drover {

void Scheduler::Restore(const std::vector<v1::JournalRecord>& records, absl::Time now) {
  std::vector<const v1::JobCancelled*> cancellations;
  std::vector<uint64_t> forgotten;
  uint64_t old_results = 0;
  for (const v1::JournalRecord& record : records) {
    switch (record.record_case()) {
      case v1::JournalRecord::kSubmitted: {
        const v1::JobSubmitted& submitted = record.submitted();
        if (jobs_.contains(submitted.job_id()) || !ValidateJobSpec(submitted.spec()).ok()) {
          LogWarning(absl::StrCat("journal: skipped a bad record for job ", submitted.job_id()));
          continue;
        }
        auto job = std::make_unique<Job>(submitted.job_id(), submitted.spec(),
                                         absl::FromUnixMillis(submitted.submitted_unix_ms()), results_);
        if (!job->finished()) runnable_.insert(submitted.job_id());
        jobs_.emplace(submitted.job_id(), std::move(job));
        RememberIdempotencyKey(submitted.job_id(), submitted.idempotency_key());
        next_job_id_ = std::max(next_job_id_, submitted.job_id() + 1);
        break;
      }
      case v1::JournalRecord::kDone:
        ++old_results;
        break;
      case v1::JournalRecord::kCancelled:
        cancellations.push_back(&record.cancelled());
        break;
      case v1::JournalRecord::kForgotten:
        forgotten.push_back(record.forgotten().job_id());
        break;
      case v1::JournalRecord::kNextJobId:
        next_job_id_ = std::max(next_job_id_, record.next_job_id());
        break;
      case v1::JournalRecord::RECORD_NOT_SET:
        break;
    }
  }
  for (uint64_t id : forgotten) {
    if (jobs_.contains(id)) DropJob(id);
  }
  if (old_results > 0) {
    LogWarning(absl::StrCat("journal: ", old_results, " result(s) in the journal itself (written before "
                            "results had their own store) are not read; those chunks run again"));
  }
  // Kept results, from the store (before cancellations, which stop a job taking results).
  uint64_t results = 0;
  for (auto& [id, job_ptr] : jobs_) {
    Job* job = job_ptr.get();
    if (job->stream_results()) continue;
    absl::Status replayed = results_->Replay(id, [&](uint64_t offset, v1::ChunkOutputs&& outputs) {
      job->RestoreResult(offset, std::move(outputs), now);
      ++results;
    });
    if (!replayed.ok()) LogError(absl::StrCat("job ", id, ": results not restored: ", replayed.message()));
    if (job->finished()) {
      runnable_.erase(id);
      // Its last result was its end: --keep-finished counts from there, restarts or not.
      if (absl::Time last = results_->LastWritten(id); last != absl::InfinitePast()) job->RestoreFinishedAt(last);
    }
  }
  for (const v1::JobCancelled* cancelled : cancellations) {
    if (Job* job = FindJob(cancelled->job_id())) {
      (void)job->Cancel(absl::FromUnixMillis(cancelled->unix_ms()));
      runnable_.erase(job->id());
    }
  }
  for (uint64_t id : std::vector<uint64_t>(runnable_.begin(), runnable_.end())) {
    Job* job = FindJob(id);
    // (A stream-mode job is cancelled below: its reader is gone.)
    if (!job->stream_results() && job->spec().has_grpc() && job->spec().grpc().at_most_once()) {
      // Which of its calls were made before the restart is not known: none is made twice.
      job->FailRemaining("outcome unknown (--at-most-once: not made again): the coordinator restarted while the "
                         "job ran",
                         now);
      if (job->finished()) runnable_.erase(id);
    }
  }
  for (uint64_t id : results_->StoredJobs()) {
    if (!jobs_.contains(id)) results_->Forget(id);  // a job the journal does not know (any more)
  }
  std::vector<uint64_t> orphaned;
  for (uint64_t id : runnable_) {
    if (FindJob(id)->stream_results()) orphaned.push_back(id);
  }
  for (uint64_t id : orphaned) {
    LogInfo(absl::StrCat("job ", id, " streamed its results to a client that is gone; cancelled"));
    (void)Cancel(id, now);
  }
  LogInfo(absl::StrCat("restored ", jobs_.size(), " job(s) and ", results, " kept chunk result(s); ",
                       runnable_.size(), " job(s) to finish"));
  MaybeCompactJournal();  // restart time follows live state, not history
  for (uint64_t id : runnable_) UpdateReady(FindJob(id));
  dispatch_needed_ = true;
  ++change_count_;
}

}  // namespace drover
