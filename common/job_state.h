// Facts about a job's state (drover.v1.JobState) that every component uses.
#ifndef DROVER_COMMON_JOB_STATE_H_
#define DROVER_COMMON_JOB_STATE_H_

#include "drover/v1/service.pb.h"

namespace drover {

// SUCCEEDED, FAILED or CANCELLED: the job will not change any more.
inline bool IsFinished(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED || state == v1::JOB_STATE_CANCELLED;
}

}  // namespace drover

#endif  // DROVER_COMMON_JOB_STATE_H_
