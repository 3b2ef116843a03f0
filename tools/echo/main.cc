// drover-echo: a small gRPC server (service drover.echo.v1.Echo, reflection
// enabled) whose latency, reply size and failures are chosen per request.
// Calls wait on timers, not threads, so thousands can be in flight at once.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <grpcpp/alarm.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "echo.grpc.pb.h"

namespace {

using drover::echo::v1::EchoReply;
using drover::echo::v1::EchoRequest;

// Thread-safe: called from gRPC's callback threads.
class EchoService final : public drover::echo::v1::Echo::CallbackService {
 public:
  grpc::ServerUnaryReactor* Say(grpc::CallbackServerContext* context, const EchoRequest* request,
                                EchoReply* reply) override {
    auto* call = new UnaryCall(this);  // deletes itself when done
    if (request->echo_metadata()) {
      std::vector<std::string> headers;
      for (const auto& [key, value] : context->client_metadata()) {
        std::string name(key.data(), key.size());
        if (absl::StartsWith(name, "drover-")) headers.push_back(absl::StrCat(name, "=", std::string(value.data(), value.size())));
      }
      std::sort(headers.begin(), headers.end());
      for (std::string& header : headers) reply->add_metadata(std::move(header));
    }
    call->Start(*request, reply);
    return call;
  }

  grpc::ServerWriteReactor<EchoReply>* Stream(grpc::CallbackServerContext* context,
                                              const EchoRequest* request) override {
    return new StreamCall(this, *request);
  }

  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  const drover::echo::v1::StatsRequest* request,
                                  drover::echo::v1::StatsReply* reply) override {
    reply->set_calls(calls_.load());
    reply->set_in_flight(static_cast<uint32_t>(in_flight_.load()));
    reply->set_max_in_flight(static_cast<uint32_t>(max_in_flight_.load()));
    const int64_t window_us = 1000 * static_cast<int64_t>(request->window_ms() == 0 ? 100 : request->window_ms());
    absl::MutexLock lock(&mu_);
    if (!started_us_.empty()) {
      reply->set_first_call_us(started_us_.front());
      reply->set_last_call_us(started_us_.back());
      size_t most = 0;
      for (size_t begin = 0, end = 0; end < started_us_.size(); ++end) {
        while (started_us_[end] - started_us_[begin] >= window_us) ++begin;
        most = std::max(most, end - begin + 1);
      }
      reply->set_max_calls_in_window(static_cast<uint32_t>(most));
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  // Counts a call in; returns the failure to end it with (OK: succeed) and
  // the attempt number of this request's message.
  grpc::Status Begin(const EchoRequest& request, uint32_t* attempt) {
    ++calls_;
    int64_t now = ++in_flight_;
    int64_t seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    {
      absl::MutexLock lock(&mu_);
      *attempt = ++attempts_[request.message()];
      started_us_.push_back(absl::ToUnixMicros(absl::Now()));
      if (started_us_.size() > kMaxCallTimes) started_us_.pop_front();
    }
    if (request.fail_first() >= *attempt) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("drover-echo: failing attempt ", *attempt, " of '", request.message(),
                                       "' as asked (fail_first=", request.fail_first(), ")"));
    }
    bool fail;
    {
      absl::MutexLock lock(&mu_);
      fail = absl::Bernoulli(random_, std::clamp(request.failure_rate(), 0.0, 1.0));
    }
    if (fail) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "drover-echo: injected failure");
    return grpc::Status::OK;
  }
  void End() { --in_flight_; }

  static std::chrono::system_clock::time_point After(uint32_t ms) {
    return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
  }

  static void Fill(const EchoRequest& request, uint32_t index, uint32_t attempt, EchoReply* reply) {
    reply->set_message(request.message());
    reply->set_payload(std::string(request.payload_bytes(), 'x'));
    reply->set_index(index);
    reply->set_attempt(attempt);
  }

  // Waits `latency_ms` on an alarm, then answers; a client's cancel ends the
  // wait at once. Deletes itself when done.
  class UnaryCall : public grpc::ServerUnaryReactor {
   public:
    explicit UnaryCall(EchoService* service) : service_(service) {}
    void Start(const EchoRequest& request, EchoReply* reply) {
      uint32_t attempt = 0;
      outcome_ = service_->Begin(request, &attempt);
      if (outcome_.ok()) Fill(request, 0, attempt, reply);
      alarm_.Set(After(request.latency_ms()), [this](bool) { Finish(outcome_); });
    }
    void OnCancel() override { alarm_.Cancel(); }
    void OnDone() override {
      service_->End();
      delete this;
    }

   private:
    EchoService* service_;
    grpc::Status outcome_;
    grpc::Alarm alarm_;
  };

  // Waits `latency_ms`, then writes `count` replies one at a time.
  class StreamCall : public grpc::ServerWriteReactor<EchoReply> {
   public:
    StreamCall(EchoService* service, const EchoRequest& request)
        : service_(service), request_(request), count_(request.count() == 0 ? 3 : request.count()) {
      outcome_ = service->Begin(request, &attempt_);
      alarm_.Set(After(request.latency_ms()), [this](bool) { WriteNext(); });
    }
    void OnCancel() override { alarm_.Cancel(); }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
        return;
      }
      WriteNext();
    }
    void OnDone() override {
      service_->End();
      delete this;
    }

   private:
    void WriteNext() {
      if (!outcome_.ok() || next_ == count_) {
        Finish(outcome_);
        return;
      }
      Fill(request_, next_++, attempt_, &reply_);
      StartWrite(&reply_);
    }

    EchoService* service_;
    const EchoRequest request_;
    const uint32_t count_;
    uint32_t next_ = 0;
    uint32_t attempt_ = 0;
    grpc::Status outcome_;
    EchoReply reply_;
    grpc::Alarm alarm_;
  };

  std::atomic<uint64_t> calls_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> max_in_flight_{0};
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> attempts_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kMaxCallTimes = 1000000;
  std::deque<int64_t> started_us_ ABSL_GUARDED_BY(mu_);  // when each call began, oldest first
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "drover-echo: a gRPC server for trying and testing drover's I/O jobs.\n"
      "Service drover.echo.v1.Echo (tools/echo/echo.proto), with server reflection:\n"
      "  Say(EchoRequest) -> EchoReply            unary\n"
      "  Stream(EchoRequest) -> stream EchoReply  `count` replies\n"
      "  Stats() -> StatsReply                    calls, in flight, most in flight\n"
      "Each request sets its own latency_ms, payload_bytes, failure_rate and fail_first.",
      "drover-echo"};
  std::string listen = "127.0.0.1:7400";
  std::string tls_cert, tls_key;
  int ready_fd = -1;
  app.add_option("--listen", listen, "host:port to serve on (port 0: any free port)")->capture_default_str();
  app.add_option("--tls-cert", tls_cert, "serve TLS with this certificate (PEM); needs --tls-key");
  app.add_option("--tls-key", tls_key, "private key (PEM) of --tls-cert");
  app.add_option("--ready-fd", ready_fd, "write \"HOST:PORT\\n\" to this descriptor once serving");
  CLI11_PARSE(app, argc, argv);
  if (tls_cert.empty() != tls_key.empty()) {
    std::cerr << "drover-echo: --tls-cert and --tls-key go together\n";
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!tls_cert.empty()) {
    grpc::SslServerCredentialsOptions options;
    options.pem_key_cert_pairs.push_back({ReadFile(tls_key), ReadFile(tls_cert)});
    credentials = grpc::SslServerCredentials(options);
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "drover-echo: cannot listen on " << listen << " (address in use or not valid)\n";
    return 1;
  }
  std::string address = absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
  std::cerr << "drover-echo: serving drover.echo.v1.Echo on " << address << std::endl;
  if (ready_fd >= 0) {
    std::string line = address + "\n";
    ssize_t ignored = write(ready_fd, line.data(), line.size());
    (void)ignored;
    close(ready_fd);
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
