// Implements worker.h: the I/O thread around a WorkerCore (socket, CURVE monitor,
// slot pool, I/O engine, health file).
#include "worker/worker.h"

#include <fcntl.h>
#include <malloc.h>
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
#include "worker/worker_core.h"
#include "worker/zmtp_probe.h"

namespace drover {
namespace {

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

// The I/O thread's state for one Run(): the DEALER socket, the CURVE monitor,
// the slot pool and the I/O engine around a WorkerCore, which holds the
// protocol state. Owns the socket; everything runs on the I/O thread.
class Session : public CoordinatorLink, public WorkRunner {
 public:
  Session(const WorkerOptions& options, const KernelRegistry* registry, ProcessGroups* groups,
          Wakeup* wakeup, const std::atomic<bool>* stop_requested,
          const std::atomic<bool>* drain_requested, int slots)
      : options_(options),
        registry_(registry),
        wakeup_(wakeup),
        stop_requested_(stop_requested),
        drain_requested_(drain_requested),
        name_(options.name.empty() ? absl::StrCat(HostName(), "-", getpid()) : options.name),
        socket_(context_, zmq::socket_type::dealer),
        pool_(slots, RunContext{registry, groups, name_, 0, options.python, nullptr}, wakeup),
        io_(options.io_threads, name_, wakeup),
        core_(Identity(options, registry, name_, slots), options.coordinator_timeout, this, this) {
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
    LogInfo(absl::StrCat("worker ", name_, " with ", pool_.slots(), " slots and room for ", options_.io_capacity,
                         " gRPC calls and HTTP requests on ", io_.threads(),
                         " I/O thread(s) and one HTTP thread; ",
                         options_.python.empty() ? "no Python calls" : absl::StrCat("Python calls with ", options_.python),
                         "; kernels: ", absl::StrJoin(registry_->Names(), ", ")));
    LogInfo(absl::StrCat("waiting for the coordinator at ", options_.coordinator));
    core_.Start(absl::Now());
    absl::Status status = Loop();
    if (!core_.shut_down()) {  // shut down by the coordinator: nothing to say back
      core_.SayGoodbye(drained_ ? "drained" : status.ok() ? "worker stopping" : status.ToString());
    }
    io_.Shutdown();
    bool stopped = pool_.Shutdown(options_.stop_grace);
    // What is still queued goes out for this long: the last results of a
    // worker whose coordinator answered its drain matter; otherwise only a
    // Goodbye (or Hellos) wait, for a coordinator that may be gone or stopping
    // too (local mode), so the worker does not wait for it.
    socket_.set(zmq::sockopt::linger, drained_ && core_.drain_acknowledged() ? 5000 : 50);
    socket_.close();
    if (!stopped) {
      // Kernels still run on detached threads that use this session: leave now.
      LogError("running kernels did not stop in time; exiting without waiting for them");
      _exit(status.ok() ? 0 : 1);
    }
    return status;
  }

  // ---- CoordinatorLink ----
  void Send(v1::WorkerMessage& message) override {
    try {
      socket_.send(EncodeFrame(message), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      LogWarning(absl::StrCat("send to coordinator failed: ", e.what()));
    }
  }

  // ---- WorkRunner ----
  void Push(std::vector<v1::Chunk> cpu_chunks, std::vector<v1::Chunk> io_chunks) override {
    if (!cpu_chunks.empty()) pool_.Push(std::move(cpu_chunks));
    if (!io_chunks.empty()) io_.Push(std::move(io_chunks));
  }
  void CancelJob(uint64_t job_id) override {
    pool_.CancelJob(job_id);
    io_.CancelJob(job_id);
  }
  void DropAll() override {
    pool_.DropAll();
    io_.DropAll();
  }
  std::vector<v1::ChunkRef> Steal(uint32_t max_chunks, const std::vector<uint64_t>& job_ids) override {
    return pool_.Steal(max_chunks, job_ids);
  }
  std::vector<v1::ChunkResult> TakeFinished(uint64_t* cpu_chunks, uint64_t* io_chunks, uint64_t* io_items) override {
    std::vector<v1::ChunkResult> results = pool_.TakeFinished(cpu_chunks);
    for (v1::ChunkResult& result : io_.TakeFinished(io_chunks, io_items)) {
      io_bytes_since_trim_ += result.outputs().outputs().size();
      results.push_back(std::move(result));
    }
    return results;
  }
  std::vector<v1::ChunkStart> TakeStarted() override { return pool_.TakeStarted(); }
  v1::WorkerLoad Load() override {
    absl::Time now = absl::Now();
    if (now - threads_read_ > absl::Milliseconds(100)) {
      threads_ = ThreadCount();
      threads_read_ = now;
    }
    // Large gRPC responses passed through: once the engine is idle, give the
    // memory they used back to the system (this runs with every heartbeat).
    if (io_bytes_since_trim_ > kTrimAfterIoBytes && io_.calls_in_flight() == 0) {
      malloc_trim(0);
      io_bytes_since_trim_ = 0;
    }
    v1::WorkerLoad load;
    load.set_slots_busy(static_cast<uint32_t>(pool_.busy_slots()));
    load.set_io_calls_in_flight(io_.calls_in_flight());
    load.set_threads(threads_);
    return load;
  }

 private:
  static WorkerIdentity Identity(const WorkerOptions& options, const KernelRegistry* registry,
                                 const std::string& name, int slots) {
    WorkerIdentity identity;
    identity.name = name;
    identity.host = HostName();
    identity.pid = static_cast<uint32_t>(getpid());
    identity.slots = static_cast<uint32_t>(slots);
    identity.io_capacity = options.io_capacity;
    identity.python = !options.python.empty();
    identity.kernels = registry->Names();
    identity.labels = options.labels;
    return identity;
  }

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
      if (absl::Status received = ReceiveAll(); !received.ok() || core_.shut_down()) return received;
      absl::Time now = absl::Now();
      if (drain_requested_->load()) core_.Drain(now);
      core_.SendResultsAndCredit(now);
      if (core_.DrainDone(now)) {
        LogInfo("drained: every held chunk is finished; exiting");
        drained_ = true;
        return absl::OkStatus();
      }
      core_.OnTick(now);
      TouchHealthFile(now);
    }
    return absl::OkStatus();
  }

  // Hands every waiting message to the core. Non-OK ends the worker.
  absl::Status ReceiveAll() {
    while (true) {
      zmq::message_t frame;
      zmq::recv_result_t got;
      try {
        got = socket_.recv(frame, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return ZmqErrorToStatus(e, "receive");
        return absl::OkStatus();
      }
      if (!got) return absl::OkStatus();
      v1::CoordinatorMessage message;
      absl::Status decoded = DecodeFrame(frame, &message);
      if (decoded.code() == absl::StatusCode::kFailedPrecondition) {
        return absl::FailedPreconditionError(
            absl::StrCat("coordinator at ", options_.coordinator, ": ", decoded.message()));
      }
      if (!decoded.ok()) {
        LogWarning(absl::StrCat("dropped a message from the coordinator: ", decoded.message()));
        continue;
      }
      if (absl::Status handled = core_.OnMessage(message, absl::Now()); !handled.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("coordinator at ", options_.coordinator, ": ",
                                                          handled.message()));
      }
      if (core_.shut_down()) return absl::OkStatus();
    }
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
    uint32_t value;
    std::memcpy(&id, event[0].data(), sizeof(id));
    std::memcpy(&value, static_cast<const char*>(event[0].data()) + sizeof(id), sizeof(value));
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      failed_handshakes_ = 0;
      return absl::OkStatus();
    }
    ++failed_handshakes_;
    const bool curve = !options_.coordinator_public_key.empty();
    bool mismatch = id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
    if (!mismatch && id != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      // A peer that closes first resets the connection before its greeting is
      // read, and the event says nothing: ask the coordinator directly.
      absl::StatusOr<std::string> mechanism = PeerZmtpMechanism(options_.coordinator, absl::Seconds(2));
      mismatch = mechanism.ok() && *mechanism != (curve ? "CURVE" : "NULL");
    }
    std::string why;
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      why = "the coordinator refused this worker's key (is its .pub in the coordinator's --authorized-keys?)";
    } else if (mismatch) {
      why = curve ? "the coordinator does not use CURVE (leave out --coordinator-key and --curve-key)"
                  : "the coordinator requires CURVE: pass --coordinator-key COORDINATOR.pub and --curve-key "
                    "WORKER.key (see `drover keygen`; the worker's .pub goes in the coordinator's "
                    "--authorized-keys)";
    } else {
      why = "the security handshake with the coordinator failed (do --coordinator-key, --curve-key and the "
            "coordinator's CURVE setting match?)";
    }
    LogError(absl::StrCat(options_.coordinator, ": ", why));
    // A refused key or a mismatch of security mechanisms is final (ZeroMQ
    // does not retry them); other failures get a few tries.
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || mismatch || failed_handshakes_ >= kMaxFailedHandshakes) {
      return absl::FailedPreconditionError(absl::StrCat("giving up on ", options_.coordinator, ": ", why));
    }
    return absl::OkStatus();
  }

  int PollTimeoutMs() const {
    return static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(core_.heartbeat_interval()) / 2, 10, 1000));
  }

  // Renews the health file's mtime (at most once a second) while registered.
  void TouchHealthFile(absl::Time now) {
    if (options_.health_file.empty() || !core_.registered() || now - health_touched_ < absl::Seconds(1)) return;
    health_touched_ = now;
    int fd = open(options_.health_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    futimens(fd, nullptr);
    close(fd);
  }

  const WorkerOptions& options_;
  const KernelRegistry* registry_;
  Wakeup* wakeup_;
  const std::atomic<bool>* stop_requested_;
  const std::atomic<bool>* drain_requested_;
  const std::string name_;
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  zmq::socket_t monitor_{context_, zmq::socket_type::pair};
  int failed_handshakes_ = 0;
  SlotPool pool_;
  IoEngine io_;
  WorkerCore core_;
  bool drained_ = false;
  uint32_t threads_ = 0;
  absl::Time health_touched_ = absl::InfinitePast();
  absl::Time threads_read_ = absl::InfinitePast();
  static constexpr uint64_t kTrimAfterIoBytes = 64ull << 20;
  uint64_t io_bytes_since_trim_ = 0;  // gRPC result bytes taken since the last malloc_trim
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
