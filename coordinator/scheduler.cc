// Implements scheduler.h.
#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/items.h"
#include "common/log.h"

namespace drover {
namespace {
// Descriptor sets larger than this are refused (they travel to every worker).
constexpr uint64_t kMaxGrpcSpecBytes = 8 << 20;
}  // namespace

Scheduler::Scheduler(SchedulerOptions options, WorkerOutbox* outbox, Journal* journal)
    : options_(options), outbox_(outbox), journal_(journal) {}

void Scheduler::Restore(const std::vector<v1::JournalRecord>& records, absl::Time now) {
  uint64_t results = 0;
  for (const v1::JournalRecord& record : records) {
    switch (record.record_case()) {
      case v1::JournalRecord::kSubmitted: {
        const v1::JobSubmitted& submitted = record.submitted();
        if (jobs_.contains(submitted.job_id()) || !ValidateJobSpec(submitted.spec()).ok()) {
          LogWarning(absl::StrCat("journal: skipped a bad record for job ", submitted.job_id()));
          continue;
        }
        auto job = std::make_unique<Job>(submitted.job_id(), submitted.spec(),
                                         absl::FromUnixMillis(submitted.submitted_unix_ms()));
        if (!job->finished()) runnable_.insert(submitted.job_id());
        jobs_.emplace(submitted.job_id(), std::move(job));
        next_job_id_ = std::max(next_job_id_, submitted.job_id() + 1);
        break;
      }
      case v1::JournalRecord::kDone: {
        Job* job = FindJob(record.done().job_id());
        if (job == nullptr) continue;
        v1::ChunkResult result;
        result.set_job_id(record.done().job_id());
        result.set_chunk_index(record.done().chunk_index());
        *result.mutable_outputs() = record.done().outputs();
        job->RestoreResult(std::move(result), now);
        ++results;
        if (job->finished()) runnable_.erase(job->id());
        break;
      }
      case v1::JournalRecord::kCancelled:
        if (Job* job = FindJob(record.cancelled().job_id())) {
          (void)job->Cancel(absl::FromUnixMillis(record.cancelled().unix_ms()));
          runnable_.erase(job->id());
        }
        break;
      case v1::JournalRecord::RECORD_NOT_SET:
        break;
    }
  }
  std::vector<uint64_t> orphaned;
  for (uint64_t id : runnable_) {
    if (FindJob(id)->stream_results()) orphaned.push_back(id);
  }
  for (uint64_t id : orphaned) {
    LogInfo(absl::StrCat("job ", id, " streamed its results to a client that is gone; cancelled"));
    (void)Cancel(id, now);
  }
  LogInfo(absl::StrCat("restored ", jobs_.size(), " job(s) and ", results, " chunk result(s) from the journal; ",
                       runnable_.size(), " job(s) to finish"));
  for (uint64_t id : runnable_) UpdateReady(FindJob(id));
  dispatch_needed_ = true;
  ++change_count_;
}

void Scheduler::SyncJournal() {
  if (journal_ == nullptr || !journal_->has_pending()) return;
  absl::Status synced = journal_->Sync();
  if (synced.ok()) {
    if (journal_failing_) LogInfo("the journal is being written again");
    journal_failing_ = false;
  } else if (!journal_failing_) {
    // Results stay in memory and are retried with the next sync.
    LogError(absl::StrCat("results are not durable: ", synced.message()));
    journal_failing_ = true;
  }
}

absl::Status Scheduler::CheckLimits(const v1::JobSpec& spec) const {
  if (spec.items().has_inline_()) {
    const auto& items = spec.items().inline_().items();
    if (static_cast<uint64_t>(items.size()) > options_.max_inline_items) {
      return absl::InvalidArgumentError(absl::StrCat("the job has ", items.size(), " items; this coordinator takes at most ",
                                                     options_.max_inline_items, " listed items (--max-items); use --range or split the job"));
    }
    for (int i = 0; i < items.size(); ++i) {
      if (items[i].size() > options_.max_item_bytes) {
        return absl::InvalidArgumentError(absl::StrCat("item ", i + 1, " has ", items[i].size(), " bytes; the limit is ",
                                                       options_.max_item_bytes, " (--max-item-bytes)"));
      }
    }
  }
  if (spec.has_grpc() && spec.grpc().ByteSizeLong() > kMaxGrpcSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the gRPC call's descriptors and options take ",
                                                   spec.grpc().ByteSizeLong(), " bytes; the limit is ",
                                                   kMaxGrpcSpecBytes));
  }
  if (spec.has_command()) {
    uint64_t bytes = 0;
    for (const std::string& arg : spec.command().argv()) bytes += arg.size() + 1;
    for (const std::string& env : spec.command().env()) bytes += env.size() + 1;
    if (bytes > options_.max_command_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("the command line and environment take ", bytes,
                                                     " bytes; the limit is ", options_.max_command_bytes,
                                                     " (--max-command-bytes)"));
    }
  }
  return absl::OkStatus();
}

bool Scheduler::CanRun(const WorkerRecord& worker, const v1::JobSpec& spec) {
  if (!spec.kernel().empty() && !worker.kernels.contains(spec.kernel())) return false;
  if (spec.has_grpc() && worker.hello.io_capacity() == 0) return false;
  for (const std::string& required : spec.require()) {
    if (!worker.labels.contains(required)) return false;
  }
  return true;
}

Job* Scheduler::FindJob(uint64_t job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

void Scheduler::Send(WorkerRecord& worker, v1::CoordinatorMessage& message, absl::Time now) {
  outbox_->Send(worker.peer, message);
  worker.last_sent = now;
}

void Scheduler::OnWorkerMessage(const std::string& peer, v1::WorkerMessage message,
                                absl::Time now) {
  if (message.has_hello()) {
    OnHello(peer, message.hello(), now);
    return;
  }
  auto it = workers_.find(peer);
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
      LoseWorker(peer, absl::StrCat("said goodbye (", message.goodbye().reason(), ")"), now);
      break;
    case v1::WorkerMessage::kHeartbeat:
      if (message.heartbeat().has_load()) worker.load = message.heartbeat().load();
      (void)CheckReceived(worker, message.heartbeat().chunks_received(), now);
      break;
    default:
      LogWarning(absl::StrCat("dropped a message with no known body from worker ", worker.id));
      break;
  }
}

void Scheduler::OnReady(WorkerRecord& worker, v1::Ready* ready, absl::Time now) {
  if (ready->has_load()) worker.load = ready->load();
  // Results and returned chunks first: they are good even if Assigns sent
  // later were lost (CheckReceived below then re-queues only what is left).
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
  if (!CheckReceived(worker, ready->chunks_received(), now)) return;
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

void Scheduler::OnHello(const std::string& peer, const v1::Hello& hello, absl::Time now) {
  if (workers_.contains(peer)) LoseWorker(peer, "registered again", now);
  if (hello.slots() == 0) {
    v1::CoordinatorMessage refusal;
    refusal.mutable_refusal()->set_reason("a worker needs at least one slot");
    outbox_->Send(peer, refusal);
    return;
  }
  WorkerRecord& worker = workers_[peer];
  worker.peer = peer;
  worker.number = next_worker_number_++;
  worker.id = absl::StrCat("w", worker.number);
  by_number_[worker.number] = &worker;
  worker.hello = hello;
  worker.kernels.insert(hello.kernels().begin(), hello.kernels().end());
  for (const std::string& label : hello.labels()) {
    worker.labels.insert(label);
    worker.labels.insert(label.substr(0, label.find('=')));  // "gpu=a100" also satisfies "gpu"
  }
  worker.last_heard = now;
  total_slots_ += hello.slots();
  LogInfo(absl::StrCat("worker ", worker.id, " joined: ", hello.name(), " on ", hello.host(),
                       ", ", hello.slots(), " slots"));
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_worker_id(worker.id);
  welcome.mutable_welcome()->set_heartbeat_interval_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  welcome.mutable_welcome()->set_coordinator_instance(options_.instance);
  Send(worker, welcome, now);
  ++change_count_;
}

void Scheduler::OnResults(WorkerRecord& worker, v1::Ready* ready, absl::Time now) {
  for (v1::ChunkResult& result : *ready->mutable_results()) {
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
  v1::JournalRecord record;
  if (journal_ != nullptr && !job->stream_results()) {
    record.mutable_done()->set_job_id(result.job_id());
    record.mutable_done()->set_chunk_index(result.chunk_index());
    *record.mutable_done()->mutable_outputs() = result.outputs();
  }
  uint64_t index = result.chunk_index();
  uint32_t attempt = result.attempt();
  switch (job->OnResult(std::move(result), now)) {
    case Job::ResultOutcome::kRecorded:
      break;
    case Job::ResultOutcome::kDuplicate:
      return false;
    case Job::ResultOutcome::kMalformed:
      // Run it again elsewhere (bounded like a lost worker).
      if (std::optional<v1::ChunkResult> failed = job->Requeue(index, attempt)) {
        return RecordResult(job, *std::move(failed), now);
      }
      UpdateReady(job);
      dispatch_needed_ = true;
      return false;
  }
  if (record.has_done()) journal_->Append(record);
  ++change_count_;
  UpdateReady(job);
  if (job->finished()) {
    runnable_.erase(job->id());
    LogInfo(absl::StrCat("job ", job->id(), " finished: ", v1::JobState_Name(job->ToProto().state())));
  }
  return true;
}

bool Scheduler::CheckReceived(WorkerRecord& worker, uint64_t chunks_received, absl::Time now) {
  const absl::Time old_enough = now - 3 * options_.heartbeat_interval;
  uint64_t expected = 0;
  while (!worker.sent_marks.empty() && worker.sent_marks.front().first <= old_enough) {
    expected = worker.sent_marks.front().second;
    if (worker.sent_marks.size() > 1 && worker.sent_marks[1].first <= old_enough) {
      worker.sent_marks.pop_front();
      continue;
    }
    break;
  }
  if (chunks_received >= expected) return true;
  std::string peer = worker.peer;
  LoseWorker(peer, absl::StrCat(expected - chunks_received, " chunk(s) sent to it never arrived"), now);
  v1::CoordinatorMessage reregister;
  reregister.mutable_reregister()->set_reason("chunks sent to this worker were lost in transit");
  outbox_->Send(peer, reregister);
  return false;
}

void Scheduler::StartDrain(WorkerRecord& worker, absl::Time now) {
  worker.draining = true;
  worker.credit = 0;
  worker.io_credit = 0;
  total_slots_ -= worker.hello.slots();
  UpdateWorkerSets(worker);
  v1::CoordinatorMessage drain;
  drain.mutable_drain();
  Send(worker, drain, now);
  ++change_count_;
}

absl::StatusOr<v1::WorkerInfo> Scheduler::DrainWorker(const std::string& worker_id, absl::Time now) {
  for (auto& [peer, worker] : workers_) {
    if (worker.id != worker_id) continue;
    if (!worker.draining) {
      LogInfo(absl::StrCat("draining worker ", worker.id, " as a client asked"));
      StartDrain(worker, now);
    }
    return Info(worker);
  }
  return absl::NotFoundError(absl::StrCat("no worker ", worker_id, " (see `drover workers`)"));
}

void Scheduler::LoseWorker(const std::string& peer, absl::string_view why, absl::Time now) {
  auto it = workers_.find(peer);
  if (it == workers_.end()) return;
  WorkerRecord& worker = it->second;
  LogWarning(absl::StrCat("worker ", worker.id, " (", worker.hello.name(), ") lost: ", why, "; ",
                          worker.held.size(), " chunk(s) go back to the queue"));
  std::vector<std::pair<Job*, v1::ChunkResult>> given_up;
  for (const auto& [key, held] : worker.held) {
    Job* job = FindJob(key.first);
    if (job == nullptr) continue;
    if (std::optional<v1::ChunkResult> failed = job->Requeue(key.second, held.attempt)) {
      given_up.emplace_back(job, *std::move(failed));
    }
    UpdateReady(job);
  }
  for (auto& [job, failed] : given_up) {
    LogWarning(absl::StrCat("job ", job->id(), " chunk ", failed.chunk_index(), " failed: lost its worker ",
                            failed.attempt(), " times"));
    RecordResult(job, std::move(failed), now);
  }
  if (!worker.held.empty()) {
    dispatch_needed_ = true;
  }
  if (!worker.draining) total_slots_ -= worker.hello.slots();
  hungry_.erase(worker.number);
  reserve_holders_.erase(worker.number);
  touched_.erase(worker.number);
  by_number_.erase(worker.number);
  workers_.erase(it);
  ++change_count_;
}

void Scheduler::OnWrongVersion(const std::string& peer, absl::string_view why) {
  LogWarning(absl::StrCat("refused a peer: ", why));
  v1::CoordinatorMessage refusal;
  refusal.mutable_refusal()->set_reason(std::string(why));
  outbox_->Send(peer, refusal);
}

void Scheduler::OnTick(absl::Time now) {
  std::vector<std::string> silent;
  for (auto& [peer, worker] : workers_) {
    if (worker.sent_marks.empty() || now - worker.sent_marks.back().first >= options_.heartbeat_interval) {
      worker.sent_marks.emplace_back(now, worker.chunks_sent);
      if (worker.sent_marks.size() > 8) worker.sent_marks.pop_front();
    }
    if (now - worker.last_heard > options_.worker_timeout) {
      silent.push_back(peer);
    } else if (now - worker.last_sent >= options_.heartbeat_interval) {
      v1::CoordinatorMessage beat;
      beat.mutable_heartbeat();
      Send(worker, beat, now);
    }
  }
  for (const std::string& peer : silent) {
    LoseWorker(peer, absl::StrCat("silent for more than ", absl::FormatDuration(options_.worker_timeout)),
               now);
  }
  for (auto it = rates_.begin(); it != rates_.end();) {
    // Paced jobs get more tokens with time: look again each tick.
    if (runnable_.contains(it->first)) {
      new_work_ = true;
      dispatch_needed_ = true;
      ++it;
    } else {
      rates_.erase(it++);
    }
  }
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

absl::StatusOr<uint64_t> Scheduler::Submit(v1::JobSpec spec, absl::Time now) {
  if (absl::Status valid = ValidateJobSpec(spec); !valid.ok()) return valid;
  if (absl::Status within = CheckLimits(spec); !within.ok()) return within;
  if (!workers_.empty() && !spec.kernel().empty()) {
    std::set<std::string> offered;
    for (const auto& [peer, worker] : workers_) offered.insert(worker.kernels.begin(), worker.kernels.end());
    if (!offered.contains(spec.kernel())) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown kernel '", spec.kernel(), "': no connected worker offers it (they offer: ",
                       absl::StrJoin(offered, ", "), ")"));
    }
  }
  if (!workers_.empty() && spec.require_size() > 0 &&
      std::none_of(workers_.begin(), workers_.end(), [&](const auto& w) { return CanRun(w.second, spec); })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no connected worker has the labels ", absl::StrJoin(spec.require(), ", "),
        " (start one with --label, see `drover workers`)"));
  }
  uint64_t id = next_job_id_;
  if (journal_ != nullptr) {
    // Durable before it is acknowledged: results of this turn first, then the job.
    if (absl::Status synced = journal_->Sync(); !synced.ok()) return synced;
    v1::JournalRecord record;
    record.mutable_submitted()->set_job_id(id);
    *record.mutable_submitted()->mutable_spec() = spec;
    record.mutable_submitted()->set_submitted_unix_ms(absl::ToUnixMillis(now));
    journal_->Append(record);
    if (absl::Status synced = journal_->Sync(); !synced.ok()) {
      journal_->DiscardPending();
      return synced;
    }
  }
  ++next_job_id_;
  auto job = std::make_unique<Job>(id, std::move(spec), now);
  if (!job->finished()) runnable_.insert(id);
  v1::JobStatus status = job->ToProto();
  LogInfo(absl::StrCat("job ", id, " submitted: ", status.kernel(), ", ", status.total_items(), " items, ",
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
  return job->ToProto();
}

std::vector<v1::JobStatus> Scheduler::ListJobs() const {
  std::vector<v1::JobStatus> list;
  list.reserve(jobs_.size());
  for (const auto& [id, job] : jobs_) list.push_back(job->ToProto());
  return list;
}

void Scheduler::CancelOnWorkers(uint64_t job_id) {
  for (auto& [peer, worker] : workers_) {
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
  if (absl::Status cancelled = job->Cancel(now); !cancelled.ok()) return cancelled;
  runnable_.erase(job_id);
  UpdateReady(job);
  if (journal_ != nullptr) {
    v1::JournalRecord record;
    record.mutable_cancelled()->set_job_id(job_id);
    record.mutable_cancelled()->set_unix_ms(absl::ToUnixMillis(now));
    journal_->Append(record);
    SyncJournal();
  }
  CancelOnWorkers(job_id);
  LogInfo(absl::StrCat("job ", job_id, " cancelled"));
  ++change_count_;
  dispatch_needed_ = true;  // the freed slots go to other jobs
  return job->ToProto();
}

std::vector<v1::WorkerInfo> Scheduler::ListWorkers() const {
  std::vector<v1::WorkerInfo> list;
  for (const auto& [peer, worker] : workers_) list.push_back(Info(worker));
  std::sort(list.begin(), list.end(), [](const v1::WorkerInfo& a, const v1::WorkerInfo& b) {
    return a.worker_id().size() != b.worker_id().size() ? a.worker_id().size() < b.worker_id().size()
                                                        : a.worker_id() < b.worker_id();
  });
  return list;
}

absl::StatusOr<v1::ChunkOutputs> Scheduler::TaskResult(uint64_t job_id, uint64_t index) const {
  Job* job = FindJob(job_id);
  if (job == nullptr) return absl::NotFoundError(absl::StrCat("no job ", job_id));
  return job->TaskResult(index);
}

v1::WorkerInfo Scheduler::Info(const WorkerRecord& worker) const {
  v1::WorkerInfo info;
  info.set_worker_id(worker.id);
  info.set_name(worker.hello.name());
  info.set_host(worker.hello.host());
  info.set_pid(worker.hello.pid());
  info.set_slots(worker.hello.slots());
  for (const std::string& kernel : worker.hello.kernels()) info.add_kernels(kernel);
  info.set_chunks_held(static_cast<uint32_t>(worker.held.size()));
  info.set_slots_busy(worker.load.slots_busy());
  info.set_io_capacity(worker.hello.io_capacity());
  info.set_io_calls_in_flight(worker.load.io_calls_in_flight());
  info.set_threads(worker.load.threads());
  info.set_chunks_done(worker.chunks_done);
  info.set_last_seen_unix_ms(absl::ToUnixMillis(worker.last_heard));
  info.set_draining(worker.draining);
  for (const std::string& label : worker.hello.labels()) info.add_labels(label);
  return info;
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
  if (job == nullptr || !job->stream_results() || job->finished()) return;
  LogInfo(absl::StrCat("job ", job_id, ": its results reader went away"));
  (void)Cancel(job_id, now);
}

void Scheduler::ShutdownWorkers(const std::string& reason) {
  for (auto& [peer, worker] : workers_) {
    v1::CoordinatorMessage shutdown;
    shutdown.mutable_shutdown()->set_reason(reason);
    outbox_->Send(peer, shutdown);
  }
}

}  // namespace drover
