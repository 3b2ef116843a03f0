// The I/O engine's HTTP requests (jobs whose GrpcSpec has `http`): one thread
// drives libcurl's multi socket interface for every request in flight, however many
// (HTTP/1.1 keep-alive and HTTP/2 multiplexing come from libcurl's shared
// connection cache). Each item is one request; its outcome is recorded in its
// IoChunk as a gRPC call's is. Internal to the I/O engine (io_engine.cc).
#ifndef DROVER_WORKER_HTTP_DRIVER_H_
#define DROVER_WORKER_HTTP_DRIVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/io_chunk.h"

namespace drover {

struct HttpChunkSetup;
struct HttpTransfer;
struct SocketWatch;

// Thread-safe: Start, CancelJob, CancelAll and in_flight may be called from
// any thread; requests run on the driver's own thread, which also calls
// `chunk_finished` (so it must not block for long).
class HttpDriver {
 public:
  using ChunkFinished = std::function<void(const std::shared_ptr<IoChunk>&)>;
  explicit HttpDriver(ChunkFinished chunk_finished);
  ~HttpDriver();  // Shutdown()
  HttpDriver(const HttpDriver&) = delete;
  HttpDriver& operator=(const HttpDriver&) = delete;

  // Makes the requests of `chunk` (chunk.grpc().http() says how), item i not
  // before `starts[i]` when `starts` is not empty (a job's --rate).
  void Start(std::shared_ptr<IoChunk> chunk, const std::vector<absl::Time>& starts);
  // Ends the job's requests (their chunks' results are dropped by the flag).
  void CancelJob(uint64_t job_id);
  void CancelAll();
  // Requests started or waiting (to start, or to retry) and not ended.
  uint32_t in_flight() const;
  // Ends every request and joins the thread.
  void Shutdown();

 private:
  void Run();
  // On the driver's thread, for an attempt that ended with `curl_code`:
  // whether to try again (after `*retry_in`); if not, `*error` is why the
  // request failed, empty when it succeeded.
  bool ShouldRetry(HttpTransfer* transfer, int curl_code, std::string* error, absl::Duration* retry_in);
  // Records the transfer's outcome in its chunk and deletes it (its easy
  // handle is kept for another).
  void Record(HttpTransfer* transfer, std::string error);
  // The setup of the chunk's requests: the job's previous one when the spec
  // is the same; null once the driver is stopping.
  std::shared_ptr<const HttpChunkSetup> SetupFor(const v1::Chunk& chunk);
  // An easy handle configured for `setup`: a kept one (as it is, or reset), or
  // a new one. Driver thread only.
  void* TakeIdleHandle(const std::shared_ptr<const HttpChunkSetup>& setup);
  void Wake();

  const ChunkFinished chunk_finished_;
  void* const multi_;    // CURLM*, used on the driver's thread only
  const int epoll_fd_;   // the sockets curl waits on, and wake_fd_
  const int wake_fd_;    // an eventfd: written by Wake() from any thread
  // curl's sockets in the epoll set; driver thread (and the destructor's
  // curl_multi_cleanup, which closes the kept connections).
  const std::unique_ptr<SocketWatch> watch_;
  // Kept easy handles (CURL*), each with the setup it is configured for;
  // driver thread only.
  std::vector<std::pair<void*, std::shared_ptr<const HttpChunkSetup>>> idle_handles_;

  mutable absl::Mutex mu_;
  std::vector<HttpTransfer*> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> cancelled_jobs_ ABSL_GUARDED_BY(mu_);
  bool cancel_all_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // The latest chunk's setup, shared by the next chunks of its job (one job's
  // at a time: two HTTP jobs at once alternate it and reset handles more).
  std::shared_ptr<const HttpChunkSetup> last_setup_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
};

}  // namespace drover

#endif  // DROVER_WORKER_HTTP_DRIVER_H_
