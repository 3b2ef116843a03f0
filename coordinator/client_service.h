// The gRPC client API (drover.v1.Drover) of the coordinator. Each handler runs
// on a gRPC thread and reaches the scheduler only through the CoordinatorLoop.
#ifndef DROVER_COORDINATOR_CLIENT_SERVICE_H_
#define DROVER_COORDINATOR_CLIENT_SERVICE_H_

#include <functional>

#include "coordinator/coordinator_loop.h"
#include "coordinator/submit_intake.h"
#include "drover/v1/service.grpc.pb.h"

namespace drover {

struct ClientServiceOptions {
  // When not empty, it must come with every call as "authorization: Bearer
  // TOKEN"; calls without it get UNAUTHENTICATED and nothing runs.
  std::string token;
  // A Submit listing items beyond these is refused before it is parsed (and a
  // SubmitStream's items are checked one by one as they come).
  ItemLimits item_limits;
  // The submits being parsed at once take at most this much together (one
  // that would need more is refused; others wait for room until their deadline).
  uint64_t submit_memory_bytes = uint64_t{1} << 30;
  // Where SubmitStream writes items (the result store's directory); empty:
  // SubmitStream is refused.
  std::string spool_dir;
};

// Thread-safe (gRPC calls handlers concurrently).
class ClientService final : public v1::Drover::Service {
 public:
  // `loop` must outlive the service. `on_shutdown` is called (once, from a
  // handler thread) when a client asks the coordinator to stop.
  ClientService(CoordinatorLoop* loop, std::function<void()> on_shutdown, ClientServiceOptions options = {});

  grpc::Status SubmitStream(grpc::ServerContext* context, grpc::ServerReader<v1::SubmitStreamRequest>* reader,
                            v1::SubmitReply* reply) override;

  grpc::Status GetJob(grpc::ServerContext* context, const v1::JobRef* request,
                      v1::JobStatus* reply) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsReply* reply) override;
  grpc::Status WatchJob(grpc::ServerContext* context, const v1::JobRef* request,
                        grpc::ServerWriter<v1::JobStatus>* writer) override;
  grpc::Status StreamResults(grpc::ServerContext* context, const v1::ResultsRequest* request,
                             grpc::ServerWriter<v1::ResultBatch>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const v1::JobRef* request,
                      v1::JobStatus* reply) override;
  grpc::Status GetTask(grpc::ServerContext* context, const v1::TaskRef* request,
                       v1::ChunkOutputs* reply) override;
  grpc::Status Retry(grpc::ServerContext* context, const v1::RetryRequest* request,
                     v1::SubmitReply* reply) override;
  grpc::Status ListTasks(grpc::ServerContext* context, const v1::ListTasksRequest* request,
                         v1::ListTasksReply* reply) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersReply* reply) override;
  grpc::Status DrainWorker(grpc::ServerContext* context, const v1::DrainWorkerRequest* request,
                           v1::WorkerInfo* reply) override;
  grpc::Status Shutdown(grpc::ServerContext* context, const v1::ShutdownRequest* request,
                        v1::ShutdownReply* reply) override;
  grpc::Status Forget(grpc::ServerContext* context, const v1::ForgetRequest* request,
                      v1::ForgetReply* reply) override;

 private:
  // Submit, taken off the wire as bytes: measured (MeasureSubmit) before it is parsed.
  grpc::Status Submit(grpc::ServerContext* context,
                      grpc::ServerUnaryStreamer<grpc::ByteBuffer, grpc::ByteBuffer>* call);
  grpc::Status Authorize(const grpc::ServerContext* context) const;

  CoordinatorLoop* const loop_;
  std::function<void()> on_shutdown_;
  const ClientServiceOptions options_;
  SubmitBudget submit_budget_;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_CLIENT_SERVICE_H_
