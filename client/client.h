// The C++ client library for drover's gRPC API. The `drover` CLI and the
// integration tests use it. gRPC types stay behind this header.
//
//   auto client = drover::Client::Connect({.target = "127.0.0.1:7340"});
//   if (!client.ok()) ...
//   absl::StatusOr<uint64_t> job = (*client)->Submit(spec);
//   (*client)->StreamResults(*job, /*ordered=*/true, [](const v1::ChunkOutputs& c) { ...; return true; });
#ifndef DROVER_CLIENT_CLIENT_H_
#define DROVER_CLIENT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/service.pb.h"

namespace drover {

struct ClientOptions {
  std::string target;  // HOST:PORT or unix:PATH of the coordinator's client port
  std::string token;   // sent as "authorization: Bearer TOKEN" when not empty
  std::string token_source = "DROVER_TOKEN";  // where the token came from, for errors
  bool tls = false;            // talk TLS (system roots unless ca_pem is set)
  std::string ca_pem;          // trust this CA (PEM text) for the coordinator's certificate
  std::string client_cert_pem; // mutual TLS: this client's certificate and key (PEM text)
  std::string client_key_pem;
  // How long Connect() waits for the coordinator to answer.
  absl::Duration connect_timeout = absl::Seconds(5);
};

// Thread-safe: calls may run concurrently, and CancelAll() may be called from
// any thread (for example on Ctrl-C) to end every call in progress.
// Errors are the coordinator's gRPC status as an absl::Status (same codes):
// kUnavailable when it cannot be reached, kUnauthenticated without a valid
// token, kNotFound for an unknown job,
// kInvalidArgument for a bad job spec, kCancelled after CancelAll().
class Client {
 public:
  // Errors: kUnavailable with a message naming the target and saying why
  // when it can tell (nothing listens; TLS expected; plaintext spoken; TLS
  // handshake failed), within connect_timeout (a TLS or plaintext mismatch
  // in about a second).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  // Large listed items (over 100,000 items or 4 MiB) go as a stream
  // (SubmitStream), so neither a request-size nor an item-count limit applies.
  // `idempotency_key` empty: a fresh one (the call is still retried safely).
  absl::StatusOr<uint64_t> Submit(const v1::JobSpec& spec, std::string idempotency_key = "");
  absl::StatusOr<v1::JobStatus> GetJob(uint64_t job_id);
  absl::StatusOr<std::vector<v1::JobStatus>> ListJobs();
  absl::StatusOr<v1::JobStatus> Cancel(uint64_t job_id);
  // The chunk of kept results holding task `index` (task number - 1).
  // Errors: kNotFound, kOutOfRange, kUnavailable (not finished), kFailedPrecondition.
  absl::StatusOr<v1::ChunkOutputs> GetTask(uint64_t job_id, uint64_t index);
  // Submits a new job of the finished job's failed and/or unfinished tasks;
  // returns its id. Errors: kNotFound, kFailedPrecondition (see Retry in
  // service.proto), and Submit's.
  absl::StatusOr<uint64_t> Retry(uint64_t job_id, bool failed, bool unfinished);
  // One page of the job's tasks (see ListTasks in service.proto).
  // Errors: kNotFound for an unknown job.
  absl::StatusOr<v1::ListTasksReply> ListTasks(const v1::ListTasksRequest& request);
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();
  // Errors: kNotFound for an unknown worker id.
  absl::StatusOr<v1::WorkerInfo> DrainWorker(const std::string& worker_id);
  // Asks the coordinator to stop and its workers to exit.
  absl::Status Shutdown(const std::string& reason);
  // Removes finished jobs and their results (see Forget in service.proto);
  // returns the ids forgotten.
  absl::StatusOr<std::vector<uint64_t>> Forget(const std::vector<uint64_t>& job_ids,
                                               absl::Duration finished_older_than);

  // Calls `on_update` with each status change until the job finishes, then
  // returns the final status.
  absl::StatusOr<v1::JobStatus> Watch(uint64_t job_id,
                                      const std::function<void(const v1::JobStatus&)>& on_update);

  // Calls `on_chunk` for each chunk of results (input order if `ordered`,
  // else completion order) until all are delivered. `on_chunk` returning
  // false stops early (the call then returns kCancelled). `failed_only`:
  // only chunks with a failed task.
  absl::Status StreamResults(uint64_t job_id, bool ordered,
                             const std::function<bool(const v1::ChunkOutputs&)>& on_chunk,
                             bool failed_only = false);

  // Waits until at least `count` workers are registered.
  // Errors: kDeadlineExceeded after `timeout`, or a call's error.
  absl::Status WaitForWorkers(int count, absl::Duration timeout);

  // Ends every call in progress (they return kCancelled) and makes later calls fail the same way.
  void CancelAll();

 private:
  absl::StatusOr<uint64_t> SubmitStream(const v1::JobSpec& spec, const std::string& idempotency_key);
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover

#endif  // DROVER_CLIENT_CLIENT_H_
