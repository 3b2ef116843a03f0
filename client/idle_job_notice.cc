// Implements idle_job_notice.h.
#include "client/idle_job_notice.h"

#include "absl/time/clock.h"
#include "common/job_state.h"

namespace drover {
namespace {
constexpr absl::Duration kPollEvery = absl::Seconds(1);
}  // namespace

IdleJobNotice::IdleJobNotice(Client* client, uint64_t job_id, FILE* out, absl::Duration after)
    : thread_([this, client, job_id, out, after] { Watch(client, job_id, out, after); }) {}

IdleJobNotice::~IdleJobNotice() {
  stop_.Notify();
  thread_.join();
}

void IdleJobNotice::Watch(Client* client, uint64_t job_id, FILE* out, absl::Duration after) {
  absl::Time idle_since = absl::Now();
  bool told = false;
  while (!stop_.WaitForNotificationWithTimeout(kPollEvery)) {
    absl::StatusOr<v1::JobStatus> status = client->GetJob(job_id);
    if (!status.ok()) continue;  // the waiting command reports its own errors
    const bool moving = IsFinished(status->state()) || status->done_items() > 0;
    if (moving || status->workers_able() > 0) {
      if (told) {
        std::fprintf(out, "drover: a worker that can run job %llu has joined\n",
                     static_cast<unsigned long long>(job_id));
        told = false;
      }
      if (moving) return;
      idle_since = absl::Now();
      continue;
    }
    if (!told && absl::Now() - idle_since >= after) {
      std::fprintf(out,
                   "drover: no connected worker can run job %llu (none is connected, or none has what it needs: "
                   "its kernel, --require labels, commands allowed, an I/O engine); still waiting. Start workers "
                   "that can, or look at their logs (`drover workers` lists who is connected)\n",
                   static_cast<unsigned long long>(job_id));
      told = true;
    }
  }
}

}  // namespace drover
