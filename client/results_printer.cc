// Implements results_printer.h.
#include "client/results_printer.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/plain_json.h"
#include "drover/v1/service.pb.h"

namespace drover {
namespace {

constexpr uint64_t kFailuresShown = 10;
// Of a failed task: its item up to this many bytes, and the last lines of its stderr.
constexpr size_t kItemShown = 60;
constexpr size_t kStderrLinesShown = 5;
constexpr size_t kStderrLineBytes = 300;
constexpr size_t kFlushBytes = 1 << 20;
constexpr absl::Duration kFlushInterval = absl::Milliseconds(50);

}  // namespace


ResultsPrinter::ResultsPrinter(Format format, FILE* out, FILE* err, bool print_outputs)
    : format_(format), out_(out), err_(err), print_outputs_(print_outputs) {}

void ResultsPrinter::Failure(uint64_t index, const std::string& message, const v1::TaskInfo* task) {
  ++failed_;
  if (format_ != Format::kText || failed_ > kFailuresShown) return;
  std::string item;  // "(ITEM) ", shortened
  if (task != nullptr && !task->item().empty() && IsValidUtf8(task->item())) {
    item = absl::StrCat("(", task->item().substr(0, kItemShown), task->item().size() > kItemShown ? "...) " : ") ");
  }
  std::fprintf(err_, "drover: task %llu %sfailed: %s\n", static_cast<unsigned long long>(index + 1), item.c_str(),
               message.c_str());
  if (task == nullptr || task->stderr().empty()) return;
  // The end of its stderr, where the reason usually is.
  std::vector<absl::string_view> lines =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(task->stderr()), '\n');
  const size_t first = lines.size() > kStderrLinesShown ? lines.size() - kStderrLinesShown : 0;
  if (first > 0) std::fprintf(err_, "  | ... (%zu earlier lines of its stderr: see `drover logs`)\n", first);
  for (size_t i = first; i < lines.size(); ++i) {
    std::fprintf(err_, "  | %.*s\n", static_cast<int>(std::min<size_t>(lines[i].size(), kStderrLineBytes)),
                 lines[i].data());
  }
}

void ResultsPrinter::Truncated(uint64_t index, const v1::TaskInfo& task) {
  ++truncated_;
  if (format_ == Format::kText && truncated_ <= kFailuresShown) {
    std::fprintf(err_, "drover: warning: task %llu's %s passed --max-output and was cut\n",
                 static_cast<unsigned long long>(index + 1),
                 task.stdout_truncated() && task.stderr_truncated() ? "stdout and stderr"
                 : task.stdout_truncated()                          ? "stdout"
                                                                    : "stderr");
  }
}

namespace {

// Sets a string field if `bytes` is UTF-8, else the bytes field beside it.
void SetText(const std::string& bytes, std::string* text, std::string* raw) {
  (IsValidUtf8(bytes) ? text : raw)->assign(bytes);
}

// Offsets of the chunk's outputs, one per item plus the end.
std::vector<size_t> OutputOffsets(const v1::ChunkOutputs& chunk) {
  std::vector<size_t> offsets(chunk.item_count() + 1, 0);
  const bool sized = chunk.output_sizes_size() == static_cast<int>(chunk.item_count());
  for (uint32_t i = 0; i < chunk.item_count(); ++i) {
    offsets[i + 1] = offsets[i] + (sized ? chunk.output_sizes(static_cast<int>(i)) : 0);
  }
  return offsets;
}

// An HTTP request's TaskInfo: made at least once, with no gRPC code.
bool IsHttpTask(const v1::TaskInfo& task) { return task.grpc_code().empty() && task.attempts() > 0; }

}  // namespace

v1::TaskRecord ResultsPrinter::Record(const v1::ChunkOutputs& chunk, uint32_t offset,
                                      absl::string_view output, const v1::ItemError* error) const {
  v1::TaskRecord record;
  record.set_index(chunk.first_index() + offset);
  record.set_ok(error == nullptr);
  SetText(std::string(output), record.mutable_output(), record.mutable_output_bytes());
  if (error != nullptr) record.set_error(error->message());
  record.set_worker(chunk.worker());
  if (offset < static_cast<uint32_t>(chunk.tasks_size())) {
    const v1::TaskInfo& task = chunk.tasks(static_cast<int>(offset));
    record.set_duration_seconds(static_cast<double>(task.duration_us()) / 1e6);
    record.set_item(IsValidUtf8(task.item()) ? task.item() : "(not UTF-8)");
    SetText(task.stderr(), record.mutable_stderr(), record.mutable_stderr_bytes());
    if (IsHttpTask(task)) {
      record.set_http_status(task.http_status());
      record.set_content_type(task.content_type());
      record.set_redirects(task.redirects());
      record.set_final_url(task.final_url());
      record.set_attempts(task.attempts());
      record.set_total_seconds(static_cast<double>(task.total_duration_us()) / 1e6);
      return record;
    }
    if (!task.grpc_code().empty()) {
      record.set_grpc_code(task.grpc_code());
      record.set_grpc_message(task.grpc_message());
      record.set_attempts(task.attempts());
      record.set_total_seconds(static_cast<double>(task.total_duration_us()) / 1e6);
      return record;
    }
    record.set_exit_code(task.exit_code());
    record.set_signal(task.signal());
    record.set_timed_out(task.timed_out());
    record.set_max_rss_kb(task.max_rss_kb());
    record.set_stdout_truncated(task.stdout_truncated());
    record.set_stderr_truncated(task.stderr_truncated());
  }
  return record;
}

void ResultsPrinter::AppendJson(const v1::TaskRecord& record) {
  buffer_.append(PlainJson(record));  // every record has every field
  buffer_.push_back('\n');
}

void ResultsPrinter::Print(const v1::ChunkOutputs& chunk) {
  // Which items failed, by offset.
  std::vector<const v1::ItemError*> errors(chunk.item_count(), nullptr);
  for (const v1::ItemError& error : chunk.errors()) {
    if (error.offset() < chunk.item_count()) errors[error.offset()] = &error;
  }
  // A command's stdout is printed as it is; an HTTP request's status line
  // stands for its body (which --output-dir or --json keep); other outputs
  // get a newline each.
  const bool commands = chunk.tasks_size() > 0 && chunk.tasks(0).grpc_code().empty() && !IsHttpTask(chunk.tasks(0));
  const bool http = chunk.tasks_size() > 0 && IsHttpTask(chunk.tasks(0));
  std::vector<size_t> offsets = OutputOffsets(chunk);
  for (uint32_t i = 0; i < chunk.item_count(); ++i) {
    absl::string_view output(chunk.outputs().data() + offsets[i], offsets[i + 1] - offsets[i]);
    const v1::TaskInfo* task = i < static_cast<uint32_t>(chunk.tasks_size()) ? &chunk.tasks(static_cast<int>(i)) : nullptr;
    if (task != nullptr && (task->stdout_truncated() || task->stderr_truncated())) {
      Truncated(chunk.first_index() + i, *task);
    }
    if (errors[i] != nullptr) Failure(chunk.first_index() + i, errors[i]->message(), task);
    if (!print_outputs_ && errors[i] == nullptr) continue;
    if (files_ != nullptr) {
      if (!files_status_.ok()) continue;
      const std::string empty;
      const std::string& stderr_text = task != nullptr ? task->stderr() : empty;
      absl::StatusOr<std::string> path =
          files_->Write(chunk.first_index() + i + 1, task != nullptr ? task->item() : empty, output, stderr_text);
      if (!path.ok()) {
        files_status_ = path.status();
        std::fprintf(err_, "drover: --output-dir: %s\n", std::string(path.status().message()).c_str());
        continue;
      }
      if (format_ == Format::kJson) {
        v1::TaskRecord record = Record(chunk, i, "", errors[i]);
        record.set_output_file(*path);
        if (!stderr_text.empty()) record.set_stderr_file(absl::StrCat(absl::StripSuffix(*path, ".out"), ".err"));
        AppendJson(record);
      }
    } else if (format_ == Format::kJson) {
      AppendJson(Record(chunk, i, output, errors[i]));
    } else if (commands) {
      buffer_.append(output.data(), output.size());  // a command's stdout, as it is
    } else if (http && errors[i] == nullptr && task != nullptr) {
      absl::StrAppend(&buffer_, task->http_status(), " ", task->item(), " ",
                      std::max<uint64_t>(output.size(), task->body_bytes()), " bytes ",
                      absl::StrFormat("%.3fs", static_cast<double>(task->total_duration_us()) / 1e6),
                      task->final_url().empty() ? "" : absl::StrCat(" -> ", task->final_url()), "\n");
    } else if (errors[i] == nullptr) {
      buffer_.append(output.data(), output.size());
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

bool ResultsPrinter::PrintLog(const v1::ChunkOutputs& chunk, uint64_t index) {
  uint32_t offset = static_cast<uint32_t>(index - chunk.first_index());
  if (index < chunk.first_index() || offset >= chunk.item_count()) return false;
  const v1::ItemError* error = nullptr;
  for (const v1::ItemError& e : chunk.errors()) {
    if (e.offset() == offset) error = &e;
  }
  std::vector<size_t> offsets = OutputOffsets(chunk);
  absl::string_view output(chunk.outputs().data() + offsets[offset], offsets[offset + 1] - offsets[offset]);
  const std::string* stderr_data =
      offset < static_cast<uint32_t>(chunk.tasks_size()) ? &chunk.tasks(static_cast<int>(offset)).stderr() : nullptr;
  if (format_ == Format::kJson) {
    v1::TaskRecord record = Record(chunk, offset, output, error);
    if (stderr_data != nullptr) SetText(*stderr_data, record.mutable_stderr(), record.mutable_stderr_bytes());
    AppendJson(record);
  } else {
    buffer_.append(output.data(), output.size());
  }
  Flush();
  if (format_ == Format::kText) {
    if (stderr_data != nullptr) std::fwrite(stderr_data->data(), 1, stderr_data->size(), err_);
    if (error != nullptr) std::fprintf(err_, "drover: task %llu failed: %s\n",
                                       static_cast<unsigned long long>(index + 1), error->message().c_str());
  }
  return error == nullptr;
}

void ResultsPrinter::Flush() {
  if (!buffer_.empty()) std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
  buffer_.clear();
  std::fflush(out_);
}

void ResultsPrinter::Finish() {
  Flush();
  if (format_ != Format::kText) return;
  if (failed_ > kFailuresShown) {
    std::fprintf(err_, "drover: ... %llu more tasks failed (use --json to see all)\n",
                 static_cast<unsigned long long>(failed_ - kFailuresShown));
  }
  if (truncated_ > 0) {
    std::fprintf(err_, "drover: warning: %llu task(s) had output cut at --max-output (raise it, or write large "
                       "output to files)\n",
                 static_cast<unsigned long long>(truncated_));
  }
}

}  // namespace drover
