// Implements slot_pool.h.
#include "worker/slot_pool.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "worker/python_interpreter.h"

namespace drover {

SlotPool::SlotPool(int slots, RunContext context, Wakeup* on_finished)
    : context_(std::move(context)), on_finished_(on_finished), total_slots_(slots), free_cpus_(slots) {
  threads_.reserve(slots);
  for (int i = 0; i < slots; ++i) threads_.emplace_back([this, i] { SlotLoop(i + 1); });
}

int SlotPool::CpusOf(const v1::Chunk& chunk) const {
  if (!chunk.has_command()) return 1;
  return std::clamp<int>(static_cast<int>(chunk.command().cpus()), 1, total_slots_);
}

SlotPool::~SlotPool() {
  if (!shut_down_) Shutdown(absl::InfiniteDuration());
}

void SlotPool::Push(std::vector<v1::Chunk> chunks) {
  absl::MutexLock lock(&mu_);
  for (v1::Chunk& chunk : chunks) {
    auto flag = flags_.For(chunk.job_id());
    queue_.push_back(Queued{std::move(chunk), std::move(flag)});
  }
}

void SlotPool::CancelJob(uint64_t job_id) {
  absl::MutexLock lock(&mu_);
  flags_.Cancel(job_id);
  size_t before = queue_.size();
  std::erase_if(queue_, [job_id](const Queued& q) { return q.chunk.job_id() == job_id; });
  finished_count_ += before - queue_.size();
  std::erase_if(finished_, [job_id](const v1::ChunkResult& r) { return r.job_id() == job_id; });
  if (before != queue_.size()) on_finished_->Notify();
}

void SlotPool::DropAll() {
  absl::MutexLock lock(&mu_);
  flags_.CancelAll();
  finished_count_ += queue_.size();
  queue_.clear();
  finished_.clear();
  on_finished_->Notify();
}

std::vector<v1::ChunkResult> SlotPool::TakeFinished(uint64_t* finished) {
  absl::MutexLock lock(&mu_);
  *finished = std::exchange(finished_count_, 0);
  return std::exchange(finished_, {});
}

std::vector<v1::ChunkStart> SlotPool::TakeStarted() {
  absl::MutexLock lock(&mu_);
  return std::exchange(started_, {});
}

std::vector<v1::ChunkRef> SlotPool::Steal(uint32_t max_chunks, const std::vector<uint64_t>& job_ids) {
  std::vector<v1::ChunkRef> taken;
  absl::MutexLock lock(&mu_);
  for (auto it = queue_.end(); it != queue_.begin() && taken.size() < max_chunks;) {
    --it;
    const v1::Chunk& chunk = it->chunk;
    if (!job_ids.empty() && std::find(job_ids.begin(), job_ids.end(), chunk.job_id()) == job_ids.end()) continue;
    v1::ChunkRef& ref = taken.emplace_back();
    ref.set_job_id(chunk.job_id());
    ref.set_chunk_index(chunk.chunk_index());
    ref.set_attempt(chunk.attempt());
    it = queue_.erase(it);
  }
  finished_count_ += taken.size();
  return taken;
}

void SlotPool::SlotLoop(int slot) {
  RunContext context = context_;
  context.slot = slot;
  // The slot's Python interpreter, started at its first call, lives as long as the slot.
  std::unique_ptr<PythonInterpreter> interpreter;
  if (!context.python.empty()) {
    interpreter = std::make_unique<PythonInterpreter>(context.python, context.groups);
    context.interpreter = interpreter.get();
  }
  while (true) {
    Queued work;
    int cpus;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SlotPool::HasWorkOrClosing));
      if (closing_) break;
      work = std::move(queue_.front());
      queue_.pop_front();
      cpus = CpusOf(work.chunk);
      free_cpus_ -= cpus;
      ++running_;
    }
    absl::Time start = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      v1::ChunkStart& started = started_.emplace_back();
      started.set_job_id(work.chunk.job_id());
      started.set_chunk_index(work.chunk.chunk_index());
      started.set_attempt(work.chunk.attempt());
      started.set_started_unix_us(absl::ToUnixMicros(start));
    }
    v1::ChunkResult result = RunChunk(context, work.chunk, *work.cancelled);
    result.set_run_ns(static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Nanoseconds(absl::Now() - start))));
    result.mutable_outputs()->set_started_unix_us(absl::ToUnixMicros(start));
    result.mutable_outputs()->set_run_us(result.run_ns() / 1000);
    bool notify = false;
    {
      absl::MutexLock lock(&mu_);
      --running_;
      free_cpus_ += cpus;
      ++finished_count_;
      if (!work.cancelled->load()) {
        notify = finished_.empty();
        finished_.push_back(std::move(result));
      } else {
        notify = true;  // credit to give back even without a result
      }
    }
    if (notify) on_finished_->Notify();
  }
  absl::MutexLock lock(&mu_);
  ++exited_;
}

bool SlotPool::Shutdown(absl::Duration grace) {
  shut_down_ = true;
  bool all_exited;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    flags_.CancelAll();
    queue_.clear();
    all_exited = mu_.AwaitWithTimeout(absl::Condition(this, &SlotPool::AllExited), grace);
  }
  for (std::thread& thread : threads_) {
    if (all_exited) {
      thread.join();
    } else {
      thread.detach();
    }
  }
  threads_.clear();
  return all_exited;
}

int SlotPool::busy_slots() const {
  absl::MutexLock lock(&mu_);
  return total_slots_ - free_cpus_;
}

}  // namespace drover
