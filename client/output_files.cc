// Implements output_files.h.
#include "client/output_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace drover {
namespace {

constexpr size_t kMaxNameBytes = 100;

absl::Status WriteFile(const std::string& path, absl::string_view data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(error)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (close(fd) != 0) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

std::string SafeFileName(absl::string_view item) {
  std::string name(item.substr(0, kMaxNameBytes));
  for (char& c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  }
  if (name.empty() || name[0] == '.') name.insert(name.begin(), '_');
  return name;
}

absl::StatusOr<OutputFiles> OutputFiles::Open(std::string dir, std::string pattern) {
  if (!absl::StrContains(pattern, "{#}") && !absl::StrContains(pattern, "{}")) {
    return absl::InvalidArgumentError(absl::StrCat("--output-name '", pattern,
                                                   "' names every task's files alike: put {#} (the task number) "
                                                   "or {} (its item) in it"));
  }
  if (absl::StrContains(pattern, "/")) {
    return absl::InvalidArgumentError("--output-name is a file name, without '/' (--output-dir is the directory)");
  }
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::UnavailableError(absl::StrCat("--output-dir: cannot make ", dir, ": ", error.message()));
  return OutputFiles(std::move(dir), std::move(pattern));
}

absl::StatusOr<std::string> OutputFiles::Write(uint64_t task_number, absl::string_view item,
                                               absl::string_view stdout_text, absl::string_view stderr_text) {
  const std::string name =
      absl::StrReplaceAll(pattern_, {{"{#}", absl::StrCat(task_number)}, {"{}", SafeFileName(item)}});
  const std::string base = absl::StrCat(dir_, "/", name);
  const std::string out = base + ".out";
  if (absl::Status written = WriteFile(out, stdout_text); !written.ok()) return written;
  if (!stderr_text.empty()) {
    if (absl::Status written = WriteFile(base + ".err", stderr_text); !written.ok()) return written;
  }
  return out;
}

}  // namespace drover
