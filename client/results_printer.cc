// Implements results_printer.h.
#include "client/results_printer.h"

#include <google/protobuf/util/json_util.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "drover/v1/service.pb.h"

namespace drover {
namespace {

constexpr uint64_t kFailuresShown = 10;
constexpr size_t kFlushBytes = 1 << 20;
constexpr absl::Duration kFlushInterval = absl::Milliseconds(50);

}  // namespace

bool IsValidUtf8(const std::string& text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    int extra;
    uint32_t code;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { extra = 1; code = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; code = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; code = c & 0x07; }
    else return false;
    if (i + static_cast<size_t>(extra) >= n) return false;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

ResultsPrinter::ResultsPrinter(Format format, FILE* out, FILE* err, bool print_outputs)
    : format_(format), out_(out), err_(err), print_outputs_(print_outputs) {}

void ResultsPrinter::Failure(uint64_t index, const std::string& message) {
  ++failed_;
  if (format_ == Format::kText && failed_ <= kFailuresShown) {
    std::fprintf(err_, "drover: task %llu failed: %s\n", static_cast<unsigned long long>(index),
                 message.c_str());
  }
}

void ResultsPrinter::Print(const v1::ChunkOutputs& chunk) {
  // Which items failed, by offset.
  std::vector<const v1::ItemError*> errors(chunk.item_count(), nullptr);
  for (const v1::ItemError& error : chunk.errors()) {
    if (error.offset() < chunk.item_count()) errors[error.offset()] = &error;
  }
  const bool sized = chunk.output_sizes_size() == static_cast<int>(chunk.item_count());
  size_t at = 0;
  for (uint32_t i = 0; i < chunk.item_count(); ++i) {
    uint64_t index = chunk.first_index() + i;
    size_t size = sized ? chunk.output_sizes(static_cast<int>(i)) : 0;
    absl::string_view output(chunk.outputs().data() + at, size);
    at += size;
    if (errors[i] != nullptr) Failure(index, errors[i]->message());
    if (!print_outputs_ && errors[i] == nullptr) continue;
    if (format_ == Format::kText) {
      if (errors[i] != nullptr) continue;
      buffer_.append(output.data(), output.size());
      buffer_.push_back('\n');
    } else {
      v1::TaskRecord record;
      record.set_index(index);
      record.set_ok(errors[i] == nullptr);
      std::string text(output);
      if (IsValidUtf8(text)) {
        record.set_output(std::move(text));
      } else {
        record.set_output_bytes(std::move(text));
      }
      if (errors[i] != nullptr) record.set_error(errors[i]->message());
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      options.always_print_primitive_fields = true;  // every record has every field
      (void)google::protobuf::util::MessageToJsonString(record, &json, options);
      buffer_.append(json);
      buffer_.push_back('\n');
    }
    ++printed_;
  }
  // Results appear promptly (like `parallel`), in few large writes.
  absl::Time now = absl::Now();
  if (buffer_.size() >= kFlushBytes || now - last_flush_ >= kFlushInterval) {
    Flush();
    last_flush_ = now;
  }
}

void ResultsPrinter::Flush() {
  if (!buffer_.empty()) std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
  buffer_.clear();
  std::fflush(out_);
}

void ResultsPrinter::Finish() {
  Flush();
  if (format_ == Format::kText && failed_ > kFailuresShown) {
    std::fprintf(err_, "drover: ... %llu more tasks failed (use --json to see all)\n",
                 static_cast<unsigned long long>(failed_ - kFailuresShown));
  }
}

}  // namespace drover
