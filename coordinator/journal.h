// The coordinator's journal: an append-only file of checksummed records (jobs
// accepted, chunks done, jobs cancelled) in --state-dir, replayed at start so a
// coordinator killed with SIGKILL comes back with every job and result it had
// acknowledged. Records are buffered and written with one fdatasync per call
// to Sync() (group commit).
#ifndef DROVER_COORDINATOR_JOURNAL_H_
#define DROVER_COORDINATOR_JOURNAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/journal_sink.h"
#include "drover/v1/journal.pb.h"

namespace drover {

// Not thread-safe: owned by the coordinator's loop thread.
class Journal : public JournalSink {
 public:
  // Opens (creating if needed) DIR/journal, reads every intact record into
  // `*records`, and cuts a torn or corrupt tail back to the last good record
  // (logging what was cut). Only one Journal may have DIR open (an flock on
  // DIR/lock). Errors: kFailedPrecondition when another process has it open
  // (naming its pid); kPermissionDenied / kUnavailable when the directory or
  // file cannot be created, read or written.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::string& dir,
                                                       std::vector<v1::JournalRecord>* records);
  ~Journal() override;

  absl::Status Append(const v1::JournalRecord& record) override;
  // Writes the buffer and fdatasyncs. Errors: kResourceExhausted (disk full),
  // kUnavailable (other I/O errors). A failed write is cut back, so the file
  // never keeps half a record.
  absl::Status Sync() override;
  bool has_pending() const override { return !buffer_.empty(); }
  // Forgets records not yet synced (after a Sync() error they must not be written later).
  void DiscardPending() override { buffer_.clear(); }
  uint64_t size_bytes() const override { return static_cast<uint64_t>(size_); }
  // Writes DIR/journal.tmp, syncs it, renames it over DIR/journal and syncs DIR.
  absl::Status Rewrite(const std::function<bool(v1::JournalRecord*)>& next) override;
  const std::string& path() const { return path_; }

 private:
  Journal(std::string dir, int fd, int lock_fd, off_t size)
      : dir_(std::move(dir)), path_(dir_ + "/journal"), fd_(fd), lock_fd_(lock_fd), size_(size) {}

  const std::string dir_;
  const std::string path_;
  int fd_;
  const int lock_fd_;  // DIR/lock, flock'ed while this journal is open
  off_t size_;  // bytes of intact records on disk
  std::string buffer_;
};

// The coordinator instance id kept in DIR/instance (made at random the first
// time), so job ids and results stay valid across restarts on one state dir.
absl::StatusOr<uint64_t> LoadOrCreateInstance(const std::string& dir);

}  // namespace drover

#endif  // DROVER_COORDINATOR_JOURNAL_H_
