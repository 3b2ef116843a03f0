// The parts of a job spec that need the network: a gRPC method's descriptors
// from the server's reflection service, and the items of --items-from JOB.
#ifndef DROVER_CLIENT_JOB_INPUTS_H_
#define DROVER_CLIENT_JOB_INPUTS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/job_options.h"
#include "drover/v1/service.pb.h"

namespace drover {

// Completes `spec` (from BuildJobSpec): fetches the descriptors of a gRPC
// job without --proto-set by reflection, checks the method against them and
// marks it server-streaming if it is; fills in the items of --items-from
// from `coordinator` (waiting for that job to finish). `coordinator` may be
// null when items_from is not set.
// Errors: kInvalidArgument (unknown service or method, a client-streaming
// method, a source job whose results were streamed), kUnavailable (the target
// or coordinator cannot be reached), kNotFound (no such source job).
absl::Status PrepareJobSpec(const JobOptions& options, Client* coordinator, v1::JobSpec* spec);

// Asks the server at `call.target()` (its reflection service) for the file
// defining `service` and every file it imports, as a serialized
// FileDescriptorSet. Errors: kUnavailable, kNotFound (no such service),
// kUnimplemented (the server has no reflection service).
absl::StatusOr<std::string> FetchDescriptorSet(const v1::GrpcSpec& call, const std::string& service,
                                               absl::Duration timeout);

}  // namespace drover

#endif  // DROVER_CLIENT_JOB_INPUTS_H_
