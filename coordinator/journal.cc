// Implements journal.h.
#include "coordinator/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/record_file.h"

namespace drover {

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& dir,
                                                       std::vector<v1::JournalRecord>* records) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return IoError("create state directory", dir);
  // One coordinator per state dir: a lock held for the journal's life.
  const std::string lock_path = dir + "/lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return IoError("open", lock_path);
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    ssize_t n = pread(lock_fd, holder, sizeof(holder) - 1, 0);
    close(lock_fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "another coordinator (pid ", n > 0 ? absl::StripAsciiWhitespace(holder) : "unknown",
        ") is using the state directory ", dir, "; stop it first, or give this one another --state-dir"));
  }
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(lock_fd, 0) != 0 || pwrite(lock_fd, pid.data(), pid.size(), 0) < 0) {
    LogWarning(IoError("write", lock_path).ToString());  // the lock holds; only the pid is missing
  }
  std::string path = dir + "/journal";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    close(lock_fd);
    return IoError("open journal", path);
  }

  std::string data;
  char buffer[1 << 16];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) data.append(buffer, static_cast<size_t>(n));
  if (n < 0) {
    absl::Status error = IoError("read journal", path);
    close(fd);
    close(lock_fd);
    return error;
  }
  size_t at = 0;
  std::string problem;
  while (at < data.size()) {
    absl::string_view payload;
    problem = NextRecord(data, &at, &payload);
    if (!problem.empty()) break;
    v1::JournalRecord record;
    if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      at -= kRecordHeaderBytes + payload.size();
      problem = "a record that does not parse";
      break;
    }
    records->push_back(std::move(record));
  }
  if (!problem.empty()) {
    LogWarning(absl::StrCat("journal ", path, ": ", problem, " at byte ", at, "; cutting ",
                            data.size() - at, " byte(s) back to the last good record (", records->size(),
                            " kept)"));
    if (ftruncate(fd, static_cast<off_t>(at)) != 0 || fdatasync(fd) != 0) {
      absl::Status error = IoError("cut the journal", path);
      close(fd);
      close(lock_fd);
      return error;
    }
  }
  if (lseek(fd, static_cast<off_t>(at), SEEK_SET) < 0) {
    absl::Status error = IoError("seek in journal", path);
    close(fd);
    close(lock_fd);
    return error;
  }
  unlink((dir + "/journal.tmp").c_str());  // a compaction that did not finish
  return std::unique_ptr<Journal>(new Journal(dir, fd, lock_fd, static_cast<off_t>(at)));
}

Journal::~Journal() {
  (void)Sync();
  close(fd_);
  close(lock_fd_);
}

absl::Status Journal::Append(const v1::JournalRecord& record) {
  if (record.ByteSizeLong() > kMaxRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a journal record of ", record.ByteSizeLong(),
                                                   " bytes is over the limit of ", kMaxRecordBytes));
  }
  AppendRecord(record.SerializeAsString(), &buffer_);
  return absl::OkStatus();
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

absl::Status Journal::Rewrite(const std::function<bool(v1::JournalRecord*)>& next) {
  if (!buffer_.empty()) return absl::FailedPreconditionError("the journal has records not yet synced");
  const std::string temporary = dir_ + "/journal.tmp";
  int fd = open(temporary.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("create", temporary);
  absl::Status status;
  std::string chunk;
  off_t size = 0;
  auto flush = [&] {
    for (size_t done = 0; done < chunk.size() && status.ok();) {
      ssize_t n = write(fd, chunk.data() + done, chunk.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) status = IoError("write", temporary);
      done += n > 0 ? static_cast<size_t>(n) : 0;
    }
    size += static_cast<off_t>(chunk.size());
    chunk.clear();
  };
  v1::JournalRecord record;
  while (status.ok() && next(&record)) {
    AppendRecord(record.SerializeAsString(), &chunk);
    record.Clear();
    if (chunk.size() >= (1u << 20)) flush();
  }
  if (status.ok()) flush();
  if (status.ok() && fsync(fd) != 0) status = IoError("sync", temporary);
  if (status.ok() && rename(temporary.c_str(), path_.c_str()) != 0) status = IoError("rename", temporary);
  if (!status.ok()) {
    close(fd);
    unlink(temporary.c_str());
    return status;
  }
  // The rename is durable once the directory is synced.
  int directory = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory >= 0) {
    if (fsync(directory) != 0) LogWarning(IoError("sync", dir_).ToString());
    close(directory);
  }
  close(fd_);
  fd_ = fd;
  size_ = size;
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
  // Written whole or not at all: to a temporary file, synced, renamed, the directory synced.
  const std::string text = absl::StrCat(instance, "\n");
  const std::string temporary = path + ".tmp";
  fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || fsync(fd) != 0 ||
      rename(temporary.c_str(), path.c_str()) != 0) {
    absl::Status error = IoError("write", path);
    if (fd >= 0) close(fd);
    return error;
  }
  close(fd);
  int directory = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory < 0 || fsync(directory) != 0) {
    absl::Status error = IoError("sync", dir);
    if (directory >= 0) close(directory);
    return error;
  }
  close(directory);
  return instance;
}

}  // namespace drover
