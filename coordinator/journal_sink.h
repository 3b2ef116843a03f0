// The one way the scheduler makes its decisions durable: records are appended
// to a buffer and made durable together by Sync() (group commit). The
// coordinator's Journal (journal.h) implements it on disk; tests use a fake
// that can fail on demand.
#ifndef DROVER_COORDINATOR_JOURNAL_SINK_H_
#define DROVER_COORDINATOR_JOURNAL_SINK_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "drover/v1/journal.pb.h"

namespace drover {

// Called only on the coordinator's loop thread.
class JournalSink {
 public:
  virtual ~JournalSink() = default;
  // Adds a record to the buffer; nothing is durable before Sync().
  // Errors: kInvalidArgument for a record over the size limit (not added).
  virtual absl::Status Append(const v1::JournalRecord& record) = 0;
  // Makes every buffered record durable. Errors: kResourceExhausted (disk
  // full), kUnavailable (other I/O errors); the buffer is then kept, to retry.
  virtual absl::Status Sync() = 0;
  virtual bool has_pending() const = 0;
  // Forgets records not yet synced (after a Sync() error they must not be written later).
  virtual void DiscardPending() = 0;
  // Bytes the journal takes on disk.
  virtual uint64_t size_bytes() const = 0;
  // Compaction: replaces the whole journal by the records `next` yields (it
  // is called until it returns false), atomically: a crash at any point
  // leaves the old journal or the new one, never a mix. Nothing may be
  // pending (kFailedPrecondition). Errors otherwise: as Sync().
  virtual absl::Status Rewrite(const std::function<bool(v1::JournalRecord*)>& next) = 0;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_JOURNAL_SINK_H_
