// The coordinator's loop thread: owns the ZeroMQ ROUTER that workers connect
// to and the Scheduler. Other threads (gRPC handlers) reach the scheduler only
// by posting closures that the loop runs between messages.
#ifndef DROVER_COORDINATOR_COORDINATOR_LOOP_H_
#define DROVER_COORDINATOR_COORDINATOR_LOOP_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <zmq.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/wakeup.h"
#include "coordinator/scheduler.h"

namespace drover {

// Bind() and Run() are called by one thread (Run() blocks it until Stop()).
// Post(), Call(), Stop(), WaitForChange() are thread-safe.
class CoordinatorLoop {
 public:
  // `journal` (may be null) and `results` (null: kept in memory) must outlive the loop.
  CoordinatorLoop(SchedulerOptions options, JournalSink* journal, ResultStore* results);

  // Rebuilds state from journal records; call before Run().
  void Restore(const std::vector<v1::JournalRecord>& records);
  ~CoordinatorLoop();

  // Requires workers to connect with CURVE: this coordinator's secret key
  // (Z85) and the public keys of the workers it admits (checked by a ZAP
  // handler on the loop thread; a refused key is logged). Call before Bind().
  void RequireCurve(const std::string& secret_key, std::set<std::string> authorized_keys);

  // Binds the worker socket. A port of 0 picks a free one. Returns the bound
  // endpoint. Errors: kInvalidArgument (bad endpoint), kUnavailable (in use).
  absl::StatusOr<std::string> Bind(const std::string& endpoint);

  // Serves workers and posted closures until Stop().
  void Run();
  void Stop();

  // Runs `fn` on the loop thread. Returns false (and drops `fn`) once the loop
  // has exited. Never call Call() from the loop thread itself.
  bool Post(std::function<void(Scheduler&)> fn);

  // Runs `fn` on the loop thread and returns its value; nullopt if the loop
  // has exited.
  template <typename T>
  std::optional<T> Call(std::function<T(Scheduler&)> fn) {
    auto result = std::make_shared<std::optional<T>>();
    auto done = std::make_shared<absl::Notification>();
    bool posted = Post([result, done, fn = std::move(fn)](Scheduler& s) {
      result->emplace(fn(s));
      done->Notify();
    });
    if (!posted) return std::nullopt;
    done->WaitForNotification();
    return std::move(*result);
  }

  // Blocks until the scheduler's change count differs from `seen`, Stop() is
  // called, or for at most `timeout`. Returns the current count.
  uint64_t WaitForChange(uint64_t seen, absl::Duration timeout);
  uint64_t change_count();
  // Blocks until the scheduler's jobs_ended_count differs from `seen`, Stop()
  // is called, or for at most `timeout`. Returns the current count.
  uint64_t WaitForJobEnd(uint64_t seen, absl::Duration timeout);
  uint64_t jobs_ended_count();

 private:
  class ZmqOutbox;

  void RunPosted();
  void ReceiveFromWorkers(absl::Time now);
  static std::string CurveKeyOf(zmq::message_t& frame);
  void AnswerZap();
  void Publish(uint64_t change_count, uint64_t jobs_ended_count);
  // WaitForChange and WaitForJobEnd: `count` is one of the counters below.
  uint64_t AwaitCountChange(const uint64_t* count, uint64_t seen, absl::Duration timeout);

  zmq::context_t context_{1};
  zmq::socket_t router_;
  std::unique_ptr<zmq::socket_t> zap_;  // ZeroMQ's authentication requests (CURVE only)
  std::set<std::string> authorized_keys_;
  std::unique_ptr<ZmqOutbox> outbox_;
  Scheduler scheduler_;  // loop thread only
  Wakeup wakeup_;

  absl::Mutex mu_;
  std::deque<std::function<void(Scheduler&)>> posted_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex changes_mu_;
  uint64_t change_count_ ABSL_GUARDED_BY(changes_mu_) = 0;
  uint64_t jobs_ended_count_ ABSL_GUARDED_BY(changes_mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(changes_mu_) = false;  // wakes WaitForChange
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_COORDINATOR_LOOP_H_
