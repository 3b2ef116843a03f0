// drover: the command-line client. See cli.h.
#include "absl/synchronization/mutex.h"
#include "client/cli.h"

int main(int argc, char** argv) {
  // Lock-order checking is for tests; it costs time on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return drover::RunCli(argc, argv);
}
