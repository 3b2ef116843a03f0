// What users type to describe a job (kernel, items, chunking, reduction),
// turned into a JobSpec. Shared by `drover submit` and `drover run`.
#ifndef DROVER_CLIENT_JOB_OPTIONS_H_
#define DROVER_CLIENT_JOB_OPTIONS_H_

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "drover/v1/service.pb.h"

namespace drover {

struct JobOptions {
  std::string kernel;
  std::vector<std::string> items;  // positional items
  std::string each_line;           // a file of items, one per line; "-" is stdin
  std::string range;               // "A:B"
  uint32_t chunk = 1;
  std::string reduce;              // "", sum, min, max, count
  std::string name;
};

// Builds the spec. `stdin_stream` is read when each_line is "-".
// Errors: kInvalidArgument with a message telling the user what to fix
// (no kernel, not exactly one kind of input, a bad range or reduction);
// kNotFound when the items file cannot be opened.
absl::StatusOr<v1::JobSpec> BuildJobSpec(const JobOptions& options, std::istream& stdin_stream);

// "sum" -> REDUCE_SUM, ... Errors: kInvalidArgument.
absl::StatusOr<v1::Reduce> ParseReduce(const std::string& name);

}  // namespace drover

#endif  // DROVER_CLIENT_JOB_OPTIONS_H_
