// Implements scheduler.h: event routing, the job table and client queries.
// Also: scheduler_workers.cc (registry, liveness, drain), scheduler_dispatch.cc
// (who runs what), scheduler_admission.cc (what a job may ask), scheduler_restore.cc
// (journal replay).
#include "coordinator/scheduler.h"

#include <malloc.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/items.h"
#include "common/log.h"

namespace drover {

Scheduler::Scheduler(SchedulerOptions options, WorkerOutbox* outbox, JournalSink* journal,
                     ResultStore* results)
    : options_(options),
      outbox_(outbox),
      journal_(journal),
      own_results_(results == nullptr ? ResultStore::InMemory() : nullptr),
      results_(results != nullptr ? results : own_results_.get()) {}

void Scheduler::SyncJournal() {
  const bool pending = journal_ != nullptr && journal_->has_pending();
  const absl::Time start = absl::Now();
  absl::Status synced = results_->Sync();
  if (synced.ok() && pending) synced = journal_->Sync();
  if (pending) counters_.journal_sync_time.Observe(absl::Now() - start);
  if (synced.ok()) {
    if (journal_failing_) LogInfo("the journal is being written again");
    journal_failing_ = false;
  } else if (!journal_failing_) {
    // Results stay in memory and are retried with the next sync.
    LogError(absl::StrCat("results are not durable: ", synced.message()));
    journal_failing_ = true;
  }
}

Job* Scheduler::FindJob(uint64_t job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

void Scheduler::Send(WorkerRecord& worker, v1::CoordinatorMessage& message, absl::Time now) {
  outbox_->Send(worker.peer, message);
  worker.last_sent = now;
}

void Scheduler::OnWorkerMessage(const std::string& peer, v1::WorkerMessage message, absl::Time now,
                                absl::string_view key) {
  auto it = workers_.find(peer);
  if (it != workers_.end() && it->second.key != key) {
    // Another key speaks with a registered worker's routing id (possible only
    // after that worker disconnected): it may not act as that worker.
    LogRateLimited(LogLevel::kWarning, absl::StrCat("key:", peer),
                   absl::StrCat("dropped a message for worker ", it->second.id,
                                " that came with another CURVE key than its Hello"));
    return;
  }
  if (message.has_hello()) {
    OnHello(peer, message.hello(), now, key);
    return;
  }
  if (it == workers_.end()) {
    // Declared lost earlier, or registered with a previous coordinator: it
    // holds nothing here, so its results are dropped (the chunks went back to
    // the queue when it was lost) and it must register again.
    if (!message.has_goodbye()) {
      v1::CoordinatorMessage reregister;
      reregister.mutable_reregister()->set_reason("this coordinator does not know the worker");
      outbox_->Send(peer, reregister);
    }
    return;
  }
  WorkerRecord& worker = it->second;
  worker.last_heard = now;
  switch (message.body_case()) {
    case v1::WorkerMessage::kReady:
      OnReady(worker, message.mutable_ready(), now);
      break;
    case v1::WorkerMessage::kGoodbye:
      LoseWorker(peer, absl::StrCat("said goodbye (", message.goodbye().reason(), ")"), now, /*said_goodbye=*/true);
      break;
    case v1::WorkerMessage::kHeartbeat:
      if (message.heartbeat().has_load()) worker.load = message.heartbeat().load();
      NoteStarted(worker, message.heartbeat().started());
      (void)AssignsArrivedOrLose(worker, message.heartbeat().chunks_received(), now);
      break;
    default:
      LogRateLimited(LogLevel::kWarning, absl::StrCat("no body:", worker.id),
                     absl::StrCat("dropped a message with no known body from worker ", worker.id));
      break;
  }
}

void Scheduler::NoteStarted(WorkerRecord& worker,
                            const google::protobuf::RepeatedPtrField<v1::ChunkStart>& started) {
  for (const v1::ChunkStart& start : started) {
    // Only for a chunk this worker holds, in its current attempt.
    auto held = worker.held.find(ChunkKey{start.job_id(), start.chunk_index()});
    if (held == worker.held.end() || held->second.attempt != start.attempt()) continue;
    held->second.started_unix_us = start.started_unix_us();
  }
}

void Scheduler::OnReady(WorkerRecord& worker, v1::Ready* ready, absl::Time now) {
  if (ready->has_load()) worker.load = ready->load();
  NoteStarted(worker, ready->started());
  // Results and returned chunks first: they are good even if Assigns sent
  // later were lost (AssignsArrivedOrLose below then re-queues only what is left).
  OnResults(worker, ready, now);
  for (const v1::ChunkRef& ref : ready->returned()) {
    auto held = worker.held.find(ChunkKey{ref.job_id(), ref.chunk_index()});
    if (held == worker.held.end() || held->second.attempt != ref.attempt()) continue;
    Release(worker, held->first);
    if (Job* job = FindJob(ref.job_id()); job != nullptr && job->Return(ref.chunk_index(), ref.attempt())) {
      ++chunks_stolen_;
      UpdateReady(job);
      dispatch_needed_ = true;
    }
  }
  if (ready->answered_steal() != 0 && ready->answered_steal() == worker.steal_pending) worker.steal_pending = 0;
  if (!AssignsArrivedOrLose(worker, ready->chunks_received(), now)) return;
  if (ready->draining() && !worker.draining) {
    LogInfo(absl::StrCat("worker ", worker.id, " is draining"));
    StartDrain(worker, now);
  }
  if (!worker.draining) {
    uint64_t credit = std::min<uint64_t>(ready->credit(), options_.max_credit_per_worker);
    worker.credit = std::min<uint64_t>(worker.credit + credit, options_.max_credit_per_worker);
    worker.io_credit = std::min<uint64_t>(worker.io_credit + ready->io_credit(), worker.hello.io_capacity());
  }
  touched_.insert(worker.number);
  dispatch_needed_ = true;
}

void Scheduler::OnResults(WorkerRecord& worker, v1::Ready* ready, absl::Time now) {
  for (v1::ChunkResult& result : *ready->mutable_results()) {
    result_bytes_since_trim_ += result.outputs().outputs().size();
    // Only the worker this coordinator handed (chunk, attempt) may report it.
    auto held = worker.held.find(ChunkKey{result.job_id(), result.chunk_index()});
    if (result.coordinator_instance() != options_.instance || held == worker.held.end() ||
        held->second.attempt != result.attempt()) {
      LogDebug(absl::StrCat("worker ", worker.id, ": dropped a result for job ", result.job_id(), " chunk ",
                            result.chunk_index(), " attempt ", result.attempt(), " that it does not hold"));
      continue;
    }
    Release(worker, held->first);
    Job* job = FindJob(result.job_id());
    if (job == nullptr || !RecordResult(job, std::move(result), now)) continue;
    ++worker.chunks_done;
  }
}

bool Scheduler::RecordResult(Job* job, v1::ChunkResult&& result, absl::Time now) {
  uint64_t index = result.chunk_index();
  uint32_t attempt = result.attempt();
  const absl::Duration run_time = absl::Nanoseconds(result.run_ns());
  const uint64_t done_before = job->done_items();
  const uint64_t failed_before = job->failed_items();
  switch (job->OnResult(std::move(result), now)) {
    case Job::ResultOutcome::kRecorded:
      counters_.tasks_done += job->done_items() - done_before;
      counters_.tasks_failed += job->failed_items() - failed_before;
      counters_.chunk_run_time.Observe(run_time);
      break;
    case Job::ResultOutcome::kDuplicate:
      return false;
    case Job::ResultOutcome::kMalformed:
      // Run it again elsewhere (bounded like a lost worker).
      if (std::optional<v1::ChunkResult> failed = job->Requeue(index, attempt)) {
        return RecordResult(job, *std::move(failed), now);
      }
      ++counters_.chunks_retried;
      UpdateReady(job);
      dispatch_needed_ = true;
      return false;
  }
  ++change_count_;
  UpdateReady(job);
  if (job->finished()) {
    ++jobs_ended_count_;
    runnable_.erase(job->id());
    LogInfo(absl::StrCat("job ", job->id(), " finished: ", v1::JobState_Name(job->ToProto().state())));
  }
  return true;
}

void Scheduler::OnTick(absl::Time now) {
  // A loop held up (a slow disk's fsync) heard nothing from anyone meanwhile:
  // that silence is the coordinator's, not the workers'.
  // (Ticks come every 100 ms; only a gap well past that, and past a second, counts.)
  if (last_tick_ != absl::InfinitePast() &&
      now - last_tick_ > std::max(options_.worker_timeout / 2, absl::Seconds(1))) {
    const absl::Duration stall = now - last_tick_ - absl::Milliseconds(100);
    LogWarning(absl::StrCat("the coordinator could not look at its workers for ", absl::FormatDuration(stall),
                            " (a slow disk?); their silence meanwhile is not held against them"));
    for (auto& [peer, worker] : workers_) worker.last_heard = std::min(now, worker.last_heard + stall);
  }
  last_tick_ = now;
  CheckLiveness(now);
  CancelUnreadJobs(now);
  // Large results pass through memory on their way to disk or a reader: give
  // what they used back to the system now and then (a long-lived service).
  if (result_bytes_since_trim_ > kTrimAfterResultBytes && now - last_trim_ > absl::Seconds(1)) {
    malloc_trim(0);
    result_bytes_since_trim_ = 0;
    last_trim_ = now;
  }
  if (options_.keep_finished > absl::ZeroDuration() && now >= next_expiry_check_) {
    next_expiry_check_ = now + std::min(options_.keep_finished / 10, absl::Minutes(1));
    absl::StatusOr<std::vector<uint64_t>> expired = Forget({}, options_.keep_finished, now);
    if (!expired.ok()) LogWarning(absl::StrCat("finished jobs not forgotten: ", expired.status().message()));
  }
}

void Scheduler::CancelUnreadJobs(absl::Time now) {
  std::vector<uint64_t> unread;
  for (uint64_t id : runnable_) {
    Job* job = FindJob(id);
    if (job->stream_results() && !job->reader_attached() && now - job->submitted() > options_.reader_timeout) {
      unread.push_back(id);
    }
  }
  for (uint64_t id : unread) {
    LogWarning(absl::StrCat("job ", id, ": no client came for its streamed results; cancelled"));
    (void)Cancel(id, now);
  }
}

absl::StatusOr<uint64_t> Scheduler::Submit(v1::JobSpec spec, absl::Time now, const std::string& idempotency_key,
                                           ItemSpool* spool) {
  if (idempotency_key.size() > kMaxIdempotencyKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("an idempotency key has at most ", kMaxIdempotencyKeyBytes, " bytes"));
  }
  if (auto known = job_by_idempotency_key_.find(idempotency_key);
      !idempotency_key.empty() && known != job_by_idempotency_key_.end()) {
    return known->second;  // a retry of a Submit that made this job
  }
  if (absl::Status admitted = CheckAdmission(spec); !admitted.ok()) return admitted;
  if (spec.items().has_spooled() != (spool != nullptr) ||
      (spool != nullptr && spool->count() != spec.items().spooled().count())) {
    return absl::InvalidArgumentError("spooled items come only with SubmitStream");
  }
  // The id is used up even if the job is refused below: a record that a
  // failed sync left behind can never be confused with a later job.
  const uint64_t id = next_job_id_++;
  absl::Cleanup drop_items = [&] {
    if (spool != nullptr) results_->Forget(id);
  };
  // The items are the job's before its record is written: a record never names missing items.
  if (spool != nullptr) {
    if (absl::Status adopted = results_->AdoptItems(id, spool); !adopted.ok()) return adopted;
  }
  if (journal_ != nullptr) {
    // Durable before it is acknowledged: results of this turn first, then the job.
    if (absl::Status synced = journal_->Sync(); !synced.ok()) return synced;
    v1::JournalRecord record;
    record.mutable_submitted()->set_job_id(id);
    record.mutable_submitted()->mutable_spec()->Swap(&spec);  // lent, not copied: it may be large
    record.mutable_submitted()->set_submitted_unix_ms(absl::ToUnixMillis(now));
    record.mutable_submitted()->set_idempotency_key(idempotency_key);
    absl::Status appended = journal_->Append(record);
    record.mutable_submitted()->mutable_spec()->Swap(&spec);
    if (!appended.ok()) return appended;
    if (absl::Status synced = journal_->Sync(); !synced.ok()) {
      journal_->DiscardPending();
      return synced;
    }
  }
  std::move(drop_items).Cancel();
  RememberIdempotencyKey(id, idempotency_key);
  auto job = std::make_unique<Job>(id, std::move(spec), now, results_);
  if (!job->finished()) runnable_.insert(id);
  v1::JobStatus status = job->ToProto();
  LogInfo(absl::StrCat("job ", id, " submitted: ", status.runs(), ", ", status.total_items(), " items, ",
                       job->spec().chunk_size() == 0 ? std::string("automatic chunks")
                                                     : absl::StrCat(job->spec().chunk_size(), " a chunk"),
                       ", priority ", job->priority()));
  UpdateReady(job.get());
  jobs_.emplace(id, std::move(job));
  dispatch_needed_ = true;
  ++change_count_;
  return id;
}

absl::StatusOr<v1::JobStatus> Scheduler::GetJob(uint64_t job_id) const {
  Job* job = FindJob(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  v1::JobStatus status = job->ToProto();
  uint32_t able = 0;
  for (const auto& [peer, worker] : workers_) {
    if (!worker.draining && CanRun(worker, job->spec())) ++able;
  }
  status.set_workers_able(able);
  return status;
}

std::vector<v1::JobStatus> Scheduler::ListJobs() const {
  std::vector<v1::JobStatus> list;
  list.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_) list.push_back(job->ToProto());
  return list;
}

void Scheduler::CancelOnWorkers(uint64_t job_id) {
  for (auto& entry_by_peer : workers_) {
    const std::string& peer = entry_by_peer.first;
    WorkerRecord& worker = entry_by_peer.second;  // (a lambda below uses it: no structured binding)
    bool held = false;
    absl::erase_if(worker.held, [&](const auto& entry) {
      bool match = entry.first.first == job_id;
      held |= match;
      if (match) worker.cpu_load -= entry.second.cpus;
      return match;
    });
    if (held) UpdateWorkerSets(worker);
    worker.io_items_by_job.erase(job_id);
    worker.descriptors_sent.erase(job_id);
    if (!held) continue;
    v1::CoordinatorMessage cancel;
    cancel.mutable_cancel()->set_job_id(job_id);
    outbox_->Send(peer, cancel);
  }
}

absl::StatusOr<v1::JobStatus> Scheduler::Cancel(uint64_t job_id, absl::Time now) {
  Job* job = FindJob(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  if (job->finished()) return job->Cancel(now);  // kFailedPrecondition, saying how it ended
  if (journal_ != nullptr) {
    // Durable before it is acknowledged (or it would come back after a crash):
    // results of this turn first, then the cancellation.
    if (absl::Status synced = journal_->Sync(); !synced.ok()) return synced;
    v1::JournalRecord record;
    record.mutable_cancelled()->set_job_id(job_id);
    record.mutable_cancelled()->set_unix_ms(absl::ToUnixMillis(now));
    if (absl::Status appended = journal_->Append(record); !appended.ok()) return appended;
    if (absl::Status synced = journal_->Sync(); !synced.ok()) {
      journal_->DiscardPending();
      return synced;
    }
  }
  (void)job->Cancel(now);
  runnable_.erase(job_id);
  UpdateReady(job);
  CancelOnWorkers(job_id);
  LogInfo(absl::StrCat("job ", job_id, " cancelled"));
  ++change_count_;
  ++jobs_ended_count_;
  dispatch_needed_ = true;  // the freed slots go to other jobs
  return job->ToProto();
}

absl::StatusOr<std::vector<uint64_t>> Scheduler::Forget(const std::vector<uint64_t>& job_ids,
                                                        absl::Duration finished_older_than, absl::Time now) {
  std::set<uint64_t> chosen;
  for (uint64_t id : job_ids) {
    Job* job = FindJob(id);
    if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", id));
    if (!job->finished()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", id, " has not finished: cancel it first (nothing was forgotten)"));
    }
    chosen.insert(id);
  }
  if (finished_older_than > absl::ZeroDuration()) {
    for (const auto& [id, job] : jobs_) {
      if (job->finished() && now - job->finished_at() >= finished_older_than) chosen.insert(id);
    }
  }
  if (journal_ != nullptr && !chosen.empty()) {
    // Durable before it is acknowledged, or the jobs would come back after a crash.
    for (uint64_t id : chosen) {
      v1::JournalRecord record;
      record.mutable_forgotten()->set_job_id(id);
      if (absl::Status appended = journal_->Append(record); !appended.ok()) {
        journal_->DiscardPending();
        return appended;
      }
    }
    if (absl::Status synced = journal_->Sync(); !synced.ok()) {
      journal_->DiscardPending();
      return synced;
    }
  }
  for (uint64_t id : chosen) DropJob(id);
  if (!chosen.empty()) {
    LogInfo(absl::StrCat("forgot ", chosen.size(), " job(s)"));
    MaybeCompactJournal();
    malloc_trim(0);  // a long-lived service gives what it freed back to the system
    ++change_count_;
  }
  return std::vector<uint64_t>(chosen.begin(), chosen.end());
}

// Dead journal records tolerated beyond the live ones before a compaction.
constexpr uint64_t kCompactionSlackBytes = 16 << 10;

void Scheduler::MaybeCompactJournal() {
  if (journal_ == nullptr) return;
  uint64_t live_bytes = 0;
  for (const auto& [id, job] : jobs_) live_bytes += job->spec().ByteSizeLong() + 64;
  const uint64_t before = journal_->size_bytes();
  if (before <= 2 * live_bytes + kCompactionSlackBytes) return;
  if (absl::Status synced = journal_->Sync(); !synced.ok()) return;  // retried after the next forget
  auto next = jobs_.begin();
  const Job* cancelled = nullptr;  // its cancellation follows its submission
  bool wrote_next_id = false;
  absl::Status rewritten = journal_->Rewrite([&](v1::JournalRecord* record) {
    if (!wrote_next_id) {
      record->set_next_job_id(next_job_id_);
      wrote_next_id = true;
      return true;
    }
    if (cancelled != nullptr) {
      record->mutable_cancelled()->set_job_id(cancelled->id());
      record->mutable_cancelled()->set_unix_ms(absl::ToUnixMillis(cancelled->finished_at()));
      cancelled = nullptr;
      return true;
    }
    if (next == jobs_.end()) return false;
    const Job& job = *next->second;
    ++next;
    record->mutable_submitted()->set_job_id(job.id());
    *record->mutable_submitted()->mutable_spec() = job.spec();
    record->mutable_submitted()->set_submitted_unix_ms(absl::ToUnixMillis(job.submitted()));
    if (auto key = idempotency_key_of_.find(job.id()); key != idempotency_key_of_.end()) {
      record->mutable_submitted()->set_idempotency_key(key->second);
    }
    if (job.cancelled()) cancelled = &job;
    return true;
  });
  if (rewritten.ok()) {
    LogInfo(absl::StrCat("journal compacted: ", before, " -> ", journal_->size_bytes(), " bytes (", jobs_.size(),
                         " job(s))"));
  } else {
    LogWarning(absl::StrCat("journal not compacted: ", rewritten.message()));
  }
}

void Scheduler::RememberIdempotencyKey(uint64_t job_id, const std::string& key) {
  if (key.empty()) return;
  job_by_idempotency_key_[key] = job_id;
  idempotency_key_of_[job_id] = key;
}

void Scheduler::DropJob(uint64_t job_id) {
  if (auto key = idempotency_key_of_.find(job_id); key != idempotency_key_of_.end()) {
    job_by_idempotency_key_.erase(key->second);
    idempotency_key_of_.erase(key);
  }
  results_->Forget(job_id);
  for (auto& [peer, worker] : workers_) worker.descriptors_sent.erase(job_id);
  runnable_.erase(job_id);
  if (auto key = ready_key_.find(job_id); key != ready_key_.end()) {
    ready_jobs_.erase(key->second);
    ready_key_.erase(key);
  }
  io_jobs_.erase(job_id);
  io_room_waiters_.erase(job_id);
  jobs_.erase(job_id);
}

absl::StatusOr<v1::ChunkOutputs> Scheduler::TaskResult(uint64_t job_id, uint64_t index) const {
  Job* job = FindJob(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  return job->TaskResult(index);
}

absl::StatusOr<uint64_t> Scheduler::Retry(const v1::RetryRequest& request, absl::Time now) {
  Job* job = FindJob(request.job_id());
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", request.job_id()));
  absl::StatusOr<std::vector<std::string>> items =
      job->ItemsToRetry(request.failed(), request.unfinished(), options_.item_limits.max_items);
  if (!items.ok()) return items.status();
  v1::JobSpec spec = job->spec();
  spec.mutable_items()->Clear();
  auto* listed = spec.mutable_items()->mutable_inline_()->mutable_items();
  listed->Reserve(static_cast<int>(items->size()));
  for (std::string& item : *items) listed->Add(std::move(item));
  spec.set_stream_results(false);
  spec.set_name(absl::StrCat("retry of ", spec.name().empty() ? absl::StrCat("job ", request.job_id()) : spec.name()));
  return Submit(std::move(spec), now, request.idempotency_key());
}

absl::StatusOr<v1::ListTasksReply> Scheduler::ListTasks(const v1::ListTasksRequest& request) const {
  Job* job = FindJob(request.job_id());
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", request.job_id()));
  absl::flat_hash_map<uint64_t, Job::HeldChunk> held;
  for (const auto& [peer, worker] : workers_) {
    for (const auto& [key, chunk] : worker.held) {
      if (key.first == request.job_id()) held[key.second] = Job::HeldChunk{worker.id, chunk.started_unix_us};
    }
  }
  v1::ListTasksReply reply;
  job->ListTasks(request, held, &reply);
  return reply;
}

absl::Status Scheduler::AttachReader(uint64_t job_id) {
  Job* job = FindJob(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  return job->AttachReader();
}

absl::Status Scheduler::PullResults(uint64_t job_id, ResultCursor* cursor, uint64_t max_items,
                                    v1::ResultBatch* batch, bool* end) {
  Job* job = FindJob(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  job->PullResults(cursor, max_items, batch, end);
  // Draining a stream-mode job's results opens its dispatch window.
  if (job->stream_results() && batch->chunks_size() > 0) {
    UpdateReady(job);
    dispatch_needed_ = true;
  }
  return absl::OkStatus();
}

void Scheduler::ReaderGone(uint64_t job_id, absl::Time now) {
  Job* job = FindJob(job_id);
  if (job == nullptr || !job->stream_results()) return;
  if (!job->finished()) {
    LogInfo(absl::StrCat("job ", job_id, ": its results reader went away"));
    (void)Cancel(job_id, now);
  }
  job->DropUndelivered();
}

}  // namespace drover
