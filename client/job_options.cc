// Implements job_options.h.
#include "client/job_options.h"

#include <fstream>

#include "absl/strings/numbers.h"
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

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration duration;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    duration = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &duration)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout: '", text, "' is not a duration (e.g. 30s, 500ms, 2m, 1.5)"));
  }
  if (duration <= absl::ZeroDuration()) return absl::InvalidArgumentError("--timeout must be positive");
  return duration;
}

absl::StatusOr<uint64_t> ParseBytes(const std::string& text) {
  uint64_t multiplier = 1;
  std::string digits = text;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K': case 'k': multiplier = 1ull << 10; break;
      case 'M': case 'm': multiplier = 1ull << 20; break;
      case 'G': case 'g': multiplier = 1ull << 30; break;
      default: break;
    }
    if (multiplier != 1) digits.pop_back();
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value == 0 || value > (1ull << 40) / multiplier) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-output: '", text, "' is not a size (e.g. 1048576, 64K, 1M)"));
  }
  return value * multiplier;
}

absl::StatusOr<v1::JobSpec> BuildJobSpec(const JobOptions& options, std::istream& stdin_stream) {
  const bool command = !options.command.empty();
  if (options.kernel.empty() == !command) {
    return absl::InvalidArgumentError(
        command ? "give a kernel (--kernel) or a command (after --), not both"
                : "say what to run: --kernel NAME (e.g. --kernel echo), or -- COMMAND [ARGS...]");
  }
  int sources = (!options.items.empty() ? 1 : 0) + (!options.each_line.empty() ? 1 : 0) +
                (!options.range.empty() ? 1 : 0) + (!options.array.empty() ? 1 : 0);
  if (sources != 1) {
    return absl::InvalidArgumentError(
        sources == 0 ? "give the job's items: as arguments (or after :::), with --range A:B, "
                       "--array A-B[:STEP], or --each-line FILE"
                     : "give the job's items one way only: arguments, --range, --array or --each-line");
  }
  if (options.chunk == 0) return absl::InvalidArgumentError("--chunk must be at least 1");
  v1::JobSpec spec;
  if (command) {
    v1::CommandSpec* spec_command = spec.mutable_command();
    for (const std::string& arg : options.command) spec_command->add_argv(arg);
    for (const std::string& entry : options.env) {
      if (entry.find('=') == std::string::npos || entry.front() == '=') {
        return absl::InvalidArgumentError(absl::StrCat("--env: want K=V, got '", entry, "'"));
      }
      spec_command->add_env(entry);
    }
    spec_command->set_cwd(options.cwd);
    if (!options.timeout.empty()) {
      absl::StatusOr<absl::Duration> timeout = ParseTimeout(options.timeout);
      if (!timeout.ok()) return timeout.status();
      spec_command->set_timeout_ms(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(*timeout))));
    }
    if (!options.max_output.empty()) {
      absl::StatusOr<uint64_t> bytes = ParseBytes(options.max_output);
      if (!bytes.ok()) return bytes.status();
      spec_command->set_max_output_bytes(*bytes);
    }
    if (options.cpus == 0) return absl::InvalidArgumentError("--cpus must be at least 1");
    spec_command->set_cpus(options.cpus);
  } else {
    spec.set_kernel(options.kernel);
    if (!options.cwd.empty() || !options.env.empty() || !options.max_output.empty() || options.cpus != 1) {
      return absl::InvalidArgumentError("--cwd, --env, --max-output and --cpus go with commands");
    }
    if (!options.timeout.empty()) {
      absl::StatusOr<absl::Duration> timeout = ParseTimeout(options.timeout);
      if (!timeout.ok()) return timeout.status();
      spec.set_kernel_timeout_ms(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(*timeout))));
    }
  }
  spec.set_retries(options.retries);
  for (const std::string& label : options.require) {
    if (label.empty() || label.front() == '=') {
      return absl::InvalidArgumentError(absl::StrCat("--require: want KEY or KEY=VALUE, got '", label, "'"));
    }
    spec.add_require(label);
  }
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
  } else if (!options.array.empty()) {
    absl::StatusOr<v1::IntRange> range = ParseArray(options.array);
    if (!range.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--array: ", range.status().message()));
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
