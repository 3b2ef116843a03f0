// Implements reduce.h.
#include "common/reduce.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace drover {

std::string Int128ToString(__int128 value) {
  if (value == 0) return "0";
  bool negative = value < 0;
  unsigned __int128 magnitude =
      negative ? static_cast<unsigned __int128>(-(value + 1)) + 1 : static_cast<unsigned __int128>(value);
  char digits[48];
  int at = sizeof(digits);
  while (magnitude != 0) {
    digits[--at] = static_cast<char>('0' + static_cast<int>(magnitude % 10));
    magnitude /= 10;
  }
  if (negative) digits[--at] = '-';
  return std::string(digits + at, sizeof(digits) - at);
}

absl::Status ParseInt128(absl::string_view text, __int128* value) {
  text = absl::StripAsciiWhitespace(text);
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return absl::InvalidArgumentError("not an integer: empty output");
  constexpr unsigned __int128 kMaxMagnitude = static_cast<unsigned __int128>(1) << 127;
  unsigned __int128 magnitude = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(absl::StrCat("not an integer: '", text.substr(0, 40), "'"));
    }
    if (magnitude > (kMaxMagnitude - (c - '0')) / 10) {
      return absl::OutOfRangeError("integer does not fit in 128 bits");
    }
    magnitude = magnitude * 10 + static_cast<unsigned>(c - '0');
  }
  if (!negative && magnitude == kMaxMagnitude) {
    return absl::OutOfRangeError("integer does not fit in 128 bits");
  }
  *value = negative ? -static_cast<__int128>(magnitude - 1) - 1 : static_cast<__int128>(magnitude);
  return absl::OkStatus();
}

absl::Status Reducer::Fold(__int128 value) {
  if (count_ == 0) {
    value_ = value;
  } else {
    switch (kind_) {
      case v1::REDUCE_SUM:
        if (__builtin_add_overflow(value_, value, &value_)) {
          error_ = "sum overflows 128 bits";
          return absl::OutOfRangeError(error_);
        }
        break;
      case v1::REDUCE_MIN: value_ = std::min(value_, value); break;
      case v1::REDUCE_MAX: value_ = std::max(value_, value); break;
      default: break;
    }
  }
  return absl::OkStatus();
}

absl::Status Reducer::AddOutput(absl::string_view output) {
  if (!error_.empty()) return absl::FailedPreconditionError(error_);
  if (kind_ == v1::REDUCE_COUNT) {
    ++count_;
    return absl::OkStatus();
  }
  __int128 value = 0;
  absl::Status parsed = ParseInt128(output, &value);
  if (!parsed.ok()) return parsed;  // the item fails; the reduction goes on
  absl::Status folded = Fold(value);
  if (folded.ok()) ++count_;
  return folded;
}

absl::Status Reducer::Merge(const v1::ReducePartial& partial) {
  if (!error_.empty()) return absl::FailedPreconditionError(error_);
  if (!partial.error().empty()) {
    error_ = partial.error();
    return absl::OutOfRangeError(error_);
  }
  if (partial.count() == 0) return absl::OkStatus();
  if (kind_ == v1::REDUCE_COUNT) {
    count_ += partial.count();
    return absl::OkStatus();
  }
  __int128 value = 0;
  absl::Status parsed = ParseInt128(partial.value(), &value);
  if (!parsed.ok()) {
    error_ = absl::StrCat("bad partial from a worker: ", parsed.message());
    return parsed;
  }
  absl::Status folded = Fold(value);
  if (folded.ok()) count_ += partial.count();
  return folded;
}

v1::ReducePartial Reducer::ToPartial() const {
  v1::ReducePartial partial;
  partial.set_count(count_);
  if (!error_.empty()) {
    partial.set_error(error_);
  } else if (kind_ == v1::REDUCE_COUNT) {
    partial.set_value(absl::StrCat(count_));
  } else if (count_ > 0) {
    partial.set_value(Int128ToString(value_));
  }
  return partial;
}

}  // namespace drover
