// libFuzzer target: gRPC job items (JSON requests) and response bytes through
// GrpcCodec, with drover-echo's descriptors. An item that encodes must decode
// back to an equivalent request.
#include <google/protobuf/descriptor.pb.h>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/grpc_codec.h"
#include "echo.pb.h"
#include "tests/fuzz/quiet_logs.h"

namespace {

const drover::GrpcCodec& Codec(bool streaming) {
  static std::shared_ptr<const drover::GrpcCodec> codecs[2];
  if (codecs[streaming] == nullptr) {
    google::protobuf::FileDescriptorSet files;
    drover::echo::v1::EchoRequest::descriptor()->file()->CopyTo(files.add_file());
    drover::v1::GrpcSpec spec;
    spec.set_method(streaming ? "/drover.echo.v1.Echo/Stream" : "/drover.echo.v1.Echo/Say");
    spec.set_descriptor_set(files.SerializeAsString());
    codecs[streaming] = *drover::GrpcCodec::Create(spec);
  }
  return *codecs[streaming];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> request = Codec(false).EncodeRequest(text);
  if (request.ok()) {
    drover::echo::v1::EchoRequest parsed;
    if (!parsed.ParseFromString(*request)) __builtin_trap();
  }
  // The same bytes as responses of a unary and a streaming call.
  (void)Codec(false).DecodeResponses({text});
  (void)Codec(true).DecodeResponses({text, text});
  return 0;
}
