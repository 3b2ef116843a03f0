// Implements items.h.
#include "common/items.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace drover {

absl::StatusOr<v1::IntRange> ParseRange(absl::string_view text) {
  size_t colon = text.find(':');
  int64_t start = 0;
  int64_t end = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(text.substr(0, colon), &start) ||
      !absl::SimpleAtoi(text.substr(colon + 1), &end)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad range '", text, "': want START:END with integers, e.g. 0:1000 for 0..999"));
  }
  if (start > end) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad range '", text, "': START must not be greater than END"));
  }
  v1::IntRange range;
  range.set_start(start);
  range.set_end(end);
  return range;
}

absl::StatusOr<v1::IntRange> ParseArray(absl::string_view text) {
  absl::string_view bounds = text;
  int64_t step = 1;
  if (size_t colon = text.find(':'); colon != absl::string_view::npos) {
    bounds = text.substr(0, colon);
    if (!absl::SimpleAtoi(text.substr(colon + 1), &step) || step < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad array '", text, "': STEP must be a whole number >= 1"));
    }
  }
  // The dash separating A and B (A itself may be negative).
  size_t dash = bounds.find('-', 1);
  int64_t first = 0;
  int64_t last = 0;
  if (dash == absl::string_view::npos || !absl::SimpleAtoi(bounds.substr(0, dash), &first) ||
      !absl::SimpleAtoi(bounds.substr(dash + 1), &last) || first > last || last == INT64_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad array '", text, "': want A-B or A-B:STEP with A <= B, e.g. 1-100:10"));
  }
  v1::IntRange range;
  range.set_start(first);
  range.set_end(last + 1);
  range.set_step(step);
  return range;
}

uint64_t ItemCount(const v1::ItemSource& source) {
  switch (source.source_case()) {
    case v1::ItemSource::kRange: {
      if (source.range().end() <= source.range().start()) return 0;
      uint64_t span = static_cast<uint64_t>(source.range().end()) -
                      static_cast<uint64_t>(source.range().start());
      uint64_t step = source.range().step() > 1 ? static_cast<uint64_t>(source.range().step()) : 1;
      return span / step + (span % step != 0 ? 1 : 0);
    }
    case v1::ItemSource::kInline:
      return static_cast<uint64_t>(source.inline_().items_size());
    case v1::ItemSource::kSpooled:
      return source.spooled().count();
    case v1::ItemSource::SOURCE_NOT_SET:
      return 0;
  }
  return 0;
}

uint64_t ChunkCount(uint64_t item_count, uint32_t chunk_size) {
  chunk_size = std::max<uint32_t>(chunk_size, 1);
  return item_count / chunk_size + (item_count % chunk_size != 0 ? 1 : 0);
}

ChunkBounds BoundsOfChunk(uint64_t item_count, uint32_t chunk_size, uint64_t chunk_index) {
  chunk_size = std::max<uint32_t>(chunk_size, 1);
  ChunkBounds bounds;
  bounds.first_index = chunk_index * chunk_size;
  if (bounds.first_index >= item_count) return bounds;
  bounds.count = static_cast<uint32_t>(std::min<uint64_t>(chunk_size, item_count - bounds.first_index));
  return bounds;
}

void FillChunkItems(const v1::ItemSource& source, ChunkBounds bounds, v1::Chunk* chunk) {
  chunk->set_first_index(bounds.first_index);
  switch (source.source_case()) {
    case v1::ItemSource::kRange: {
      int64_t step = source.range().step() > 1 ? source.range().step() : 1;
      // In 128 bits, and the end kept within the source's (no overflow past INT64_MAX).
      __int128 start = source.range().start() + static_cast<__int128>(bounds.first_index) * step;
      __int128 end = std::min<__int128>(start + static_cast<__int128>(bounds.count) * step, source.range().end());
      chunk->mutable_range()->set_start(static_cast<int64_t>(start));
      chunk->mutable_range()->set_end(static_cast<int64_t>(end));
      if (step > 1) chunk->mutable_range()->set_step(step);
      break;
    }
    case v1::ItemSource::kInline: {
      auto* items = chunk->mutable_inline_()->mutable_items();
      items->Reserve(static_cast<int>(bounds.count));
      for (uint32_t i = 0; i < bounds.count; ++i) {
        *items->Add() = source.inline_().items(static_cast<int>(bounds.first_index + i));
      }
      break;
    }
    case v1::ItemSource::kSpooled:  // on the coordinator's disk: it fills them in (ResultStore::ReadItems)
    case v1::ItemSource::SOURCE_NOT_SET:
      break;
  }
}

void AppendPackedItem(absl::string_view item, std::string* packed) {
  for (uint64_t n = item.size();; n >>= 7) {
    packed->push_back(static_cast<char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)));
    if (n < 0x80) break;
  }
  packed->append(item.data(), item.size());
}

absl::Status ForEachPackedItem(absl::string_view packed,
                               const std::function<absl::Status(absl::string_view item)>& each) {
  size_t at = 0;
  while (at < packed.size()) {
    uint64_t length = 0;
    int shift = 0;
    while (true) {
      if (at >= packed.size() || shift > 35) {
        return absl::InvalidArgumentError("packed items: a length is cut short or too long");
      }
      const auto byte = static_cast<unsigned char>(packed[at++]);
      length |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    if (length > packed.size() - at) return absl::InvalidArgumentError("packed items: an item runs past the end");
    if (absl::Status taken = each(packed.substr(at, length)); !taken.ok()) return taken;
    at += length;
  }
  return absl::OkStatus();
}

v1::ChunkResult ResultFor(const v1::Chunk& chunk, const std::string& worker) {
  v1::ChunkResult result;
  result.set_job_id(chunk.job_id());
  result.set_chunk_index(chunk.chunk_index());
  result.set_attempt(chunk.attempt());
  result.set_coordinator_instance(chunk.coordinator_instance());
  v1::ChunkOutputs* out = result.mutable_outputs();
  out->set_first_index(chunk.first_index());
  out->set_item_count(ChunkItems(chunk).count());
  out->set_worker(worker);
  return result;
}

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    int extra;
    uint32_t code;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { extra = 1; code = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; code = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; code = c & 0x07; }
    else return false;
    if (i + static_cast<size_t>(extra) >= n) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace drover
