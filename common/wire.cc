// Implements wire.h.
#include "common/wire.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace drover {
namespace {

template <typename Message>
zmq::message_t Encode(Message& message) {
  message.set_protocol_version(kProtocolVersion);
  zmq::message_t frame(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(frame.data()));
  return frame;
}

template <typename Message>
absl::Status Decode(const zmq::message_t& frame, Message* out) {
  if (frame.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", frame.size(), " bytes is too large"));
  }
  if (!out->ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("undecodable message of ", frame.size(), " bytes"));
  }
  if (out->protocol_version() == 0) {
    return absl::InvalidArgumentError("message without a protocol version: not a drover message");
  }
  if (out->protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "peer speaks drover protocol version ", out->protocol_version(),
        "; this program speaks version ", kProtocolVersion));
  }
  return absl::OkStatus();
}

}  // namespace

zmq::message_t EncodeFrame(v1::WorkerMessage& message) { return Encode(message); }
zmq::message_t EncodeFrame(v1::CoordinatorMessage& message) { return Encode(message); }

absl::Status DecodeFrame(const zmq::message_t& frame, v1::WorkerMessage* out) {
  return Decode(frame, out);
}
absl::Status DecodeFrame(const zmq::message_t& frame, v1::CoordinatorMessage* out) {
  return Decode(frame, out);
}

absl::Status ZmqErrorToStatus(const zmq::error_t& error, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", error.what()));
}

}  // namespace drover
