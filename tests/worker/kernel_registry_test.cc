// Tests worker/kernel_registry.h: built-ins and plugin loading.
#include "worker/kernel_registry.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(KernelRegistry, HasTheBuiltins) {
  KernelRegistry registry = KernelRegistry::WithBuiltins();
  for (const char* name : {"noop", "echo", "sleep_ms", "sum_squares", "count_primes"}) {
    EXPECT_NE(registry.Find(name), nullptr) << name;
  }
  EXPECT_EQ(registry.Find("nope"), nullptr);
}

TEST(KernelRegistry, LoadsTheExamplePlugin) {
  KernelRegistry registry = KernelRegistry::WithBuiltins();
  ASSERT_TRUE(registry.LoadPlugin(DROVER_EXAMPLE_PLUGIN).ok());
  const KernelRegistry::Kernel* reverse = registry.Find("reverse");
  ASSERT_NE(reverse, nullptr);
  std::string out;
  ASSERT_TRUE(reverse->fn("abc", &out).ok());
  EXPECT_EQ(out, "cba");
}

TEST(KernelRegistry, MissingFileIsNotFound) {
  KernelRegistry registry;
  absl::Status status = registry.LoadPlugin("/nonexistent/libx.so");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("/nonexistent/libx.so"), std::string::npos);
}

TEST(KernelRegistry, ALibraryWithoutRegistrationIsRefused) {
  KernelRegistry registry;
  absl::Status status = registry.LoadPlugin(DROVER_NOT_A_PLUGIN);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not a drover plugin"), std::string::npos);
}

TEST(KernelRegistry, ADuplicateKernelNameIsRefused) {
  KernelRegistry registry = KernelRegistry::WithBuiltins();
  ASSERT_TRUE(registry.LoadPlugin(DROVER_THROWING_PLUGIN).ok());
  KernelRegistry again = KernelRegistry::WithBuiltins();
  again.Add("throw_on", registry.Find("echo")->fn, "taken");
  EXPECT_EQ(again.LoadPlugin(DROVER_THROWING_PLUGIN).code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace drover
