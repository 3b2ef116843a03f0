// `--output-dir`: each task's stdout and stderr in files of their own on the
// client's machine, named by a pattern (like `parallel --results` or
// HyperQueue's `--stdout`), instead of on the terminal.
#ifndef DROVER_CLIENT_OUTPUT_FILES_H_
#define DROVER_CLIENT_OUTPUT_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace drover {

// Not thread-safe; one owner.
class OutputFiles {
 public:
  // Makes `dir` (and its parents) if needed. `pattern` names a task's files:
  // `{#}` is the task number, `{}` its item made safe as a file name; it has
  // at least one of them and no '/'. Errors: kInvalidArgument for a bad
  // pattern, kUnavailable when `dir` cannot be made.
  static absl::StatusOr<OutputFiles> Open(std::string dir, std::string pattern);

  // Writes DIR/NAME.out (always, byte for byte) and DIR/NAME.err (when
  // `stderr_text` is not empty), replacing files of those names. Returns the
  // .out path. Errors: kUnavailable naming the file and the reason.
  absl::StatusOr<std::string> Write(uint64_t task_number, absl::string_view item, absl::string_view stdout_text,
                                    absl::string_view stderr_text);

 private:
  OutputFiles(std::string dir, std::string pattern) : dir_(std::move(dir)), pattern_(std::move(pattern)) {}
  std::string dir_;
  std::string pattern_;
};

// `item` as one file name: '/', control characters and NUL become '_', a
// leading '.' too (no hidden files, no "..") , and it is cut to 100 bytes;
// an empty item is "_".
std::string SafeFileName(absl::string_view item);

}  // namespace drover

#endif  // DROVER_CLIENT_OUTPUT_FILES_H_
