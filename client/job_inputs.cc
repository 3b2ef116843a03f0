// Implements job_inputs.h: server reflection (grpc.reflection.v1alpha) and
// items taken from another job's results.
#include "client/job_inputs.h"

#include <cstdio>
#include <deque>

#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_codec.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace drover {
namespace {

namespace reflection = ::grpc::reflection::v1alpha;

constexpr absl::Duration kReflectionTimeout = absl::Seconds(10);

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Items are the outputs of the source job's successful tasks, in order.
absl::Status FillItemsFrom(Client* coordinator, uint64_t source, v1::JobSpec* spec) {
  absl::StatusOr<v1::JobStatus> status = coordinator->GetJob(source);
  if (!status.ok()) return status.status();
  auto* items = spec->mutable_items()->mutable_inline_()->mutable_items();
  uint64_t failed = 0;
  absl::Status streamed = coordinator->StreamResults(source, /*ordered=*/true, [&](const v1::ChunkOutputs& chunk) {
    std::vector<bool> ok(chunk.item_count(), true);
    for (const v1::ItemError& error : chunk.errors()) {
      if (error.offset() < chunk.item_count()) ok[error.offset()] = false;
    }
    const bool sized = chunk.output_sizes_size() == static_cast<int>(chunk.item_count());
    size_t offset = 0;
    for (uint32_t i = 0; i < chunk.item_count(); ++i) {
      size_t size = sized ? chunk.output_sizes(static_cast<int>(i)) : 0;
      if (!ok[i]) {
        ++failed;
      } else {
        std::string item = chunk.outputs().substr(offset, size);
        if (!item.empty() && item.back() == '\n') item.pop_back();
        *items->Add() = std::move(item);
      }
      offset += size;
    }
    return true;
  });
  if (!streamed.ok()) {
    return absl::Status(streamed.code(), absl::StrCat("--items-from ", source, ": ", streamed.message()));
  }
  if (failed > 0) {
    std::fprintf(stderr, "drover: %llu task(s) of job %llu failed; their outputs are not items of this job\n",
                 static_cast<unsigned long long>(failed), static_cast<unsigned long long>(source));
  }
  if (items->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--items-from ", source, ": that job has no successful task"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> FetchDescriptorSet(const v1::GrpcSpec& call, const std::string& service,
                                               absl::Duration timeout) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (call.tls()) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = call.ca_pem();
    credentials = grpc::SslCredentials(options);
  }
  auto stub = reflection::ServerReflection::NewStub(grpc::CreateChannel(call.target(), credentials));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  auto stream = stub->ServerReflectionInfo(&context);

  google::protobuf::FileDescriptorSet files;
  absl::flat_hash_set<std::string> have;
  std::deque<std::string> wanted;
  reflection::ServerReflectionRequest request;
  request.set_file_containing_symbol(service);
  absl::Status problem;
  while (true) {
    reflection::ServerReflectionResponse response;
    if (!stream->Write(request) || !stream->Read(&response)) break;
    if (response.has_error_response()) {
      problem = absl::NotFoundError(absl::StrCat("the server at ", call.target(), " does not know ",
                                                 request.has_file_containing_symbol() ? "service " : "file ",
                                                 request.has_file_containing_symbol() ? service : request.file_by_filename(),
                                                 ": ", response.error_response().error_message()));
      break;
    }
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      if (!file.ParseFromString(bytes) || !have.insert(file.name()).second) continue;
      for (const std::string& dependency : file.dependency()) wanted.push_back(dependency);
      *files.add_file() = std::move(file);
    }
    while (!wanted.empty() && have.contains(wanted.front())) wanted.pop_front();
    if (wanted.empty()) break;
    request.set_file_by_filename(wanted.front());
  }
  stream->WritesDone();
  grpc::Status finished = stream->Finish();
  if (!problem.ok()) return problem;
  if (!finished.ok()) {
    absl::Status status = FromGrpc(finished);
    return absl::Status(status.code(), absl::StrCat("asking ", call.target(), " for its descriptors by reflection: ",
                                                    status.message()));
  }
  if (files.file_size() == 0) {
    return absl::NotFoundError(absl::StrCat("the server at ", call.target(), " sent no descriptors for ", service));
  }
  return files.SerializeAsString();
}

absl::Status PrepareJobSpec(const JobOptions& options, Client* coordinator, v1::JobSpec* spec) {
  if (spec->has_grpc() && !spec->grpc().has_http()) {
    v1::GrpcSpec* call = spec->mutable_grpc();
    if (call->descriptor_set().empty()) {
      absl::StatusOr<std::pair<std::string, std::string>> names = SplitMethodPath(call->method());
      if (!names.ok()) return names.status();
      absl::StatusOr<std::string> descriptors = FetchDescriptorSet(*call, names->first, kReflectionTimeout);
      if (descriptors.ok()) {
        call->set_descriptor_set(*std::move(descriptors));
      } else if (!call->raw()) {
        return absl::Status(descriptors.status().code(),
                            absl::StrCat(descriptors.status().message(),
                                         " (give the method's descriptors with --proto-set FILE, made by protoc "
                                         "--include_imports --descriptor_set_out=FILE)"));
      }
      // Raw items without descriptors: the method is called as unary.
    }
    if (!call->descriptor_set().empty()) {
      absl::StatusOr<std::shared_ptr<const GrpcCodec>> codec = GrpcCodec::Create(*call);
      if (!codec.ok()) return codec.status();
      call->set_server_streaming((*codec)->server_streaming());
    }
  }
  if (options.items_from != 0) {
    if (coordinator == nullptr) {
      return absl::InvalidArgumentError("--items-from takes another job's results from a coordinator; "
                                        "it does not go with --local");
    }
    if (absl::Status filled = FillItemsFrom(coordinator, options.items_from, spec); !filled.ok()) return filled;
  }
  return absl::OkStatus();
}

}  // namespace drover
