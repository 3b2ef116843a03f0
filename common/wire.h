// Encoding of the worker protocol's messages into ZeroMQ frames and back.
// A decode error is returned, never thrown; callers log it and drop the message.
#ifndef DROVER_COMMON_WIRE_H_
#define DROVER_COMMON_WIRE_H_

#include "absl/strings/string_view.h"

#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "drover/v1/control.pb.h"

namespace drover {

inline constexpr uint32_t kProtocolVersion = v1::PROTOCOL_VERSION_CURRENT;
// Largest ZeroMQ message either side accepts (ZMQ_MAXMSGSIZE): a bigger one
// makes ZeroMQ drop the connection, never the process.
inline constexpr int64_t kMaxFrameBytes = 1ll << 30;

// Serializes `message` (after stamping the protocol version) into a frame.
zmq::message_t EncodeFrame(v1::WorkerMessage& message);
zmq::message_t EncodeFrame(v1::CoordinatorMessage& message);

// Errors: kInvalidArgument for bytes that are not a message of the type;
// kFailedPrecondition for a message of another protocol version (the parsed
// message is still returned through `*out` so a Hello can be refused politely).
absl::Status DecodeFrame(const zmq::message_t& frame, v1::WorkerMessage* out);
absl::Status DecodeFrame(const zmq::message_t& frame, v1::CoordinatorMessage* out);

// Turns a zmq::error_t into a Status (kUnavailable: retry may help).
absl::Status ZmqErrorToStatus(const zmq::error_t& error, absl::string_view what);

}  // namespace drover

#endif  // DROVER_COMMON_WIRE_H_
