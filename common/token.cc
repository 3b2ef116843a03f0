// Implements token.h.
#include "common/token.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace drover {

absl::StatusOr<std::string> ReadToken(const std::string& file) {
  if (file.empty()) {
    const char* env = std::getenv("DROVER_TOKEN");
    return std::string(env != nullptr ? absl::StripAsciiWhitespace(env) : "");
  }
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the token file ", file));
  std::stringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("the token file ", file, " is empty"));
  return token;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string NewToken() {
  std::random_device random;  // the kernel's random source
  std::string token;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&token, absl::StrFormat("%08x", random()));
  return token;
}

std::string DefaultTokenPath(const std::string& client_address) {
  std::string base;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state == '/') {
    base = state;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    base = absl::StrCat(home, "/.local/state");
  } else {
    return "";
  }
  std::string address = client_address;
  if (absl::StartsWith(address, "localhost:")) address = absl::StrCat("127.0.0.1", address.substr(9));
  for (char& c : address) {
    if (c == '/') c = '_';
  }
  return absl::StrCat(base, "/drover/tokens/", address);
}

absl::Status WriteDefaultToken(const std::string& path, const std::string& token) {
  // Directories this makes are private (0700); existing ones are left as they are.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::vector<std::filesystem::path> missing;
  for (std::filesystem::path p = parent; !p.empty() && !std::filesystem::exists(p); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::UnavailableError(absl::StrCat("cannot create ", it->string()));
    }
  }
  const std::string temp = absl::StrCat(path, ".", getpid());
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, token.data(), token.size()) != static_cast<ssize_t>(token.size()) || fsync(fd) != 0) {
    if (fd >= 0) close(fd);
    unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write the token file ", path));
  }
  close(fd);
  if (rename(temp.c_str(), path.c_str()) != 0) {
    unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write the token file ", path));
  }
  return absl::OkStatus();
}

std::string FindDefaultToken(const std::string& client_address) {
  const std::string path = DefaultTokenPath(client_address);
  if (path.empty()) return "";
  absl::StatusOr<std::string> token = ReadToken(path);
  return token.ok() ? *token : "";
}

}  // namespace drover
