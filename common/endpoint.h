// Turns what users type for addresses into ZeroMQ and gRPC endpoints.
#ifndef DROVER_COMMON_ENDPOINT_H_
#define DROVER_COMMON_ENDPOINT_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace drover {

inline constexpr int kDefaultWorkerPort = 7341;  // ZeroMQ, coordinator <-> workers
inline constexpr int kDefaultClientPort = 7340;  // gRPC, clients -> coordinator

// "HOST", "HOST:PORT", or a full ZeroMQ endpoint ("tcp://...", "ipc://...")
// -> a ZeroMQ endpoint. A missing port means `default_port`.
// Errors: kInvalidArgument for an empty host or a bad port.
absl::StatusOr<std::string> ToZmqEndpoint(absl::string_view address, int default_port);

// "HOST", "HOST:PORT", or "unix:PATH" -> a gRPC target.
absl::StatusOr<std::string> ToGrpcTarget(absl::string_view address, int default_port);

// True when a listen address (ZeroMQ endpoint or gRPC address) is on loopback.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace drover

#endif  // DROVER_COMMON_ENDPOINT_H_
