// Implements job_options.h.
#include "client/job_options.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/items.h"

namespace drover {

absl::StatusOr<v1::Reduce> ParseReduce(const std::string& name) {
  if (name.empty()) return v1::REDUCE_NONE;
  if (name == "sum") return v1::REDUCE_SUM;
  if (name == "min") return v1::REDUCE_MIN;
  if (name == "max") return v1::REDUCE_MAX;
  if (name == "count") return v1::REDUCE_COUNT;
  return absl::InvalidArgumentError(
      absl::StrCat("--reduce: unknown reduction '", name, "' (use sum, min, max or count)"));
}

absl::StatusOr<v1::JobSpec> BuildJobSpec(const JobOptions& options, std::istream& stdin_stream) {
  if (options.kernel.empty()) {
    return absl::InvalidArgumentError("say which kernel to run with --kernel NAME (e.g. --kernel echo)");
  }
  int sources = (!options.items.empty() ? 1 : 0) + (!options.each_line.empty() ? 1 : 0) +
                (!options.range.empty() ? 1 : 0);
  if (sources != 1) {
    return absl::InvalidArgumentError(
        sources == 0 ? "give the job's items: as arguments, with --range A:B, or with --each-line FILE"
                     : "give the job's items one way only: arguments, --range or --each-line");
  }
  if (options.chunk == 0) return absl::InvalidArgumentError("--chunk must be at least 1");
  v1::JobSpec spec;
  spec.set_kernel(options.kernel);
  spec.set_chunk_size(options.chunk);
  spec.set_name(options.name);
  absl::StatusOr<v1::Reduce> reduce = ParseReduce(options.reduce);
  if (!reduce.ok()) return reduce.status();
  spec.set_reduce(*reduce);

  if (!options.range.empty()) {
    absl::StatusOr<v1::IntRange> range = ParseRange(options.range);
    if (!range.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--range: ", range.status().message()));
    }
    *spec.mutable_items()->mutable_range() = *range;
  } else if (!options.items.empty()) {
    auto* items = spec.mutable_items()->mutable_inline_()->mutable_items();
    for (const std::string& item : options.items) *items->Add() = item;
  } else {
    std::ifstream file;
    std::istream* in = &stdin_stream;
    if (options.each_line != "-") {
      file.open(options.each_line, std::ios::binary);
      if (!file) return absl::NotFoundError(absl::StrCat("--each-line: cannot open ", options.each_line));
      in = &file;
    }
    auto* items = spec.mutable_items()->mutable_inline_()->mutable_items();
    std::string line;
    while (std::getline(*in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      *items->Add() = std::move(line);
    }
    if (in->bad()) return absl::DataLossError(absl::StrCat("--each-line: error reading ", options.each_line));
  }
  return spec;
}

}  // namespace drover
