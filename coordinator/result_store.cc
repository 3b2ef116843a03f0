// Implements result_store.h.
#include "coordinator/result_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/record_file.h"

namespace drover {
namespace {

// Job files kept open at once; past this, the others are closed (and reopened when used).
constexpr size_t kMaxOpenFiles = 128;
// An ItemSpool writes once this much is buffered.
constexpr size_t kSpoolBufferBytes = 1 << 20;

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError("write", path);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Reads exactly `size` bytes at `offset` of `path` into `*out`.
absl::Status ReadExactly(const std::string& path, uint64_t offset, size_t size, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("open", path);
  out->resize(size);
  absl::Status status;
  for (size_t done = 0; done < size && status.ok();) {
    ssize_t n = pread(fd, out->data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = IoError("read", path);
    if (n == 0) status = absl::DataLossError(absl::StrCat(path, " is shorter than its index says"));
    done += n > 0 ? static_cast<size_t>(n) : 0;
  }
  close(fd);
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ResultStore>> ResultStore::Open(const std::string& dir, bool durable) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return IoError("create results directory", dir);
  // Spools of streams that never became jobs (the coordinator stopped mid-stream).
  if (DIR* listing = opendir(dir.c_str())) {
    while (dirent* entry = readdir(listing)) {
      if (absl::StartsWith(entry->d_name, "spool-")) unlink(absl::StrCat(dir, "/", entry->d_name).c_str());
    }
    closedir(listing);
  }
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
  // Read a block at a time (a job's results may be far larger than memory):
  // `window` holds the file's bytes from `window_start`, `at` is the next record in it.
  std::string window = dir_.empty() ? file->memory : std::string();
  uint64_t window_start = 0;
  size_t at = 0;
  bool end_of_file = dir_.empty();
  std::string problem;
  while (true) {
    if (at == window.size() && end_of_file) break;
    absl::string_view payload;
    size_t next = at;
    problem = at == window.size() ? "more to read" : NextRecord(window, &next, &payload);
    if (problem.empty()) {
      v1::ChunkOutputs outputs;
      if (!outputs.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        problem = "a record that does not parse";
        break;
      }
      fn(window_start + at, std::move(outputs));
      at = next;
      continue;
    }
    if (end_of_file || absl::StrContains(problem, "checksum")) break;
    // A record runs past the window: drop what was read, take the next block.
    window.erase(0, at);
    window_start += at;
    at = 0;
    char block[1 << 16];
    ssize_t n = pread(file->fd, block, sizeof(block), static_cast<off_t>(window_start + window.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("read", path);
    if (n == 0) end_of_file = true;
    window.append(block, static_cast<size_t>(n));
    problem.clear();
  }
  const uint64_t good_end = window_start + at;
  const uint64_t file_end = window_start + window.size();
  total_bytes_ -= file->written;  // counted again below
  if (!problem.empty() && good_end < file_end) {
    LogWarning(absl::StrCat(path, ": ", problem, " at byte ", good_end, "; cutting ", file_end - good_end,
                            " byte(s) back to the last good record"));
    if (dir_.empty()) {
      file->memory.resize(good_end);
    } else if (ftruncate(file->fd, static_cast<off_t>(good_end)) != 0 || fdatasync(file->fd) != 0) {
      return IoError("cut back", path);
    }
  }
  file->written = good_end;
  total_bytes_ += good_end;
  return absl::OkStatus();
}

absl::Status ResultStore::AdoptItems(uint64_t job_id, ItemSpool* spool) {
  if (dir_.empty()) return absl::FailedPreconditionError("an in-memory store keeps no spooled items");
  const std::string base = PathOf(job_id);
  if (rename(spool->data_path_.c_str(), (base + ".items").c_str()) != 0 ||
      rename((spool->data_path_ + ".index").c_str(), (base + ".index").c_str()) != 0) {
    return IoError("rename", spool->data_path_);
  }
  spool->adopted_ = true;
  int directory = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  absl::Status synced = directory >= 0 && fsync(directory) == 0 ? absl::OkStatus() : IoError("sync", dir_);
  if (directory >= 0) close(directory);
  return synced;
}

absl::Status ResultStore::ReadItems(uint64_t job_id, uint64_t first, uint64_t count,
                                    google::protobuf::RepeatedPtrField<std::string>* items) const {
  if (count == 0) return absl::OkStatus();
  const std::string base = PathOf(job_id);
  // The index holds each item's end: item i is [end(i-1), end(i)).
  std::string ends;
  const uint64_t index_from = first == 0 ? 0 : first - 1;
  const uint64_t entries = count + (first == 0 ? 0 : 1);
  if (absl::Status read = ReadExactly(base + ".index", index_from * 8, entries * 8, &ends); !read.ok()) return read;
  uint64_t start = first == 0 ? 0 : ReadFixed64(ends.data());
  const char* end_of = ends.data() + (first == 0 ? 0 : 8);
  const uint64_t stop = ReadFixed64(end_of + (count - 1) * 8);
  if (stop < start) return absl::DataLossError(absl::StrCat(base, ".index is not in order"));
  const uint64_t data_start = start;
  std::string data;
  if (absl::Status read = ReadExactly(base + ".items", start, stop - start, &data); !read.ok()) return read;
  items->Reserve(items->size() + static_cast<int>(count));
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t end = ReadFixed64(end_of + i * 8);
    if (end < start || end > stop) return absl::DataLossError(absl::StrCat(base, ".index is not in order"));
    items->Add()->assign(data, start - data_start, end - start);
    start = end;
  }
  return absl::OkStatus();
}

absl::Time ResultStore::LastWritten(uint64_t job_id) const {
  struct stat info {};
  if (dir_.empty() || stat(PathOf(job_id).c_str(), &info) != 0) return absl::InfinitePast();
  return absl::TimeFromTimespec(info.st_mtim);
}

void ResultStore::Forget(uint64_t job_id) {
  if (!dir_.empty()) {
    for (const char* suffix : {".items", ".index"}) unlink(absl::StrCat(PathOf(job_id), suffix).c_str());
  }
  DropResults(job_id);
}

void ResultStore::DropResults(uint64_t job_id) {
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
    absl::string_view name = entry->d_name;
    if (absl::SimpleAtoi(name.substr(0, name.find('.')), &job_id)) jobs.push_back(job_id);
  }
  closedir(listing);
  std::sort(jobs.begin(), jobs.end());
  jobs.erase(std::unique(jobs.begin(), jobs.end()), jobs.end());
  return jobs;
}

absl::StatusOr<std::unique_ptr<ItemSpool>> ItemSpool::Create(const std::string& dir) {
  std::string data_path = dir + "/spool-XXXXXX";
  int data_fd = mkostemp(data_path.data(), O_CLOEXEC);
  if (data_fd < 0) return IoError("create a spool in", dir);
  const std::string index_path = data_path + ".index";
  int index_fd = open(index_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (index_fd < 0) {
    absl::Status error = IoError("create", index_path);
    close(data_fd);
    unlink(data_path.c_str());
    return error;
  }
  return std::unique_ptr<ItemSpool>(new ItemSpool(std::move(data_path), data_fd, index_fd));
}

ItemSpool::~ItemSpool() {
  close(data_fd_);
  close(index_fd_);
  if (!adopted_) {
    unlink(data_path_.c_str());
    unlink((data_path_ + ".index").c_str());
  }
}

absl::Status ItemSpool::Add(absl::string_view item) {
  data_buffer_.append(item.data(), item.size());
  bytes_ += item.size();
  AppendFixed64(bytes_, &index_buffer_);
  ++count_;
  return data_buffer_.size() + index_buffer_.size() >= kSpoolBufferBytes ? Flush() : absl::OkStatus();
}

absl::Status ItemSpool::Flush() {
  if (absl::Status written = WriteAll(data_fd_, data_buffer_, data_path_); !written.ok()) return written;
  if (absl::Status written = WriteAll(index_fd_, index_buffer_, data_path_ + ".index"); !written.ok()) return written;
  data_buffer_.clear();
  index_buffer_.clear();
  return absl::OkStatus();
}

absl::Status ItemSpool::Finish() {
  if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
  if (fdatasync(data_fd_) != 0) return IoError("sync", data_path_);
  if (fdatasync(index_fd_) != 0) return IoError("sync", data_path_ + ".index");
  return absl::OkStatus();
}

}  // namespace drover
