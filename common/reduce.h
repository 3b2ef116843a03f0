// Exact reductions (sum, min, max, count) over integer outputs, as 128-bit
// signed integers. Overflow is an error, never a wrap. Workers fold a chunk's
// outputs into one ReducePartial; the coordinator merges the partials.
#ifndef DROVER_COMMON_REDUCE_H_
#define DROVER_COMMON_REDUCE_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "drover/v1/common.pb.h"

namespace drover {

// Decimal text of a 128-bit signed integer.
std::string Int128ToString(__int128 value);

// Parses optional sign and decimal digits (surrounding ASCII white space allowed).
// Errors: kInvalidArgument if not an integer, kOutOfRange if it does not fit.
absl::Status ParseInt128(absl::string_view text, __int128* value);

// Not thread-safe; one owner.
class Reducer {
 public:
  explicit Reducer(v1::Reduce kind) : kind_(kind) {}

  // Folds one item's output. Errors: kInvalidArgument (not an integer) or
  // kOutOfRange (the sum overflows 128 bits); after an error the reduction is
  // marked failed and further calls are ignored.
  absl::Status AddOutput(absl::string_view output);

  // Folds another reducer's partial result (same kind).
  absl::Status Merge(const v1::ReducePartial& partial);

  v1::ReducePartial ToPartial() const;
  uint64_t count() const { return count_; }

 private:
  absl::Status Fold(__int128 value);

  v1::Reduce kind_;
  uint64_t count_ = 0;
  __int128 value_ = 0;
  std::string error_;
};

}  // namespace drover

#endif  // DROVER_COMMON_REDUCE_H_
