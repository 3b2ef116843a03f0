// A job's data on the coordinator's disk, not in its memory. Kept results
// (`drover submit` jobs): one append-only file of checksummed ChunkOutputs
// records per job (DIR/JOB), in completion order, written by the loop's group
// commit (Sync) and read back by offset; a job's memory is then the offsets of
// its chunks, whatever its outputs weigh. Streamed items (SubmitStream): written
// by an ItemSpool on a gRPC thread, adopted by the job (DIR/JOB.items and
// DIR/JOB.index) and read a chunk at a time. Forgetting a job removes its files.
#ifndef DROVER_COORDINATOR_RESULT_STORE_H_
#define DROVER_COORDINATOR_RESULT_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "drover/v1/common.pb.h"

namespace drover {

// Not thread-safe: owned by the coordinator's loop thread.
class ResultStore {
 public:
  // Files in `dir` (created 0700), one per job, named by job id. With
  // `durable`, Sync() fdatasyncs what it wrote (for a --state-dir; a private
  // temporary directory needs no sync). Errors: as IoError (record_file.h).
  static absl::StatusOr<std::unique_ptr<ResultStore>> Open(const std::string& dir, bool durable);
  // Records kept in memory, never on disk: for unit tests of the store's users.
  static std::unique_ptr<ResultStore> InMemory();
  ~ResultStore();

  // Adds a chunk's outputs to the end of the job's file and returns their
  // offset. They can be read once Sync() has succeeded.
  uint64_t Append(uint64_t job_id, const v1::ChunkOutputs& outputs);
  // Writes (and with `durable`, fdatasyncs) what was appended since the last
  // Sync. Errors: kResourceExhausted (disk full), kUnavailable; what was not
  // written stays pending and the next Sync tries again.
  absl::Status Sync();
  // Offsets below this are written (and durable): they may be read and shown.
  uint64_t readable_end(uint64_t job_id) const;
  // Offsets below this have been appended, written or not.
  uint64_t appended_end(uint64_t job_id) const;

  // The record at `offset` (below readable_end); `*next` is set to the offset
  // after it. Errors: kUnavailable (I/O), kDataLoss (not a record).
  absl::StatusOr<v1::ChunkOutputs> Read(uint64_t job_id, uint64_t offset, uint64_t* next) const;

  // At start: calls `fn` with each intact record of the job's file, in order,
  // and cuts a torn or corrupt tail back (logging it).
  absl::Status Replay(uint64_t job_id, const std::function<void(uint64_t offset, v1::ChunkOutputs&&)>& fn);

  // Makes `spool`'s files the job's items (renamed, the directory synced).
  absl::Status AdoptItems(uint64_t job_id, class ItemSpool* spool);
  // Appends items [first, first + count) of the job's spooled items to `*items`.
  // Errors: kUnavailable (I/O), kDataLoss (the files are shorter than that).
  absl::Status ReadItems(uint64_t job_id, uint64_t first, uint64_t count,
                         google::protobuf::RepeatedPtrField<std::string>* items) const;

  // When the job's results file was last written (InfinitePast if it has none).
  absl::Time LastWritten(uint64_t job_id) const;

  // Removes the job's files and anything pending for it.
  void Forget(uint64_t job_id);
  // Removes the job's results (not its items): a stream-mode job whose
  // spilled results were all delivered.
  void DropResults(uint64_t job_id);
  // Jobs that have a file (at start, to remove files of jobs no longer known).
  std::vector<uint64_t> StoredJobs() const;
  // Bytes on disk (or in memory) over every job.
  uint64_t total_bytes() const { return total_bytes_; }

 private:
  struct JobFile {
    int fd = -1;
    uint64_t written = 0;  // bytes in the file (or in `memory`)
    std::string pending;   // appended, not yet written
    std::string memory;    // the file's bytes, for an in-memory store
  };

  ResultStore(std::string dir, bool durable) : dir_(std::move(dir)), durable_(durable) {}
  std::string PathOf(uint64_t job_id) const;
  // The job's file, opened (created) on first use. Null after an open error (logged).
  JobFile* FileOf(uint64_t job_id);
  absl::Status ReadBytes(const JobFile& file, uint64_t offset, size_t size, std::string* out) const;

  const std::string dir_;  // empty: in memory
  const bool durable_;
  absl::flat_hash_map<uint64_t, JobFile> files_;
  std::vector<uint64_t> dirty_;  // jobs with pending bytes
  uint64_t total_bytes_ = 0;
};

// A streamed Submit's items, written to DIR as they arrive (on the gRPC thread
// reading the stream, not the loop), before the job exists: DIR/spool-XXXXXX
// (the items back to back) and its .index (each item's end offset, u64 LE).
// Removed when destroyed unless a ResultStore adopted them. Not thread-safe.
class ItemSpool {
 public:
  // Errors: as IoError (record_file.h).
  static absl::StatusOr<std::unique_ptr<ItemSpool>> Create(const std::string& dir);
  ~ItemSpool();

  absl::Status Add(absl::string_view item);
  // Writes what is buffered and syncs both files.
  absl::Status Finish();
  uint64_t count() const { return count_; }

 private:
  friend class ResultStore;
  ItemSpool(std::string data_path, int data_fd, int index_fd)
      : data_path_(std::move(data_path)), data_fd_(data_fd), index_fd_(index_fd) {}
  absl::Status Flush();

  const std::string data_path_;  // the index is data_path_ + ".index"
  const int data_fd_;
  const int index_fd_;
  std::string data_buffer_;
  std::string index_buffer_;
  uint64_t bytes_ = 0;
  uint64_t count_ = 0;
  bool adopted_ = false;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_RESULT_STORE_H_
