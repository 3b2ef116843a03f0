// Tests client/output_files.h: names made safe, patterns checked.
#include "client/output_files.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(SafeFileName, KeepsAnItemInOneDirectory) {
  EXPECT_EQ(SafeFileName("page.html"), "page.html");
  EXPECT_EQ(SafeFileName("https://example.org/a/b"), "https:__example.org_a_b");
  EXPECT_EQ(SafeFileName(".."), "_..");
  EXPECT_EQ(SafeFileName(".hidden"), "_.hidden");
  EXPECT_EQ(SafeFileName(std::string("a\0b\nc", 5)), "a_b_c");
  EXPECT_EQ(SafeFileName(""), "_");
  EXPECT_EQ(SafeFileName(std::string(300, 'x')).size(), 100u);
}

TEST(OutputFiles, APatternMustTellTasksApartAndStayInItsDirectory) {
  EXPECT_EQ(OutputFiles::Open("/tmp", "out").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OutputFiles::Open("/tmp", "a/{#}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(OutputFiles::Open("/tmp", "{}-{#}").ok());
}

}  // namespace
}  // namespace drover
