// Prints a job's results as they stream in: text (one output per line) or
// JSON lines (one TaskRecord per task).
#ifndef DROVER_CLIENT_RESULTS_PRINTER_H_
#define DROVER_CLIENT_RESULTS_PRINTER_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/output_files.h"
#include "common/items.h"
#include "drover/v1/common.pb.h"
#include "drover/v1/service.pb.h"

namespace drover {

// Not thread-safe; one owner. Output is buffered: call Finish() at the end.
class ResultsPrinter {
 public:
  enum class Format { kText, kJson };

  // Text format: each successful kernel output and a newline to `out`, or
  // each command task's stdout as it is (like `parallel --keep-order`), in the
  // order chunks arrive; failures go to `err` as "task N (ITEM) failed: why"
  // and the last lines of the task's stderr (N is the task number, from 1; the
  // first few in full, then a count). An output cut at --max-output is a
  // warning on `err` and in Finish()'s summary.
  // `print_outputs` false prints only failures (used for reductions).
  ResultsPrinter(Format format, FILE* out, FILE* err, bool print_outputs = true);

  // From now on each task's stdout and stderr go to files (`--output-dir`)
  // instead of `out`; JSON records name the files. `files` outlives this.
  void WriteOutputsTo(OutputFiles* files) { files_ = files; }

  void Print(const v1::ChunkOutputs& chunk);
  // OK unless writing an output file failed (said on `err` once); Print()
  // then writes no more files.
  const absl::Status& files_status() const { return files_status_; }
  // Prints task `index` of `chunk` with its stderr (`drover logs`): text
  // writes its stdout to `out` and its stderr to `err`. Returns whether the
  // task succeeded.
  bool PrintLog(const v1::ChunkOutputs& chunk, uint64_t index);
  void Flush();
  // Flushes and reports how many failures were not shown and how many
  // outputs were cut.
  void Finish();

  uint64_t failed() const { return failed_; }
  uint64_t printed() const { return printed_; }

 private:
  // `task`: the task's TaskInfo (item, stderr) if the chunk has one.
  void Failure(uint64_t index, const std::string& message, const v1::TaskInfo* task);
  // A task whose stdout or stderr was cut at --max-output.
  void Truncated(uint64_t index, const v1::TaskInfo& task);
  v1::TaskRecord Record(const v1::ChunkOutputs& chunk, uint32_t offset, absl::string_view output,
                        const v1::ItemError* error) const;
  void AppendJson(const v1::TaskRecord& record);

  const Format format_;
  FILE* const out_;
  FILE* const err_;
  const bool print_outputs_;
  OutputFiles* files_ = nullptr;
  absl::Status files_status_;
  std::string buffer_;
  absl::Time last_flush_ = absl::InfinitePast();
  uint64_t failed_ = 0;
  uint64_t printed_ = 0;
  uint64_t truncated_ = 0;  // tasks whose output was cut
};

}  // namespace drover

#endif  // DROVER_CLIENT_RESULTS_PRINTER_H_
