// Tests common/items.h: range parsing and chunk arithmetic.
#include "common/items.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(ParseRange, AcceptsStartColonEnd) {
  absl::StatusOr<v1::IntRange> range = ParseRange("-5:10");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(range->start(), -5);
  EXPECT_EQ(range->end(), 10);
}

TEST(ParseRange, RejectsMalformedAndBackwardsRanges) {
  for (const char* bad : {"", "5", "a:b", "1:", ":3", "1:2:3", "10:5"}) {
    absl::StatusOr<v1::IntRange> range = ParseRange(bad);
    EXPECT_EQ(range.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Chunks, CountAndBoundsCoverEveryItemOnce) {
  EXPECT_EQ(ChunkCount(0, 3), 0u);
  EXPECT_EQ(ChunkCount(10, 3), 4u);
  EXPECT_EQ(ChunkCount(9, 3), 3u);
  EXPECT_EQ(ChunkCount(5, 0), 5u);  // a chunk size of 0 means 1
  ChunkBounds last = BoundsOfChunk(10, 3, 3);
  EXPECT_EQ(last.first_index, 9u);
  EXPECT_EQ(last.count, 1u);
  ChunkBounds past = BoundsOfChunk(10, 3, 4);
  EXPECT_EQ(past.count, 0u);
}

TEST(Chunks, RangeChunkIsASubRange) {
  v1::ItemSource source;
  source.mutable_range()->set_start(100);
  source.mutable_range()->set_end(110);
  EXPECT_EQ(ItemCount(source), 10u);
  v1::Chunk chunk;
  FillChunkItems(source, BoundsOfChunk(10, 4, 2), &chunk);
  EXPECT_EQ(chunk.first_index(), 8u);
  EXPECT_EQ(chunk.range().start(), 108);
  EXPECT_EQ(chunk.range().end(), 110);
}

TEST(Chunks, InlineChunkCopiesItsItems) {
  v1::ItemSource source;
  for (const char* item : {"a", "b", "c", "d", "e"}) source.mutable_inline_()->add_items(item);
  v1::Chunk chunk;
  FillChunkItems(source, BoundsOfChunk(5, 2, 1), &chunk);
  ASSERT_EQ(chunk.inline_().items_size(), 2);
  EXPECT_EQ(chunk.inline_().items(0), "c");
  EXPECT_EQ(chunk.inline_().items(1), "d");
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

TEST(PackedItems, RoundTripAnyBytesAndRefuseWhatIsCutShort) {
  const std::vector<std::string> items = {"", "a", std::string(300, 'x'), std::string("\0nul\n", 5)};
  std::string packed;
  for (const std::string& item : items) AppendPackedItem(item, &packed);
  std::vector<std::string> back;
  ASSERT_TRUE(ForEachPackedItem(packed, [&](absl::string_view item) {
                back.emplace_back(item);
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(back, items);
  auto ignore = [](absl::string_view) { return absl::OkStatus(); };
  EXPECT_EQ(ForEachPackedItem(packed.substr(0, packed.size() - 1), ignore).code(),
            absl::StatusCode::kInvalidArgument);                                      // an item cut short
  EXPECT_EQ(ForEachPackedItem(std::string("\x80", 1), ignore).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ForEachPackedItem(std::string(10, '\xff'), ignore).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ForEachPackedItem(packed, [](absl::string_view) { return absl::CancelledError("stop"); }).code(),
            absl::StatusCode::kCancelled);  // the callback's error ends the walk
}

}  // namespace
}  // namespace drover
