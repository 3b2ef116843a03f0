// Tests submit_intake.h: a Submit is measured from its encoding before it is
// parsed, and submits being parsed share a memory budget.
#include "coordinator/submit_intake.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "drover/v1/service.pb.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace drover {
namespace {

v1::SubmitRequest ListingItems(std::initializer_list<const char*> items) {
  v1::SubmitRequest request;
  request.mutable_spec()->set_kernel("echo");
  for (const char* item : items) request.mutable_spec()->mutable_items()->mutable_inline_()->add_items(item);
  return request;
}

absl::StatusOr<uint64_t> Measure(const std::string& encoded, ItemLimits limits) {
  google::protobuf::io::ArrayInputStream input(encoded.data(), static_cast<int>(encoded.size()));
  return MeasureSubmit(&input, limits);
}

TEST(MeasureSubmit, AcceptsARequestWithinTheLimitsAndEstimatesItsParse) {
  std::string encoded = ListingItems({"a", "bb", "ccc"}).SerializeAsString();
  absl::StatusOr<uint64_t> cost = Measure(encoded, {.max_items = 3, .max_item_bytes = 3});
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_GE(*cost, encoded.size() + 3 * 32);  // at least a std::string per item
}

TEST(MeasureSubmit, CountsItemsSplitOverSeveralFieldsAsAParseWouldMergeThem) {
  // Concatenated encodings merge: the spec, its items and the inline list repeat.
  std::string encoded = ListingItems({"a", "b"}).SerializeAsString() + ListingItems({"c", "d"}).SerializeAsString();
  v1::SubmitRequest merged;
  ASSERT_TRUE(merged.ParseFromString(encoded));
  ASSERT_EQ(merged.spec().items().inline_().items_size(), 4);
  EXPECT_TRUE(Measure(encoded, {.max_items = 4}).ok());
  absl::StatusOr<uint64_t> over = Measure(encoded, {.max_items = 3});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("--max-items"), std::string::npos) << over.status();
}

TEST(MeasureSubmit, NamesTheFirstItemOverTheSizeLimit) {
  absl::StatusOr<uint64_t> over = Measure(ListingItems({"ok", "too-long", "x"}).SerializeAsString(),
                                          {.max_item_bytes = 4});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("item 2 has 8 bytes"), std::string::npos) << over.status();
  EXPECT_NE(over.status().message().find("--max-item-bytes"), std::string::npos) << over.status();
}

TEST(MeasureSubmit, RefusesWhatIsNotAnEncodedSubmitRequest) {
  std::string valid = ListingItems({"a", "b"}).SerializeAsString();
  for (const std::string& bad : {valid.substr(0, valid.size() - 1),  // truncated
                                 std::string("\x0b\x0c", 2),          // a group
                                 std::string("\x00\x01", 2),          // field number 0
                                 std::string("\x0a\xff\xff\xff\xff\x0f", 6)}) {  // a length past the end
    EXPECT_EQ(Measure(bad, {}).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(MeasureSubmit, UnknownFieldsCountTowardsTheEstimate) {
  // 100,000 unknown varint fields would each become an entry when parsed.
  std::string unknown;
  for (int i = 0; i < 100000; ++i) unknown += std::string("\x78\x00", 2);  // field 15, varint 0
  absl::StatusOr<uint64_t> cost = Measure(unknown, {});
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_GE(*cost, 100000u * 32);
}

TEST(SubmitBudget, RefusesMoreThanItHoldsAndWaitsForRoom) {
  SubmitBudget budget(100);
  EXPECT_FALSE(budget.Acquire(101, absl::InfiniteFuture()));
  ASSERT_TRUE(budget.Acquire(60, absl::InfiniteFuture()));
  EXPECT_FALSE(budget.Acquire(60, absl::Now()));  // no room, no wait
  std::atomic<bool> acquired = false;
  std::thread second([&] { acquired = budget.Acquire(60, absl::Now() + absl::Seconds(60)); });
  EXPECT_FALSE(acquired);
  budget.Release(60);
  second.join();
  EXPECT_TRUE(acquired);
  budget.Release(60);
  EXPECT_TRUE(budget.Acquire(100, absl::Now()));
}

}  // namespace
}  // namespace drover
