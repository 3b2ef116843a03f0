// Tests common/endpoint.h.
#include "common/endpoint.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Endpoint, HostAndPortBecomeZmqEndpoints) {
  EXPECT_EQ(*ToZmqEndpoint("node7", 7341), "tcp://node7:7341");
  EXPECT_EQ(*ToZmqEndpoint("10.0.0.2:9000", 7341), "tcp://10.0.0.2:9000");
  EXPECT_EQ(*ToZmqEndpoint("ipc:///tmp/x", 7341), "ipc:///tmp/x");
  EXPECT_EQ(*ToGrpcTarget("[::1]:80", 7340), "[::1]:80");
  EXPECT_EQ(*ToGrpcTarget("unix:/tmp/s", 7340), "unix:/tmp/s");
}

TEST(Endpoint, BadPortsAreRejected) {
  EXPECT_EQ(ToZmqEndpoint("host:notaport", 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToZmqEndpoint("host:70000", 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToGrpcTarget(":80", 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Endpoint, LoopbackIsRecognised) {
  EXPECT_TRUE(IsLoopbackAddress("tcp://127.0.0.1:1"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:7340"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:7340"));
  EXPECT_FALSE(IsLoopbackAddress("tcp://0.0.0.0:7341"));
  EXPECT_FALSE(IsLoopbackAddress("10.1.2.3:7340"));
}

}  // namespace
}  // namespace drover
