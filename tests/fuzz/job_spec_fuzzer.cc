// libFuzzer target: arbitrary bytes as a client's SubmitRequest, measured
// before parsing as the client service does (what MeasureSubmit accepts must
// parse within the limits), submitted to a scheduler, dispatched, and
// answered with well-formed empty results.
#include <cstddef>
#include <cstdint>

#include "coordinator/scheduler.h"
#include "coordinator/submit_intake.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "tests/fuzz/quiet_logs.h"

namespace {

class NullOutbox : public drover::WorkerOutbox {
 public:
  void Send(const std::string&, drover::v1::CoordinatorMessage& message) override {
    if (message.has_assign()) last_ = message.assign();
  }
  drover::v1::Assign last_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  drover::SchedulerOptions options;
  options.item_limits = {.max_items = 1000, .max_item_bytes = 64};
  google::protobuf::io::ArrayInputStream input(data, static_cast<int>(size));
  absl::StatusOr<uint64_t> cost = drover::MeasureSubmit(&input, options.item_limits);
  drover::v1::SubmitRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (cost.ok()) {
    if (*cost < size) __builtin_trap();  // the estimate covers at least the bytes
    const auto& items = request.spec().items().inline_().items();
    if (static_cast<uint64_t>(items.size()) > options.item_limits.max_items) __builtin_trap();
    for (const std::string& item : items) {
      if (item.size() > options.item_limits.max_item_bytes) __builtin_trap();
    }
  }
  NullOutbox outbox;
  drover::Scheduler scheduler(options, &outbox);
  absl::Time now = absl::FromUnixSeconds(1000);
  drover::v1::WorkerMessage hello;
  hello.mutable_hello()->set_slots(1);
  hello.mutable_hello()->add_kernels(request.spec().kernel());
  for (const std::string& label : request.spec().require()) hello.mutable_hello()->add_labels(label);
  scheduler.OnWorkerMessage("w", hello, now);
  absl::StatusOr<uint64_t> id = scheduler.Submit(request.spec(), now);
  if (!id.ok()) return 0;
  for (int round = 0; round < 4; ++round) {
    drover::v1::WorkerMessage ready;
    ready.mutable_ready()->set_credit(2);
    for (const drover::v1::Chunk& chunk : outbox.last_.chunks()) {
      drover::v1::ChunkResult* result = ready.mutable_ready()->add_results();
      result->set_job_id(chunk.job_id());
      result->set_chunk_index(chunk.chunk_index());
      result->set_attempt(chunk.attempt());
      result->mutable_outputs()->set_first_index(chunk.first_index());
    }
    outbox.last_.Clear();
    scheduler.OnWorkerMessage("w", ready, now);
    scheduler.Dispatch(now);
  }
  drover::ResultCursor cursor;
  drover::v1::ResultBatch batch;
  bool end = false;
  (void)scheduler.PullResults(*id, &cursor, 100, &batch, &end);
  return 0;
}
