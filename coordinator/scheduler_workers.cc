// The Scheduler's worker registry: registration, liveness (heartbeats, silence,
// Assigns lost in transit), draining, losing a worker (its chunks go back to
// their jobs) and what `drover workers` shows.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/scheduler.h"

namespace drover {
namespace {

// What a Hello may say (see docs/PROTOCOL.md). Errors: kInvalidArgument.
absl::Status CheckHello(const v1::Hello& hello) {
  constexpr uint32_t kMaxSlots = 4096;
  constexpr uint32_t kMaxIoCapacity = 1 << 20;
  constexpr size_t kMaxNameBytes = 256;
  constexpr int kMaxKernels = 1024;
  constexpr size_t kMaxKernelBytes = 128;
  constexpr int kMaxLabels = 64;
  constexpr size_t kMaxLabelBytes = 256;
  if (hello.slots() == 0) return absl::InvalidArgumentError("a worker needs at least one slot");
  if (hello.slots() > kMaxSlots) {
    return absl::InvalidArgumentError(absl::StrCat(hello.slots(), " slots is more than the ", kMaxSlots, " allowed"));
  }
  if (hello.io_capacity() > kMaxIoCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("io_capacity ", hello.io_capacity(), " is more than the ",
                                                   kMaxIoCapacity, " allowed"));
  }
  if (hello.name().size() > kMaxNameBytes || hello.host().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("a worker's name and host are at most ", kMaxNameBytes, " bytes"));
  }
  if (hello.kernels_size() > kMaxKernels) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxKernels, " kernels"));
  }
  for (const std::string& kernel : hello.kernels()) {
    if (kernel.empty() || kernel.size() > kMaxKernelBytes) {
      return absl::InvalidArgumentError(absl::StrCat("a kernel name is 1 to ", kMaxKernelBytes, " bytes"));
    }
  }
  if (hello.labels_size() > kMaxLabels) return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxLabels, " labels"));
  for (const std::string& label : hello.labels()) {
    if (label.empty() || label.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError(absl::StrCat("a label is 1 to ", kMaxLabelBytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void Scheduler::OnHello(const std::string& peer, const v1::Hello& hello, absl::Time now, absl::string_view key) {
  if (workers_.contains(peer)) LoseWorker(peer, "registered again", now);
  if (absl::Status fits = CheckHello(hello); !fits.ok()) {
    LogRateLimited(LogLevel::kWarning, absl::StrCat("hello:", peer), absl::StrCat("refused a worker: ", fits.message()));
    v1::CoordinatorMessage refusal;
    refusal.mutable_refusal()->set_reason(std::string(fits.message()));
    outbox_->Send(peer, refusal);
    return;
  }
  WorkerRecord& worker = workers_[peer];
  worker.peer = peer;
  worker.key = std::string(key);
  worker.number = next_worker_number_++;
  worker.id = UniqueWorkerId(hello.name().empty() ? absl::StrCat("w", worker.number) : hello.name());
  by_number_[worker.number] = &worker;
  number_by_id_[worker.id] = worker.number;
  worker.hello = hello;
  worker.kernels.insert(hello.kernels().begin(), hello.kernels().end());
  for (const std::string& label : hello.labels()) {
    worker.labels.insert(label);
    worker.labels.insert(label.substr(0, label.find('=')));  // "gpu=a100" also satisfies "gpu"
  }
  // Every worker also answers to its id and host: --require worker=node3, host=gpu01.
  worker.labels.insert(absl::StrCat("worker=", worker.id));
  if (!hello.host().empty()) worker.labels.insert(absl::StrCat("host=", hello.host()));
  worker.last_heard = now;
  total_slots_ += hello.slots();
  LogInfo(absl::StrCat("worker ", worker.id, " joined from ", hello.host(), ", ", hello.slots(), " slots",
                       worker.id != hello.name() ? absl::StrCat(" (its name '", hello.name(), "' is taken)") : ""));
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_worker_id(worker.id);
  welcome.mutable_welcome()->set_heartbeat_interval_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.heartbeat_interval)));
  welcome.mutable_welcome()->set_coordinator_instance(options_.instance);
  Send(worker, welcome, now);
  ++change_count_;
}

bool Scheduler::AssignsArrivedOrLose(WorkerRecord& worker, uint64_t chunks_received, absl::Time now) {
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

std::string Scheduler::UniqueWorkerId(const std::string& name) const {
  if (!number_by_id_.contains(name)) return name;
  for (uint64_t n = 2;; ++n) {
    std::string id = absl::StrCat(name, "-", n);
    if (!number_by_id_.contains(id)) return id;
  }
}

absl::StatusOr<v1::WorkerInfo> Scheduler::DrainWorker(const std::string& worker_id, absl::Time now) {
  auto id = number_by_id_.find(worker_id);
  if (id == number_by_id_.end()) {
    return absl::NotFoundError(absl::StrCat("no connected worker has the id ", worker_id, " (ListWorkers, `drover workers`, lists them)"));
  }
  WorkerRecord& worker = *by_number_.at(id->second);
  if (!worker.draining) {
    LogInfo(absl::StrCat("draining worker ", worker.id, " as a client asked"));
    StartDrain(worker, now);
  }
  return Info(worker);
}

void Scheduler::LoseWorker(const std::string& peer, absl::string_view why, absl::Time now, bool said_goodbye) {
  auto it = workers_.find(peer);
  if (it == workers_.end()) return;
  WorkerRecord& worker = it->second;
  if (said_goodbye && worker.held.empty()) {
    LogInfo(absl::StrCat("worker ", worker.id, " left: ", why));  // a drain's end, or a stop with nothing held
  } else {
    LogWarning(absl::StrCat("worker ", worker.id, " lost: ", why, "; ", worker.held.size(),
                            " chunk(s) go back to the queue"));
  }
  std::vector<std::pair<Job*, v1::ChunkResult>> given_up;
  for (const auto& [key, held] : worker.held) {
    Job* job = FindJob(key.first);
    if (job == nullptr) continue;
    if (std::optional<v1::ChunkResult> failed = job->Requeue(key.second, held.attempt)) {
      given_up.emplace_back(job, *std::move(failed));
    } else if (!job->finished()) {
      ++counters_.chunks_retried;
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
  number_by_id_.erase(worker.id);
  workers_.erase(it);
  ++change_count_;
}

void Scheduler::OnWrongVersion(const std::string& peer, absl::string_view why) {
  LogWarning(absl::StrCat("refused a peer: ", why));
  v1::CoordinatorMessage refusal;
  refusal.mutable_refusal()->set_reason(std::string(why));
  outbox_->Send(peer, refusal);
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

void Scheduler::ShutdownWorkers(const std::string& reason) {
  for (auto& [peer, worker] : workers_) {
    v1::CoordinatorMessage shutdown;
    shutdown.mutable_shutdown()->set_reason(reason);
    outbox_->Send(peer, shutdown);
  }
}

bool Scheduler::CanRun(const WorkerRecord& worker, const v1::JobSpec& spec) {
  if (!spec.kernel().empty() && !worker.kernels.contains(spec.kernel())) return false;
  if (spec.has_grpc() && worker.hello.io_capacity() == 0) return false;
  if (spec.has_command() && worker.hello.no_commands()) return false;
  if (spec.has_python() && !worker.hello.python()) return false;
  for (const std::string& required : spec.require()) {
    if (!worker.labels.contains(required)) return false;
  }
  return true;
}

void Scheduler::CheckLiveness(absl::Time now) {
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
}

absl::Status Scheduler::CheckInvariants() const {
  absl::flat_hash_map<uint64_t, uint64_t> held_per_job;
  absl::flat_hash_set<ChunkKey> seen;
  for (const auto& [peer, worker] : workers_) {
    uint64_t cpus = 0;
    for (const auto& [key, held] : worker.held) {
      cpus += held.cpus;
      if (!seen.insert(key).second) {
        return absl::InternalError(absl::StrCat("job ", key.first, " chunk ", key.second, " is held twice"));
      }
      Job* job = FindJob(key.first);
      if (job == nullptr || job->finished()) continue;
      ++held_per_job[key.first];
      if (job->AttemptInFlight(key.second) != held.attempt) {
        return absl::InternalError(absl::StrCat("worker ", worker.id, " holds job ", key.first, " chunk ", key.second,
                                                " attempt ", held.attempt, "; the job has attempt ",
                                                job->AttemptInFlight(key.second), " in flight"));
      }
    }
    if (cpus != worker.cpu_load) {
      return absl::InternalError(absl::StrCat("worker ", worker.id, " cpu load ", worker.cpu_load, " != ", cpus));
    }
    if (worker.credit > options_.max_credit_per_worker) {
      return absl::InternalError(absl::StrCat("worker ", worker.id, " has credit ", worker.credit));
    }
  }
  for (const auto& [id, job] : jobs_) {
    if (job->finished()) continue;
    auto held = held_per_job.find(id);
    uint64_t on_workers = held == held_per_job.end() ? 0 : held->second;
    if (job->chunks_in_flight() != on_workers) {
      return absl::InternalError(absl::StrCat("job ", id, " has ", job->chunks_in_flight(),
                                              " chunks in flight but workers hold ", on_workers));
    }
    if (!job->spec().has_grpc() && job->HasWork() != ready_key_.contains(id)) {
      return absl::InternalError(absl::StrCat("job ", id, " is ", job->HasWork() ? "not " : "",
                                              "in the ready set"));
    }
  }
  return absl::OkStatus();
}

}  // namespace drover
