// libFuzzer target: the text parsers of user input (ranges, arrays, 128-bit
// integers, placeholders) on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/items.h"
#include "common/reduce.h"
#include "tests/fuzz/quiet_logs.h"
#include "worker/chunk_runner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)drover::ParseRange(text);
  absl::StatusOr<drover::v1::IntRange> array = drover::ParseArray(text);
  if (array.ok()) {
    drover::v1::ItemSource source;
    *source.mutable_range() = *array;
    uint64_t count = drover::ItemCount(source);
    drover::v1::Chunk chunk;
    drover::FillChunkItems(source, drover::BoundsOfChunk(count, 7, count / 7), &chunk);
  }
  __int128 value = 0;
  if (drover::ParseInt128(text, &value).ok()) {
    __int128 again = 0;
    if (!drover::ParseInt128(drover::Int128ToString(value), &again).ok() || again != value) __builtin_trap();
  }
  drover::Reducer sum(drover::v1::REDUCE_SUM);
  (void)sum.AddOutput(text);
  (void)drover::ExpandPlaceholders(text, "item", 12, 3);
  return 0;
}
