// Implements chunk_runner.h.
#include "worker/chunk_runner.h"

#include <charconv>
#include <exception>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"
#include "common/reduce.h"

namespace drover {
namespace {

// Calls the kernel; an exception becomes an error status.
absl::Status CallKernel(KernelFn fn, absl::string_view input, std::string* output) {
  try {
    return fn(std::string_view(input.data(), input.size()), output);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("kernel threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("kernel threw an exception that is not a std::exception");
  }
}

// Collects per-item outputs (or a reduction) into a ChunkOutputs.
class OutputCollector {
 public:
  OutputCollector(const v1::Chunk& chunk, v1::ChunkOutputs* out)
      : out_(out), reduce_(chunk.reduce()), reducer_(chunk.reduce()) {}

  void Item(uint32_t offset, KernelFn fn, absl::string_view input) {
    std::string* sink = reduce_ == v1::REDUCE_NONE ? out_->mutable_outputs() : &scratch_;
    if (reduce_ != v1::REDUCE_NONE) scratch_.clear();
    size_t before = sink->size();
    absl::Status status = CallKernel(fn, input, sink);
    if (status.ok() && reduce_ != v1::REDUCE_NONE) status = reducer_.AddOutput(scratch_);
    if (!status.ok()) {
      sink->resize(before);
      Fail(offset, std::string(status.message()));
    }
    if (reduce_ == v1::REDUCE_NONE) {
      uint32_t size = static_cast<uint32_t>(sink->size() - before);
      sizes_.push_back(size);
      any_output_ |= size != 0;
    }
  }

  void Fail(uint32_t offset, std::string message) {
    v1::ItemError* error = out_->add_errors();
    error->set_offset(offset);
    error->set_message(std::move(message));
  }

  void Finish() {
    if (reduce_ != v1::REDUCE_NONE) {
      *out_->mutable_partial() = reducer_.ToPartial();
    } else if (any_output_) {
      out_->mutable_output_sizes()->Add(sizes_.begin(), sizes_.end());
    }
  }

 private:
  v1::ChunkOutputs* out_;
  v1::Reduce reduce_;
  Reducer reducer_;
  std::string scratch_;
  std::vector<uint32_t> sizes_;
  bool any_output_ = false;
};

}  // namespace

v1::ChunkResult RunChunk(const KernelRegistry& registry, const v1::Chunk& chunk,
                         const std::atomic<bool>& cancelled) {
  v1::ChunkResult result;
  result.set_job_id(chunk.job_id());
  result.set_chunk_index(chunk.chunk_index());
  result.set_attempt(chunk.attempt());
  v1::ChunkOutputs* out = result.mutable_outputs();
  out->set_first_index(chunk.first_index());

  uint32_t count = 0;
  if (chunk.has_range()) {
    count = static_cast<uint32_t>(chunk.range().end() - chunk.range().start());
  } else if (chunk.has_inline_()) {
    count = static_cast<uint32_t>(chunk.inline_().items_size());
  }
  out->set_item_count(count);

  OutputCollector collector(chunk, out);
  const KernelRegistry::Kernel* kernel = registry.Find(chunk.kernel());
  if (kernel == nullptr) {
    std::string message = absl::StrCat("this worker has no kernel '", chunk.kernel(), "'");
    for (uint32_t i = 0; i < count; ++i) collector.Fail(i, message);
    collector.Finish();
    return result;
  }
  char digits[24];
  for (uint32_t i = 0; i < count; ++i) {
    if ((i & 63) == 0 && cancelled.load(std::memory_order_relaxed)) break;
    if (chunk.has_range()) {
      auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), chunk.range().start() + i);
      collector.Item(i, kernel->fn, absl::string_view(digits, end - digits));
    } else {
      collector.Item(i, kernel->fn, chunk.inline_().items(static_cast<int>(i)));
    }
  }
  collector.Finish();
  return result;
}

}  // namespace drover
