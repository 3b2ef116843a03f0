// Turns the items of a gRPC job into request bytes and responses into its
// outputs: JSON through the message types of a FileDescriptorSet (protobuf's
// JSON mapping), or raw bytes. Used by the worker's I/O engine, and by the
// client to check a method before it submits.
#ifndef DROVER_COMMON_GRPC_CODEC_H_
#define DROVER_COMMON_GRPC_CODEC_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "drover/v1/common.pb.h"

namespace google::protobuf {
class DescriptorPool;
class DynamicMessageFactory;
class Message;
class SimpleDescriptorDatabase;
namespace util {
class TypeResolver;
}
}  // namespace google::protobuf

namespace drover {

// Calls of a gRPC job in flight per worker when its spec does not say.
inline constexpr uint32_t kDefaultGrpcConcurrency = 256;
// A call's largest response (GrpcSpec.max_response_bytes): the default and the most allowed.
inline constexpr uint64_t kDefaultGrpcMaxResponse = 16ull << 20;
inline constexpr uint64_t kMaxGrpcResponseLimit = 1ull << 30;
// The largest response a call of `spec` may get (its max_response_bytes, or the default).
inline uint64_t MaxResponseBytes(const v1::GrpcSpec& spec) {
  return std::min(spec.max_response_bytes() == 0 ? kDefaultGrpcMaxResponse : spec.max_response_bytes(),
                  kMaxGrpcResponseLimit);
}
// A call's deadline when the job gives none (the CLI's --deadline default).
inline constexpr absl::Duration kDefaultGrpcDeadline = absl::Seconds(60);

// Immutable once made; thread-safe.
class GrpcCodec {
 public:
  // Reads the spec's method and descriptor set. Errors (kInvalidArgument):
  // a method not of the form /package.Service/Method, a descriptor set that
  // does not parse or lacks an import, a service or method it does not have
  // (the message lists what it has), a client-streaming method.
  static absl::StatusOr<std::shared_ptr<const GrpcCodec>> Create(const v1::GrpcSpec& spec);
  ~GrpcCodec();

  // A request from one item. Errors: kInvalidArgument naming the JSON problem.
  absl::StatusOr<std::string> EncodeRequest(absl::string_view item) const;
  // One task's output from its responses, in order: the response as JSON, or
  // a JSON array of them for a server-streaming method; raw: concatenated.
  // Errors: kDataLoss when a response does not parse as the response type.
  absl::StatusOr<std::string> DecodeResponses(const std::vector<std::string>& responses) const;

  bool server_streaming() const { return server_streaming_; }
  const std::string& request_type() const { return request_url_; }

 private:
  GrpcCodec() = default;

  bool raw_ = false;
  bool server_streaming_ = false;
  std::string request_url_;
  std::string response_url_;
  std::unique_ptr<google::protobuf::SimpleDescriptorDatabase> database_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  const google::protobuf::Message* response_prototype_ = nullptr;  // owned by factory_
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
};

// "/package.Service/Method" -> {"package.Service", "Method"}.
// Errors: kInvalidArgument.
absl::StatusOr<std::pair<std::string, std::string>> SplitMethodPath(absl::string_view path);

}  // namespace drover

#endif  // DROVER_COMMON_GRPC_CODEC_H_
