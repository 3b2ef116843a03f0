// Tells a user waiting on a job when no connected worker can run it (none is
// connected, or none has its kernel, labels, commands or an I/O engine), so a
// `drover run` or `drover wait` never waits in silence for workers that are
// not coming (a Slurm worker step that died, a typo in --require).
#ifndef DROVER_CLIENT_IDLE_JOB_NOTICE_H_
#define DROVER_CLIENT_IDLE_JOB_NOTICE_H_

#include <cstdint>
#include <cstdio>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace drover {

// Watches job `job_id` on its own thread from construction to destruction:
// once the job has gone `after` with no worker able to run it and nothing done,
// prints one line to `out` (and one more if such a worker joins later).
// `client` must outlive this object.
class IdleJobNotice {
 public:
  IdleJobNotice(Client* client, uint64_t job_id, FILE* out, absl::Duration after = absl::Seconds(10));
  ~IdleJobNotice();
  IdleJobNotice(const IdleJobNotice&) = delete;
  IdleJobNotice& operator=(const IdleJobNotice&) = delete;

 private:
  void Watch(Client* client, uint64_t job_id, FILE* out, absl::Duration after);

  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace drover

#endif  // DROVER_CLIENT_IDLE_JOB_NOTICE_H_
