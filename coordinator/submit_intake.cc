// Implements submit_intake.h.
#include "coordinator/submit_intake.h"

#include <climits>
#include <functional>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace drover {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;

// What one parsed field costs beyond its encoded bytes: a repeated bytes
// element is a std::string (32) and its pointer (8); an unknown field is an
// entry of about the same size. Rounded up for the allocator's headers.
constexpr uint64_t kBytesPerParsedField = 48;

// Field numbers on the path to the listed items (see proto/drover/v1).
constexpr int kSubmitRequestSpec = 1;  // SubmitRequest.spec
constexpr int kJobSpecItems = 2;       // JobSpec.items
constexpr int kJobSpecCommand = 7;     // JobSpec.command (argv, env: strings)
constexpr int kJobSpecGrpc = 11;       // JobSpec.grpc (metadata: strings)
constexpr int kItemSourceInline = 2;   // ItemSource.inline
constexpr int kInlineItemsItems = 1;   // InlineItems.items

absl::Status NotASubmitRequest() {
  return absl::InvalidArgumentError("the request is not a valid drover.v1.SubmitRequest encoding");
}

class SubmitScanner {
 public:
  SubmitScanner(google::protobuf::io::ZeroCopyInputStream* input, const ItemLimits& limits)
      : in_(input), limits_(limits) {
    in_.SetTotalBytesLimit(INT_MAX);
  }

  // `top` is a SubmitRequest, or (top_is_spec) a JobSpec.
  absl::StatusOr<uint64_t> Scan(bool top_is_spec) {
    absl::Status walked = top_is_spec ? WalkJobSpec() : WalkMessage([this](int number, uint32_t length) {
      return number == kSubmitRequestSpec ? WalkJobSpec() : Skip(length);
    });
    if (!walked.ok()) return walked;
    return in_.CurrentPosition() + fields_ * kBytesPerParsedField;
  }

 private:
  // A length-delimited field `number` of `length` bytes starts at the cursor.
  using FieldVisitor = std::function<absl::Status(int number, uint32_t length)>;

  // Counts the listed items, and the fields of every sub-message a parse
  // would make an object of (the command's argv and env, the gRPC call's
  // metadata, a range): each costs memory whatever its size on the wire.
  absl::Status WalkJobSpec() {
    return WalkMessage([this](int number, uint32_t length) {
      if (number == kJobSpecCommand || number == kJobSpecGrpc) return WalkLeaves();
      if (number != kJobSpecItems) return Skip(length);
      return WalkMessage([this](int number, uint32_t length) {
        if (number != kItemSourceInline) return WalkLeaves();
        return WalkMessage([this](int number, uint32_t length) {
          if (number != kInlineItemsItems) return Skip(length);
          return CountItem(length);
        });
      });
    });
  }

  // A message whose fields are all leaves (scalars, strings): each is counted.
  absl::Status WalkLeaves() {
    return WalkMessage([this](int, uint32_t length) { return Skip(length); });
  }

  // Visits each length-delimited field up to the current limit and skips the
  // others. Groups are refused: no drover message has one, and a parse would
  // keep their contents as nested unknown fields.
  absl::Status WalkMessage(const FieldVisitor& visit) {
    while (true) {
      uint32_t tag = in_.ReadTag();
      if (tag == 0) return in_.ConsumedEntireMessage() ? absl::OkStatus() : NotASubmitRequest();
      ++fields_;
      switch (WireFormatLite::GetTagWireType(tag)) {
        case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
          uint32_t length = 0;
          if (!in_.ReadVarint32(&length) || length > static_cast<uint32_t>(INT_MAX)) return NotASubmitRequest();
          CodedInputStream::Limit outer = in_.PushLimit(static_cast<int>(length));
          absl::Status visited = visit(WireFormatLite::GetTagFieldNumber(tag), length);
          if (!visited.ok()) return visited;
          if (in_.BytesUntilLimit() != 0) return NotASubmitRequest();
          in_.PopLimit(outer);
          break;
        }
        case WireFormatLite::WIRETYPE_START_GROUP:
        case WireFormatLite::WIRETYPE_END_GROUP:
          return NotASubmitRequest();
        default:
          if (!WireFormatLite::SkipField(&in_, tag)) return NotASubmitRequest();
      }
    }
  }

  absl::Status Skip(uint32_t length) {
    return in_.Skip(static_cast<int>(length)) ? absl::OkStatus() : NotASubmitRequest();
  }

  absl::Status CountItem(uint32_t length) {
    ++items_;
    if (items_ > limits_.max_items) return TooManyItemsError(items_, limits_.max_items);
    if (length > limits_.max_item_bytes) return ItemTooLargeError(items_, length, limits_.max_item_bytes);
    return Skip(length);
  }

  CodedInputStream in_;
  const ItemLimits& limits_;
  uint64_t fields_ = 0;
  uint64_t items_ = 0;
};

}  // namespace

absl::Status TooManyItemsError(uint64_t count, uint64_t max_items) {
  return absl::InvalidArgumentError(absl::StrCat("the job lists ", count > max_items ? "more than " : "",
                                                 count > max_items ? max_items : count,
                                                 " items; this coordinator takes at most ", max_items,
                                                 " listed items (its --max-items): give a range instead, "
                                                 "or split the job"));
}

absl::Status ItemTooLargeError(uint64_t item_number, uint64_t bytes, uint64_t max_item_bytes) {
  return absl::InvalidArgumentError(absl::StrCat("item ", item_number, " has ", bytes,
                                                 " bytes; this coordinator takes items of at most ",
                                                 max_item_bytes, " bytes (its --max-item-bytes)"));
}

absl::Status ItemWithNulError(uint64_t item_number) {
  return absl::InvalidArgumentError(absl::StrCat("item ", item_number,
                                                 " contains a NUL byte, which a command's argument cannot hold "
                                                 "(kernels and gRPC jobs take binary items)"));
}

absl::StatusOr<uint64_t> MeasureSubmit(google::protobuf::io::ZeroCopyInputStream* input,
                                       const ItemLimits& limits) {
  return SubmitScanner(input, limits).Scan(/*top_is_spec=*/false);
}

absl::StatusOr<uint64_t> MeasureJobSpec(google::protobuf::io::ZeroCopyInputStream* input,
                                        const ItemLimits& limits) {
  return SubmitScanner(input, limits).Scan(/*top_is_spec=*/true);
}

bool SubmitBudget::Acquire(uint64_t bytes, absl::Time deadline) {
  if (bytes > capacity_) return false;
  absl::MutexLock lock(&mutex_);
  auto fits = [this, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return held_ + bytes <= capacity_; };
  if (!mutex_.AwaitWithDeadline(absl::Condition(&fits), deadline)) return false;
  held_ += bytes;
  return true;
}

void SubmitBudget::Release(uint64_t bytes) {
  absl::MutexLock lock(&mutex_);
  held_ -= bytes;
}

}  // namespace drover
