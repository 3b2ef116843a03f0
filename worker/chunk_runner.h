// Runs one chunk's items, through a kernel or as command tasks, and builds the
// chunk's result.
#ifndef DROVER_WORKER_CHUNK_RUNNER_H_
#define DROVER_WORKER_CHUNK_RUNNER_H_

#include <atomic>
#include <string>
#include <vector>

#include "drover/v1/control.pb.h"
#include "worker/kernel_registry.h"
#include "worker/process_groups.h"

namespace drover {

class PythonInterpreter;

// Where a chunk runs. `groups` may be null for kernel-only use.
struct RunContext {
  const KernelRegistry* registry = nullptr;
  ProcessGroups* groups = nullptr;
  std::string worker_name;
  int slot = 1;  // 1-based, for the {%} placeholder
  // The Python interpreter program for Python calls (empty: none here), and
  // the slot's own interpreter (set by the slot's thread).
  std::string python;
  PythonInterpreter* interpreter = nullptr;
};

// Runs every item of `chunk` and returns its result. Items that fail (kernel
// error or exception, unknown kernel, non-integer output under a reduction,
// a command that fails, cannot start or times out, a Python call that raises
// or whose interpreter dies) are recorded as errors;
// running never fails as a whole. If `cancelled` becomes true the run stops
// early (running commands are killed) and the result must be discarded.
// Thread-safe: any number of threads may run chunks at once.
v1::ChunkResult RunChunk(const RunContext& context, const v1::Chunk& chunk,
                         const std::atomic<bool>& cancelled);

// Replaces {} (item), {#} (task number), {%} (slot) and GNU Parallel's path
// forms of the item in `arg`: {.} (without extension), {/} (basename), {//}
// (directory), {/.} (basename without extension). With `columns` (--colsep,
// several input sources), {N} is column N from 1 (empty past the last).
// Whether `arg` holds a placeholder for the item (without one, the item is
// appended as the command's last argument); `columns`: {N} counts too.
bool UsesItem(absl::string_view arg, bool columns = false);
std::string ExpandPlaceholders(const std::string& arg, absl::string_view item, uint64_t task_number,
                               int slot, const std::vector<absl::string_view>* columns = nullptr);

}  // namespace drover

#endif  // DROVER_WORKER_CHUNK_RUNNER_H_
