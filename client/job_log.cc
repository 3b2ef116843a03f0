// Implements job_log.h.
#include "client/job_log.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace drover {
namespace {

// Seconds with three decimals, as Parallel writes them.
std::string Seconds(int64_t micros) { return absl::StrFormat("%.3f", static_cast<double>(micros) / 1e6); }

// Tabs and newlines would break the line's columns.
std::string OneField(std::string text) {
  for (char& c : text) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobLog>> JobLog::Create(const std::string& path, std::vector<std::string> what_runs,
                                                        std::vector<std::string> listed_items) {
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    return absl::UnavailableError(absl::StrCat("--joblog: cannot write ", path, ": ", std::strerror(errno)));
  }
  std::fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n", file);
  return std::unique_ptr<JobLog>(new JobLog(file, std::move(what_runs), std::move(listed_items)));
}

JobLog::~JobLog() {
  if (file_ != nullptr) std::fclose(file_);
}

std::string JobLog::Command(const std::string* item, uint64_t task_number) const {
  if (item == nullptr && task_number <= listed_items_.size()) item = &listed_items_[task_number - 1];
  if (what_runs_.size() == 1 && what_runs_[0].find("{}") == std::string::npos) {  // a kernel
    return item != nullptr ? absl::StrCat(what_runs_[0], " ", *item) : absl::StrCat(what_runs_[0], " #", task_number);
  }
  std::vector<std::string> args;
  args.reserve(what_runs_.size());
  for (const std::string& arg : what_runs_) args.push_back(absl::StrReplaceAll(arg, {{"{}", item ? *item : ""}}));
  return absl::StrJoin(args, " ");
}

void JobLog::Write(const v1::ChunkOutputs& chunk) {
  std::vector<bool> failed(chunk.item_count(), false);
  for (const v1::ItemError& error : chunk.errors()) {
    if (error.offset() < failed.size()) failed[error.offset()] = true;
  }
  for (uint32_t i = 0; i < chunk.item_count(); ++i) {
    const uint64_t task_number = chunk.first_index() + i + 1;
    const v1::TaskInfo* task = static_cast<int>(i) < chunk.tasks_size() ? &chunk.tasks(static_cast<int>(i)) : nullptr;
    int64_t started = chunk.started_unix_us();
    int64_t runtime = static_cast<int64_t>(chunk.run_us());
    int exit_value = failed[i] ? 1 : 0;
    int signal = 0;
    if (task != nullptr) {
      if (task->started_unix_us() != 0) started = task->started_unix_us();
      runtime = static_cast<int64_t>(task->total_duration_us() != 0 ? task->total_duration_us() : task->duration_us());
      if (task->grpc_code().empty()) {  // a command: its own exit status and signal
        exit_value = task->exit_code();
        signal = task->signal();
      }
    }
    uint64_t received = static_cast<int>(i) < chunk.output_sizes_size() ? chunk.output_sizes(static_cast<int>(i)) : 0;
    if (task != nullptr) received = std::max(received, task->body_bytes());  // an HTTP body not returned
    std::fprintf(file_, "%llu\t%s\t%s\t%s\t0\t%llu\t%d\t%d\t%s\n", static_cast<unsigned long long>(task_number),
                 OneField(chunk.worker().empty() ? "-" : chunk.worker()).c_str(), Seconds(started).c_str(),
                 Seconds(runtime).c_str(), static_cast<unsigned long long>(received), exit_value, signal,
                 OneField(Command(task != nullptr ? &task->item() : nullptr, task_number)).c_str());
  }
}

bool JobLog::Close() {
  const bool ok = std::fflush(file_) == 0 && !std::ferror(file_);
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  return ok && closed;
}

}  // namespace drover
