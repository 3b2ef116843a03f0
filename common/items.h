// A job's items and how they split into chunks. Items are never materialised
// per job: chunk i is computed from the item source whenever it is needed.
#ifndef DROVER_COMMON_ITEMS_H_
#define DROVER_COMMON_ITEMS_H_

#include <cstdint>
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

// Sets `chunk`'s items (range or inline copy) and first_index for `bounds`.
void FillChunkItems(const v1::ItemSource& source, ChunkBounds bounds, v1::Chunk* chunk);

}  // namespace drover

#endif  // DROVER_COMMON_ITEMS_H_
