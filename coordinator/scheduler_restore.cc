// The Scheduler's journal replay: jobs, results and cancellations come back
// at start; chunks not recorded as done run again.
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/scheduler.h"

namespace drover {

void Scheduler::Restore(const std::vector<v1::JournalRecord>& records, absl::Time now) {
  uint64_t results = 0;
  for (const v1::JournalRecord& record : records) {
    switch (record.record_case()) {
      case v1::JournalRecord::kSubmitted: {
        const v1::JobSubmitted& submitted = record.submitted();
        if (jobs_.contains(submitted.job_id()) || !ValidateJobSpec(submitted.spec()).ok()) {
          LogWarning(absl::StrCat("journal: skipped a bad record for job ", submitted.job_id()));
          continue;
        }
        auto job = std::make_unique<Job>(submitted.job_id(), submitted.spec(),
                                         absl::FromUnixMillis(submitted.submitted_unix_ms()));
        if (!job->finished()) runnable_.insert(submitted.job_id());
        jobs_.emplace(submitted.job_id(), std::move(job));
        next_job_id_ = std::max(next_job_id_, submitted.job_id() + 1);
        break;
      }
      case v1::JournalRecord::kDone: {
        Job* job = FindJob(record.done().job_id());
        if (job == nullptr) continue;
        v1::ChunkResult result;
        result.set_job_id(record.done().job_id());
        result.set_chunk_index(record.done().chunk_index());
        *result.mutable_outputs() = record.done().outputs();
        job->RestoreResult(std::move(result), now);
        ++results;
        if (job->finished()) runnable_.erase(job->id());
        break;
      }
      case v1::JournalRecord::kCancelled:
        if (Job* job = FindJob(record.cancelled().job_id())) {
          (void)job->Cancel(absl::FromUnixMillis(record.cancelled().unix_ms()));
          runnable_.erase(job->id());
        }
        break;
      case v1::JournalRecord::RECORD_NOT_SET:
        break;
    }
  }
  std::vector<uint64_t> orphaned;
  for (uint64_t id : runnable_) {
    if (FindJob(id)->stream_results()) orphaned.push_back(id);
  }
  for (uint64_t id : orphaned) {
    LogInfo(absl::StrCat("job ", id, " streamed its results to a client that is gone; cancelled"));
    (void)Cancel(id, now);
  }
  LogInfo(absl::StrCat("restored ", jobs_.size(), " job(s) and ", results, " chunk result(s) from the journal; ",
                       runnable_.size(), " job(s) to finish"));
  for (uint64_t id : runnable_) UpdateReady(FindJob(id));
  dispatch_needed_ = true;
  ++change_count_;
}

}  // namespace drover
