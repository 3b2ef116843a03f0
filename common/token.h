// The bearer token that clients show the coordinator: read from a file or
// from $DROVER_TOKEN, never from the command line (it would show in `ps`).
#ifndef DROVER_COMMON_TOKEN_H_
#define DROVER_COMMON_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"

namespace drover {

// The token in `file` (surrounding white space removed) if `file` is not
// empty, else $DROVER_TOKEN, else "" (no token). Errors: kNotFound (cannot
// read the file), kInvalidArgument (the file is empty).
absl::StatusOr<std::string> ReadToken(const std::string& file);

// The whole text of a file (certificates, keys). Errors: kNotFound.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// A new random token (32 hex digits), for local mode.
std::string NewToken();

}  // namespace drover

#endif  // DROVER_COMMON_TOKEN_H_
