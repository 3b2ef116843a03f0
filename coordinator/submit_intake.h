// Reading a Submit request off the wire without trusting it. A request's
// listed items are counted from its encoded bytes before it is parsed (parsing
// 33.5 M empty items of a 64 MiB request would allocate ~1.3 GB only to be
// refused by --max-items), and the submits being parsed at one time share a
// memory budget.
#ifndef DROVER_COORDINATOR_SUBMIT_INTAKE_H_
#define DROVER_COORDINATOR_SUBMIT_INTAKE_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace drover {

struct ItemLimits {
  uint64_t max_items = 10'000'000;  // listed items a job may have (--max-items)
  uint64_t max_item_bytes = 1 << 20;  // bytes in one listed item (--max-item-bytes)
};

// The refusals of a job over ItemLimits (kInvalidArgument), worded for any client.
// `item_number` counts from 1.
absl::Status TooManyItemsError(uint64_t count, uint64_t max_items);
absl::Status ItemTooLargeError(uint64_t item_number, uint64_t bytes, uint64_t max_item_bytes);
// A command job's item with a NUL byte (a command-line argument ends there).
absl::Status ItemWithNulError(uint64_t item_number);

// Walks an encoded drover.v1.SubmitRequest in `input` without materialising
// it and checks its listed items against `limits` (occurrences split over
// several encoded fields are added up, as a parse would merge them). Returns
// about how many bytes parsing it would take. Errors: kInvalidArgument (over a
// limit, or not a valid encoding).
absl::StatusOr<uint64_t> MeasureSubmit(google::protobuf::io::ZeroCopyInputStream* input,
                                       const ItemLimits& limits);
// The same for an encoded drover.v1.JobSpec (SubmitStreamRequest.spec).
absl::StatusOr<uint64_t> MeasureJobSpec(google::protobuf::io::ZeroCopyInputStream* input,
                                        const ItemLimits& limits);

// Memory shared by the submits being parsed at one time. Thread-safe.
class SubmitBudget {
 public:
  explicit SubmitBudget(uint64_t bytes) : capacity_(bytes) {}

  uint64_t capacity() const { return capacity_; }

  // Takes `bytes` (at most capacity()), waiting for other holders to give
  // theirs back until `deadline`. False when they did not fit by then.
  bool Acquire(uint64_t bytes, absl::Time deadline);
  void Release(uint64_t bytes);

 private:
  const uint64_t capacity_;
  absl::Mutex mutex_;
  uint64_t held_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_SUBMIT_INTAKE_H_
