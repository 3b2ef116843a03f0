// Tests common/grpc_codec.h with the descriptors of drover-echo's service.
#include "common/grpc_codec.h"

#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include "echo.pb.h"

namespace drover {
namespace {

v1::GrpcSpec EchoSpec(const std::string& method) {
  google::protobuf::FileDescriptorSet files;
  drover::echo::v1::EchoRequest::descriptor()->file()->CopyTo(files.add_file());
  v1::GrpcSpec spec;
  spec.set_method(method);
  spec.set_descriptor_set(files.SerializeAsString());
  return spec;
}

TEST(GrpcCodec, JsonItemsBecomeRequestsAndResponsesBecomeJson) {
  auto codec = GrpcCodec::Create(EchoSpec("/drover.echo.v1.Echo/Say"));
  ASSERT_TRUE(codec.ok()) << codec.status();
  EXPECT_FALSE((*codec)->server_streaming());
  absl::StatusOr<std::string> request = (*codec)->EncodeRequest(R"({"message":"hi","latencyMs":5})");
  ASSERT_TRUE(request.ok()) << request.status();
  drover::echo::v1::EchoRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(*request));
  EXPECT_EQ(parsed.message(), "hi");
  EXPECT_EQ(parsed.latency_ms(), 5u);

  drover::echo::v1::EchoReply reply;
  reply.set_message("hi");
  reply.set_attempt(2);
  absl::StatusOr<std::string> json = (*codec)->DecodeResponses({reply.SerializeAsString()});
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json, R"({"message":"hi","attempt":2})");
}

TEST(GrpcCodec, AServerStreamingResultIsAJsonArray) {
  auto codec = GrpcCodec::Create(EchoSpec("/drover.echo.v1.Echo/Stream"));
  ASSERT_TRUE(codec.ok()) << codec.status();
  EXPECT_TRUE((*codec)->server_streaming());
  drover::echo::v1::EchoReply first, second;
  first.set_index(0);
  second.set_index(1);
  absl::StatusOr<std::string> json =
      (*codec)->DecodeResponses({first.SerializeAsString(), second.SerializeAsString()});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, R"([{},{"index":1}])");
  EXPECT_EQ(*(*codec)->DecodeResponses({}), "[]");
}

TEST(GrpcCodec, BadItemsAndResponsesSayWhatIsWrong) {
  auto codec = GrpcCodec::Create(EchoSpec("/drover.echo.v1.Echo/Say"));
  ASSERT_TRUE(codec.ok());
  for (const char* bad : {"not json", R"({"message": )", R"({"mesage":"typo"})", R"({"latencyMs":"many"})", ""}) {
    absl::StatusOr<std::string> request = (*codec)->EncodeRequest(bad);
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(request.status().message().find("not a valid JSON drover.echo.v1.EchoRequest"), std::string::npos)
        << request.status();
  }
  absl::StatusOr<std::string> garbage = (*codec)->DecodeResponses({std::string("\x0a\x05" "ab")});  // a string longer than the bytes
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
}

TEST(GrpcCodec, UnknownServicesAndMethodsListWhatThereIs) {
  auto service = GrpcCodec::Create(EchoSpec("/drover.echo.v1.Nope/Say"));
  EXPECT_EQ(service.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(service.status().message().find("services there: drover.echo.v1.Echo"), std::string::npos)
      << service.status();
  auto method = GrpcCodec::Create(EchoSpec("/drover.echo.v1.Echo/Shout"));
  EXPECT_NE(method.status().message().find("(it has: Say, Stream, Stats)"), std::string::npos) << method.status();
  for (const char* path : {"Say", "/Say", "drover.echo.v1.Echo/Say", "/a/b/c", "/svc/"}) {
    EXPECT_EQ(GrpcCodec::Create(EchoSpec(path)).status().code(), absl::StatusCode::kInvalidArgument) << path;
  }
  v1::GrpcSpec junk = EchoSpec("/drover.echo.v1.Echo/Say");
  junk.set_descriptor_set("\x0a\xff");
  EXPECT_EQ(GrpcCodec::Create(junk).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcCodec, RawItemsAndResponsesPassThrough) {
  v1::GrpcSpec spec;
  spec.set_method("/any.Service/Method");
  spec.set_raw(true);
  auto codec = GrpcCodec::Create(spec);
  ASSERT_TRUE(codec.ok());
  EXPECT_EQ(*(*codec)->EncodeRequest(std::string("\x00\x01", 2)), std::string("\x00\x01", 2));
  EXPECT_EQ(*(*codec)->DecodeResponses({"ab", "cd"}), "abcd");
}

}  // namespace
}  // namespace drover
