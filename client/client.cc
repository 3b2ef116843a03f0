// Implements client.h over the generated gRPC stub.
#include "client/client.h"

#include <algorithm>
#include <chrono>
#include <set>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/connect_probe.h"
#include "common/backoff.h"
#include "common/items.h"
#include "drover/v1/service.grpc.pb.h"

namespace drover {
namespace {

// A Submit that got no answer (UNAVAILABLE) is sent this many times in all.
constexpr uint32_t kSubmitAttempts = 3;
// Jobs listing more items than this go as a stream (SubmitStream), in
// messages of about kStreamBlockBytes: no request-size or item-count ceiling.
constexpr int kStreamAboveItems = 100'000;
constexpr size_t kStreamAboveBytes = 4 << 20;
constexpr size_t kStreamBlockBytes = 1 << 20;

// Connect() probes a channel that is not up after this long.
constexpr absl::Duration kProbeAfter = absl::Seconds(1);

// What Connect() says when the coordinator cannot be reached, by what the
// probe of its address found.
std::string Unreachable(const ClientOptions& options, ProbeResult probe) {
  const std::string& target = options.target;
  switch (probe) {
    case ProbeResult::kPlaintextGrpc:
      if (options.tls) {
        return absl::StrCat("the coordinator at ", target, " speaks plaintext, not TLS: leave out --tls and --ca");
      }
      break;
    case ProbeResult::kNotPlaintext:
      if (!options.tls) {
        return absl::StrCat("the coordinator at ", target, " expects TLS: pass --ca FILE (the CA that signed its "
                            "--tls-cert), or --tls to trust the system's CAs");
      }
      return absl::StrCat("the TLS handshake with the coordinator at ", target,
                          " failed: its certificate is not signed by the CA you trust (--ca), or does not name the "
                          "host you connect to, or ",
                          options.client_cert_pem.empty() ? "it wants a client certificate (--client-cert)"
                                                          : "it does not accept your --client-cert");
    case ProbeResult::kNothingListens:
      return absl::StrCat("nothing listens at ", target, " (is drover-coordinator running there? set --coordinator "
                          "or DROVER_COORDINATOR)");
    case ProbeResult::kUnknown:
      break;
  }
  return absl::StrCat("cannot reach the coordinator at ", target, " within ",
                      absl::FormatDuration(options.connect_timeout),
                      " (is drover-coordinator running there? set --coordinator or DROVER_COORDINATOR)");
}

// The one place grpc::Status becomes absl::Status.
absl::Status FromGrpc(const grpc::Status& status, const ClientOptions& options) {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("coordinator at ", options.target,
                                               " is not reachable: ", status.error_message()));
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::UnauthenticatedError(
        options.token.empty()
            ? absl::StrCat("the coordinator at ", options.target,
                           " needs a token: pass --token-file FILE or set DROVER_TOKEN")
            : absl::StrCat("the coordinator at ", options.target, " refused the token from ", options.token_source,
                           " (", status.error_message(), ")"));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace

class Client::Impl {
 public:
  Impl(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        authorization_(options.token.empty() ? "" : "Bearer " + options.token),
        channel_(std::move(channel)),
        stub_(v1::Drover::NewStub(channel_)) {}

  // Registers a context so CancelAll() can reach it; unregisters on destruction.
  class Call {
   public:
    explicit Call(Impl* impl, absl::Duration deadline = absl::Seconds(30)) : impl_(impl) {
      if (deadline != absl::InfiniteDuration()) {
        context_.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
      }
      if (!impl_->authorization_.empty()) context_.AddMetadata("authorization", impl_->authorization_);
      absl::MutexLock lock(&impl_->mu_);
      if (impl_->cancelled_) context_.TryCancel();
      impl_->calls_.insert(&context_);
    }
    ~Call() {
      absl::MutexLock lock(&impl_->mu_);
      impl_->calls_.erase(&context_);
    }
    grpc::ClientContext* context() { return &context_; }

   private:
    Impl* impl_;
    grpc::ClientContext context_;
  };

  absl::Status Check(const grpc::Status& status) { return FromGrpc(status, options_); }

  // One unary call: `method` is a Stub member such as &v1::Drover::Stub::GetJob.
  template <typename Request, typename Reply, typename Method>
  absl::StatusOr<Reply> Unary(Method method, const Request& request,
                              absl::Duration deadline = absl::Seconds(30)) {
    Call call(this, deadline);
    Reply reply;
    absl::Status status = Check((stub_.get()->*method)(call.context(), request, &reply));
    if (!status.ok()) return status;
    return reply;
  }

  void CancelAll() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    for (grpc::ClientContext* context : calls_) context->TryCancel();
  }

  const ClientOptions options_;
  const std::string authorization_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Drover::Stub> stub_;

 private:
  absl::Mutex mu_;
  std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // result batches may carry large outputs
  args.SetMaxSendMessageSize(-1);
  // Find a restarted coordinator quickly (gRPC's default backoff grows to minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options.tls) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = options.ca_pem;
    tls.pem_cert_chain = options.client_cert_pem;
    tls.pem_private_key = options.client_key_pem;
    credentials = grpc::SslCredentials(tls);
  }
  auto channel = grpc::CreateCustomChannel(options.target, credentials, args);
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  // A channel that is not up soon is probed: a mismatch of TLS and plaintext,
  // or a certificate not trusted, will not mend by waiting.
  const absl::Time probe_at = std::min(deadline, absl::Now() + kProbeAfter);
  if (!channel->WaitForConnected(absl::ToChronoTime(probe_at))) {
    const ProbeResult probe = ProbeGrpcServer(options.target, kProbeAfter);
    const bool mismatch = probe == ProbeResult::kNotPlaintext || (probe == ProbeResult::kPlaintextGrpc && options.tls);
    if (mismatch || !channel->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(Unreachable(options, probe));
    }
  }
  return std::unique_ptr<Client>(new Client(std::make_unique<Impl>(options, channel)));
}

absl::StatusOr<uint64_t> Client::Submit(const v1::JobSpec& spec, std::string idempotency_key) {
  // A Submit is sent again, with the same key, when no answer came: one job
  // either way. (A stream is not: its items are sent once.)
  if (idempotency_key.empty()) {
    absl::BitGen random;
    idempotency_key =
        absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(random)), absl::Hex(absl::Uniform<uint64_t>(random)));
  }
  if (spec.items().has_inline_()) {
    const auto& items = spec.items().inline_().items();
    size_t bytes = 0;
    for (const std::string& item : items) bytes += item.size();
    if (items.size() > kStreamAboveItems || bytes > kStreamAboveBytes) return SubmitStream(spec, idempotency_key);
  }
  v1::SubmitRequest request;
  *request.mutable_spec() = spec;
  request.set_idempotency_key(idempotency_key);
  absl::StatusOr<v1::SubmitReply> reply;
  for (uint32_t attempt = 1;; ++attempt) {
    reply = impl_->Unary<v1::SubmitRequest, v1::SubmitReply>(&v1::Drover::Stub::Submit, request);
    if (reply.status().code() != absl::StatusCode::kUnavailable || attempt == kSubmitAttempts) break;
    absl::SleepFor(RetryBackoff(attempt));
  }
  if (reply.status().code() == absl::StatusCode::kResourceExhausted &&
      absl::StrContains(reply.status().message(), "larger than max")) {
    // gRPC says "Received message larger than max (A vs. B)": say it for people.
    return absl::InvalidArgumentError(absl::StrCat(
        "the job takes ", (request.ByteSizeLong() + (1 << 20) - 1) >> 20,
        " MiB to send; the coordinator takes requests of at most its --max-message-mib "
        "(64 MiB by default; gRPC: ", reply.status().message(),
        "). Give items as --range or --array, split the job, or raise the limit"));
  }
  if (!reply.ok()) return reply.status();
  return reply->job_id();
}

absl::StatusOr<uint64_t> Client::SubmitStream(const v1::JobSpec& spec, const std::string& idempotency_key) {
  Impl::Call call(impl_.get(), absl::InfiniteDuration());
  v1::SubmitReply reply;
  std::unique_ptr<grpc::ClientWriter<v1::SubmitStreamRequest>> stream =
      impl_->stub_->SubmitStream(call.context(), &reply);
  v1::SubmitStreamRequest message;
  v1::JobSpec head = spec;
  head.clear_items();
  message.set_spec(head.SerializeAsString());
  message.set_idempotency_key(idempotency_key);
  bool open = true;
  for (const std::string& item : spec.items().inline_().items()) {
    AppendPackedItem(item, message.mutable_packed_items());
    if (message.packed_items().size() >= kStreamBlockBytes) {
      if (!(open = stream->Write(message))) break;  // the coordinator refused: its status says why
      message.Clear();
    }
  }
  if (open && (!message.spec().empty() || !message.packed_items().empty())) open = stream->Write(message);
  if (open) stream->WritesDone();
  absl::Status status = impl_->Check(stream->Finish());
  if (!status.ok()) return status;
  return reply.job_id();
}

absl::StatusOr<v1::JobStatus> Client::GetJob(uint64_t job_id) {
  v1::JobRef request;
  request.set_job_id(job_id);
  return impl_->Unary<v1::JobRef, v1::JobStatus>(&v1::Drover::Stub::GetJob, request);
}

absl::StatusOr<std::vector<v1::JobStatus>> Client::ListJobs() {
  auto reply = impl_->Unary<v1::ListJobsRequest, v1::ListJobsReply>(&v1::Drover::Stub::ListJobs, {});
  if (!reply.ok()) return reply.status();
  return std::vector<v1::JobStatus>(reply->jobs().begin(), reply->jobs().end());
}

absl::StatusOr<v1::JobStatus> Client::Cancel(uint64_t job_id) {
  v1::JobRef request;
  request.set_job_id(job_id);
  return impl_->Unary<v1::JobRef, v1::JobStatus>(&v1::Drover::Stub::Cancel, request);
}

absl::StatusOr<uint64_t> Client::Retry(uint64_t job_id, bool failed, bool unfinished) {
  v1::RetryRequest request;
  request.set_job_id(job_id);
  request.set_failed(failed);
  request.set_unfinished(unfinished);
  absl::StatusOr<v1::SubmitReply> reply =
      impl_->Unary<v1::RetryRequest, v1::SubmitReply>(&v1::Drover::Stub::Retry, request);
  if (!reply.ok()) return reply.status();
  return reply->job_id();
}

absl::StatusOr<v1::ListTasksReply> Client::ListTasks(const v1::ListTasksRequest& request) {
  return impl_->Unary<v1::ListTasksRequest, v1::ListTasksReply>(&v1::Drover::Stub::ListTasks, request);
}

absl::StatusOr<v1::ChunkOutputs> Client::GetTask(uint64_t job_id, uint64_t index) {
  v1::TaskRef request;
  request.set_job_id(job_id);
  request.set_index(index);
  return impl_->Unary<v1::TaskRef, v1::ChunkOutputs>(&v1::Drover::Stub::GetTask, request);
}

absl::StatusOr<std::vector<v1::WorkerInfo>> Client::ListWorkers() {
  auto reply = impl_->Unary<v1::ListWorkersRequest, v1::ListWorkersReply>(&v1::Drover::Stub::ListWorkers, {});
  if (!reply.ok()) return reply.status();
  return std::vector<v1::WorkerInfo>(reply->workers().begin(), reply->workers().end());
}

absl::StatusOr<v1::WorkerInfo> Client::DrainWorker(const std::string& worker_id) {
  v1::DrainWorkerRequest request;
  request.set_worker_id(worker_id);
  return impl_->Unary<v1::DrainWorkerRequest, v1::WorkerInfo>(&v1::Drover::Stub::DrainWorker, request);
}

absl::Status Client::Shutdown(const std::string& reason) {
  v1::ShutdownRequest request;
  request.set_reason(reason);
  return impl_->Unary<v1::ShutdownRequest, v1::ShutdownReply>(&v1::Drover::Stub::Shutdown, request,
                                                             absl::Seconds(10))
      .status();
}

absl::StatusOr<std::vector<uint64_t>> Client::Forget(const std::vector<uint64_t>& job_ids,
                                                     absl::Duration finished_older_than) {
  v1::ForgetRequest request;
  request.mutable_job_ids()->Add(job_ids.begin(), job_ids.end());
  request.set_finished_older_than_ms(static_cast<uint64_t>(absl::ToInt64Milliseconds(finished_older_than)));
  auto reply = impl_->Unary<v1::ForgetRequest, v1::ForgetReply>(&v1::Drover::Stub::Forget, request);
  if (!reply.ok()) return reply.status();
  return std::vector<uint64_t>(reply->forgotten().begin(), reply->forgotten().end());
}

absl::StatusOr<v1::JobStatus> Client::Watch(
    uint64_t job_id, const std::function<void(const v1::JobStatus&)>& on_update) {
  Impl::Call call(impl_.get(), absl::InfiniteDuration());
  v1::JobRef request;
  request.set_job_id(job_id);
  auto reader = impl_->stub_->WatchJob(call.context(), request);
  v1::JobStatus status;
  v1::JobStatus last;
  bool any = false;
  while (reader->Read(&status)) {
    on_update(status);
    last = status;
    any = true;
  }
  absl::Status finished = impl_->Check(reader->Finish());
  if (!finished.ok()) return finished;
  if (!any) return absl::InternalError("the coordinator ended the watch without a status");
  return last;
}

absl::Status Client::StreamResults(uint64_t job_id, bool ordered,
                                   const std::function<bool(const v1::ChunkOutputs&)>& on_chunk,
                                   bool failed_only) {
  Impl::Call call(impl_.get(), absl::InfiniteDuration());
  v1::ResultsRequest request;
  request.set_job_id(job_id);
  request.set_ordered(ordered);
  request.set_failed_only(failed_only);
  auto reader = impl_->stub_->StreamResults(call.context(), request);
  v1::ResultBatch batch;
  bool stopped = false;
  while (!stopped && reader->Read(&batch)) {
    for (const v1::ChunkOutputs& chunk : batch.chunks()) {
      if (!on_chunk(chunk)) {
        stopped = true;
        break;
      }
    }
  }
  if (stopped) {
    call.context()->TryCancel();
    (void)reader->Finish();
    return absl::CancelledError("stopped reading results");
  }
  return impl_->Check(reader->Finish());
}

absl::Status Client::WaitForWorkers(int count, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::vector<v1::WorkerInfo>> workers = ListWorkers();
    if (!workers.ok()) return workers.status();
    if (static_cast<int>(workers->size()) >= count) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", workers->size(), " of ", count, " workers registered within ",
          absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(10));  // polling a status, not synchronising a test
  }
}

void Client::CancelAll() { impl_->CancelAll(); }

}  // namespace drover
