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

// A new random token (32 hex digits), for local mode and default tokens.
std::string NewToken();

// Secure by default on one machine: a coordinator on loopback given no token
// makes one and keeps it where the same user's CLI finds it (like Jupyter's
// runtime files): $XDG_STATE_HOME (else ~/.local/state)/drover/tokens/ADDRESS,
// mode 0600 in a 0700 directory. ADDRESS is "HOST:PORT" with "localhost" as
// 127.0.0.1. Returns "" when neither variable is set.
std::string DefaultTokenPath(const std::string& client_address);
// Writes `token` to `path` (creating its directories 0700; the file 0600,
// replaced atomically). Errors: kUnavailable saying what failed.
absl::Status WriteDefaultToken(const std::string& path, const std::string& token);
// The token kept for a coordinator at `client_address`, or "" if there is none.
std::string FindDefaultToken(const std::string& client_address);

}  // namespace drover

#endif  // DROVER_COMMON_TOKEN_H_
