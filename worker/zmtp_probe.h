// Asks a ZeroMQ endpoint which security mechanism it speaks, by reading the
// start of its ZMTP 3 greeting over a plain socket.
//
// A CURVE worker whose coordinator speaks NULL (or the reverse) usually learns
// so from libzmq's handshake events, but when the peer closes first the event
// carries no detail (the reset discards the greeting). The probe makes the
// worker's error say which side lacks CURVE in every case.
#ifndef DROVER_WORKER_ZMTP_PROBE_H_
#define DROVER_WORKER_ZMTP_PROBE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace drover {

// Connects to `endpoint` ("tcp://HOST:PORT" or "ipc://PATH"), sends the ZMTP
// signature and major version 3, and returns the mechanism name the peer
// announces ("NULL", "PLAIN", "CURVE"). Never sends a mechanism itself, so
// the peer sees a connection that closed during its greeting.
// Errors: kUnavailable when nothing answers within `timeout`, kInvalidArgument
// for other transports, kFailedPrecondition when the peer does not speak ZMTP 3.
absl::StatusOr<std::string> PeerZmtpMechanism(absl::string_view endpoint, absl::Duration timeout);

}  // namespace drover

#endif  // DROVER_WORKER_ZMTP_PROBE_H_
