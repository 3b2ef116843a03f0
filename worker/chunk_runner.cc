// Implements chunk_runner.h.
#include "worker/chunk_runner.h"

#include <charconv>
#include <exception>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/backoff.h"
#include "common/items.h"
#include "common/reduce.h"
#include "worker/command_runner.h"
#include "worker/python_interpreter.h"

namespace drover {
namespace {

// Waits before the retry that follows attempt `attempt` (0 for the first run;
// see common/backoff.h). Returns false if cancelled meanwhile.
bool Backoff(uint32_t attempt, const std::atomic<bool>& cancelled) {
  absl::Time until = absl::Now() + RetryBackoff(attempt + 1);
  while (absl::Now() < until) {
    if (cancelled.load(std::memory_order_relaxed)) return false;
    absl::SleepFor(std::min(absl::Milliseconds(20), until - absl::Now()));
  }
  return true;
}

// Calls the kernel; an exception becomes an error status.
absl::Status CallKernel(KernelFn fn, absl::string_view input, std::string* output) {
  try {
    return fn(std::string_view(input.data(), input.size()), output);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("kernel threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("kernel threw an exception that is not a std::exception");
  }
}

// Collects per-item outputs (or a reduction) into a ChunkOutputs.
class OutputCollector {
 public:
  OutputCollector(const v1::Chunk& chunk, v1::ChunkOutputs* out)
      : out_(out), reduce_(chunk.reduce()), reducer_(chunk.reduce()) {}

  // Runs one kernel item (again after a failure, up to `retries` times); a
  // failed item's output is discarded. An item that ran past `timeout` fails.
  void KernelItem(uint32_t offset, KernelFn fn, absl::string_view input, uint32_t retries,
                  absl::Duration timeout, const std::atomic<bool>& cancelled) {
    std::string* sink = reduce_ == v1::REDUCE_NONE ? out_->mutable_outputs() : &scratch_;
    if (reduce_ != v1::REDUCE_NONE) scratch_.clear();
    size_t before = sink->size();
    const bool timed = timeout != absl::InfiniteDuration();  // clock reads cost at millions of items/s
    absl::Status status;
    for (uint32_t attempt = 0;; ++attempt) {
      sink->resize(before);
      absl::Time start = timed ? absl::Now() : absl::InfinitePast();
      status = CallKernel(fn, input, sink);
      if (timed && status.ok() && absl::Now() - start > timeout) {
        status = absl::DeadlineExceededError(absl::StrCat(
            "took ", absl::FormatDuration(absl::Now() - start), ", over the timeout of ",
            absl::FormatDuration(timeout)));
      }
      if (status.ok() || attempt >= retries || !Backoff(attempt, cancelled)) break;
    }
    if (status.ok() && reduce_ != v1::REDUCE_NONE) status = reducer_.AddOutput(scratch_);
    if (!status.ok()) {
      sink->resize(before);
      Fail(offset, std::string(status.message()));
    }
    if (reduce_ == v1::REDUCE_NONE) AddSize(sink->size() - before);
  }

  // Records a command item's stdout (kept even when it failed).
  void CommandItem(const std::string& stdout_data) {
    out_->mutable_outputs()->append(stdout_data);
    AddSize(stdout_data.size());
  }

  void Fail(uint32_t offset, std::string message) {
    v1::ItemError* error = out_->add_errors();
    error->set_offset(offset);
    error->set_message(std::move(message));
  }

  void Finish() {
    if (reduce_ != v1::REDUCE_NONE) {
      *out_->mutable_partial() = reducer_.ToPartial();
    } else if (any_output_) {
      out_->mutable_output_sizes()->Add(sizes_.begin(), sizes_.end());
    }
  }

 private:
  void AddSize(size_t size) {
    sizes_.push_back(static_cast<uint32_t>(size));
    any_output_ |= size != 0;
  }

  v1::ChunkOutputs* out_;
  v1::Reduce reduce_;
  Reducer reducer_;
  std::string scratch_;
  std::vector<uint32_t> sizes_;
  bool any_output_ = false;
};

CommandTask BuildTask(const v1::CommandSpec& spec, const v1::Chunk& chunk, absl::string_view item,
                      uint64_t task_number, const RunContext& context) {
  CommandTask task;
  // With columns, {} and DROVER_ITEM are the columns joined by spaces.
  std::vector<absl::string_view> columns;
  std::string joined;
  if (!spec.colsep().empty()) {
    columns = absl::StrSplit(item, spec.colsep());
    joined = absl::StrJoin(columns, " ");
    item = joined;
  }
  const std::vector<absl::string_view>* columns_or_null = spec.colsep().empty() ? nullptr : &columns;
  bool has_item = false;
  for (const std::string& arg : spec.argv()) {
    has_item |= UsesItem(arg, columns_or_null != nullptr);
    task.argv.push_back(ExpandPlaceholders(arg, item, task_number, context.slot, columns_or_null));
  }
  if (!has_item) {
    if (columns_or_null != nullptr) {
      for (absl::string_view column : columns) task.argv.emplace_back(column);
    } else {
      task.argv.emplace_back(item);
    }
  }
  task.env.assign(spec.env().begin(), spec.env().end());
  task.env.push_back(absl::StrCat("DROVER_JOB_ID=", chunk.job_id()));
  task.env.push_back(absl::StrCat("DROVER_TASK_ID=", task_number));
  task.env.push_back(absl::StrCat("DROVER_ITEM=", item));
  task.env.push_back(absl::StrCat("DROVER_WORKER=", context.worker_name));
  task.cwd = spec.cwd();
  if (spec.timeout_ms() > 0) task.timeout = absl::Milliseconds(spec.timeout_ms());
  if (spec.max_output_bytes() > 0) task.max_output_bytes = spec.max_output_bytes();
  return task;
}

void RunCommands(const RunContext& context, const v1::Chunk& chunk, ChunkItems& items,
                 OutputCollector& collector, v1::ChunkOutputs* out,
                 const std::atomic<bool>& cancelled) {
  ProcessGroups no_reaper;
  for (uint32_t i = 0; i < items.count(); ++i) {
    if (cancelled.load(std::memory_order_relaxed)) break;
    std::string item(items.Get(i));
    uint64_t task_number = chunk.first_index() + i + 1;
    CommandTask task = BuildTask(chunk.command(), chunk, item, task_number, context);
    CommandOutcome outcome;
    absl::Time started;
    for (uint32_t attempt = 0;; ++attempt) {
      started = absl::Now();
      outcome = RunCommand(task, cancelled, context.groups != nullptr ? context.groups : &no_reaper);
      if (DescribeFailure(outcome, task).empty() || outcome.cancelled || attempt >= chunk.retries() ||
          !Backoff(attempt, cancelled)) {
        break;
      }
    }
    collector.CommandItem(outcome.stdout_data);
    v1::TaskInfo* info = out->add_tasks();
    info->set_exit_code(outcome.exit_code);
    info->set_signal(outcome.signal);
    info->set_timed_out(outcome.timed_out);
    info->set_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(outcome.duration)));
    info->set_started_unix_us(absl::ToUnixMicros(started));
    info->set_max_rss_kb(outcome.max_rss_kb);
    info->set_stdout_truncated(outcome.stdout_truncated);
    info->set_stderr_truncated(outcome.stderr_truncated);
    info->set_stderr(std::move(outcome.stderr_data));
    info->set_item(std::move(item));
    if (std::string failure = DescribeFailure(outcome, task); !failure.empty()) {
      collector.Fail(i, std::move(failure));
    }
  }
}

// A chunk's result travels as one message: past this size every item fails
// instead (protobuf messages stop at 2 GiB; journals and memory suffer before).
constexpr uint64_t kMaxChunkOutputBytes = 512ull << 20;

void LimitSize(v1::ChunkOutputs* out) {
  uint64_t bytes = out->outputs().size();
  for (const v1::TaskInfo& task : out->tasks()) bytes += task.stderr().size();
  if (bytes <= kMaxChunkOutputBytes) return;
  std::string why = absl::StrCat("the chunk's output (", bytes >> 20, " MiB) is over the ",
                                 kMaxChunkOutputBytes >> 20, " MiB a chunk may return; use a smaller "
                                 "--chunk or --max-output");
  out->clear_outputs();
  out->clear_output_sizes();
  for (v1::TaskInfo& task : *out->mutable_tasks()) task.clear_stderr();
  out->clear_errors();
  for (uint32_t i = 0; i < out->item_count(); ++i) {
    v1::ItemError* error = out->add_errors();
    error->set_offset(i);
    error->set_message(why);
  }
}

}  // namespace

namespace {

// GNU Parallel's replacement strings for the item's path: {/} basename, {//}
// directory (Perl's dirname: "." when there is none), {.} without extension,
// {/.} basename without extension. The extension is a last dot and what
// follows it in the basename.
std::string Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

std::string Dirname(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string WithoutExtension(absl::string_view path) {
  size_t dot = path.rfind('.');
  if (dot == absl::string_view::npos || path.find('/', dot) != absl::string_view::npos) return std::string(path);
  return std::string(path.substr(0, dot));
}

}  // namespace

// The length of a column placeholder {N} (N from 1) at arg[i], and N; 0 if none.
size_t ColumnPlaceholder(absl::string_view arg, size_t i, size_t* column) {
  if (i >= arg.size() || arg[i] != '{') return 0;
  size_t end = i + 1;
  while (end < arg.size() && absl::ascii_isdigit(static_cast<unsigned char>(arg[end]))) ++end;
  if (end == i + 1 || end >= arg.size() || arg[end] != '}' || end - i > 10) return 0;
  if (!absl::SimpleAtoi(arg.substr(i + 1, end - i - 1), column) || *column == 0) return 0;
  return end - i + 1;
}

bool UsesItem(absl::string_view arg, bool columns) {
  for (absl::string_view placeholder : {"{}", "{.}", "{/}", "{//}", "{/.}"}) {
    if (absl::StrContains(arg, placeholder)) return true;
  }
  size_t column = 0;
  for (size_t i = 0; columns && i < arg.size(); ++i) {
    if (ColumnPlaceholder(arg, i, &column) > 0) return true;
  }
  return false;
}

std::string ExpandPlaceholders(const std::string& arg, absl::string_view item, uint64_t task_number,
                               int slot, const std::vector<absl::string_view>* columns) {
  std::string result;
  result.reserve(arg.size() + item.size());
  size_t column = 0;
  for (size_t i = 0; i < arg.size(); ++i) {
    if (size_t length = columns != nullptr ? ColumnPlaceholder(arg, i, &column) : 0; length > 0) {
      if (column <= columns->size()) absl::StrAppend(&result, (*columns)[column - 1]);  // past the last: empty
      i += length - 1;
    } else if (arg.compare(i, 2, "{}") == 0) {
      result.append(item.data(), item.size());
      i += 1;
    } else if (arg.compare(i, 3, "{#}") == 0) {
      absl::StrAppend(&result, task_number);
      i += 2;
    } else if (arg.compare(i, 3, "{%}") == 0) {
      absl::StrAppend(&result, slot);
      i += 2;
    } else if (arg.compare(i, 3, "{.}") == 0) {
      result += WithoutExtension(item);
      i += 2;
    } else if (arg.compare(i, 3, "{/}") == 0) {
      result += Basename(item);
      i += 2;
    } else if (arg.compare(i, 4, "{//}") == 0) {
      result += Dirname(item);
      i += 3;
    } else if (arg.compare(i, 4, "{/.}") == 0) {
      result += WithoutExtension(Basename(item));
      i += 3;
    } else {
      result.push_back(arg[i]);
    }
  }
  return result;
}

// Python calls on the slot's interpreter: each item's output is the pickled
// value, or (failed) the pickled exception, kept for the client to raise.
void RunPython(const RunContext& context, const v1::Chunk& chunk, ChunkItems& items, OutputCollector& collector,
               const std::atomic<bool>& cancelled) {
  const absl::Duration timeout = chunk.kernel_timeout_ms() > 0 ? absl::Milliseconds(chunk.kernel_timeout_ms())
                                                                : absl::InfiniteDuration();
  std::vector<absl::string_view> arguments;  // inline items: they stay valid
  arguments.reserve(items.count());
  for (uint32_t i = 0; i < items.count(); ++i) arguments.push_back(items.Get(i));
  std::vector<PythonOutcome> outcomes;
  if (context.interpreter == nullptr || chunk.has_range()) {
    outcomes.resize(arguments.size());
    for (PythonOutcome& outcome : outcomes) {
      outcome.error = chunk.has_range() ? "a Python call's item is its pickled arguments, not a number of a range"
                                        : "this worker runs no Python calls";
    }
  } else {
    outcomes = context.interpreter->CallAll(chunk.python().function(), arguments, timeout, cancelled);
  }
  for (uint32_t i = 0; i < items.count(); ++i) {
    PythonOutcome& outcome = outcomes[i];
    for (uint32_t attempt = 0; !outcome.ok && context.interpreter != nullptr && !chunk.has_range() &&
                               attempt < chunk.retries();
         ++attempt) {
      if (!Backoff(attempt, cancelled)) break;
      outcome = context.interpreter->Call(chunk.python().function(), arguments[i], timeout, cancelled);
    }
    collector.CommandItem(outcome.output);
    if (!outcome.ok) collector.Fail(i, std::move(outcome.error));
  }
}

v1::ChunkResult RunChunk(const RunContext& context, const v1::Chunk& chunk,
                         const std::atomic<bool>& cancelled) {
  v1::ChunkResult result = ResultFor(chunk, context.worker_name);
  v1::ChunkOutputs* out = result.mutable_outputs();
  ChunkItems items(chunk);

  OutputCollector collector(chunk, out);
  if (chunk.kernel().empty() && chunk.has_command()) {
    RunCommands(context, chunk, items, collector, out, cancelled);
    collector.Finish();
    LimitSize(out);
    return result;
  }
  if (chunk.kernel().empty() && chunk.has_python()) {
    RunPython(context, chunk, items, collector, cancelled);
    collector.Finish();
    LimitSize(out);
    return result;
  }
  const KernelRegistry::Kernel* kernel = context.registry->Find(chunk.kernel());
  if (kernel == nullptr) {
    std::string message = absl::StrCat("this worker has no kernel '", chunk.kernel(), "'");
    for (uint32_t i = 0; i < items.count(); ++i) collector.Fail(i, message);
    collector.Finish();
    return result;
  }
  const absl::Duration timeout = chunk.kernel_timeout_ms() > 0 ? absl::Milliseconds(chunk.kernel_timeout_ms())
                                                                : absl::InfiniteDuration();
  for (uint32_t i = 0; i < items.count(); ++i) {
    if ((i & 63) == 0 && cancelled.load(std::memory_order_relaxed)) break;
    collector.KernelItem(i, kernel->fn, items.Get(i), chunk.retries(), timeout, cancelled);
  }
  collector.Finish();
  LimitSize(out);
  return result;
}

}  // namespace drover
