// Implements grpc_codec.h with protobuf's descriptor pool and JSON utilities.
#include "common/grpc_codec.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace drover {
namespace {

constexpr char kUrlPrefix[] = "type.googleapis.com";

std::string Url(const google::protobuf::Descriptor* type) {
  return absl::StrCat(kUrlPrefix, "/", type->full_name());
}

}  // namespace

absl::StatusOr<std::pair<std::string, std::string>> SplitMethodPath(absl::string_view path) {
  absl::string_view rest = path;
  size_t slash = rest.rfind('/');
  if (!absl::ConsumePrefix(&rest, "/") || slash == 0 || slash == absl::string_view::npos ||
      slash + 1 >= path.size() || rest.find('/') != rest.rfind('/')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--method: want /package.Service/Method (e.g. /drover.echo.v1.Echo/Say), got '", path, "'"));
  }
  return std::make_pair(std::string(path.substr(1, slash - 1)), std::string(path.substr(slash + 1)));
}

GrpcCodec::~GrpcCodec() = default;

absl::StatusOr<std::shared_ptr<const GrpcCodec>> GrpcCodec::Create(const v1::GrpcSpec& spec) {
  absl::StatusOr<std::pair<std::string, std::string>> names = SplitMethodPath(spec.method());
  if (!names.ok()) return names.status();
  std::shared_ptr<GrpcCodec> codec(new GrpcCodec());
  codec->server_streaming_ = spec.server_streaming();
  if (spec.raw() && spec.descriptor_set().empty()) {
    codec->raw_ = true;
    return codec;
  }
  google::protobuf::FileDescriptorSet files;
  if (!files.ParseFromString(spec.descriptor_set())) {
    return absl::InvalidArgumentError("the descriptor set does not parse as a FileDescriptorSet");
  }
  codec->database_ = std::make_unique<google::protobuf::SimpleDescriptorDatabase>();
  for (const google::protobuf::FileDescriptorProto& file : files.file()) {
    if (!codec->database_->Add(file)) {
      return absl::InvalidArgumentError(absl::StrCat("the descriptor set has a bad or repeated file ", file.name()));
    }
  }
  codec->pool_ = std::make_unique<google::protobuf::DescriptorPool>(codec->database_.get());
  const google::protobuf::ServiceDescriptor* service = codec->pool_->FindServiceByName(names->first);
  if (service == nullptr) {
    std::vector<std::string> services;
    for (const google::protobuf::FileDescriptorProto& file : files.file()) {
      for (const auto& s : file.service()) {
        services.push_back(file.package().empty() ? s.name() : absl::StrCat(file.package(), ".", s.name()));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "no service ", names->first, " in the descriptors (or an import is missing: make them with "
        "protoc --include_imports); services there: ", services.empty() ? "none" : absl::StrJoin(services, ", ")));
  }
  const google::protobuf::MethodDescriptor* method = service->FindMethodByName(names->second);
  if (method == nullptr) {
    std::vector<std::string> methods;
    for (int i = 0; i < service->method_count(); ++i) methods.push_back(service->method(i)->name());
    return absl::InvalidArgumentError(absl::StrCat("service ", names->first, " has no method ", names->second,
                                                   " (it has: ", absl::StrJoin(methods, ", "), ")"));
  }
  if (method->client_streaming()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.method(), " is client-streaming; drover calls unary and server-streaming methods"));
  }
  codec->raw_ = spec.raw();
  codec->server_streaming_ = method->server_streaming();
  codec->request_url_ = Url(method->input_type());
  codec->response_url_ = Url(method->output_type());
  codec->factory_ = std::make_unique<google::protobuf::DynamicMessageFactory>(codec->pool_.get());
  codec->response_prototype_ = codec->factory_->GetPrototype(method->output_type());
  codec->resolver_.reset(google::protobuf::util::NewTypeResolverForDescriptorPool(kUrlPrefix, codec->pool_.get()));
  return codec;
}

absl::StatusOr<std::string> GrpcCodec::EncodeRequest(absl::string_view item) const {
  if (raw_) return std::string(item);
  std::string binary;
  auto status = google::protobuf::util::JsonToBinaryString(
      resolver_.get(), request_url_, google::protobuf::StringPiece(item.data(), item.size()), &binary);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("item is not a valid JSON ",
                                                   absl::StripPrefix(request_url_, "type.googleapis.com/"),
                                                   ": ", std::string(status.message())));
  }
  return binary;
}

absl::StatusOr<std::string> GrpcCodec::DecodeResponses(const std::vector<std::string>& responses) const {
  if (raw_) return absl::StrJoin(responses, "");
  std::vector<std::string> json(responses.size());
  for (size_t i = 0; i < responses.size(); ++i) {
    // The JSON printer stops quietly at malformed bytes; a full parse does not.
    std::unique_ptr<google::protobuf::Message> message(response_prototype_->New());
    if (!message->ParseFromString(responses[i])) {
      return absl::DataLossError(absl::StrCat("response ", i + 1, " does not parse as ",
                                              absl::StripPrefix(response_url_, "type.googleapis.com/")));
    }
    auto status = google::protobuf::util::BinaryToJsonString(resolver_.get(), response_url_, responses[i], &json[i]);
    if (!status.ok()) {
      return absl::DataLossError(absl::StrCat("response ", i + 1, " does not parse as ",
                                              absl::StripPrefix(response_url_, "type.googleapis.com/"), ": ",
                                              std::string(status.message())));
    }
  }
  if (!server_streaming_) return json.empty() ? std::string("{}") : json.front();
  return absl::StrCat("[", absl::StrJoin(json, ","), "]");
}

}  // namespace drover
