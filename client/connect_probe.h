// Why a gRPC channel to the coordinator did not connect: a raw probe of the
// address, so that the CLI can say "TLS expected" rather than "unreachable".
#ifndef DROVER_CLIENT_CONNECT_PROBE_H_
#define DROVER_CLIENT_CONNECT_PROBE_H_

#include <string>

#include "absl/time/time.h"

namespace drover {

enum class ProbeResult {
  kNothingListens,  // connection refused, or no such socket file
  kPlaintextGrpc,   // answered an HTTP/2 preface with a SETTINGS frame
  kNotPlaintext,    // accepted a connection but did not speak plaintext HTTP/2
                    // (a TLS server answers with an alert or closes)
  kUnknown,         // the host did not answer in time, or cannot be resolved
};

// Connects to `target` ("HOST:PORT", "[V6]:PORT" or "unix:PATH"), sends
// HTTP/2's client preface and reads the first bytes of the answer, giving up
// after `timeout` in all. Blocking; any thread.
ProbeResult ProbeGrpcServer(const std::string& target, absl::Duration timeout);

}  // namespace drover

#endif  // DROVER_CLIENT_CONNECT_PROBE_H_
