// One chunk of gRPC calls on the I/O engine: each call records its item's
// outcome here, and the last one turns the chunk into its ChunkResult.
#ifndef DROVER_WORKER_IO_CHUNK_H_
#define DROVER_WORKER_IO_CHUNK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "drover/v1/control.pb.h"

namespace drover {

// Thread-safe: calls of one chunk end on any engine thread.
class IoChunk {
 public:
  // `cancelled` is the job's flag: once set, the chunk's result is dropped.
  IoChunk(v1::Chunk chunk, std::shared_ptr<std::atomic<bool>> cancelled);

  const v1::Chunk& chunk() const { return chunk_; }
  uint32_t item_count() const { return count_; }
  bool cancelled() const { return cancelled_->load(); }

  // Records item `offset`'s outcome (`error` empty: it succeeded). Returns
  // true for the chunk's last item: the caller then takes ToResult().
  bool Record(uint32_t offset, std::string output, std::string error, v1::TaskInfo task);

  // Every item's outcome as one ChunkResult (outputs packed, errors, tasks).
  v1::ChunkResult ToResult(const std::string& worker_name);

 private:
  const v1::Chunk chunk_;
  const std::shared_ptr<std::atomic<bool>> cancelled_;
  const uint32_t count_;
  absl::Mutex mu_;
  std::vector<std::string> outputs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::TaskInfo> tasks_ ABSL_GUARDED_BY(mu_);
  uint32_t remaining_ ABSL_GUARDED_BY(mu_);
};

}  // namespace drover

#endif  // DROVER_WORKER_IO_CHUNK_H_
