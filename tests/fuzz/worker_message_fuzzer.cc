// libFuzzer target: arbitrary bytes as a worker's ZeroMQ frame, decoded and fed
// to a scheduler that has a registered worker and a job in flight. The
// scheduler must never crash, and its bookkeeping must stay consistent
// (Scheduler::CheckInvariants after every step: a violation aborts).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <zmq.hpp>

#include "common/wire.h"
#include "coordinator/scheduler.h"
#include "tests/fuzz/quiet_logs.h"

namespace {

class NullOutbox : public drover::WorkerOutbox {
 public:
  void Send(const std::string&, drover::v1::CoordinatorMessage&) override {}
};

void CheckOrDie(const drover::Scheduler& scheduler) {
  absl::Status ok = scheduler.CheckInvariants();
  if (!ok.ok()) {
    std::fprintf(stderr, "invariant broken: %s\n", std::string(ok.message()).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  NullOutbox outbox;
  drover::Scheduler scheduler(drover::SchedulerOptions{}, &outbox);
  absl::Time now = absl::FromUnixSeconds(1000);
  drover::v1::WorkerMessage hello;
  hello.mutable_hello()->set_slots(2);
  hello.mutable_hello()->add_kernels("echo");
  scheduler.OnWorkerMessage("w", hello, now);
  drover::v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(10);
  spec.set_chunk_size(3);
  (void)scheduler.Submit(spec, now);
  drover::v1::WorkerMessage credit;
  credit.mutable_ready()->set_credit(4);
  scheduler.OnWorkerMessage("w", credit, now);
  scheduler.Dispatch(now);

  CheckOrDie(scheduler);
  zmq::message_t frame(data, size);
  drover::v1::WorkerMessage message;
  absl::Status decoded = drover::DecodeFrame(frame, &message);
  if (decoded.code() == absl::StatusCode::kFailedPrecondition) {
    scheduler.OnWrongVersion("w", decoded.message());
  } else if (decoded.ok()) {
    scheduler.OnWorkerMessage("w", message, now);
    CheckOrDie(scheduler);
    scheduler.OnWorkerMessage("stranger", message, now);
    CheckOrDie(scheduler);
  }
  scheduler.Dispatch(now);
  CheckOrDie(scheduler);
  scheduler.OnTick(now + absl::Seconds(10));
  scheduler.Dispatch(now);
  CheckOrDie(scheduler);
  (void)scheduler.GetJob(1);
  (void)scheduler.ListWorkers();
  return 0;
}
