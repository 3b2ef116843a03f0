// Shows a job's progress on a terminal (a live bar: done/failed/total, rate,
// ETA) or, when not on a terminal, as occasional plain lines.
#ifndef DROVER_CLIENT_PROGRESS_H_
#define DROVER_CLIENT_PROGRESS_H_

#include <cstdint>
#include <cstdio>

#include "absl/time/time.h"
#include "drover/v1/service.pb.h"

namespace drover {

// Not thread-safe; one owner.
class ProgressReporter {
 public:
  // `terminal`: redraw one line in place; otherwise print a line at most every few seconds.
  ProgressReporter(FILE* out, bool terminal);

  void Update(const v1::JobStatus& status);
  // Ends the bar and prints the final line.
  void Finish(const v1::JobStatus& status);
  // Terminal mode: erases the bar (so that other output can take its line),
  // and draws it again from the last status.
  void Clear();
  void Redraw();

 private:
  void Draw(const v1::JobStatus& status, bool final_line);

  FILE* const out_;
  const bool terminal_;
  const absl::Time start_;
  absl::Time last_draw_ = absl::InfinitePast();
  uint64_t first_done_ = UINT64_MAX;
  v1::JobStatus last_;  // the last status drawn
  bool drawn_ = false;  // the bar is on screen
  bool finished_ = false;
};

// "SUCCEEDED", "FAILED", ... for users.
const char* StateName(v1::JobState state);

}  // namespace drover

#endif  // DROVER_CLIENT_PROGRESS_H_
