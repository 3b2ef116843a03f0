// Implements status_ranges.h.
#include "common/status_ranges.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace drover {

absl::StatusOr<StatusRanges> ParseStatusRanges(absl::string_view text) {
  if (text.empty()) return StatusRanges{{200, 299}};
  StatusRanges ranges;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const size_t dash = part.find('-');
    const absl::string_view first = part.substr(0, dash);
    const absl::string_view last = dash == absl::string_view::npos ? first : part.substr(dash + 1);
    int low = 0, high = 0;
    if (!absl::SimpleAtoi(first, &low) || !absl::SimpleAtoi(last, &high) || low < 100 || high > 599 ||
        low > high) {
      return absl::InvalidArgumentError(
          absl::StrCat("want statuses or ranges like 200-299,404; got '", text.substr(0, 100), "'"));
    }
    ranges.emplace_back(low, high);
  }
  return ranges;
}

bool InRanges(const StatusRanges& ranges, int status) {
  for (const auto& [low, high] : ranges) {
    if (status >= low && status <= high) return true;
  }
  return false;
}

}  // namespace drover
