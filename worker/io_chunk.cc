// Implements io_chunk.h.
#include "worker/io_chunk.h"

#include <utility>

#include "common/items.h"

namespace drover {

IoChunk::IoChunk(v1::Chunk chunk, std::shared_ptr<std::atomic<bool>> cancelled)
    : chunk_(std::move(chunk)), cancelled_(std::move(cancelled)), count_(ChunkItems(chunk_).count()) {
  absl::MutexLock lock(&mu_);
  outputs_.resize(count_);
  errors_.resize(count_);
  tasks_.resize(count_);
  remaining_ = count_;
}

bool IoChunk::Record(uint32_t offset, std::string output, std::string error, v1::TaskInfo task) {
  absl::MutexLock lock(&mu_);
  outputs_[offset] = std::move(output);
  errors_[offset] = std::move(error);
  tasks_[offset] = std::move(task);
  return --remaining_ == 0;
}

v1::ChunkResult IoChunk::ToResult(const std::string& worker_name) {
  v1::ChunkResult result = ResultFor(chunk_, worker_name);
  v1::ChunkOutputs* out = result.mutable_outputs();
  ChunkItems items(chunk_);
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < outputs_.size(); ++i) {
    out->mutable_outputs()->append(outputs_[i]);
    out->add_output_sizes(static_cast<uint32_t>(outputs_[i].size()));
    std::string().swap(outputs_[i]);  // one copy of a large response at a time
    if (!errors_[i].empty()) {
      v1::ItemError* error = out->add_errors();
      error->set_offset(static_cast<uint32_t>(i));
      error->set_message(errors_[i]);
    }
    tasks_[i].set_item(std::string(items.Get(static_cast<uint32_t>(i))));
    *out->add_tasks() = std::move(tasks_[i]);
  }
  return result;
}

}  // namespace drover
