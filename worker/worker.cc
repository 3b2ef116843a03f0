// Implements worker.h: the I/O loop (registration, credit, heartbeats, results).
#include "worker/worker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstdio>
#include <cstring>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/wire.h"
#include "worker/io_engine.h"
#include "worker/slot_pool.h"

namespace drover {
namespace {

// The most chunks a worker accepts per slot beyond the one it runs. The
// coordinator decides how many it actually sends (free slots first, then a
// reserve learned per job), so this is only a ceiling.
constexpr uint64_t kMaxPrefetchPerSlot = 1024;
// Hello is sent again until a Welcome comes: after 0.5 s, then doubling up to 5 s.
constexpr absl::Duration kFirstHelloRetry = absl::Milliseconds(500);
constexpr absl::Duration kMaxHelloRetry = absl::Seconds(5);
constexpr int kMaxFailedHandshakes = 3;

// Threads in this process (Linux /proc), or 0 when unknown.
uint32_t ThreadCount() {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return 0;
  char line[256];
  uint32_t threads = 0;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    if (std::sscanf(line, "Threads: %u", &threads) == 1) break;
  }
  std::fclose(status);
  return threads;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

// The I/O thread's state for one Run(). Owns the DEALER socket.
class Session {
 public:
  Session(const WorkerOptions& options, const KernelRegistry* registry, ProcessGroups* groups,
          Wakeup* wakeup, const std::atomic<bool>* stop_requested,
          const std::atomic<bool>* drain_requested, int slots)
      : options_(options),
        registry_(registry),
        wakeup_(wakeup),
        stop_requested_(stop_requested),
        drain_requested_(drain_requested),
        host_(HostName()),
        name_(options.name.empty() ? absl::StrCat(host_, "-", getpid()) : options.name),
        socket_(context_, zmq::socket_type::dealer),
        pool_(slots, RunContext{registry, groups, name_, 0}, wakeup),
        io_(options.io_threads, name_, wakeup),
        slots_(slots) {
    // A fixed routing id lets the coordinator recognise this worker after a reconnect.
    socket_.set(zmq::sockopt::routing_id,
                absl::StrCat(name_, "/", absl::Uniform<uint64_t>(absl::BitGen())));
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.set(zmq::sockopt::sndhwm, 0);  // credit bounds what is in flight
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.set(zmq::sockopt::maxmsgsize, kMaxFrameBytes);
    if (!options.coordinator_public_key.empty()) {
      socket_.set(zmq::sockopt::curve_serverkey, options.coordinator_public_key);
      socket_.set(zmq::sockopt::curve_publickey, options.curve_public_key);
      socket_.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
    }
    // Handshake outcomes, to say clearly when keys are refused.
    zmq_socket_monitor(socket_.handle(), "inproc://drover-worker-monitor",
                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    monitor_.connect("inproc://drover-worker-monitor");
  }

  absl::Status Run() {
    try {
      socket_.connect(options_.coordinator);
    } catch (const zmq::error_t& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot connect to ", options_.coordinator, ": ", e.what()));
    }
    LogInfo(absl::StrCat("worker ", name_, " with ", slots_, " slots and room for ", options_.io_capacity,
                         " gRPC calls on ", io_.threads(), " I/O threads; kernels: ",
                         absl::StrJoin(registry_->Names(), ", ")));
    SendHello();
    absl::Status status = Loop();
    if (!stop_requested_->load() && status.ok() && !drained_) {
      // Shut down by the coordinator: nothing to say back.
    } else if (registered_) {
      v1::WorkerMessage bye;
      bye.mutable_goodbye()->set_reason(drained_ ? "drained" : status.ok() ? "worker stopping"
                                                                          : status.ToString());
      Send(bye);
    }
    io_.Shutdown();
    bool stopped = pool_.Shutdown(options_.stop_grace);
    // What is still queued goes out for this long: a drained worker's last
    // results matter; a stopped one only says Goodbye, and its coordinator may
    // be stopping too (local mode), so it does not wait a second for it.
    socket_.set(zmq::sockopt::linger, drained_ ? 5000 : 50);
    socket_.close();
    if (!stopped) {
      // Kernels still run on detached threads that use this session: leave now.
      LogError("running kernels did not stop in time; exiting without waiting for them");
      _exit(status.ok() ? 0 : 1);
    }
    return status;
  }

 private:
  absl::Status Loop() {
    while (!stop_requested_->load()) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wakeup_->fd(), ZMQ_POLLIN, 0},
                                 {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 3, std::chrono::milliseconds(PollTimeoutMs()));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return ZmqErrorToStatus(e, "poll");
        continue;  // a signal: Stop() has set the flag
      }
      if (items[1].revents & ZMQ_POLLIN) wakeup_->Clear();
      if (items[2].revents & ZMQ_POLLIN) {
        if (absl::Status handshake = CheckHandshake(); !handshake.ok()) return handshake;
      }
      while (true) {
        zmq::message_t frame;
        zmq::recv_result_t got;
        try {
          got = socket_.recv(frame, zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
          if (e.num() != EINTR) return ZmqErrorToStatus(e, "receive");
          break;
        }
        if (!got) break;
        last_heard_ = absl::Now();
        absl::Status status = Handle(frame);
        if (!status.ok()) return status;
        if (shutdown_) return absl::OkStatus();
      }
      if (drain_requested_->load() && !draining_) BeginDrain();
      Flush();
      if (draining_ && DrainDone()) {
        LogInfo("drained: every held chunk is finished; exiting");
        drained_ = true;
        return absl::OkStatus();
      }
      Housekeeping();
    }
    return absl::OkStatus();
  }

  // Reads one monitor event. Returns an error once the coordinator has refused
  // the handshake a few times in a row (wrong keys): retrying cannot help.
  absl::Status CheckHandshake() {
    std::vector<zmq::message_t> event;
    if (!zmq::recv_multipart(monitor_, std::back_inserter(event), zmq::recv_flags::dontwait) ||
        event.empty() || event[0].size() < 6) {
      return absl::OkStatus();
    }
    uint16_t id;
    std::memcpy(&id, event[0].data(), sizeof(id));
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      failed_handshakes_ = 0;
      return absl::OkStatus();
    }
    ++failed_handshakes_;
    std::string why = id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                          ? "the coordinator refused this worker's key (is its .pub in the coordinator's "
                            "--authorized-keys?)"
                          : "the security handshake with the coordinator failed (do --coordinator-key, "
                            "--curve-key and the coordinator's CURVE setting match?)";
    LogError(absl::StrCat(options_.coordinator, ": ", why));
    // A refused key is final (ZeroMQ does not retry it); other failures get a few tries.
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || failed_handshakes_ >= kMaxFailedHandshakes) {
      return absl::FailedPreconditionError(absl::StrCat("giving up on ", options_.coordinator, ": ", why));
    }
    return absl::OkStatus();
  }

  void BeginDrain() {
    draining_ = true;
    LogInfo(absl::StrCat("draining: finishing ", received_ - finished_,
                         " held chunk(s) and taking nothing new"));
    if (registered_) {
      v1::WorkerMessage message;
      message.mutable_ready()->set_draining(true);
      Send(message);
    }
  }

  // Nothing held, and no Assign can still be on its way (the coordinator
  // answered the drain, or it is gone).
  bool DrainDone() const {
    if (received_ != finished_) return false;
    return drain_acknowledged_ || !registered_ || absl::Now() - last_heard_ > coordinator_timeout_;
  }

  int PollTimeoutMs() const {
    return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(heartbeat_interval_) / 2, 10, 1000));
  }

  // Returns non-OK only for conditions that end the worker.
  absl::Status Handle(const zmq::message_t& frame) {
    v1::CoordinatorMessage message;
    absl::Status decoded = DecodeFrame(frame, &message);
    if (!decoded.ok()) {
      if (decoded.code() == absl::StatusCode::kFailedPrecondition) {
        return absl::FailedPreconditionError(
            absl::StrCat("coordinator at ", options_.coordinator, ": ", decoded.message()));
      }
      LogWarning(absl::StrCat("dropped a message from the coordinator: ", decoded.message()));
      return absl::OkStatus();
    }
    switch (message.body_case()) {
      case v1::CoordinatorMessage::kWelcome:
        if (!registered_) {
          registered_ = true;
          hello_retry_ = kFirstHelloRetry;
          received_at_registration_ = received_;
          if (message.welcome().heartbeat_interval_ms() > 0) {
            heartbeat_interval_ = absl::Milliseconds(message.welcome().heartbeat_interval_ms());
            coordinator_timeout_ = std::max(options_.coordinator_timeout, 5 * heartbeat_interval_);
          }
          LogInfo(absl::StrCat("registered with ", options_.coordinator, " as ",
                               message.welcome().worker_id()));
        }
        break;
      case v1::CoordinatorMessage::kRefusal:
        return absl::FailedPreconditionError(absl::StrCat(
            "coordinator at ", options_.coordinator, " refused this worker: ",
            message.refusal().reason()));
      case v1::CoordinatorMessage::kAssign: {
        auto* chunks = message.mutable_assign()->mutable_chunks();
        received_ += chunks->size();
        std::vector<v1::Chunk> cpu_batch, io_batch;
        for (v1::Chunk& chunk : *chunks) {
          if (chunk.has_grpc()) {
            uint64_t items = ChunkItemCount(chunk);
            io_received_items_ += items;
            io_outstanding_credit_ -= std::min(io_outstanding_credit_, items);
            io_batch.push_back(std::move(chunk));
          } else {
            outstanding_credit_ -= std::min<uint64_t>(outstanding_credit_, 1);
            cpu_batch.push_back(std::move(chunk));
          }
        }
        if (!cpu_batch.empty()) pool_.Push(std::move(cpu_batch));
        if (!io_batch.empty()) io_.Push(std::move(io_batch));
        break;
      }
      case v1::CoordinatorMessage::kDrain:
        if (!draining_) BeginDrain();
        drain_acknowledged_ = true;
        break;
      case v1::CoordinatorMessage::kCancel:
        pool_.CancelJob(message.cancel().job_id());
        io_.CancelJob(message.cancel().job_id());
        break;
      case v1::CoordinatorMessage::kSteal:
        AnswerSteal(message.steal());
        break;
      case v1::CoordinatorMessage::kHeartbeat:
        break;
      case v1::CoordinatorMessage::kReregister:
        if (!registered_) break;  // a Hello is already on its way
        LogWarning(absl::StrCat("coordinator asks this worker to register again: ",
                                message.reregister().reason()));
        StartOver();
        break;
      case v1::CoordinatorMessage::kShutdown:
        LogInfo(absl::StrCat("coordinator asked this worker to exit: ", message.shutdown().reason()));
        shutdown_ = true;
        break;
      case v1::CoordinatorMessage::BODY_NOT_SET:
        LogWarning("dropped a message from the coordinator with no body");
        break;
    }
    return absl::OkStatus();
  }

  // Gives back what the coordinator asks for among the chunks not started.
  void AnswerSteal(const v1::Steal& steal) {
    std::vector<uint64_t> jobs(steal.job_ids().begin(), steal.job_ids().end());
    std::vector<v1::ChunkRef> taken = pool_.Steal(steal.max_chunks(), jobs);
    if (!registered_) return;
    v1::WorkerMessage message;
    v1::Ready* ready = message.mutable_ready();
    ready->set_answered_steal(steal.steal_id());
    for (v1::ChunkRef& ref : taken) *ready->add_returned() = std::move(ref);
    *ready->mutable_load() = Load();
    ready->set_chunks_received(received_ - received_at_registration_);
    Send(message);
  }

  // Sends finished results and any credit the worker can give.
  void Flush() {
    uint64_t finished = 0;
    std::vector<v1::ChunkResult> results = pool_.TakeFinished(&finished);
    finished_ += finished;
    uint64_t io_finished_items = 0;
    std::vector<v1::ChunkResult> io_results = io_.TakeFinished(&finished, &io_finished_items);
    finished_ += finished;
    io_finished_items_ += io_finished_items;
    for (v1::ChunkResult& result : io_results) results.push_back(std::move(result));
    if (!registered_) return;  // results of a lost registration are dropped
    uint64_t credit = CreditToGrant();
    uint64_t io_credit = IoCreditToGrant(!results.empty());
    if (results.empty() && credit == 0 && io_credit == 0) return;
    v1::WorkerMessage message;
    v1::Ready* ready = message.mutable_ready();
    ready->set_credit(static_cast<uint32_t>(credit));
    ready->set_io_credit(static_cast<uint32_t>(io_credit));
    io_outstanding_credit_ += io_credit;
    *ready->mutable_load() = Load();
    ready->set_chunks_received(received_ - received_at_registration_);
    ready->mutable_results()->Reserve(static_cast<int>(results.size()));
    for (v1::ChunkResult& result : results) *ready->add_results() = std::move(result);
    outstanding_credit_ += credit;
    Send(message);
  }

  uint64_t CreditToGrant() const {
    if (draining_) return 0;
    uint64_t target = static_cast<uint64_t>(slots_) * (1 + kMaxPrefetchPerSlot);
    uint64_t held = received_ - finished_;
    uint64_t committed = held + outstanding_credit_;
    if (committed >= target) return 0;
    // Grant in steps of at least a slot's worth to keep messages few.
    uint64_t gap = target - committed;
    return gap >= static_cast<uint64_t>(slots_) ? gap : 0;
  }

  // gRPC calls the engine can take beyond those held and promised. Sent in
  // steps of an eighth of the capacity, or with results that go anyway.
  uint64_t IoCreditToGrant(bool sending_anyway) const {
    if (draining_ || options_.io_capacity == 0) return 0;
    uint64_t committed = (io_received_items_ - io_finished_items_) + io_outstanding_credit_;
    if (committed >= options_.io_capacity) return 0;
    uint64_t gap = options_.io_capacity - committed;
    return sending_anyway || gap >= std::max<uint64_t>(1, options_.io_capacity / 8) ? gap : 0;
  }

  v1::WorkerLoad Load() {
    absl::Time now = absl::Now();
    if (now - threads_read_ > absl::Milliseconds(100)) {
      threads_ = ThreadCount();
      threads_read_ = now;
    }
    v1::WorkerLoad load;
    load.set_slots_busy(static_cast<uint32_t>(pool_.busy_slots()));
    load.set_io_calls_in_flight(io_.calls_in_flight());
    load.set_threads(threads_);
    return load;
  }

  // Renews the health file's mtime (at most once a second) while registered.
  void TouchHealthFile(absl::Time now) {
    if (options_.health_file.empty() || !registered_ || now - health_touched_ < absl::Seconds(1)) return;
    health_touched_ = now;
    int fd = open(options_.health_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    futimens(fd, nullptr);
    close(fd);
  }

  void Housekeeping() {
    absl::Time now = absl::Now();
    TouchHealthFile(now);
    if (!registered_) {
      if (now - last_hello_ >= hello_retry_) {
        hello_retry_ = std::min(hello_retry_ * 2, kMaxHelloRetry);
        if (!said_waiting_) {
          LogInfo(absl::StrCat("waiting for the coordinator at ", options_.coordinator));
          said_waiting_ = true;
        }
        SendHello();
      }
      return;
    }
    if (now - last_heard_ > coordinator_timeout_) {
      LogWarning(absl::StrCat("coordinator at ", options_.coordinator, " silent for ",
                              absl::FormatDuration(now - last_heard_),
                              "; dropping held work and registering again"));
      StartOver();
      return;
    }
    if (now - last_sent_ >= heartbeat_interval_) {
      v1::WorkerMessage beat;
      beat.mutable_heartbeat()->set_chunks_received(received_ - received_at_registration_);
      *beat.mutable_heartbeat()->mutable_load() = Load();
      Send(beat);
    }
  }

  // Forgets the registration and everything held, and says Hello again.
  void StartOver() {
    pool_.DropAll();
    io_.DropAll();
    registered_ = false;
    outstanding_credit_ = 0;
    io_outstanding_credit_ = 0;
    said_waiting_ = false;
    SendHello();
  }

  void SendHello() {
    v1::WorkerMessage message;
    v1::Hello* hello = message.mutable_hello();
    hello->set_name(name_);
    hello->set_host(host_);
    hello->set_pid(static_cast<uint32_t>(getpid()));
    hello->set_slots(static_cast<uint32_t>(slots_));
    hello->set_io_capacity(options_.io_capacity);
    for (const std::string& name : registry_->Names()) hello->add_kernels(name);
    for (const std::string& label : options_.labels) hello->add_labels(label);
    last_hello_ = absl::Now();
    last_heard_ = last_hello_;
    Send(message);
  }

  void Send(v1::WorkerMessage& message) {
    try {
      socket_.send(EncodeFrame(message), zmq::send_flags::dontwait);
      last_sent_ = absl::Now();
    } catch (const zmq::error_t& e) {
      LogWarning(absl::StrCat("send to coordinator failed: ", e.what()));
    }
  }

  const WorkerOptions& options_;
  const KernelRegistry* registry_;
  Wakeup* wakeup_;
  const std::atomic<bool>* stop_requested_;
  const std::atomic<bool>* drain_requested_;
  const std::string host_;
  const std::string name_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  zmq::socket_t monitor_{context_, zmq::socket_type::pair};
  int failed_handshakes_ = 0;
  SlotPool pool_;
  IoEngine io_;
  const int slots_;

  bool registered_ = false;
  bool shutdown_ = false;
  bool draining_ = false;
  bool drain_acknowledged_ = false;
  bool drained_ = false;
  bool said_waiting_ = false;
  absl::Duration heartbeat_interval_ = absl::Seconds(1);
  absl::Duration coordinator_timeout_ = options_.coordinator_timeout;
  absl::Time last_hello_ = absl::InfinitePast();
  absl::Duration hello_retry_ = kFirstHelloRetry;
  absl::Time last_heard_ = absl::Now();
  absl::Time last_sent_ = absl::InfinitePast();
  uint64_t received_ = 0;            // chunks received
  uint64_t received_at_registration_ = 0;
  uint64_t finished_ = 0;            // chunks finished or dropped
  uint64_t outstanding_credit_ = 0;  // granted and not yet filled
  // The I/O engine's credit is counted in calls (items), not chunks.
  uint64_t io_received_items_ = 0;
  uint64_t io_finished_items_ = 0;
  uint64_t io_outstanding_credit_ = 0;
  uint32_t threads_ = 0;
  absl::Time health_touched_ = absl::InfinitePast();
  absl::Time threads_read_ = absl::InfinitePast();
};

}  // namespace

Worker::Worker(WorkerOptions options, const KernelRegistry* registry, ProcessGroups* groups)
    : options_(std::move(options)), registry_(registry), groups_(groups) {}

absl::Status Worker::Run() {
  int slots = options_.slots > 0 ? options_.slots
                                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Session session(options_, registry_, groups_, &wakeup_, &stop_requested_, &drain_requested_, slots);
  return session.Run();
}

void Worker::Stop() {
  stop_requested_.store(true);
  wakeup_.Notify();
}

void Worker::Drain() {
  drain_requested_.store(true);
  wakeup_.Notify();
}

}  // namespace drover
