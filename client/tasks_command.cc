// `drover tasks JOB`: a job's tasks with their state, worker, start time,
// duration and outcome (ListTasks), fetched and printed a page at a time.
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/plain_json.h"
#include "client/client.h"
#include "client/commands.h"

namespace drover {
namespace {

constexpr size_t kItemShown = 40;
constexpr size_t kReasonShown = 60;

std::string TaskStateName(v1::TaskState state) {
  std::string name = v1::TaskState_Name(state);
  absl::string_view short_name = name;
  short_name.remove_prefix(std::string_view("TASK_STATE_").size());
  return absl::AsciiStrToLower(short_name);
}

std::string Shortened(const std::string& text, size_t most) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > most || line.size() < text.size() ? absl::StrCat(line.substr(0, most), "...") : line;
}

void PrintRow(const v1::TaskSummary& task, absl::Time now) {
  std::string started, took, exit_code;
  if (task.started_unix_us() != 0) {
    const absl::Time at = absl::FromUnixMicros(task.started_unix_us());
    started = absl::FormatTime("%H:%M:%S", at, absl::LocalTimeZone());
    const absl::Duration length = task.state() == v1::TASK_STATE_RUNNING ? now - at
                                                                          : absl::Microseconds(task.duration_us());
    took = absl::StrFormat("%.2fs", absl::ToDoubleSeconds(std::max(length, absl::ZeroDuration())));
  }
  if (task.state() == v1::TASK_STATE_SUCCEEDED || task.state() == v1::TASK_STATE_FAILED) {
    exit_code = absl::StrCat(task.exit_code());
  }
  const std::string item = task.item_bytes().empty() ? task.item() : "(not UTF-8)";
  std::printf("%-8llu %-10s %-20s %-9s %9s %5s  %s%s\n", static_cast<unsigned long long>(task.index() + 1),
              TaskStateName(task.state()).c_str(), task.worker().c_str(), started.c_str(), took.c_str(),
              exit_code.c_str(), Shortened(item, kItemShown).c_str(),
              task.reason().empty() ? "" : absl::StrCat("  ", Shortened(task.reason(), kReasonShown)).c_str());
}

}  // namespace

absl::StatusOr<v1::TaskState> ParseTaskState(const std::string& name) {
  if (name.empty()) return v1::TASK_STATE_UNSPECIFIED;
  v1::TaskState state;
  if (!v1::TaskState_Parse(absl::StrCat("TASK_STATE_", absl::AsciiStrToUpper(name)), &state) ||
      state == v1::TASK_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("--state ", name, ": one of queued, assigned, running, ",
                                                   "succeeded, failed, done, cancelled"));
  }
  return state;
}

int TasksCommand(const CommonOptions& common, uint64_t job_id, const TasksOptions& options) {
  absl::StatusOr<v1::TaskState> state = ParseTaskState(options.state);
  if (!state.ok()) return Fail(state.status());
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  v1::ListTasksRequest request;
  request.set_job_id(job_id);
  request.set_state(*state);
  request.set_start_index(options.from_task - 1);
  uint64_t printed = 0;
  if (!common.json) {
    std::printf("%-8s %-10s %-20s %-9s %9s %5s  %s\n", "TASK", "STATE", "WORKER", "STARTED", "TIME", "EXIT",
                "ITEM / REASON");
  }
  while (!Interrupted()) {
    if (options.limit > 0) request.set_limit(static_cast<uint32_t>(std::min<uint64_t>(options.limit - printed, 1000)));
    absl::StatusOr<v1::ListTasksReply> page = (*client)->ListTasks(request);
    if (!page.ok()) return Fail(page.status());
    const absl::Time now = absl::Now();
    for (const v1::TaskSummary& task : page->tasks()) {
      if (common.json) {
        std::printf("%s\n", PlainJson(task).c_str());
      } else {
        PrintRow(task, now);
      }
      ++printed;
    }
    std::fflush(stdout);
    if (page->next_index() >= page->total_items() || (options.limit > 0 && printed >= options.limit)) break;
    request.set_start_index(page->next_index());
  }
  return kExitOk;
}

}  // namespace drover
