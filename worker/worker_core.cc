// Implements worker_core.h.
#include "worker/worker_core.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/items.h"
#include "common/log.h"

namespace drover {
namespace {
// A draining worker with nothing held stops waiting for the coordinator's
// answer after this many heartbeat intervals of silence.
constexpr int kDrainSilenceBeats = 2;
}  // namespace

WorkerCore::WorkerCore(WorkerIdentity identity, absl::Duration coordinator_timeout, CoordinatorLink* link,
                       WorkRunner* runner)
    : identity_(std::move(identity)),
      configured_coordinator_timeout_(coordinator_timeout),
      link_(link),
      runner_(runner),
      coordinator_timeout_(coordinator_timeout) {}

void WorkerCore::Start(absl::Time now) {
  now_ = now;
  last_heard_ = now;
  SendHello(now);
}

void WorkerCore::Send(v1::WorkerMessage& message) {
  link_->Send(message);
  last_sent_ = now_;
}

void WorkerCore::SendHello(absl::Time now) {
  v1::WorkerMessage message;
  v1::Hello* hello = message.mutable_hello();
  hello->set_name(identity_.name);
  hello->set_host(identity_.host);
  hello->set_pid(identity_.pid);
  hello->set_slots(identity_.slots);
  hello->set_io_capacity(identity_.io_capacity);
  hello->set_python(identity_.python);
  for (const std::string& kernel : identity_.kernels) hello->add_kernels(kernel);
  for (const std::string& label : identity_.labels) hello->add_labels(label);
  last_hello_ = now;
  Send(message);
}

absl::Status WorkerCore::OnMessage(const v1::CoordinatorMessage& message, absl::Time now) {
  now_ = now;
  last_heard_ = now;
  switch (message.body_case()) {
    case v1::CoordinatorMessage::kWelcome:
      if (registered_) break;  // a Welcome to a Hello sent again
      registered_ = true;
      hello_retry_ = kFirstHelloRetry;
      received_at_registration_ = received_;
      if (message.welcome().heartbeat_interval_ms() > 0) {
        heartbeat_interval_ = absl::Milliseconds(message.welcome().heartbeat_interval_ms());
        coordinator_timeout_ = std::max(configured_coordinator_timeout_, 5 * heartbeat_interval_);
      }
      LogInfo(absl::StrCat("registered as ", message.welcome().worker_id()));
      if (draining_) {
        v1::WorkerMessage ready;
        ready.mutable_ready()->set_draining(true);
        ready.mutable_ready()->set_chunks_received(received_ - received_at_registration_);
        Send(ready);
      }
      break;
    case v1::CoordinatorMessage::kRefusal:
      return absl::FailedPreconditionError(
          absl::StrCat("the coordinator refused this worker: ", message.refusal().reason()));
    case v1::CoordinatorMessage::kAssign: {
      std::vector<v1::Chunk> cpu, io;
      for (const v1::Chunk& chunk : message.assign().chunks()) {
        if (chunk.has_grpc()) {
          uint64_t items = ChunkItems(chunk).count();
          io_received_items_ += items;
          io_outstanding_credit_ -= std::min(io_outstanding_credit_, items);
          io.push_back(chunk);
        } else {
          outstanding_credit_ -= std::min<uint64_t>(outstanding_credit_, 1);
          cpu.push_back(chunk);
        }
      }
      received_ += static_cast<uint64_t>(message.assign().chunks_size());
      cpu_received_ += cpu.size();
      runner_->Push(std::move(cpu), std::move(io));
      break;
    }
    case v1::CoordinatorMessage::kSteal: {
      const v1::Steal& steal = message.steal();
      std::vector<uint64_t> jobs(steal.job_ids().begin(), steal.job_ids().end());
      std::vector<v1::ChunkRef> taken = runner_->Steal(steal.max_chunks(), jobs);
      if (!registered_) break;
      v1::WorkerMessage answer;
      v1::Ready* ready = answer.mutable_ready();
      ready->set_answered_steal(steal.steal_id());
      for (v1::ChunkRef& ref : taken) *ready->add_returned() = std::move(ref);
      *ready->mutable_load() = runner_->Load();
      ready->set_chunks_received(received_ - received_at_registration_);
      Send(answer);
      break;
    }
    case v1::CoordinatorMessage::kDrain:
      if (!draining_) Drain(now);
      drain_acknowledged_ = true;
      break;
    case v1::CoordinatorMessage::kCancel:
      runner_->CancelJob(message.cancel().job_id());
      break;
    case v1::CoordinatorMessage::kHeartbeat:
      break;
    case v1::CoordinatorMessage::kReregister:
      if (!registered_) break;  // a Hello is already on its way
      LogWarning(absl::StrCat("the coordinator asks this worker to register again: ", message.reregister().reason()));
      StartOver(now);
      break;
    case v1::CoordinatorMessage::kShutdown:
      LogInfo(absl::StrCat("the coordinator asked this worker to exit: ", message.shutdown().reason()));
      shut_down_ = true;
      break;
    case v1::CoordinatorMessage::BODY_NOT_SET:
      LogWarning("dropped a message from the coordinator with no body");
      break;
  }
  return absl::OkStatus();
}

uint64_t WorkerCore::CpuCreditToGrant() const {
  if (draining_) return 0;
  const uint64_t slots = identity_.slots;
  const uint64_t ceiling = slots * (1 + kMaxPrefetchPerSlot);
  const uint64_t committed = (cpu_received_ - cpu_finished_) + outstanding_credit_;
  if (committed >= ceiling) return 0;
  // Grant in steps of at least a slot's worth to keep messages few.
  const uint64_t gap = ceiling - committed;
  return gap >= slots ? gap : 0;
}

uint64_t WorkerCore::IoCreditToGrant(bool sending_anyway) const {
  if (draining_ || identity_.io_capacity == 0) return 0;
  const uint64_t capacity = identity_.io_capacity;
  const uint64_t committed = (io_received_items_ - io_finished_items_) + io_outstanding_credit_;
  if (committed >= capacity) return 0;
  const uint64_t gap = capacity - committed;
  return sending_anyway || gap >= std::max<uint64_t>(1, capacity / 8) ? gap : 0;
}

void WorkerCore::SendResultsAndCredit(absl::Time now) {
  now_ = now;
  uint64_t cpu_chunks = 0, io_chunks = 0, io_items = 0;
  std::vector<v1::ChunkResult> finished = runner_->TakeFinished(&cpu_chunks, &io_chunks, &io_items);
  finished_ += cpu_chunks + io_chunks;
  cpu_finished_ += cpu_chunks;
  io_finished_items_ += io_items;
  NoteStarted(finished);
  if (!registered_) {  // results of a lost registration are dropped
    started_.clear();
    awaiting_stop_.clear();
    return;
  }
  // Slurm signals a stopping job's processes one by one: a task may die of its
  // SIGTERM just before the worker gets its own. Such a result waits a moment
  // for the worker's drain before it is reported as a failure.
  std::vector<v1::ChunkResult> results;
  for (v1::ChunkResult& result : finished) {
    if (!draining_ && StoppedWithTheWorker(result)) {
      awaiting_stop_.push_back({now + kStopSignalGrace, std::move(result)});
    } else {
      results.push_back(std::move(result));
    }
  }
  while (!awaiting_stop_.empty() && (draining_ || awaiting_stop_.front().until <= now)) {
    results.push_back(std::move(awaiting_stop_.front().result));
    awaiting_stop_.pop_front();
  }
  const uint64_t credit = CpuCreditToGrant();
  const uint64_t io_credit = IoCreditToGrant(!results.empty());
  if (results.empty() && credit == 0 && io_credit == 0) return;
  v1::WorkerMessage message;
  v1::Ready* ready = message.mutable_ready();
  ready->set_credit(static_cast<uint32_t>(credit));
  ready->set_io_credit(static_cast<uint32_t>(io_credit));
  ready->set_draining(draining_);
  outstanding_credit_ += credit;
  io_outstanding_credit_ += io_credit;
  *ready->mutable_load() = runner_->Load();
  ready->set_chunks_received(received_ - received_at_registration_);
  for (v1::ChunkStart& started : started_) *ready->add_started() = std::move(started);
  started_.clear();
  ready->mutable_results()->Reserve(static_cast<int>(results.size()));
  for (v1::ChunkResult& result : results) {
    if (draining_ && StoppedWithTheWorker(result)) {
      // Slurm (scancel, a time limit), systemd and Kubernetes signal every
      // process of a stopping worker, its tasks too: a task killed so did not
      // fail. The chunk goes back to the coordinator to run elsewhere.
      LogInfo(absl::StrCat("job ", result.job_id(), " chunk ", result.chunk_index(),
                           ": a task was stopped with the worker; giving the chunk back"));
      v1::ChunkRef* ref = ready->add_returned();
      ref->set_job_id(result.job_id());
      ref->set_chunk_index(result.chunk_index());
      ref->set_attempt(result.attempt());
      continue;
    }
    *ready->add_results() = std::move(result);
  }
  Send(message);
}

bool WorkerCore::StoppedWithTheWorker(const v1::ChunkResult& result) {
  for (const v1::TaskInfo& task : result.outputs().tasks()) {
    if (task.timed_out()) continue;  // its --timeout stopped it (with SIGTERM), not the worker's end
    if (task.signal() == SIGTERM || task.signal() == SIGINT || task.signal() == SIGHUP) return true;
  }
  return false;
}

void WorkerCore::Drain(absl::Time now) {
  if (draining_) return;
  now_ = now;
  draining_ = true;
  LogInfo(absl::StrCat("draining: finishing ", held(), " held chunk(s) and taking nothing new"));
  if (!registered_) return;
  v1::WorkerMessage message;
  message.mutable_ready()->set_draining(true);
  message.mutable_ready()->set_chunks_received(received_ - received_at_registration_);
  Send(message);
}

bool WorkerCore::DrainDone(absl::Time now) const {
  if (!draining_ || held() != 0) return false;
  return drain_acknowledged_ || !registered_ || now - last_heard_ > kDrainSilenceBeats * heartbeat_interval_;
}

void WorkerCore::OnTick(absl::Time now) {
  now_ = now;
  if (!registered_) {
    if (now - last_hello_ >= hello_retry_) {
      hello_retry_ = std::min(hello_retry_ * 2, kMaxHelloRetry);
      SendHello(now);
    }
    return;
  }
  if (now - last_heard_ > coordinator_timeout_) {
    LogWarning(absl::StrCat("the coordinator has been silent for ", absl::FormatDuration(now - last_heard_),
                            "; dropping held work and registering again"));
    StartOver(now);
    return;
  }
  if (now - last_sent_ >= heartbeat_interval_) {
    v1::WorkerMessage beat;
    beat.mutable_heartbeat()->set_chunks_received(received_ - received_at_registration_);
    *beat.mutable_heartbeat()->mutable_load() = runner_->Load();
    NoteStarted({});
    for (v1::ChunkStart& started : started_) *beat.mutable_heartbeat()->add_started() = std::move(started);
    started_.clear();
    Send(beat);
  }
}

void WorkerCore::NoteStarted(const std::vector<v1::ChunkResult>& finished) {
  for (v1::ChunkStart& started : runner_->TakeStarted()) started_.push_back(std::move(started));
  if (finished.empty() || started_.empty()) return;
  absl::flat_hash_set<std::pair<uint64_t, uint64_t>> done;
  for (const v1::ChunkResult& result : finished) done.insert({result.job_id(), result.chunk_index()});
  std::erase_if(started_, [&](const v1::ChunkStart& s) { return done.contains({s.job_id(), s.chunk_index()}); });
}

void WorkerCore::StartOver(absl::Time now) {
  runner_->DropAll();
  started_.clear();
  awaiting_stop_.clear();
  registered_ = false;
  drain_acknowledged_ = false;
  outstanding_credit_ = 0;
  io_outstanding_credit_ = 0;
  last_heard_ = now;  // the next silence is counted from here
  SendHello(now);
}

void WorkerCore::SayGoodbye(const std::string& reason) {
  if (!registered_) return;
  v1::WorkerMessage bye;
  bye.mutable_goodbye()->set_reason(reason);
  Send(bye);
}

}  // namespace drover
