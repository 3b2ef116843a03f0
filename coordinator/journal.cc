// Implements journal.h.
#include "coordinator/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace drover {
namespace {

constexpr uint32_t kMaxRecordBytes = 1u << 30;

uint32_t Checksum(const char* data, size_t size) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

absl::Status IoError(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string message = absl::StrCat("cannot ", what, " ", path, ": ", strerror(err));
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(message);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& dir,
                                                       std::vector<v1::JournalRecord>* records) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return IoError("create state directory", dir);
  std::string path = dir + "/journal";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("open journal", path);

  std::string data;
  char buffer[1 << 16];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) data.append(buffer, static_cast<size_t>(n));
  if (n < 0) {
    close(fd);
    return IoError("read journal", path);
  }
  size_t at = 0;
  std::string problem;
  while (at < data.size()) {
    if (data.size() - at < 8) {
      problem = "a torn record header";
      break;
    }
    uint32_t length = GetU32(data.data() + at);
    uint32_t checksum = GetU32(data.data() + at + 4);
    if (length > kMaxRecordBytes || data.size() - at - 8 < length) {
      problem = "a torn record";
      break;
    }
    const char* payload = data.data() + at + 8;
    v1::JournalRecord record;
    if (Checksum(payload, length) != checksum || !record.ParseFromArray(payload, static_cast<int>(length))) {
      problem = "a record with a bad checksum";
      break;
    }
    records->push_back(std::move(record));
    at += 8 + length;
  }
  if (!problem.empty()) {
    LogWarning(absl::StrCat("journal ", path, ": ", problem, " at byte ", at, "; cutting ",
                            data.size() - at, " byte(s) back to the last good record (", records->size(),
                            " kept)"));
    if (ftruncate(fd, static_cast<off_t>(at)) != 0 || fdatasync(fd) != 0) {
      absl::Status error = IoError("cut the journal", path);
      close(fd);
      return error;
    }
  }
  if (lseek(fd, static_cast<off_t>(at), SEEK_SET) < 0) {
    absl::Status error = IoError("seek in journal", path);
    close(fd);
    return error;
  }
  return std::unique_ptr<Journal>(new Journal(path, fd, static_cast<off_t>(at)));
}

Journal::~Journal() {
  (void)Sync();
  close(fd_);
}

void Journal::Append(const v1::JournalRecord& record) {
  if (record.ByteSizeLong() > kMaxRecordBytes) {
    LogError(absl::StrCat("journal: a record of ", record.ByteSizeLong(), " bytes is over the limit; not written"));
    return;
  }
  std::string payload = record.SerializeAsString();
  PutU32(&buffer_, static_cast<uint32_t>(payload.size()));
  PutU32(&buffer_, Checksum(payload.data(), payload.size()));
  buffer_.append(payload);
}

absl::Status Journal::Sync() {
  if (buffer_.empty()) return absl::OkStatus();
  size_t written = 0;
  while (written < buffer_.size()) {
    ssize_t n = pwrite(fd_, buffer_.data() + written, buffer_.size() - written,
                       size_ + static_cast<off_t>(written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status error = IoError("write journal", path_);
      // Never leave half a record behind.
      if (ftruncate(fd_, size_) != 0) LogError(absl::StrCat("cannot cut back ", path_));
      return error;
    }
    written += static_cast<size_t>(n);
  }
  if (fdatasync(fd_) != 0) {
    absl::Status error = IoError("sync journal", path_);
    if (ftruncate(fd_, size_) != 0) LogError(absl::StrCat("cannot cut back ", path_));
    return error;
  }
  size_ += static_cast<off_t>(written);
  buffer_.clear();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LoadOrCreateInstance(const std::string& dir) {
  std::string path = dir + "/instance";
  uint64_t instance = 0;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[32] = {};
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(text, n)), &instance) &&
        instance != 0) {
      return instance;
    }
  }
  instance = absl::Uniform<uint64_t>(absl::BitGen(), 1, UINT64_MAX);
  std::string text = absl::StrCat(instance, "\n");
  fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || fsync(fd) != 0) {
    absl::Status error = IoError("write", path);
    if (fd >= 0) close(fd);
    return error;
  }
  close(fd);
  return instance;
}

}  // namespace drover
