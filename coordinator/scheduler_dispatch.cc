// The Scheduler's dispatch: which chunks go to which worker, and when chunks
// are stolen back. Free slots are served before reserves, each free slot goes
// to the job that deserves it most (priority, then fewest chunks in flight),
// and a dispatch looks only at workers whose credit or load changed (plus the
// hungry ones when new work appeared), never at every worker or job.
#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_codec.h"
#include "common/items.h"
#include "common/log.h"
#include "coordinator/scheduler.h"

namespace drover {
namespace {
// A Steal not answered in this time is forgotten (the worker may not speak it).
constexpr absl::Duration kStealAnswerTime = absl::Seconds(2);
// A worker of a job with --rate holds at most this many seconds of its share.
constexpr double kRateLookaheadSeconds = 2;
// Bytes of a gRPC job's results (at its mean size per call) it may have in
// flight or undelivered at once.
constexpr uint64_t kIoBytesInFlight = 256ull << 20;
// A gRPC chunk is cut to about this many bytes of results (at least one call).
constexpr uint64_t kIoChunkResultBytes = 16ull << 20;
// Reserves of at least this many chunks are refilled in halves (FillReserve).
constexpr uint64_t kRefillInHalvesFrom = 8;
}  // namespace

uint64_t Scheduler::FreeSlots(const WorkerRecord& worker) {
  const uint64_t slots = worker.hello.slots();
  return worker.draining || worker.cpu_load >= slots ? 0 : slots - worker.cpu_load;
}

void Scheduler::UpdateReady(Job* job) {
  const uint64_t id = job->id();
  const bool has_work = job->HasWork();
  if (job->spec().has_grpc()) {
    const bool was_held_back = io_room_waiters_.erase(id) > 0;
    if (!has_work) {
      io_jobs_.erase(id);
    } else if (io_jobs_.insert(id).second || was_held_back) {
      new_work_ = true;  // workers that got none of it may now
    }
    return;
  }
  auto it = ready_key_.find(id);
  const bool was_ready = it != ready_key_.end();
  if (was_ready) {
    ready_jobs_.erase(it->second);
    ready_key_.erase(it);
  }
  if (!has_work) return;
  // A job that starts having work is news for every worker with a free slot;
  // a job that already had some was offered to them already.
  if (!was_ready) new_work_ = true;
  ReadyKey key{-static_cast<int64_t>(job->priority()), job->chunks_in_flight(), id};
  ready_jobs_.insert(key);
  ready_key_.emplace(id, key);
}

void Scheduler::UpdateWorkerSets(WorkerRecord& worker) {
  const bool hungry = !worker.draining && ((worker.credit > 0 && FreeSlots(worker) > 0) || worker.io_credit > 0);
  if (hungry) {
    hungry_.insert(worker.number);
  } else {
    hungry_.erase(worker.number);
  }
  if (worker.cpu_load > worker.hello.slots()) {
    reserve_holders_.insert(worker.number);
  } else {
    reserve_holders_.erase(worker.number);
  }
}

void Scheduler::Release(WorkerRecord& worker, ChunkKey key) {
  auto it = worker.held.find(key);
  if (it == worker.held.end()) return;
  if (it->second.io_items > 0) {
    auto job = worker.io_items_by_job.find(key.first);
    if (job != worker.io_items_by_job.end()) {
      job->second -= std::min<uint64_t>(job->second, it->second.io_items);
      if (job->second == 0) worker.io_items_by_job.erase(job);  // (room under its concurrency here)
    }
  }
  worker.cpu_load -= std::min<uint64_t>(worker.cpu_load, it->second.cpus);
  worker.held.erase(it);
  touched_.insert(worker.number);
  dispatch_needed_ = true;
}

void Scheduler::TakeCpuChunk(WorkerRecord& worker, Job* job, v1::Assign* assign, absl::Time now) {
  std::optional<v1::Chunk> next = job->NextChunk(now, std::max<uint64_t>(total_slots_, 1));
  UpdateReady(job);
  if (!next) return;
  const uint32_t cpus = job->CpusPerChunk(worker.hello.slots());
  worker.held[ChunkKey{job->id(), next->chunk_index()}] = {next->attempt(), 0, cpus};
  worker.cpu_load += cpus;
  next->set_coordinator_instance(options_.instance);
  *assign->add_chunks() = *std::move(next);
  --worker.credit;
}

void Scheduler::FillFreeSlots(WorkerRecord& worker, v1::Assign* assign, absl::Time now) {
  while (worker.credit > 0) {
    const uint64_t free = FreeSlots(worker);
    if (free == 0) return;
    Job* chosen = nullptr;
    for (const ReadyKey& key : ready_jobs_) {
      Job* job = FindJob(std::get<2>(key));
      if (CanRun(worker, job->spec()) && job->CpusPerChunk(worker.hello.slots()) <= free) {
        chosen = job;
        break;
      }
    }
    if (chosen == nullptr) return;
    TakeCpuChunk(worker, chosen, assign, now);
  }
}

void Scheduler::FillReserve(WorkerRecord& worker, v1::Assign* assign, absl::Time now) {
  if (worker.draining || worker.credit == 0 || ready_jobs_.empty()) return;
  const uint64_t slots = worker.hello.slots();
  std::vector<uint64_t> candidates;
  for (const ReadyKey& key : ready_jobs_) candidates.push_back(std::get<2>(key));
  for (uint64_t id : candidates) {
    Job* job = FindJob(id);
    if (!CanRun(worker, job->spec())) continue;
    const uint64_t reserve = slots * job->PrefetchPerSlot(std::max<uint64_t>(total_slots_, 1));
    // A large reserve is topped up once half of it is used, in one Assign,
    // rather than a chunk or two per result message.
    if (reserve >= kRefillInHalvesFrom && worker.cpu_load + reserve / 2 > slots + reserve) continue;
    while (worker.credit > 0 && worker.cpu_load < slots + reserve && job->HasWork()) {
      TakeCpuChunk(worker, job, assign, now);
    }
    if (worker.credit == 0) return;
  }
}

void Scheduler::TakeIoChunks(WorkerRecord& worker, Job* job, double rate_share, v1::Assign* assign,
                             absl::Time now) {
  const v1::GrpcSpec& spec = job->spec().grpc();
  const uint64_t chunk_size = std::max<uint32_t>(1, job->spec().chunk_size());
  // Calls this worker may hold for the job: its --concurrency, ...
  uint64_t limit = spec.concurrency() > 0 ? spec.concurrency() : kDefaultGrpcConcurrency;
  // ... with --rate, a few seconds of its share (so every worker still has
  // calls to make near the end of the job), ...
  if (rate_share > 0) {
    limit = std::min(limit, std::max(chunk_size, static_cast<uint64_t>(std::ceil(rate_share * kRateLookaheadSeconds))));
  }
  // ... and the job has at most kIoBytesInFlight of results out (on all its
  // workers, plus those a stream-mode reader has not taken yet). A call's
  // result is taken to be the job's mean so far, or before any result the
  // largest allowed (--max-response): 16 calls at the default 16 MiB.
  const std::optional<uint64_t> mean = job->MeanOutputBytes();
  const uint64_t per_call = mean ? *mean : std::max<uint64_t>(1, MaxResponseBytes(spec));
  const uint64_t budget = kIoBytesInFlight - std::min(kIoBytesInFlight, job->undelivered_bytes());
  const uint64_t job_limit = std::max<uint64_t>(1, budget / per_call);
  uint64_t job_room = job_limit > job->items_in_flight() ? job_limit - job->items_in_flight() : 0;
  // Each chunk's result is one message: large results go in small chunks.
  const uint64_t chunk_items = std::min(chunk_size, std::max<uint64_t>(1, kIoChunkResultBytes / per_call));
  uint64_t& in_flight = worker.io_items_by_job[job->id()];
  while (worker.io_credit > 0 && in_flight < limit && (job_room > 0 || job->items_in_flight() == 0)) {
    const uint64_t room = std::min(limit - in_flight, std::max<uint64_t>(job_room, 1));
    std::optional<v1::Chunk> next = job->NextChunk(now, 1, std::min(chunk_items, room));
    if (!next) break;
    uint32_t items = ChunkItems(*next).count();
    worker.held[ChunkKey{job->id(), next->chunk_index()}] = {next->attempt(), items, 0};
    in_flight += items;
    job_room -= std::min<uint64_t>(job_room, items);
    worker.io_credit -= std::min<uint64_t>(worker.io_credit, items);
    // The descriptors travel once per worker and job; the worker keeps them.
    if (!worker.descriptors_sent.insert(job->id()).second) next->mutable_grpc()->clear_descriptor_set();
    // In a chunk, `rate` is this worker's share: it spaces its calls so.
    next->mutable_grpc()->set_rate(rate_share);
    next->set_coordinator_instance(options_.instance);
    *assign->add_chunks() = *std::move(next);
  }
  if (in_flight == 0) worker.io_items_by_job.erase(job->id());
  UpdateReady(job);
  // Held back by the job's bytes in flight: its next result opens room, for any worker.
  if (job_room == 0 && job->HasWork()) io_room_waiters_.insert(job->id());
}

double Scheduler::RateShare(const Job& job) const {
  const double rate = job.spec().grpc().rate();
  if (rate <= 0) return 0;
  uint64_t sharers = 0;
  for (const auto& [number, worker] : by_number_) {
    if (!worker->draining && CanRun(*worker, job.spec())) ++sharers;
  }
  return rate / static_cast<double>(std::max<uint64_t>(sharers, 1));
}

void Scheduler::Dispatch(absl::Time now) {
  if (!dispatch_needed_) return;
  dispatch_needed_ = false;
  absl::btree_set<uint64_t> numbers = std::move(touched_);
  touched_.clear();
  if (new_work_) numbers.insert(hungry_.begin(), hungry_.end());
  new_work_ = false;

  std::vector<WorkerRecord*> candidates;
  for (uint64_t number : numbers) {
    auto it = by_number_.find(number);
    if (it != by_number_.end() && !it->second->draining) candidates.push_back(it->second);
  }
  std::vector<v1::CoordinatorMessage> messages(candidates.size());
  // Free slots everywhere first, then reserves: no chunk is held in reserve
  // while a slot that could run it is idle.
  if (!ready_jobs_.empty()) {
    for (size_t i = 0; i < candidates.size(); ++i) FillFreeSlots(*candidates[i], messages[i].mutable_assign(), now);
    for (size_t i = 0; i < candidates.size(); ++i) FillReserve(*candidates[i], messages[i].mutable_assign(), now);
  }
  if (!io_jobs_.empty()) {
    absl::flat_hash_map<uint64_t, double> rate_shares;  // by job, worked out once per dispatch
    for (size_t i = 0; i < candidates.size(); ++i) {
      WorkerRecord& worker = *candidates[i];
      if (worker.io_credit == 0) continue;
      std::vector<uint64_t> jobs(io_jobs_.begin(), io_jobs_.end());
      for (uint64_t id : jobs) {
        Job* job = FindJob(id);
        if (!CanRun(worker, job->spec())) continue;
        auto share = rate_shares.find(id);
        if (share == rate_shares.end()) share = rate_shares.emplace(id, RateShare(*job)).first;
        TakeIoChunks(worker, job, share->second, messages[i].mutable_assign(), now);
        if (worker.io_credit == 0) break;
      }
    }
  }
  std::vector<WorkerRecord*> idle;
  for (size_t i = 0; i < candidates.size(); ++i) {
    WorkerRecord& worker = *candidates[i];
    if (messages[i].assign().chunks_size() > 0) {
      worker.chunks_sent += messages[i].assign().chunks_size();
      Send(worker, messages[i], now);
      ++change_count_;
    }
    UpdateWorkerSets(worker);
    if (worker.credit > 0 && FreeSlots(worker) > 0) idle.push_back(&worker);
  }
  if (!idle.empty() && !reserve_holders_.empty()) StealFor(idle, now);
}

void Scheduler::StealFor(const std::vector<WorkerRecord*>& thieves, absl::Time now) {
  uint64_t wanted = 0;
  for (const WorkerRecord* thief : thieves) wanted += FreeSlots(*thief);
  for (uint64_t number : reserve_holders_) {
    if (wanted == 0) return;
    WorkerRecord& victim = *by_number_.at(number);
    if (victim.steal_pending != 0 && now - victim.steal_sent < kStealAnswerTime) continue;
    // Only chunks of jobs some idle worker can run are worth taking back.
    std::set<uint64_t> jobs;
    for (const auto& [key, held] : victim.held) {
      if (held.cpus == 0 || jobs.contains(key.first)) continue;
      Job* job = FindJob(key.first);
      if (job == nullptr) continue;
      for (const WorkerRecord* thief : thieves) {
        if (thief != &victim && CanRun(*thief, job->spec())) {
          jobs.insert(key.first);
          break;
        }
      }
    }
    if (jobs.empty()) continue;
    const uint64_t reserve = victim.cpu_load - victim.hello.slots();
    const uint64_t take = std::min(reserve, wanted);
    v1::CoordinatorMessage message;
    v1::Steal* steal = message.mutable_steal();
    steal->set_steal_id(next_steal_id_++);
    steal->set_max_chunks(static_cast<uint32_t>(take));
    for (uint64_t id : jobs) steal->add_job_ids(id);
    victim.steal_pending = steal->steal_id();
    victim.steal_sent = now;
    LogDebug(absl::StrCat("asking worker ", victim.id, " to give back up to ", take, " unstarted chunk(s)"));
    Send(victim, message, now);
    wanted -= take;
  }
}

}  // namespace drover
