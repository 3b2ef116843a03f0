// Implements chunk_sizer.h.
#include "coordinator/chunk_sizer.h"

#include <algorithm>
#include <cmath>

namespace drover {

void ChunkSizer::Record(uint64_t items, absl::Duration run_time) {
  if (items == 0) return;
  measured_items_ += items;
  measured_ns_ += std::max(0.0, absl::ToDoubleNanoseconds(run_time));
}

uint64_t ChunkSizer::NextSize(uint64_t remaining, uint64_t slots) const {
  if (remaining == 0) return 0;
  if (!automatic()) return std::min<uint64_t>(fixed_size_, remaining);
  if (!measured()) return 1;
  const double item_ns = std::max(1.0, measured_ns_ / static_cast<double>(measured_items_));
  const double by_time = absl::ToDoubleNanoseconds(kTargetChunkTime) / item_ns;
  uint64_t size = static_cast<uint64_t>(std::clamp(by_time, 1.0, static_cast<double>(kMaxAutoChunk)));
  const uint64_t fair_share = (remaining + 2 * slots - 1) / (2 * std::max<uint64_t>(slots, 1));
  return std::clamp<uint64_t>(std::min(size, fair_share), 1, remaining);
}

uint32_t ChunkSizer::PrefetchPerSlot(uint64_t size, uint64_t slots) const {
  if (!measured()) return 0;
  const double cap = static_cast<double>(
      std::min<uint64_t>(kMaxPrefetchPerSlot, kMaxJobReserve / std::max<uint64_t>(slots, 1)));
  const double chunk_ns = measured_ns_ / static_cast<double>(measured_items_) * static_cast<double>(size);
  if (chunk_ns <= 0) return static_cast<uint32_t>(cap);
  const double fits = absl::ToDoubleNanoseconds(kPrefetchTime) / chunk_ns;
  return static_cast<uint32_t>(std::clamp(std::floor(fits), 0.0, cap));
}

}  // namespace drover
