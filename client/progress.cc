// Implements progress.h.
#include "client/progress.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace drover {
namespace {

constexpr int kBarWidth = 30;
constexpr absl::Duration kPlainInterval = absl::Seconds(5);

std::string Seconds(double s) {
  if (s < 60) return absl::StrFormat("%.1fs", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return absl::StrFormat("%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
}

}  // namespace

const char* StateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED: return "QUEUED";
    case v1::JOB_STATE_RUNNING: return "RUNNING";
    case v1::JOB_STATE_SUCCEEDED: return "SUCCEEDED";
    case v1::JOB_STATE_FAILED: return "FAILED";
    case v1::JOB_STATE_CANCELLED: return "CANCELLED";
    default: return "UNKNOWN";
  }
}

ProgressReporter::ProgressReporter(FILE* out, bool terminal)
    : out_(out), terminal_(terminal), start_(absl::Now()) {}

void ProgressReporter::Update(const v1::JobStatus& status) {
  if (first_done_ == UINT64_MAX) first_done_ = status.done_items();
  const v1::JobState state = status.state();
  if (!terminal_ && (state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
                     state == v1::JOB_STATE_CANCELLED)) {
    return;  // Finish() prints the final line
  }
  absl::Time now = absl::Now();
  if (!terminal_ && now - last_draw_ < kPlainInterval) return;
  last_draw_ = now;
  Draw(status, false);
}

void ProgressReporter::Finish(const v1::JobStatus& status) {
  if (first_done_ == UINT64_MAX) first_done_ = status.done_items();
  Draw(status, true);
  finished_ = true;
}

void ProgressReporter::Clear() {
  if (!terminal_ || !drawn_ || finished_) return;
  std::fputs("\r\033[K", out_);
  std::fflush(out_);
  drawn_ = false;
}

void ProgressReporter::Redraw() {
  // At most ten times a second: results printed quickly do not each redraw it
  // (the next Update draws it anyway).
  if (!terminal_ || drawn_ || finished_ || first_done_ == UINT64_MAX) return;
  if (absl::Now() - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = absl::Now();
  Draw(last_, false);
}

void ProgressReporter::Draw(const v1::JobStatus& status, bool final_line) {
  if (&status != &last_) last_ = status;
  drawn_ = !final_line;
  const uint64_t total = status.total_items();
  const uint64_t done = status.done_items();
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start_);
  double rate = elapsed > 0 ? static_cast<double>(done - first_done_) / elapsed : 0;
  std::string line = absl::StrFormat("job %d %s %d/%d done, %d failed", status.job_id(),
                                     StateName(status.state()), done, total, status.failed_items());
  if (terminal_) {
    int filled = total == 0 ? kBarWidth : static_cast<int>(kBarWidth * done / total);
    line = absl::StrCat("[", std::string(filled, '#'), std::string(kBarWidth - filled, '-'), "] ", line);
  }
  if (rate > 0) absl::StrAppend(&line, absl::StrFormat(", %.0f/s", rate));
  if (!final_line && rate > 0 && total > done) {
    absl::StrAppend(&line, ", ETA ", Seconds(static_cast<double>(total - done) / rate));
  }
  if (final_line) absl::StrAppend(&line, " in ", Seconds(elapsed));
  if (terminal_) {
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace drover
