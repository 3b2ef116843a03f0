// `--joblog FILE`: one line per finished task in GNU Parallel's joblog format
// (tab-separated: Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval,
// Signal, Command), written as results arrive, so that tools reading
// Parallel's joblogs read drover's.
#ifndef DROVER_CLIENT_JOB_LOG_H_
#define DROVER_CLIENT_JOB_LOG_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "drover/v1/common.pb.h"

namespace drover {

// Not thread-safe; one owner.
class JobLog {
 public:
  // Creates (truncates) `path` and writes the header. `what_runs`: the
  // command's arguments ({} is replaced by each task's item), or a kernel's
  // name alone. `listed_items`: the job's items when the client listed them
  // (a kernel task's item is not in its result). Errors: kUnavailable when
  // `path` cannot be written.
  static absl::StatusOr<std::unique_ptr<JobLog>> Create(const std::string& path, std::vector<std::string> what_runs,
                                                        std::vector<std::string> listed_items);
  ~JobLog();

  // A line per task of `chunk`. Seq is the task number (from 1); Host the
  // worker's name; Starttime (seconds since the epoch) and JobRuntime (seconds)
  // come from the task, or for a kernel's tasks from their chunk (its items
  // run together); Receive is the output's size; Send is 0.
  void Write(const v1::ChunkOutputs& chunk);
  // Flushes; false when a write failed (disk full).
  bool Close();

 private:
  JobLog(FILE* file, std::vector<std::string> what_runs, std::vector<std::string> listed_items)
      : file_(file), what_runs_(std::move(what_runs)), listed_items_(std::move(listed_items)) {}
  // The task's command line; `item` null when its result does not carry it.
  std::string Command(const std::string* item, uint64_t task_number) const;

  FILE* file_;
  const std::vector<std::string> what_runs_;
  const std::vector<std::string> listed_items_;
};

}  // namespace drover

#endif  // DROVER_CLIENT_JOB_LOG_H_
