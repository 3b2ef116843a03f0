// Implements curve.h with libzmq's key functions.
#include "common/curve.h"

#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace drover {
namespace {

bool IsZ85Key(absl::string_view key) {
  if (key.size() != 40) return false;
  uint8_t decoded[32];
  std::string text(key);
  return zmq_z85_decode(decoded, text.c_str()) != nullptr;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteSecretFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::AlreadyExistsError(absl::StrCat(path, " exists; not overwriting it"));
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", path, ": ", strerror(errno)));
  }
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

std::string KeyToZ85(const unsigned char key[32]) {
  char text[41] = {};
  zmq_z85_encode(text, key, 32);
  return text;
}

absl::StatusOr<CurveKeyPair> WriteNewKeyPair(const std::string& prefix) {
  char public_key[41] = {};
  char secret_key[41] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return absl::InternalError("this libzmq cannot make CURVE keys");
  }
  CurveKeyPair pair{public_key, secret_key};
  absl::Status key = WriteSecretFile(
      prefix + ".key", absl::StrCat("# drover CURVE key pair: keep it secret\npublic = ", pair.public_key,
                                    "\nsecret = ", pair.secret_key, "\n"));
  if (!key.ok()) return key;
  absl::Status pub = WriteSecretFile(prefix + ".pub", absl::StrCat(pair.public_key, "\n"));
  if (!pub.ok()) return pub;
  return pair;
}

absl::StatusOr<CurveKeyPair> ReadKeyPair(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  CurveKeyPair pair;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "public")) {
      pair.public_key = std::string(absl::StripAsciiWhitespace(absl::StripPrefix(absl::StripAsciiWhitespace(line), "=")));
    } else if (absl::ConsumePrefix(&line, "secret")) {
      pair.secret_key = std::string(absl::StripAsciiWhitespace(absl::StripPrefix(absl::StripAsciiWhitespace(line), "=")));
    }
  }
  if (!IsZ85Key(pair.public_key) || !IsZ85Key(pair.secret_key)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a key pair made by `drover keygen`"));
  }
  char derived[41] = {};
  if (zmq_curve_public(derived, pair.secret_key.c_str()) != 0 || pair.public_key != derived) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the secret key does not match the public key"));
  }
  return pair;
}

absl::StatusOr<std::string> ReadPublicKey(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::string key(absl::StripAsciiWhitespace(*text));
  if (IsZ85Key(key)) return key;
  absl::StatusOr<CurveKeyPair> pair = ReadKeyPair(path);
  if (pair.ok()) return pair->public_key;
  return absl::InvalidArgumentError(absl::StrCat(path, " holds no public key (want a .pub file from `drover keygen`)"));
}

absl::StatusOr<std::set<std::string>> ReadAuthorizedKeys(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::set<std::string> keys;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++number;
    // Z85 uses '#', so only a line that starts with '#' is a comment; a key may
    // be followed by white space and a note.
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.size() > 40 && absl::ascii_isspace(static_cast<unsigned char>(line[40]))) line = line.substr(0, 40);
    if (!IsZ85Key(line)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": not a public key"));
    }
    keys.emplace(line);
  }
  return keys;
}

}  // namespace drover
