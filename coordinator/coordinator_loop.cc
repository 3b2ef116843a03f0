// Implements coordinator_loop.h.
#include "coordinator/coordinator_loop.h"

#include <array>
#include <chrono>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq_addon.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/wire.h"

namespace drover {

// Sends scheduler messages on the ROUTER. Loop thread only.
class CoordinatorLoop::ZmqOutbox : public WorkerOutbox {
 public:
  explicit ZmqOutbox(zmq::socket_t* router) : router_(router) {}

  void Send(const std::string& peer, v1::CoordinatorMessage& message) override {
    try {
      router_->send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      router_->send(EncodeFrame(message), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      // EHOSTUNREACH: the peer has gone; its silence will get it declared lost.
      LogDebug(absl::StrCat("send to a worker failed: ", e.what()));
    }
  }

 private:
  zmq::socket_t* router_;
};

CoordinatorLoop::CoordinatorLoop(SchedulerOptions options, JournalSink* journal, ResultStore* results)
    : router_(context_, zmq::socket_type::router),
      outbox_(std::make_unique<ZmqOutbox>(&router_)),
      scheduler_(options, outbox_.get(), journal, results) {
  router_.set(zmq::sockopt::router_mandatory, 1);  // unroutable sends fail instead of vanishing
  router_.set(zmq::sockopt::sndhwm, 0);            // credit bounds what is queued per worker
  router_.set(zmq::sockopt::rcvhwm, 0);
  router_.set(zmq::sockopt::linger, 500);
  router_.set(zmq::sockopt::maxmsgsize, options.max_worker_message_bytes);
}

CoordinatorLoop::~CoordinatorLoop() = default;

void CoordinatorLoop::Restore(const std::vector<v1::JournalRecord>& records) {
  scheduler_.Restore(records, absl::Now());
  Publish(scheduler_.change_count(), scheduler_.jobs_ended_count());
}

void CoordinatorLoop::RequireCurve(const std::string& secret_key, std::set<std::string> authorized_keys) {
  authorized_keys_ = std::move(authorized_keys);
  zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
  zap_->set(zmq::sockopt::linger, 0);
  zap_->bind("inproc://zeromq.zap.01");  // ZeroMQ asks here about every CURVE handshake
  router_.set(zmq::sockopt::curve_server, 1);
  router_.set(zmq::sockopt::curve_secretkey, secret_key);
  router_.set(zmq::sockopt::zap_domain, "drover");
}

void CoordinatorLoop::AnswerZap() {
  // ZAP (ZeroMQ RFC 27): version, request id, domain, address, identity,
  // mechanism, then the client's 32-byte public key for CURVE.
  std::vector<zmq::message_t> request;
  try {
    if (!zmq::recv_multipart(*zap_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  } catch (const zmq::error_t& e) {
    LogWarning(absl::StrCat("authentication request: ", e.what()));
    return;
  }
  bool admitted = false;
  std::string key_text = "(none)";
  std::string address = request.size() > 3 ? request[3].to_string() : "?";
  if (request.size() >= 7 && request[5].to_string() == "CURVE" && request[6].size() == 32) {
    key_text = KeyToZ85(static_cast<const unsigned char*>(request[6].data()));
    admitted = authorized_keys_.contains(key_text);
  }
  if (!admitted) {
    LogWarning(absl::StrCat("refused a worker from ", address, " with key ", key_text,
                            ": not in the authorized keys"));
  }
  std::array<zmq::const_buffer, 6> reply = {
      zmq::str_buffer("1.0"),
      zmq::buffer(request.size() > 1 ? request[1].data() : nullptr, request.size() > 1 ? request[1].size() : 0),
      zmq::buffer(std::string_view(admitted ? "200" : "400")),
      zmq::buffer(std::string_view(admitted ? "OK" : "key not authorized")),
      zmq::buffer(std::string_view(admitted ? key_text : std::string_view())),
      zmq::str_buffer("")};
  try {
    zmq::send_multipart(*zap_, reply);
  } catch (const zmq::error_t& e) {
    LogWarning(absl::StrCat("authentication reply: ", e.what()));
  }
}

absl::StatusOr<std::string> CoordinatorLoop::Bind(const std::string& endpoint) {
  // ZeroMQ spells "any free port" as '*'.
  std::string spec = endpoint;
  if (absl::StartsWith(spec, "tcp://") && absl::EndsWith(spec, ":0")) {
    spec = absl::StrCat(spec.substr(0, spec.size() - 1), "*");
  }
  try {
    router_.bind(spec);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot listen for workers on ", endpoint, ": ", e.what()));
  }
  return router_.get(zmq::sockopt::last_endpoint);
}

bool CoordinatorLoop::Post(std::function<void(Scheduler&)> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (exited_) return false;
    posted_.push_back(std::move(fn));
  }
  wakeup_.Notify();
  return true;
}

void CoordinatorLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  {
    absl::MutexLock lock(&changes_mu_);
    stopped_ = true;
  }
  wakeup_.Notify();
}

uint64_t CoordinatorLoop::change_count() {
  absl::MutexLock lock(&changes_mu_);
  return change_count_;
}

uint64_t CoordinatorLoop::WaitForChange(uint64_t seen, absl::Duration timeout) {
  return AwaitCountChange(&change_count_, seen, timeout);
}

uint64_t CoordinatorLoop::jobs_ended_count() {
  absl::MutexLock lock(&changes_mu_);
  return jobs_ended_count_;
}

uint64_t CoordinatorLoop::WaitForJobEnd(uint64_t seen, absl::Duration timeout) {
  return AwaitCountChange(&jobs_ended_count_, seen, timeout);
}

uint64_t CoordinatorLoop::AwaitCountChange(const uint64_t* count, uint64_t seen, absl::Duration timeout) {
  absl::MutexLock lock(&changes_mu_);
  struct Waiter {
    const uint64_t* count;
    uint64_t seen;
    const bool* stopped;
  } waiter{count, seen, &stopped_};
  auto changed = [](Waiter* w) { return *w->count != w->seen || *w->stopped; };
  changes_mu_.AwaitWithTimeout(absl::Condition(+changed, &waiter), timeout);
  return *count;
}

void CoordinatorLoop::Publish(uint64_t change_count, uint64_t jobs_ended_count) {
  absl::MutexLock lock(&changes_mu_);
  change_count_ = change_count;
  jobs_ended_count_ = jobs_ended_count;
}

void CoordinatorLoop::RunPosted() {
  std::deque<std::function<void(Scheduler&)>> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn(scheduler_);
}

// The CURVE public key ZAP admitted the message's connection with (the
// User-Id our ZAP handler sets), or "" if there is none.
std::string CoordinatorLoop::CurveKeyOf(zmq::message_t& frame) {
  try {
    const char* user = frame.gets("User-Id");
    return user != nullptr ? user : "";
  } catch (const zmq::error_t&) {
    return "";
  }
}

namespace {
// Worker messages taken in one loop turn stop past this many bytes.
constexpr size_t kMaxBytesPerTurn = 64 << 20;
// A loop turn longer than this is logged.
constexpr absl::Duration kSlowTurn = absl::Milliseconds(250);
}  // namespace

void CoordinatorLoop::ReceiveFromWorkers(absl::Time now) {
  // Bounded (in messages and bytes) so that posted client requests, ticks and
  // heartbeats are not starved by a busy socket or large results.
  size_t bytes = 0;
  for (int i = 0; i < 4096 && bytes < kMaxBytesPerTurn; ++i) {
    std::vector<zmq::message_t> frames;
    zmq::recv_result_t got;
    try {
      got = zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
    } catch (const zmq::error_t& e) {
      LogWarning(absl::StrCat("receive from workers failed: ", e.what()));
      return;
    }
    if (!got) return;
    std::string peer = frames.empty() ? std::string() : frames[0].to_string();
    if (frames.size() != 2) {
      LogRateLimited(LogLevel::kWarning, absl::StrCat("frames:", peer),
                     absl::StrCat("dropped a worker message of ", frames.empty() ? 0 : frames.size() - 1, " frames (want 1)"));
      continue;
    }
    bytes += frames[1].size();
    v1::WorkerMessage message;
    absl::Status decoded = DecodeFrame(frames[1], &message);
    if (decoded.code() == absl::StatusCode::kFailedPrecondition) {
      scheduler_.OnWrongVersion(peer, decoded.message());
    } else if (!decoded.ok()) {
      LogRateLimited(LogLevel::kWarning, absl::StrCat("malformed:", peer),
                     absl::StrCat("dropped a worker message: ", decoded.message()));
    } else {
      scheduler_.OnWorkerMessage(peer, std::move(message), now, zap_ ? CurveKeyOf(frames[1]) : std::string());
    }
  }
}

void CoordinatorLoop::Run() {
  absl::Time next_tick = absl::Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
    }
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wakeup_.fd(), ZMQ_POLLIN, 0},
                               {zap_ ? zap_->handle() : nullptr, zap_ ? 0 : -1, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, zap_ ? 3 : 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) LogWarning(absl::StrCat("poll failed: ", e.what()));
    }
    if (items[1].revents & ZMQ_POLLIN) wakeup_.Clear();
    if (zap_ && (items[2].revents & ZMQ_POLLIN)) AnswerZap();
    const absl::Time turn_start = absl::Now();
    RunPosted();  // may sync the journal: the clock is read after it
    const absl::Time now = absl::Now();
    if (items[0].revents & ZMQ_POLLIN) ReceiveFromWorkers(now);
    if (now >= next_tick) {
      scheduler_.OnTick(now);
      next_tick = now + absl::Milliseconds(100);
    }
    scheduler_.Dispatch(now);
    scheduler_.SyncJournal();  // results become visible to clients only once durable
    Publish(scheduler_.change_count(), scheduler_.jobs_ended_count());
    // A long turn delays heartbeats to every worker: say so (the bench reads it).
    if (const absl::Duration turn = absl::Now() - turn_start; turn > kSlowTurn) {
      LogRateLimited(LogLevel::kWarning, "slow-turn",
                     absl::StrCat("a loop turn took ", absl::FormatDuration(turn),
                                  " (workers wait that long for heartbeats and dispatch)"));
    }
  }
  // Nothing posted from now on is lost: it is either run here or refused.
  {
    absl::MutexLock lock(&mu_);
    exited_ = true;
  }
  RunPosted();
  scheduler_.SyncJournal();
  Publish(scheduler_.change_count() + 1, scheduler_.jobs_ended_count() + 1);  // wakes every waiter
}

}  // namespace drover
