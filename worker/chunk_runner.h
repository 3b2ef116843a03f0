// Runs one chunk's items through its kernel and builds the chunk's result.
#ifndef DROVER_WORKER_CHUNK_RUNNER_H_
#define DROVER_WORKER_CHUNK_RUNNER_H_

#include <atomic>

#include "drover/v1/control.pb.h"
#include "worker/kernel_registry.h"

namespace drover {

// Runs every item of `chunk` and returns its result. Items that fail (kernel
// error, exception, unknown kernel, non-integer output under a reduction) are
// recorded as errors; running never fails as a whole. If `*cancelled` becomes
// true the run stops early and the (partial) result must be discarded.
// Thread-safe: any number of threads may run chunks at once.
v1::ChunkResult RunChunk(const KernelRegistry& registry, const v1::Chunk& chunk,
                         const std::atomic<bool>& cancelled);

}  // namespace drover

#endif  // DROVER_WORKER_CHUNK_RUNNER_H_
