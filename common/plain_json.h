// A protobuf message as one line of plain JSON for scripts and the dashboard
// (the CLI's `--json`, the dashboard's API).
#ifndef DROVER_COMMON_PLAIN_JSON_H_
#define DROVER_COMMON_PLAIN_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace drover {

// Protobuf's JSON mapping (lowerCamelCase names, bytes as base64), with what
// scripts expect instead of two of its rules: 64-bit integers are plain
// numbers, not strings (drover's ids, counts and microsecond times stay below
// 2^53, so they are exact in any JSON reader), and an enum is its short
// lowercase name (JOB_STATE_SUCCEEDED -> "succeeded"). Fields come in their
// declared order; every scalar field is printed, set or not; an unset message
// field, oneof member or `optional` field is left out.
std::string PlainJson(const google::protobuf::Message& message);

}  // namespace drover

#endif  // DROVER_COMMON_PLAIN_JSON_H_
