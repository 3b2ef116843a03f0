// CURVE keys for the worker port (ZeroMQ's CurveZMQ): key files written by
// `drover keygen` and the coordinator's list of authorised worker keys. Keys
// are 40-character Z85 text.
#ifndef DROVER_COMMON_CURVE_H_
#define DROVER_COMMON_CURVE_H_

#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace drover {

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// Writes PREFIX.key (the pair) and PREFIX.pub (the public key), both mode
// 0600, refusing to overwrite. Errors: kAlreadyExists, kPermissionDenied,
// kInternal.
absl::StatusOr<CurveKeyPair> WriteNewKeyPair(const std::string& prefix);

// Reads a .key file. Errors: kNotFound, kInvalidArgument (not a key pair, or a
// secret key that does not match its public key).
absl::StatusOr<CurveKeyPair> ReadKeyPair(const std::string& path);

// Reads a public key from a .pub file (or the public half of a .key file).
absl::StatusOr<std::string> ReadPublicKey(const std::string& path);

// Reads an authorised-keys file: one Z85 public key per line, optionally
// followed by white space and a note; lines starting with '#' are comments. Errors: kNotFound, kInvalidArgument naming the bad line.
absl::StatusOr<std::set<std::string>> ReadAuthorizedKeys(const std::string& path);

// The Z85 text of a 32-byte binary key.
std::string KeyToZ85(const unsigned char key[32]);

}  // namespace drover

#endif  // DROVER_COMMON_CURVE_H_
