// Tests client/job_options.h: what users type becomes the right JobSpec, and
// mistakes get messages that say what to do.
#include "client/job_options.h"

#include <gtest/gtest.h>

#include <sstream>

namespace drover {
namespace {

TEST(BuildJobSpec, PositionalItemsAreInlineItems) {
  JobOptions options;
  options.kernel = "echo";
  options.items = {"a b", "-x", "ü"};
  options.chunk = 2;
  std::istringstream in;
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->items().inline_().items_size(), 3);
  EXPECT_EQ(spec->items().inline_().items(1), "-x");
  EXPECT_EQ(spec->chunk_size(), 2u);
}

TEST(BuildJobSpec, EachLineFromStdin) {
  JobOptions options;
  options.kernel = "echo";
  options.each_line = "-";
  std::istringstream in("one\r\ntwo\n\nfour");
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->items().inline_().items_size(), 4);
  EXPECT_EQ(spec->items().inline_().items(0), "one");
  EXPECT_EQ(spec->items().inline_().items(2), "");
  EXPECT_EQ(spec->items().inline_().items(3), "four");
}

TEST(BuildJobSpec, RangeAndReduce) {
  JobOptions options;
  options.kernel = "sum_squares";
  options.range = "0:1000000000";
  options.reduce = "sum";
  std::istringstream in;
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->items().range().end(), 1000000000);
  EXPECT_EQ(spec->reduce(), v1::REDUCE_SUM);
}

TEST(BuildJobSpec, MistakesSayWhatToDo) {
  std::istringstream in;
  JobOptions none;
  none.kernel = "echo";
  absl::Status status = BuildJobSpec(none, in).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--range"), std::string::npos);

  JobOptions two = none;
  two.items = {"a"};
  two.range = "0:3";
  EXPECT_EQ(BuildJobSpec(two, in).status().code(), absl::StatusCode::kInvalidArgument);

  JobOptions backwards = none;
  backwards.range = "5:1";
  EXPECT_EQ(BuildJobSpec(backwards, in).status().code(), absl::StatusCode::kInvalidArgument);

  JobOptions no_kernel;
  no_kernel.items = {"a"};
  EXPECT_NE(BuildJobSpec(no_kernel, in).status().message().find("--kernel"), std::string::npos);

  JobOptions missing_file = none;
  missing_file.each_line = "/nonexistent/items.txt";
  EXPECT_EQ(BuildJobSpec(missing_file, in).status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(ParseReduce("avg").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace drover
