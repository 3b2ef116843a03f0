// What the I/O engine's calls go to: one channel per target (shared by every
// job calling it) and, per job, a CallTarget with the job's codec, method,
// metadata and deadline. A job's descriptors arrive with its first chunk to
// this worker only; later chunks find the target here.
#ifndef DROVER_WORKER_IO_TARGETS_H_
#define DROVER_WORKER_IO_TARGETS_H_

#include <cstdint>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_codec.h"
#include "drover/v1/control.pb.h"

namespace drover {

// What every call of one job needs: constant once made (but `answered`),
// shared by its calls.
struct CallTarget {
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<const GrpcCodec> codec;  // null when `error` is set
  std::string error;                        // why no call can be made
  std::string method;
  std::vector<std::pair<std::string, std::string>> metadata;
  absl::Duration deadline = absl::InfiniteDuration();
  // A call whose response (a server-streaming call: all its responses) passes
  // this fails without a retry; also the channel's largest receive message.
  uint64_t max_response_bytes = 0;
  bool at_most_once = false;
  // Set once a server has answered a call of the job (any status but
  // UNAVAILABLE): its retries may then wait for it to be back.
  mutable std::atomic<bool> answered{false};
};

// Thread-safe, with its own lock, held only for map look-ups: building a codec
// (up to 8 MiB of descriptors) happens outside it.
class IoTargets {
 public:
  // The target for `chunk`'s job: made from the chunk when it carries the
  // descriptors (or is raw), else the one kept from the job's first chunk (a
  // target with an error if there is none).
  std::shared_ptr<const CallTarget> For(const v1::Chunk& chunk);
  // Forgets every job (the coordinator sends descriptors again after a re-registration).
  void ForgetJobs();

 private:
  using JobKey = std::pair<uint64_t, uint64_t>;  // (coordinator instance, job id)
  struct CachedTarget {
    std::shared_ptr<const CallTarget> target;
    absl::Time last_used;
  };
  std::shared_ptr<grpc::Channel> ChannelFor(const v1::GrpcSpec& spec);
  std::shared_ptr<CallTarget> Make(const v1::GrpcSpec& spec);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<JobKey, CachedTarget> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace drover

#endif  // DROVER_WORKER_IO_TARGETS_H_
