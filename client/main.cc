// drover: the command-line client. See cli.h.
#include <cstdlib>

#include <grpc/support/log.h>

#include "absl/synchronization/mutex.h"
#include "client/cli.h"

namespace {

void DropGrpcLog(gpr_log_func_args*) {}

}  // namespace

int main(int argc, char** argv) {
  // Lock-order checking is for tests; it costs time on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // gRPC's own log lines (handshake failures...) are not for the user's
  // terminal: the CLI says what went wrong. GRPC_VERBOSITY=debug shows them.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DropGrpcLog);
  return drover::RunCli(argc, argv);
}
