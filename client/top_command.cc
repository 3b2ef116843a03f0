// `drover top`: a terminal view of the coordinator (workers, jobs, rates),
// redrawn in place every interval until Ctrl-C; `--once` prints one frame.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "client/commands.h"
#include "client/progress.h"

namespace drover {
namespace {

constexpr size_t kFinishedJobsShown = 5;

// One look at the coordinator, and the rates since the one before.
struct Frame {
  std::vector<v1::WorkerInfo> workers;
  std::vector<v1::JobStatus> jobs;
  absl::Time taken;
};

std::string Duration(double seconds) {
  if (seconds < 60) return absl::StrFormat("%.0fs", seconds);
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  return absl::StrFormat("%dh%02dm", static_cast<int>(seconds) / 3600, static_cast<int>(seconds) / 60 % 60);
}

bool Unfinished(const v1::JobStatus& job) {
  return job.state() == v1::JOB_STATE_QUEUED || job.state() == v1::JOB_STATE_RUNNING;
}

// The frame as text; `before` (may be null) gives each job's rate.
std::string Render(const Frame& now, const Frame* before, const std::string& coordinator) {
  absl::flat_hash_map<uint64_t, uint64_t> done_before;
  double seconds = 0;
  if (before != nullptr) {
    for (const v1::JobStatus& job : before->jobs) done_before[job.job_id()] = job.done_items();
    seconds = absl::ToDoubleSeconds(now.taken - before->taken);
  }
  uint64_t slots = 0, busy = 0, io_calls = 0, draining = 0;
  for (const v1::WorkerInfo& w : now.workers) {
    slots += w.slots();
    busy += w.slots_busy();
    io_calls += w.io_calls_in_flight();
    draining += w.draining() ? 1 : 0;
  }
  uint64_t running = 0, queued = 0;
  double total_rate = 0;
  std::vector<std::string> job_lines;
  std::vector<const v1::JobStatus*> shown;
  for (const v1::JobStatus& job : now.jobs) {
    if (Unfinished(job)) shown.push_back(&job);
    running += job.state() == v1::JOB_STATE_RUNNING ? 1 : 0;
    queued += job.state() == v1::JOB_STATE_QUEUED ? 1 : 0;
  }
  size_t finished_shown = 0;
  for (auto it = now.jobs.rbegin(); it != now.jobs.rend() && finished_shown < kFinishedJobsShown; ++it) {
    if (!Unfinished(*it)) {
      shown.push_back(&*it);
      ++finished_shown;
    }
  }
  for (const v1::JobStatus* job : shown) {
    double rate = 0;
    if (auto it = done_before.find(job->job_id()); it != done_before.end() && seconds > 0) {
      rate = static_cast<double>(job->done_items() - std::min(job->done_items(), it->second)) / seconds;
    }
    total_rate += rate;
    std::string eta = "-";
    if (Unfinished(*job) && rate > 0) {
      eta = Duration(static_cast<double>(job->total_items() - job->done_items()) / rate);
    }
    const double percent =
        job->total_items() == 0 ? 100.0 : 100.0 * static_cast<double>(job->done_items()) / job->total_items();
    job_lines.push_back(absl::StrFormat(
        "%-6d %-10s %21s %6.1f%% %8d %10.0f/s %8s  %s", job->job_id(), StateName(job->state()),
        absl::StrCat(job->done_items(), "/", job->total_items()), percent, job->failed_items(), rate, eta,
        job->name().empty() ? job->runs() : job->name()));
  }

  std::string text = absl::StrFormat(
      "drover top  %s  %s\n"
      "workers %d (%d draining)   slots %d/%d busy   I/O calls %d   jobs %d running, %d queued   %.0f tasks/s\n\n",
      coordinator, absl::FormatTime("%H:%M:%S", now.taken, absl::LocalTimeZone()), now.workers.size(), draining,
      busy, slots, io_calls, running, queued, total_rate);
  absl::StrAppend(&text, absl::StrFormat("%-6s %-10s %21s %7s %8s %12s %8s  %s\n", "JOB", "STATE", "DONE/TOTAL",
                                         "", "FAILED", "RATE", "ETA", "RUNS"));
  for (const std::string& line : job_lines) absl::StrAppend(&text, line, "\n");
  if (job_lines.empty()) absl::StrAppend(&text, "(no jobs)\n");
  absl::StrAppend(&text, "\n", absl::StrFormat("%-6s %-24s %10s %6s %6s %10s  %-8s %s\n", "WORKER", "NAME",
                                               "BUSY/SLOTS", "HELD", "I/O", "DONE", "STATE", "LABELS"));
  for (const v1::WorkerInfo& w : now.workers) {
    absl::StrAppend(&text, absl::StrFormat("%-6s %-24s %10s %6d %6d %10d  %-8s %s\n", w.worker_id(), w.name(),
                                           absl::StrCat(w.slots_busy(), "/", w.slots()), w.chunks_held(),
                                           w.io_calls_in_flight(), w.chunks_done(),
                                           w.draining() ? "draining" : "ready", absl::StrJoin(w.labels(), ",")));
  }
  if (now.workers.empty()) absl::StrAppend(&text, "(no workers)\n");
  return text;
}

absl::StatusOr<Frame> Look(Client& client) {
  Frame frame;
  absl::StatusOr<std::vector<v1::WorkerInfo>> workers = client.ListWorkers();
  if (!workers.ok()) return workers.status();
  absl::StatusOr<std::vector<v1::JobStatus>> jobs = client.ListJobs();
  if (!jobs.ok()) return jobs.status();
  frame.workers = *std::move(workers);
  frame.jobs = *std::move(jobs);
  frame.taken = absl::Now();
  return frame;
}

}  // namespace

int TopCommand(const CommonOptions& common, double interval_seconds, bool once) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  const bool terminal = isatty(STDOUT_FILENO) != 0 && !once;
  const absl::Duration interval = absl::Seconds(interval_seconds);
  std::optional<Frame> before;
  while (true) {
    absl::StatusOr<Frame> now = Look(**client);
    if (!now.ok()) return Fail(now.status());
    if (once && !before) {  // one frame, with rates: look twice, an interval apart
      before = *std::move(now);
      absl::SleepFor(std::min(interval, absl::Seconds(1)));
      continue;
    }
    std::string text = Render(*now, before ? &*before : nullptr, common.coordinator);
    if (terminal) std::fputs("\033[H\033[2J", stdout);  // home, clear: redraw in place
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    if (once) return kExitOk;
    before = *std::move(now);
    const absl::Time next = absl::Now() + interval;
    while (absl::Now() < next) {
      if (Interrupted()) return kExitOk;  // Ctrl-C is how top ends
      absl::SleepFor(std::min(absl::Milliseconds(100), next - absl::Now()));
    }
  }
}

}  // namespace drover
