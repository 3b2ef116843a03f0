// Implements job_options.h.
#include "client/job_options.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/grpc_codec.h"
#include "common/items.h"
#include "common/status_ranges.h"

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

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text, absl::string_view flag) {
  absl::Duration duration;
  double number = 0;
  if (absl::SimpleAtod(text, &number) && !std::isfinite(number)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be a positive, finite duration"));
  } else if (absl::SimpleAtod(text, &number)) {
    duration = absl::Seconds(number);
  } else if (absl::EndsWith(text, "d") && absl::SimpleAtod(text.substr(0, text.size() - 1), &number)) {
    duration = absl::Hours(24 * number);  // days, as --keep-finished takes them
  } else if (!absl::ParseDuration(text, &duration)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", text, "' is not a duration (e.g. 30s, 500ms, 2m, 1.5, 7d)"));
  }
  if (!(duration > absl::ZeroDuration()) || duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be a positive, finite duration"));
  }
  return duration;
}

absl::StatusOr<uint64_t> ParseBytes(const std::string& text, absl::string_view flag) {
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
        absl::StrCat(flag, ": '", text, "' is not a size (e.g. 1048576, 64K, 1M)"));
  }
  return value * multiplier;
}

namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, absl::string_view flag) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(flag, ": cannot open ", path));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

absl::StatusOr<v1::GrpcSpec> BuildGrpcSpec(const JobOptions& options) {
  v1::GrpcSpec call;
  call.set_target(options.grpc_target);
  if (options.method.empty()) {
    return absl::InvalidArgumentError("--grpc needs --method /package.Service/Method");
  }
  if (absl::StatusOr<std::pair<std::string, std::string>> names = SplitMethodPath(options.method); !names.ok()) {
    return names.status();
  }
  call.set_method(options.method);
  call.set_raw(options.raw);
  if (!options.proto_set.empty()) {
    absl::StatusOr<std::string> descriptors = ReadWholeFile(options.proto_set, "--proto-set");
    if (!descriptors.ok()) return descriptors.status();
    call.set_descriptor_set(*std::move(descriptors));
  }
  if (options.deadline != "none") {
    // A server that accepts a call and never answers must not hang the job.
    absl::StatusOr<absl::Duration> deadline =
        options.deadline.empty() ? absl::StatusOr<absl::Duration>(kDefaultGrpcDeadline)
                                 : ParseTimeout(options.deadline, "--deadline");
    if (!deadline.ok()) return deadline.status();
    call.set_deadline_ms(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(*deadline))));
  }
  call.set_concurrency(options.concurrency);
  if (!(options.rate >= 0)) return absl::InvalidArgumentError("--rate must be a positive number of calls per second");
  call.set_rate(options.rate);
  if (!options.max_response.empty()) {
    absl::StatusOr<uint64_t> bytes = ParseBytes(options.max_response, "--max-response");
    if (!bytes.ok()) return bytes.status();
    if (*bytes > kMaxGrpcResponseLimit) {
      return absl::InvalidArgumentError(absl::StrCat("--max-response: at most ", kMaxGrpcResponseLimit >> 20, "M"));
    }
    call.set_max_response_bytes(*bytes);
  }
  if (options.at_most_once && options.retries > 0) {
    return absl::InvalidArgumentError(
        "--at-most-once and --retries do not go together: a retry makes a call again that may have reached "
        "the server");
  }
  call.set_at_most_once(options.at_most_once);
  if (options.lb == "round_robin") {
    call.set_lb_policy("round_robin");
  } else if (!options.lb.empty() && options.lb != "pick_first") {
    return absl::InvalidArgumentError(absl::StrCat("--lb: want pick_first or round_robin, got '", options.lb, "'"));
  }
  for (const std::string& header : options.headers) {
    size_t colon = header.find(':');
    if (colon == 0 || colon == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("-H: want key:value, got '", header, "'"));
    }
    call.add_metadata(header);
  }
  call.set_tls(options.grpc_tls || !options.grpc_ca.empty());
  if (!options.grpc_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadWholeFile(options.grpc_ca, "--grpc-ca");
    if (!ca.ok()) return ca.status();
    call.set_ca_pem(*std::move(ca));
  }
  return call;
}


// An HTTP job's largest response body when --max-body is not given: as
// --max-output for a command's output.
constexpr uint64_t kDefaultHttpMaxBody = 1 << 20;

absl::StatusOr<v1::GrpcSpec> BuildHttpSpec(const JobOptions& options) {
  v1::GrpcSpec spec;
  v1::HttpRequest* http = spec.mutable_http();
  for (char c : options.http_method) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("-X: '", options.http_method, "' is not an HTTP method"));
    }
  }
  http->set_method(absl::AsciiStrToUpper(options.http_method));
  if (!options.http_url.empty() && !absl::StartsWith(options.http_url, "http://") &&
      !absl::StartsWith(options.http_url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--url: '", options.http_url, "' is not an http:// or https:// URL"));
  }
  http->set_url(options.http_url);
  if (!options.accept_status.empty()) {
    if (absl::StatusOr<StatusRanges> ranges = ParseStatusRanges(options.accept_status); !ranges.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--accept-status: ", ranges.status().message()));
    }
    http->set_accept_status(options.accept_status);
  }
  http->set_max_redirects(options.max_redirects);
  if (!options.connect_timeout.empty()) {
    absl::StatusOr<absl::Duration> timeout = ParseTimeout(options.connect_timeout, "--connect-timeout");
    if (!timeout.ok()) return timeout.status();
    http->set_connect_timeout_ms(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(*timeout))));
  }
  // A server that accepts a request and never answers must not hang the job.
  absl::StatusOr<absl::Duration> timeout = options.timeout.empty()
                                               ? absl::StatusOr<absl::Duration>(kDefaultGrpcDeadline)
                                               : ParseTimeout(options.timeout, "--timeout");
  if (!timeout.ok()) return timeout.status();
  spec.set_deadline_ms(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(*timeout))));
  spec.set_max_response_bytes(kDefaultHttpMaxBody);
  if (!options.max_body.empty()) {
    absl::StatusOr<uint64_t> bytes = ParseBytes(options.max_body, "--max-body");
    if (!bytes.ok()) return bytes.status();
    if (*bytes > kMaxGrpcResponseLimit) {
      return absl::InvalidArgumentError(absl::StrCat("--max-body: at most ", kMaxGrpcResponseLimit >> 20, "M"));
    }
    spec.set_max_response_bytes(*bytes);
  }
  spec.set_concurrency(options.concurrency);
  if (!(options.rate >= 0)) return absl::InvalidArgumentError("--rate must be a positive number of requests per second");
  spec.set_rate(options.rate);
  if (options.at_most_once && options.retries > 0) {
    return absl::InvalidArgumentError("--at-most-once and --retries do not go together");
  }
  spec.set_at_most_once(options.at_most_once);
  for (const std::string& header : options.headers) {
    size_t colon = header.find(':');
    if (colon == 0 || colon == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("-H: want key:value, got '", header, "'"));
    }
    spec.add_metadata(header);
  }
  if (!options.http_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadWholeFile(options.http_ca, "--http-ca");
    if (!ca.ok()) return ca.status();
    spec.set_ca_pem(*std::move(ca));
  }
  return spec;
}

// With several input sources, a task's columns are joined by this, sent as
// CommandSpec.colsep: the worker splits the item into its columns there.
constexpr char kSourceSeparator[] = "\x1f";  // ASCII unit separator
// Most tasks several input sources may combine into (their product grows fast).
constexpr uint64_t kMaxCombinedItems = 10'000'000;

// Every combination of one item from each group of sources (the last varying
// fastest, as GNU Parallel has them); sources linked with `:::+` go in step
// with the one before (the shorter wraps around). Columns are joined by
// kSourceSeparator.
absl::StatusOr<std::vector<std::string>> CombineSources(const JobOptions& options) {
  std::vector<std::vector<const std::vector<std::string>*>> groups = {{&options.items}};
  for (const JobOptions::Source& source : options.more_sources) {
    if (source.items.empty()) return absl::InvalidArgumentError("an input source (::: or ::::) has no items");
    if (source.linked) {
      groups.back().push_back(&source.items);
    } else {
      groups.push_back({&source.items});
    }
  }
  std::vector<size_t> lengths;
  uint64_t total = 1;
  for (const auto& group : groups) {
    size_t length = 0;
    for (const auto* source : group) length = std::max(length, source->size());
    lengths.push_back(length);
    total *= length;
    if (total > kMaxCombinedItems) {
      return absl::InvalidArgumentError(absl::StrCat("the input sources combine into more than ", kMaxCombinedItems,
                                                     " tasks; write the combinations to a file and use "
                                                     "--each-line with --colsep"));
    }
  }
  std::vector<std::string> combined;
  combined.reserve(total);
  std::vector<size_t> at(groups.size(), 0);
  for (uint64_t n = 0; n < total; ++n) {
    std::string item;
    bool first_column = true;
    for (size_t g = 0; g < groups.size(); ++g) {
      for (const auto* source : groups[g]) {
        if (!first_column) item += kSourceSeparator;
        first_column = false;
        item += (*source)[at[g] % source->size()];
      }
    }
    combined.push_back(std::move(item));
    for (size_t g = groups.size(); g-- > 0;) {  // the last group varies fastest
      if (++at[g] < lengths[g]) break;
      at[g] = 0;
    }
  }
  return combined;
}

}  // namespace

absl::StatusOr<v1::JobSpec> BuildJobSpec(const JobOptions& options, std::istream& stdin_stream) {
  const bool command = !options.command.empty();
  const bool http = options.http;
  const bool grpc = !options.grpc_target.empty() || http;  // HTTP jobs are I/O jobs as gRPC ones are
  const int kinds = (options.kernel.empty() ? 0 : 1) + (command ? 1 : 0) + (!options.grpc_target.empty() ? 1 : 0) +
                    (http ? 1 : 0);
  if (kinds != 1) {
    return absl::InvalidArgumentError(
        kinds > 1 ? "give one of a kernel (--kernel), a command (after --), gRPC calls (--grpc) or HTTP requests "
                    "(--http)"
                  : "say what to run: --kernel NAME (e.g. --kernel echo), -- COMMAND [ARGS...], "
                    "--grpc HOST:PORT --method /pkg.Service/Method, or --http with URLs as items");
  }
  const bool http_options = !options.http_method.empty() || !options.http_url.empty() ||
                            !options.connect_timeout.empty() || !options.max_body.empty() ||
                            !options.accept_status.empty() || !options.http_ca.empty();
  if (!http && http_options) {
    return absl::InvalidArgumentError(
        "-X/--request, --url, --connect-timeout, --max-body, --accept-status and --http-ca go with --http");
  }
  int sources = (!options.items.empty() ? 1 : 0) + (!options.each_line.empty() ? 1 : 0) +
                (!options.range.empty() ? 1 : 0) + (!options.array.empty() ? 1 : 0) +
                (options.items_from != 0 ? 1 : 0);
  if ((!options.more_sources.empty() || !options.colsep.empty()) && options.command.empty()) {
    return absl::InvalidArgumentError(
        "several input sources (::: A ::: B) and --colsep go with a command (after --): {1}, {2}, ... "
        "are its columns");
  }
  if (!options.more_sources.empty() && options.items.empty()) {
    return absl::InvalidArgumentError("the first input source is empty: give items after the first :::");
  }
  if (options.null_separated && options.each_line.empty()) {
    return absl::InvalidArgumentError("-0/--null says how --each-line's items end: give --each-line FILE too");
  }
  if (sources != 1) {
    return absl::InvalidArgumentError(
        sources == 0 ? "give the job's items: as arguments (or after :::), with --range A:B, "
                       "--array A-B[:STEP], --each-line FILE or --items-from JOB"
                     : "give the job's items one way only: arguments, --range, --array, --each-line or "
                       "--items-from");
  }
  const bool grpc_options = !options.method.empty() || !options.proto_set.empty() || options.raw ||
                            !options.deadline.empty() || options.concurrency != 0 || options.rate != 0 ||
                            !options.headers.empty() || options.grpc_tls || !options.grpc_ca.empty() ||
                            !options.max_response.empty() || options.at_most_once || !options.lb.empty();
  if (http && (!options.method.empty() || !options.proto_set.empty() || options.raw || options.grpc_tls ||
               !options.grpc_ca.empty() || !options.max_response.empty() || !options.lb.empty() ||
               !options.deadline.empty())) {
    return absl::InvalidArgumentError(
        "--method, --proto-set, --raw, --grpc-tls, --grpc-ca, --max-response, --lb and --deadline are for gRPC; "
        "HTTP jobs take -X, --url, --timeout, --max-body and --http-ca");
  }
  if (!grpc && grpc_options) {
    return absl::InvalidArgumentError(
        "--method, --proto-set, --raw, --deadline, --concurrency, --rate, --max-response, --at-most-once, --lb, "
        "-H, --grpc-tls and --grpc-ca go with --grpc TARGET");
  }
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
    // Tasks run where the user submits from (as HyperQueue's do), unless told
    // otherwise; "-" leaves them in the worker's own directory.
    if (options.cwd != "-") {
      std::error_code error;
      const std::filesystem::path cwd =
          options.cwd.empty() ? std::filesystem::current_path(error) : std::filesystem::absolute(options.cwd, error);
      if (error) return absl::InvalidArgumentError(absl::StrCat("--cwd: ", error.message()));
      spec_command->set_cwd(cwd.lexically_normal().string());
    }
    if (!options.timeout.empty()) {
      absl::StatusOr<absl::Duration> timeout = ParseTimeout(options.timeout);
      if (!timeout.ok()) return timeout.status();
      spec_command->set_timeout_ms(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(*timeout))));
    }
    if (!options.max_output.empty()) {
      absl::StatusOr<uint64_t> bytes = ParseBytes(options.max_output, "--max-output");
      if (!bytes.ok()) return bytes.status();
      spec_command->set_max_output_bytes(*bytes);
    }
    if (options.cpus == 0) return absl::InvalidArgumentError("--cpus must be at least 1");
    spec_command->set_cpus(options.cpus);
    if (!options.colsep.empty()) {
      if (!options.more_sources.empty()) {
        return absl::InvalidArgumentError(
            "--colsep splits one input source into columns; with several sources (::: A ::: B) the "
            "columns are the sources");
      }
      spec_command->set_colsep(absl::StrReplaceAll(options.colsep, {{"\\t", "\t"}}));
    }
  } else if (http) {
    absl::StatusOr<v1::GrpcSpec> requests = BuildHttpSpec(options);
    if (!requests.ok()) return requests.status();
    *spec.mutable_grpc() = *std::move(requests);
  } else if (grpc) {
    absl::StatusOr<v1::GrpcSpec> call = BuildGrpcSpec(options);
    if (!call.ok()) return call.status();
    *spec.mutable_grpc() = *std::move(call);
  } else {
    spec.set_kernel(options.kernel);
  }
  if (!command) {
    if (grpc && !http && !options.timeout.empty()) {
      return absl::InvalidArgumentError("gRPC calls take --deadline (per call), not --timeout");
    }
    if (!options.cwd.empty() || !options.env.empty() || !options.max_output.empty() || options.cpus != 1) {
      return absl::InvalidArgumentError("--cwd, --env, --max-output and --cpus go with commands");
    }
    if (!options.timeout.empty() && !http) {
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
  uint32_t chunk = 0;  // automatic
  if (!options.chunk.empty() && options.chunk != "auto") {
    if (!absl::SimpleAtoi(options.chunk, &chunk) || chunk == 0 || chunk > (1u << 24)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--chunk: want 'auto' or a number of items from 1 to 16777216, got '", options.chunk, "'"));
    }
  } else if (grpc) {
    const uint32_t concurrency = options.concurrency > 0 ? options.concurrency : kDefaultGrpcConcurrency;
    chunk = std::clamp<uint32_t>(concurrency / 16, 1, 16);
  }
  spec.set_chunk_size(chunk);
  spec.set_priority(options.priority);
  if (options.max_parallel > 0 && grpc) {
    return absl::InvalidArgumentError(
        "--max-parallel limits CPU tasks; a gRPC job's calls in flight are set by --concurrency (per worker) "
        "and --rate");
  }
  spec.set_max_parallel(options.max_parallel);
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
  } else if (options.items_from != 0) {
    spec.mutable_items()->mutable_inline_();  // PrepareJobSpec fills them in
  } else if (!options.more_sources.empty()) {
    absl::StatusOr<std::vector<std::string>> combined = CombineSources(options);
    if (!combined.ok()) return combined.status();
    auto* items = spec.mutable_items()->mutable_inline_()->mutable_items();
    for (std::string& item : *combined) *items->Add() = std::move(item);
    spec.mutable_command()->set_colsep(kSourceSeparator);
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
    const char end = options.null_separated ? '\0' : '\n';
    while (std::getline(*in, line, end)) {
      if (!options.null_separated && !line.empty() && line.back() == '\r') line.pop_back();
      *items->Add() = std::move(line);
    }
    if (in->bad()) return absl::DataLossError(absl::StrCat("--each-line: error reading ", options.each_line));
  }
  return spec;
}

}  // namespace drover
