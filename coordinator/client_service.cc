// Implements client_service.h.
#include "coordinator/client_service.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/items.h"
#include "common/job_state.h"
#include "common/log.h"
#include "coordinator/job.h"

namespace drover {
namespace {

constexpr uint64_t kMaxItemsPerBatch = 65536;
constexpr absl::Duration kWatchMinInterval = absl::Milliseconds(100);
// A results stream that took everything ready in a batch of fewer chunks than
// this waits kResultsMinInterval (or until a job ends) before its next one:
// results that come a chunk at a time (I/O jobs) go out in fewer, larger
// batches, each a loop call, a gRPC write and a client wake-up less.
constexpr int kSmallBatchChunks = 32;
constexpr absl::Duration kResultsMinInterval = absl::Milliseconds(10);
// A submit waits at most this long for others to leave room in the budget.
constexpr absl::Duration kSubmitWait = absl::Seconds(60);
// A streamed job's spec (no items) may take at most this to parse.
constexpr uint64_t kMaxStreamedSpecCost = 64 << 20;
// Requests at least this large are followed by malloc_trim.
constexpr size_t kLargeRequestBytes = 8 << 20;

// The one place absl::Status becomes grpc::Status.
grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

const grpc::Status kStopping(grpc::StatusCode::UNAVAILABLE, "the coordinator is stopping");

// Runs `fn` on the loop and puts its value in `*reply`: the shape of most unary handlers.
template <typename Reply>
grpc::Status Answer(CoordinatorLoop* loop, std::function<absl::StatusOr<Reply>(Scheduler&)> fn,
                    Reply* reply) {
  std::optional<absl::StatusOr<Reply>> answer = loop->Call<absl::StatusOr<Reply>>(std::move(fn));
  if (!answer) return kStopping;
  if (!answer->ok()) return ToGrpc(answer->status());
  *reply = **std::move(answer);
  return grpc::Status::OK;
}

}  // namespace

ClientService::ClientService(CoordinatorLoop* loop, std::function<void()> on_shutdown, ClientServiceOptions options)
    : loop_(loop),
      on_shutdown_(std::move(on_shutdown)),
      options_(std::move(options)),
      submit_budget_(options_.submit_memory_bytes) {
  // Submit (method 0 of drover.v1.Drover, as the generated code numbers it)
  // is read as raw bytes, so it can be measured before it is parsed. From the
  // client's side it is still a unary call.
  MarkMethodStreamed(0, new grpc::internal::StreamedUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                            [this](grpc::ServerContext* context,
                                   grpc::ServerUnaryStreamer<grpc::ByteBuffer, grpc::ByteBuffer>* call) {
                              return Submit(context, call);
                            }));
}

grpc::Status ClientService::Authorize(const grpc::ServerContext* context) const {
  if (options_.token.empty()) return grpc::Status::OK;
  const std::string expected = "Bearer " + options_.token;
  auto range = context->client_metadata().equal_range("authorization");
  const bool sent = range.first != range.second;
  for (auto it = range.first; it != range.second; ++it) {
    const grpc::string_ref& given = it->second;
    if (given.size() != expected.size()) continue;
    unsigned char difference = 0;  // constant time: no early exit on the first wrong byte
    for (size_t i = 0; i < expected.size(); ++i) difference |= given.data()[i] ^ expected[i];
    if (difference == 0) return grpc::Status::OK;
  }
  LogWarning(absl::StrCat("refused a call from ", context->peer(), sent ? ": a wrong token" : ": no token"));
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      sent ? "the token sent is not this coordinator's"
                           : "no token was sent (metadata \"authorization: Bearer TOKEN\")");
}

grpc::Status ClientService::Submit(grpc::ServerContext* context,
                                   grpc::ServerUnaryStreamer<grpc::ByteBuffer, grpc::ByteBuffer>* call) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  grpc::ByteBuffer encoded;
  if (!call->Read(&encoded)) return grpc::Status(grpc::StatusCode::CANCELLED, "the client sent no request");
  // Large requests leave freed pages behind in the allocator: give them back.
  const bool large = encoded.Length() >= kLargeRequestBytes;
  absl::Cleanup trim = [&encoded, large] {
    encoded.Clear();
    if (large) malloc_trim(0);
  };
  uint64_t cost = 0;
  {
    grpc::ProtoBufferReader reader(&encoded);
    absl::StatusOr<uint64_t> measured = MeasureSubmit(&reader, options_.item_limits);
    if (!measured.ok()) return ToGrpc(measured.status());
    cost = *measured;
  }
  if (cost > submit_budget_.capacity()) {  // a limit of this coordinator, like --max-items
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("reading this request would take about ", cost >> 20,
                                     " MiB; this coordinator reads at most ", submit_budget_.capacity() >> 20,
                                     " MiB of submits at a time (its --submit-memory-mib): list fewer "
                                     "items or give a range"));
  }
  const absl::Time deadline = std::min(absl::FromChrono(context->deadline()), absl::Now() + kSubmitWait);
  if (!submit_budget_.Acquire(cost, deadline)) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the coordinator is busy reading other large submits; try again");
  }
  absl::Cleanup release = [this, cost] { submit_budget_.Release(cost); };
  v1::SubmitRequest request;
  {
    grpc::ProtoBufferReader reader(&encoded);
    if (!request.ParseFromZeroCopyStream(&reader)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the request is not a valid SubmitRequest");
    }
  }
  encoded.Clear();
  v1::SubmitReply reply;
  grpc::Status answered = Answer<v1::SubmitReply>(
      loop_,
      [&](Scheduler& s) -> absl::StatusOr<v1::SubmitReply> {
        absl::StatusOr<uint64_t> id =
            s.Submit(std::move(*request.mutable_spec()), absl::Now(), request.idempotency_key());
        if (!id.ok()) return id.status();
        v1::SubmitReply submitted;
        submitted.set_job_id(*id);
        return submitted;
      },
      &reply);
  if (!answered.ok()) return answered;
  grpc::ByteBuffer reply_bytes;
  bool own_buffer = false;
  if (grpc::Status encoded_reply =
          grpc::SerializationTraits<v1::SubmitReply>::Serialize(reply, &reply_bytes, &own_buffer);
      !encoded_reply.ok()) {
    return encoded_reply;
  }
  if (!call->Write(reply_bytes)) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  return grpc::Status::OK;
}

grpc::Status ClientService::SubmitStream(grpc::ServerContext* context,
                                         grpc::ServerReader<v1::SubmitStreamRequest>* reader,
                                         v1::SubmitReply* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  if (options_.spool_dir.empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this coordinator takes no streamed items");
  }
  // Each message parses to three strings whatever it holds: the spec is
  // measured (as a Submit is) before it is parsed.
  v1::SubmitStreamRequest message;
  if (!reader->Read(&message)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the stream carried no job");
  const std::string idempotency_key = message.idempotency_key();
  v1::JobSpec spec;
  {
    google::protobuf::io::ArrayInputStream encoded(message.spec().data(), static_cast<int>(message.spec().size()));
    // No listed item may come with the spec (max_items 0 refuses the first).
    absl::StatusOr<uint64_t> cost = MeasureJobSpec(&encoded, {.max_items = 0, .max_item_bytes = 0});
    if (!cost.ok() || *cost > kMaxStreamedSpecCost || !spec.ParseFromString(message.spec()) ||
        spec.items().source_case() != v1::ItemSource::SOURCE_NOT_SET) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the stream's first message must carry a valid JobSpec with no items (they come in "
                          "packed_items)");
    }
  }
  spec.mutable_items()->mutable_spooled();
  // A job that could not run is refused before its items are read.
  auto admitted = loop_->Call<absl::Status>([&](Scheduler& s) { return s.CheckAdmission(spec); });
  if (!admitted) return kStopping;
  if (!admitted->ok()) return ToGrpc(*admitted);

  // The items go to disk here, on this thread: the loop only adopts the files.
  absl::StatusOr<std::unique_ptr<ItemSpool>> spool = ItemSpool::Create(options_.spool_dir);
  if (!spool.ok()) return ToGrpc(spool.status());
  const bool command = spec.has_command();
  const ItemLimits& limits = options_.item_limits;
  auto add = [&](absl::string_view item) -> absl::Status {
    const uint64_t number = (*spool)->count() + 1;
    if (item.size() > limits.max_item_bytes) return ItemTooLargeError(number, item.size(), limits.max_item_bytes);
    if (command && item.find('\0') != absl::string_view::npos) return ItemWithNulError(number);
    return (*spool)->Add(item);
  };
  do {
    if (absl::Status added = ForEachPackedItem(message.packed_items(), add); !added.ok()) return ToGrpc(added);
    message.Clear();
  } while (reader->Read(&message) && message.spec().empty());
  if (!message.spec().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "only the stream's first message carries a spec");
  }
  if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  if (absl::Status finished = (*spool)->Finish(); !finished.ok()) return ToGrpc(finished);
  spec.mutable_items()->mutable_spooled()->set_count((*spool)->count());
  return Answer<v1::SubmitReply>(
      loop_,
      [&](Scheduler& s) -> absl::StatusOr<v1::SubmitReply> {
        absl::StatusOr<uint64_t> id = s.Submit(std::move(spec), absl::Now(), idempotency_key, spool->get());
        if (!id.ok()) return id.status();
        v1::SubmitReply submitted;
        submitted.set_job_id(*id);
        return submitted;
      },
      reply);
}

grpc::Status ClientService::Forget(grpc::ServerContext* context, const v1::ForgetRequest* request,
                                   v1::ForgetReply* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  const std::vector<uint64_t> ids(request->job_ids().begin(), request->job_ids().end());
  const absl::Duration older_than = absl::Milliseconds(request->finished_older_than_ms());
  return Answer<v1::ForgetReply>(
      loop_,
      [&](Scheduler& s) -> absl::StatusOr<v1::ForgetReply> {
        absl::StatusOr<std::vector<uint64_t>> forgotten = s.Forget(ids, older_than, absl::Now());
        if (!forgotten.ok()) return forgotten.status();
        v1::ForgetReply answer;
        answer.mutable_forgotten()->Add(forgotten->begin(), forgotten->end());
        return answer;
      },
      reply);
}

grpc::Status ClientService::GetJob(grpc::ServerContext* context, const v1::JobRef* request,
                                   v1::JobStatus* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::JobStatus>(loop_, [&](Scheduler& s) { return s.GetJob(request->job_id()); }, reply);
}

grpc::Status ClientService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest*,
                                     v1::ListJobsReply* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::ListJobsReply>(
      loop_,
      [](Scheduler& s) -> absl::StatusOr<v1::ListJobsReply> {
        v1::ListJobsReply listed;
        for (v1::JobStatus& job : s.ListJobs()) *listed.add_jobs() = std::move(job);
        return listed;
      },
      reply);
}

grpc::Status ClientService::WatchJob(grpc::ServerContext* context, const v1::JobRef* request,
                                     grpc::ServerWriter<v1::JobStatus>* writer) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  std::string last_sent;
  while (!context->IsCancelled()) {
    uint64_t seen = loop_->change_count();
    auto status = loop_->Call<absl::StatusOr<v1::JobStatus>>(
        [&](Scheduler& s) { return s.GetJob(request->job_id()); });
    if (!status) return kStopping;
    if (!status->ok()) return ToGrpc(status->status());
    const v1::JobStatus& job = **status;
    std::string encoded = job.SerializeAsString();
    bool finished = IsFinished(job.state());
    if (encoded != last_sent) {
      if (!writer->Write(job)) return grpc::Status::CANCELLED;
      last_sent = std::move(encoded);
      if (!finished) absl::SleepFor(kWatchMinInterval);  // rate limit, not synchronisation
    }
    if (finished) return grpc::Status::OK;
    loop_->WaitForChange(seen, absl::Seconds(1));
  }
  return grpc::Status::CANCELLED;
}

grpc::Status ClientService::StreamResults(grpc::ServerContext* context,
                                          const v1::ResultsRequest* request,
                                          grpc::ServerWriter<v1::ResultBatch>* writer) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  const uint64_t job_id = request->job_id();
  auto attached = loop_->Call<absl::Status>([&](Scheduler& s) { return s.AttachReader(job_id); });
  if (!attached) return kStopping;
  if (!attached->ok()) return ToGrpc(*attached);
  auto give_up = [&] {
    loop_->Post([job_id](Scheduler& s) { s.ReaderGone(job_id, absl::Now()); });
  };
  ResultCursor cursor;
  cursor.ordered = request->ordered();
  while (true) {
    if (context->IsCancelled()) {
      give_up();
      return grpc::Status::CANCELLED;
    }
    uint64_t seen = loop_->change_count();
    const uint64_t ended_before = loop_->jobs_ended_count();
    v1::ResultBatch batch;
    bool end = false;
    auto pulled = loop_->Call<absl::Status>([&](Scheduler& s) {
      return s.PullResults(job_id, &cursor, kMaxItemsPerBatch, &batch, &end);
    });
    if (!pulled) {
      give_up();
      return kStopping;
    }
    if (!pulled->ok()) return ToGrpc(*pulled);
    // A small batch that took every result ready (short of the batch's limits).
    uint64_t items = 0, bytes = 0;
    for (const v1::ChunkOutputs& c : batch.chunks()) {
      items += std::max<uint32_t>(c.item_count(), 1);
      bytes += c.outputs().size();
    }
    const bool trickling = batch.chunks_size() < kSmallBatchChunks && items < kMaxItemsPerBatch &&
                           bytes < Job::kMaxBatchBytes;
    if (request->failed_only()) {
      auto chunks = batch.mutable_chunks();
      chunks->erase(std::remove_if(chunks->begin(), chunks->end(),
                                   [](const v1::ChunkOutputs& c) { return c.errors_size() == 0; }),
                    chunks->end());
    }
    if (batch.chunks_size() > 0 && !writer->Write(batch)) {
      give_up();
      return grpc::Status::CANCELLED;
    }
    // Rate limit, not synchronisation: the wait ends when any job ends, so the
    // last results of this one are never held back.
    if (batch.chunks_size() > 0 && trickling && !end) loop_->WaitForJobEnd(ended_before, kResultsMinInterval);
    if (end) {
      // A reader must not take a cancelled job's results for all of them.
      auto cancelled = loop_->Call<bool>([&](Scheduler& s) {
        absl::StatusOr<v1::JobStatus> job = s.GetJob(job_id);
        return job.ok() && job->state() == v1::JOB_STATE_CANCELLED;
      });
      if (cancelled.value_or(false)) {
        return grpc::Status(grpc::StatusCode::ABORTED,
                            absl::StrCat("job ", job_id, " was cancelled: these are the results of the tasks that "
                                         "finished before"));
      }
      return grpc::Status::OK;
    }
    if (batch.chunks_size() == 0) loop_->WaitForChange(seen, absl::Milliseconds(500));
  }
}

grpc::Status ClientService::Cancel(grpc::ServerContext* context, const v1::JobRef* request,
                                   v1::JobStatus* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::JobStatus>(
      loop_, [&](Scheduler& s) { return s.Cancel(request->job_id(), absl::Now()); }, reply);
}

grpc::Status ClientService::GetTask(grpc::ServerContext* context, const v1::TaskRef* request,
                                    v1::ChunkOutputs* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::ChunkOutputs>(
      loop_, [&](Scheduler& s) { return s.TaskResult(request->job_id(), request->index()); }, reply);
}

grpc::Status ClientService::Retry(grpc::ServerContext* context, const v1::RetryRequest* request,
                                  v1::SubmitReply* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::SubmitReply>(
      loop_,
      [&](Scheduler& s) -> absl::StatusOr<v1::SubmitReply> {
        absl::StatusOr<uint64_t> id = s.Retry(*request, absl::Now());
        if (!id.ok()) return id.status();
        v1::SubmitReply submitted;
        submitted.set_job_id(*id);
        return submitted;
      },
      reply);
}

grpc::Status ClientService::ListTasks(grpc::ServerContext* context, const v1::ListTasksRequest* request,
                                      v1::ListTasksReply* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::ListTasksReply>(loop_, [&](Scheduler& s) { return s.ListTasks(*request); }, reply);
}

grpc::Status ClientService::ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest*,
                                        v1::ListWorkersReply* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::ListWorkersReply>(
      loop_,
      [](Scheduler& s) -> absl::StatusOr<v1::ListWorkersReply> {
        v1::ListWorkersReply listed;
        for (v1::WorkerInfo& worker : s.ListWorkers()) *listed.add_workers() = std::move(worker);
        return listed;
      },
      reply);
}

grpc::Status ClientService::DrainWorker(grpc::ServerContext* context, const v1::DrainWorkerRequest* request,
                                        v1::WorkerInfo* reply) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  return Answer<v1::WorkerInfo>(
      loop_, [&](Scheduler& s) { return s.DrainWorker(request->worker_id(), absl::Now()); }, reply);
}

grpc::Status ClientService::Shutdown(grpc::ServerContext* context, const v1::ShutdownRequest* request,
                                     v1::ShutdownReply*) {
  if (grpc::Status denied = Authorize(context); !denied.ok()) return denied;
  std::string reason = request->reason().empty() ? "the coordinator is shutting down"
                                                  : request->reason();
  LogInfo(absl::StrCat("shutdown requested by a client: ", reason));
  auto done = loop_->Call<bool>([&](Scheduler& s) {
    s.ShutdownWorkers(reason);
    return true;
  });
  if (!done) return kStopping;
  on_shutdown_();
  return grpc::Status::OK;
}

}  // namespace drover
