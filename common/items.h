// A job's items and how they split into chunks. Items are never materialised
// per job: chunk i is computed from the item source whenever it is needed.
#ifndef DROVER_COMMON_ITEMS_H_
#define DROVER_COMMON_ITEMS_H_

#include <charconv>
#include <cstdint>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "drover/v1/common.pb.h"
#include "drover/v1/control.pb.h"

namespace drover {

// Parses "A:B" (integers, A <= B) as the range [A, B).
// Errors: kInvalidArgument, with a message saying what is wrong.
absl::StatusOr<v1::IntRange> ParseRange(absl::string_view text);

// Parses "A-B" or "A-B:STEP" (Slurm's job-array form: A, A+STEP, ... up to
// and including B; STEP >= 1) as a range. Errors: kInvalidArgument.
absl::StatusOr<v1::IntRange> ParseArray(absl::string_view text);

// Number of items the source yields.
uint64_t ItemCount(const v1::ItemSource& source);

// Number of chunks of `chunk_size` (>= 1) items covering `item_count` items.
uint64_t ChunkCount(uint64_t item_count, uint32_t chunk_size);

struct ChunkBounds {
  uint64_t first_index = 0;  // job-wide index of the chunk's first item
  uint32_t count = 0;
};

// Bounds of chunk `chunk_index` (< ChunkCount(...)); the last chunk may be short.
ChunkBounds BoundsOfChunk(uint64_t item_count, uint32_t chunk_size, uint64_t chunk_index);

// The start of `chunk`'s result, as every worker reports it: the chunk's job,
// index, attempt and coordinator instance, and outputs naming its first item,
// its item count and `worker`.
v1::ChunkResult ResultFor(const v1::Chunk& chunk, const std::string& worker);

// SubmitStreamRequest.packed_items: each item as a varint length, then its bytes.
void AppendPackedItem(absl::string_view item, std::string* packed);
// Calls `each` with every item of `packed`, in order, stopping at its first
// error. Errors: kInvalidArgument when `packed` is not items so packed.
absl::Status ForEachPackedItem(absl::string_view packed,
                               const std::function<absl::Status(absl::string_view item)>& each);

// Sets `chunk`'s items (range or inline copy) and first_index for `bounds`.
void FillChunkItems(const v1::ItemSource& source, ChunkBounds bounds, v1::Chunk* chunk);

// The items of a chunk, one at a time, without materialising a range.
// `chunk` must outlive it. Not thread-safe (Get reuses a buffer).
class ChunkItems {
 public:
  explicit ChunkItems(const v1::Chunk& chunk) : chunk_(chunk) {
    if (chunk.has_range()) {
      v1::ItemSource source;
      *source.mutable_range() = chunk.range();
      count_ = static_cast<uint32_t>(ItemCount(source));
      step_ = chunk.range().step() > 1 ? chunk.range().step() : 1;
    } else if (chunk.has_inline_()) {
      count_ = static_cast<uint32_t>(chunk.inline_().items_size());
    }
  }
  uint32_t count() const { return count_; }
  // Valid until the next call.
  absl::string_view Get(uint32_t i) {
    if (!chunk_.has_range()) return chunk_.inline_().items(static_cast<int>(i));
    auto [end, ec] = std::to_chars(digits_, digits_ + sizeof(digits_),
                                   chunk_.range().start() + static_cast<int64_t>(i) * step_);
    return absl::string_view(digits_, static_cast<size_t>(end - digits_));
  }

 private:
  const v1::Chunk& chunk_;
  uint32_t count_ = 0;
  int64_t step_ = 1;
  char digits_[24];
};

// True when `text` is valid UTF-8 (what a proto3 string field may hold).
bool IsValidUtf8(absl::string_view text);

}  // namespace drover

#endif  // DROVER_COMMON_ITEMS_H_
