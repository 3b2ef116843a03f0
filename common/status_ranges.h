// HTTP statuses that count as success, as a job says them ("200-299,404").
// Parsed by the CLI and the coordinator (to refuse a bad job at submit) and by
// the worker (to judge each response).
#ifndef DROVER_COMMON_STATUS_RANGES_H_
#define DROVER_COMMON_STATUS_RANGES_H_

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace drover {

// Inclusive [low, high] ranges of statuses from 100 to 599.
using StatusRanges = std::vector<std::pair<int, int>>;

// "200-299,404" -> {{200, 299}, {404, 404}}; empty -> {{200, 299}}.
// kInvalidArgument names the text when it is not of that form.
absl::StatusOr<StatusRanges> ParseStatusRanges(absl::string_view text);

bool InRanges(const StatusRanges& ranges, int status);

}  // namespace drover

#endif  // DROVER_COMMON_STATUS_RANGES_H_
