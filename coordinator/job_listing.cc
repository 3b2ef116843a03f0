// Job::ListTasks: a job's tasks, a page at a time, with their state (from the
// job's chunks and kept results) for the ListTasks call.
#include <algorithm>
#include <optional>

#include "absl/container/btree_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/items.h"
#include "coordinator/job.h"
#include "coordinator/result_store.h"

namespace drover {
namespace {

// Most tasks one call looks at, and most it returns.
constexpr uint64_t kListScanItems = 100'000;
constexpr uint32_t kListMaxTasks = 1000;

void SetItem(std::string item, v1::TaskSummary* task) {
  if (IsValidUtf8(item)) {
    task->set_item(std::move(item));
  } else {
    task->set_item_bytes(std::move(item));
  }
}

// The last few lines of a task's stderr, where the reason usually is.
std::string StderrTail(absl::string_view text) {
  constexpr size_t kTailLines = 5;
  constexpr size_t kTailBytes = 2048;
  std::vector<absl::string_view> lines = absl::StrSplit(absl::StripTrailingAsciiWhitespace(text), '\n');
  if (lines.size() > kTailLines) lines.erase(lines.begin(), lines.end() - kTailLines);
  std::string tail = absl::StrJoin(lines, "\n");
  if (tail.size() > kTailBytes) tail = tail.substr(tail.size() - kTailBytes);
  return IsValidUtf8(tail) ? tail : "(not UTF-8)";
}

bool Wanted(const v1::ListTasksRequest& request, v1::TaskState state) {
  return request.state() == v1::TASK_STATE_UNSPECIFIED || request.state() == state;
}

}  // namespace

std::string Job::ItemText(uint64_t index) const {
  const v1::ItemSource& items = spec_.items();
  if (items.has_inline_() && index < static_cast<uint64_t>(items.inline_().items_size())) {
    return items.inline_().items(static_cast<int>(index));
  }
  if (items.has_range()) {
    const int64_t step = std::max<int64_t>(items.range().step(), 1);
    return absl::StrCat(items.range().start() + static_cast<int64_t>(index) * step);
  }
  return "";  // spooled items are read from disk only to run them
}

bool Job::ItemDone(uint64_t index) const {
  if (index < done_below_) return true;
  auto it = done_above_.upper_bound(index);
  return it != done_above_.begin() && index < std::prev(it)->second;
}

void Job::ListTasks(const v1::ListTasksRequest& request, const absl::flat_hash_map<uint64_t, HeldChunk>& held,
                    v1::ListTasksReply* reply) const {
  const uint32_t limit = request.limit() == 0 ? kListMaxTasks : std::min(request.limit(), kListMaxTasks);
  const uint64_t scan_end = std::min(total_items_, request.start_index() + kListScanItems);
  reply->set_total_items(total_items_);
  // Open chunks by their first item.
  absl::btree_map<uint64_t, uint64_t> open_by_first;
  for (const auto& [chunk_index, open] : open_) open_by_first.emplace(open.first, chunk_index);

  uint64_t index = request.start_index();
  auto add = [&](uint64_t i, v1::TaskState state) -> v1::TaskSummary* {
    if (!Wanted(request, state)) return nullptr;
    v1::TaskSummary* task = reply->add_tasks();
    task->set_index(i);
    task->set_state(state);
    return task;
  };
  while (index < scan_end && static_cast<uint32_t>(reply->tasks_size()) < limit) {
    // A kept result holding `index`.
    if (!spec_.stream_results()) {
      auto kept = kept_.upper_bound(index);
      if (kept != kept_.begin() && (--kept)->second < store_->readable_end(id_)) {
        uint64_t next = 0;
        absl::StatusOr<v1::ChunkOutputs> outputs = store_->Read(id_, kept->second, &next);
        if (outputs.ok() && index < kept->first + outputs->item_count()) {
          std::vector<const v1::ItemError*> errors(outputs->item_count(), nullptr);
          for (const v1::ItemError& error : outputs->errors()) {
            if (error.offset() < outputs->item_count()) errors[error.offset()] = &error;
          }
          const uint64_t end = kept->first + outputs->item_count();
          for (; index < end && static_cast<uint32_t>(reply->tasks_size()) < limit; ++index) {
            const uint32_t offset = static_cast<uint32_t>(index - kept->first);
            const v1::ItemError* error = errors[offset];
            v1::TaskSummary* task = add(index, error != nullptr ? v1::TASK_STATE_FAILED : v1::TASK_STATE_SUCCEEDED);
            if (task == nullptr) continue;
            task->set_worker(outputs->worker());
            if (error != nullptr) task->set_reason(error->message());
            if (offset < static_cast<uint32_t>(outputs->tasks_size())) {
              const v1::TaskInfo& info = outputs->tasks(static_cast<int>(offset));
              SetItem(info.item().empty() ? ItemText(index) : info.item(), task);
              task->set_started_unix_us(info.started_unix_us());
              task->set_duration_us(info.duration_us());
              task->set_exit_code(info.exit_code());
              if (error != nullptr) task->set_stderr_tail(StderrTail(info.stderr()));
            } else {
              SetItem(ItemText(index), task);
              task->set_started_unix_us(outputs->started_unix_us());
            }
          }
          continue;
        }
      }
    }
    // An open chunk holding `index`: queued again, on a worker, or running.
    auto open = open_by_first.upper_bound(index);
    if (open != open_by_first.begin()) {
      --open;
      const OpenChunk& chunk = open_.at(open->second);
      if (index < chunk.first + chunk.count && !ItemDone(index)) {
        auto on_worker = held.find(open->second);
        v1::TaskState state = v1::TASK_STATE_QUEUED;
        if (!chunk.queued && on_worker != held.end()) {
          state = on_worker->second.started_unix_us != 0 ? v1::TASK_STATE_RUNNING : v1::TASK_STATE_ASSIGNED;
        }
        if (cancelled()) state = v1::TASK_STATE_CANCELLED;
        for (const uint64_t end = chunk.first + chunk.count;
             index < end && static_cast<uint32_t>(reply->tasks_size()) < limit; ++index) {
          v1::TaskSummary* task = add(index, state);
          if (task == nullptr) continue;
          SetItem(ItemText(index), task);
          task->set_attempt(chunk.attempt);
          if (on_worker != held.end() && !chunk.queued) {
            task->set_worker(on_worker->second.worker);
            task->set_started_unix_us(on_worker->second.started_unix_us);
          }
        }
        continue;
      }
    }
    // Done with no kept result (streamed, or not readable yet), or not cut yet.
    v1::TaskState state = ItemDone(index) ? v1::TASK_STATE_DONE
                          : cancelled()   ? v1::TASK_STATE_CANCELLED
                                          : v1::TASK_STATE_QUEUED;
    if (v1::TaskSummary* task = add(index, state); task != nullptr) SetItem(ItemText(index), task);
    ++index;
  }
  reply->set_next_index(index);
}

absl::StatusOr<std::vector<std::string>> Job::ItemsToRetry(bool failed, bool unfinished,
                                                            uint64_t max_items) const {
  if (!finished()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id_, " has not finished: wait for it or cancel it"));
  }
  if (spec_.stream_results()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", id_, "'s results were streamed to its client and not kept: which tasks failed is not known here"));
  }
  std::vector<uint64_t> indexes;
  auto add = [&](uint64_t index) -> absl::Status {
    if (indexes.size() == max_items) {
      return absl::InvalidArgumentError(
          absl::StrCat("job ", id_, " has more than ", max_items, " tasks to retry (--max-items)"));
    }
    indexes.push_back(index);
    return absl::OkStatus();
  };
  // Kept results in item order, and the gaps between them (never finished).
  uint64_t index = 0;
  for (const auto& [first, offset] : kept_) {
    if (unfinished) {
      for (; index < first; ++index) {
        if (absl::Status added = add(index); !added.ok()) return added;
      }
    }
    uint64_t next = 0;
    absl::StatusOr<v1::ChunkOutputs> outputs = store_->Read(id_, offset, &next);
    if (!outputs.ok()) return outputs.status();
    if (failed) {
      std::vector<uint32_t> offsets;
      for (const v1::ItemError& error : outputs->errors()) offsets.push_back(error.offset());
      std::sort(offsets.begin(), offsets.end());
      for (uint32_t failed_offset : offsets) {
        if (absl::Status added = add(first + failed_offset); !added.ok()) return added;
      }
    }
    index = first + outputs->item_count();
  }
  for (; unfinished && index < total_items_; ++index) {
    if (absl::Status added = add(index); !added.ok()) return added;
  }
  if (indexes.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id_, " has no ", failed ? "failed" : "",
                                                      failed && unfinished ? " or " : "",
                                                      unfinished ? "unfinished" : "", " tasks"));
  }
  std::vector<std::string> items;
  items.reserve(indexes.size());
  for (uint64_t i : indexes) {
    if (!spec_.items().has_spooled()) {
      items.push_back(ItemText(i));
      continue;
    }
    google::protobuf::RepeatedPtrField<std::string> read;
    if (absl::Status status = store_->ReadItems(id_, i, 1, &read); !status.ok()) return status;
    items.push_back(read.empty() ? "" : std::move(read[0]));
  }
  return items;
}

}  // namespace drover
