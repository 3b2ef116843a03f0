// Included once by each fuzz target (each is its own program): defines
// libFuzzer's start-up hook so that logs stay quiet. Dropped-input warnings
// and protobuf's own complaints about bad UTF-8 would otherwise fill gigabytes
// of log and slow the fuzzer several times over; drover's errors still print.
#ifndef DROVER_TESTS_FUZZ_QUIET_LOGS_H_
#define DROVER_TESTS_FUZZ_QUIET_LOGS_H_

#include <google/protobuf/stubs/logging.h>

#include "common/log.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  drover::InitLogging("fuzz", drover::LogLevel::kError);
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

#endif  // DROVER_TESTS_FUZZ_QUIET_LOGS_H_
