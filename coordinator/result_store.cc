// Implements result_store.h.
#include "coordinator/result_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/record_file.h"

namespace drover {
namespace {

// Job files kept open at once; past this, the others are closed (and reopened when used).
constexpr size_t kMaxOpenFiles = 128;

}  // namespace

absl::StatusOr<std::unique_ptr<ResultStore>> ResultStore::Open(const std::string& dir, bool durable) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return IoError("create results directory", dir);
  return std::unique_ptr<ResultStore>(new ResultStore(dir, durable));
}

std::unique_ptr<ResultStore> ResultStore::InMemory() {
  return std::unique_ptr<ResultStore>(new ResultStore("", false));
}

ResultStore::~ResultStore() {
  (void)Sync();
  for (auto& [job_id, file] : files_) {
    if (file.fd >= 0) close(file.fd);
  }
}

std::string ResultStore::PathOf(uint64_t job_id) const { return absl::StrCat(dir_, "/", job_id); }

ResultStore::JobFile* ResultStore::FileOf(uint64_t job_id) {
  JobFile& file = files_[job_id];
  if (dir_.empty() || file.fd >= 0) return &file;
  size_t open_files = 0;
  for (const auto& [id, other] : files_) open_files += other.fd >= 0 ? 1 : 0;
  if (open_files >= kMaxOpenFiles) {
    for (auto& [id, other] : files_) {
      if (other.fd >= 0) close(other.fd);
      other.fd = -1;
    }
  }
  std::string path = PathOf(job_id);
  file.fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (file.fd < 0) {
    LogRateLimited(LogLevel::kError, "results-open", IoError("open results file", path).ToString());
    return nullptr;
  }
  return &file;
}

uint64_t ResultStore::Append(uint64_t job_id, const v1::ChunkOutputs& outputs) {
  JobFile& file = files_[job_id];
  const uint64_t offset = file.written + file.pending.size();
  if (file.pending.empty()) dirty_.push_back(job_id);
  AppendRecord(outputs.SerializeAsString(), &file.pending);
  return offset;
}

absl::Status ResultStore::Sync() {
  absl::Status first_error;
  std::vector<uint64_t> still_dirty;
  for (uint64_t job_id : dirty_) {
    auto found = files_.find(job_id);
    if (found == files_.end() || found->second.pending.empty()) continue;  // forgotten meanwhile
    JobFile* file = FileOf(job_id);
    absl::Status written;
    if (file == nullptr) {
      written = absl::UnavailableError(absl::StrCat("cannot open the results file of job ", job_id));
    } else if (dir_.empty()) {
      file->memory += file->pending;
    } else {
      const std::string& pending = file->pending;
      for (size_t done = 0; done < pending.size() && written.ok();) {
        ssize_t n = pwrite(file->fd, pending.data() + done, pending.size() - done,
                           static_cast<off_t>(file->written + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) written = IoError("write results", PathOf(job_id));
        done += n > 0 ? static_cast<size_t>(n) : 0;
      }
      if (written.ok() && durable_ && fdatasync(file->fd) != 0) written = IoError("sync results", PathOf(job_id));
      // Never leave half a record behind.
      if (!written.ok() && ftruncate(file->fd, static_cast<off_t>(file->written)) != 0) {
        LogError(absl::StrCat("cannot cut back ", PathOf(job_id)));
      }
    }
    if (!written.ok()) {
      if (first_error.ok()) first_error = written;
      still_dirty.push_back(job_id);
      continue;
    }
    found->second.written += found->second.pending.size();
    total_bytes_ += found->second.pending.size();
    found->second.pending.clear();
    found->second.pending.shrink_to_fit();
  }
  dirty_ = std::move(still_dirty);
  return first_error;
}

uint64_t ResultStore::readable_end(uint64_t job_id) const {
  auto found = files_.find(job_id);
  return found == files_.end() ? 0 : found->second.written;
}

uint64_t ResultStore::appended_end(uint64_t job_id) const {
  auto found = files_.find(job_id);
  return found == files_.end() ? 0 : found->second.written + found->second.pending.size();
}

absl::Status ResultStore::ReadBytes(const JobFile& file, uint64_t offset, size_t size, std::string* out) const {
  if (offset + size > file.written) return absl::DataLossError("a result record runs past the end of its file");
  if (dir_.empty()) {
    out->assign(file.memory, offset, size);
    return absl::OkStatus();
  }
  out->resize(size);
  for (size_t done = 0; done < size;) {
    ssize_t n = pread(file.fd, out->data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("cannot read a result record");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ChunkOutputs> ResultStore::Read(uint64_t job_id, uint64_t offset, uint64_t* next) const {
  // Reading may (re)open the file: the cache of open files is not part of the store's state.
  JobFile* file = const_cast<ResultStore*>(this)->FileOf(job_id);
  if (file == nullptr) return absl::UnavailableError(absl::StrCat("cannot open the results of job ", job_id));
  std::string header;
  if (absl::Status read = ReadBytes(*file, offset, kRecordHeaderBytes, &header); !read.ok()) return read;
  const RecordHeader decoded = DecodeRecordHeader(header.data());
  std::string payload;
  if (absl::Status read = ReadBytes(*file, offset + kRecordHeaderBytes, decoded.length, &payload); !read.ok()) {
    return read;
  }
  v1::ChunkOutputs outputs;
  if (!RecordIntact(decoded, payload) || !outputs.ParseFromString(payload)) {
    return absl::DataLossError(absl::StrCat("job ", job_id, ": a corrupt result record at byte ", offset));
  }
  *next = offset + kRecordHeaderBytes + decoded.length;
  return outputs;
}

absl::Status ResultStore::Replay(uint64_t job_id,
                                 const std::function<void(uint64_t offset, v1::ChunkOutputs&&)>& fn) {
  std::string path = dir_.empty() ? absl::StrCat("results of job ", job_id) : PathOf(job_id);
  if (!dir_.empty() && access(path.c_str(), F_OK) != 0) return absl::OkStatus();  // no result was kept
  JobFile* file = FileOf(job_id);
  if (file == nullptr) return absl::UnavailableError(absl::StrCat("cannot open ", path));
  std::string data;
  if (dir_.empty()) {
    data = file->memory;
  } else {
    char buffer[1 << 16];
    ssize_t n;
    while ((n = pread(file->fd, buffer, sizeof(buffer), static_cast<off_t>(data.size()))) > 0) {
      data.append(buffer, static_cast<size_t>(n));
    }
    if (n < 0) return IoError("read", path);
  }
  total_bytes_ -= file->written;  // counted again below
  size_t at = 0;
  std::string problem;
  while (at < data.size()) {
    const size_t offset = at;
    absl::string_view payload;
    problem = NextRecord(data, &at, &payload);
    v1::ChunkOutputs outputs;
    if (problem.empty() && !outputs.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      at = offset;
      problem = "a record that does not parse";
    }
    if (!problem.empty()) break;
    fn(offset, std::move(outputs));
  }
  if (!problem.empty()) {
    LogWarning(absl::StrCat(path, ": ", problem, " at byte ", at, "; cutting ", data.size() - at,
                            " byte(s) back to the last good record"));
    if (dir_.empty()) {
      file->memory.resize(at);
    } else if (ftruncate(file->fd, static_cast<off_t>(at)) != 0 || fdatasync(file->fd) != 0) {
      return IoError("cut back", path);
    }
  }
  file->written = at;
  total_bytes_ += at;
  return absl::OkStatus();
}

void ResultStore::Forget(uint64_t job_id) {
  auto found = files_.find(job_id);
  if (found != files_.end()) {
    if (found->second.fd >= 0) close(found->second.fd);
    total_bytes_ -= found->second.written;
    files_.erase(found);
  }
  if (!dir_.empty() && unlink(PathOf(job_id).c_str()) != 0 && errno != ENOENT) {
    LogWarning(IoError("remove", PathOf(job_id)).ToString());
  }
}

std::vector<uint64_t> ResultStore::StoredJobs() const {
  std::vector<uint64_t> jobs;
  if (dir_.empty()) return jobs;
  DIR* listing = opendir(dir_.c_str());
  if (listing == nullptr) return jobs;
  while (dirent* entry = readdir(listing)) {
    uint64_t job_id = 0;
    if (absl::SimpleAtoi(entry->d_name, &job_id)) jobs.push_back(job_id);
  }
  closedir(listing);
  return jobs;
}

}  // namespace drover
