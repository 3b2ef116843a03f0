// The coordinator's web dashboard (--dashboard HOST:PORT): a page that shows
// workers, jobs, throughput and a job's failed tasks, updating live by polling
// a small read-only JSON API. Its assets are in the binary (no CDN, works
// offline); civetweb serves them.
#ifndef DROVER_COORDINATOR_DASHBOARD_H_
#define DROVER_COORDINATOR_DASHBOARD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

class CivetServer;

namespace drover {

class CoordinatorLoop;
class DashboardHandler;

// Start() and the destructor are called from one thread (main's); requests
// run on civetweb's threads and reach the scheduler only through the loop.
//
// Paths: / (the page), /app.js, /api/state (workers and jobs),
// /api/jobs/ID/failed (up to 50 failed tasks with their stderr tails). With a
// non-empty `token` every request must give it as the HTTP Basic password
// (any user name), as for --metrics.
class DashboardServer {
 public:
  // Serves on `address` ("HOST:PORT"; port 0 picks a free one). `loop` must
  // outlive the server. Errors: kUnavailable (cannot listen there).
  static absl::StatusOr<std::unique_ptr<DashboardServer>> Start(const std::string& address, CoordinatorLoop* loop,
                                                                const std::string& token);
  ~DashboardServer();

  // "HOST:PORT" as bound.
  const std::string& address() const { return address_; }

 private:
  DashboardServer() = default;

  std::unique_ptr<DashboardHandler> handler_;
  std::unique_ptr<CivetServer> server_;
  std::string address_;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_DASHBOARD_H_
