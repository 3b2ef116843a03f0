// Prometheus metrics of the coordinator (--metrics HOST:PORT). prometheus-cpp
// serves them (its civetweb HTTP server and text format); at each scrape the
// values are read from the scheduler on the loop thread, so nothing is kept or
// updated between scrapes. What is exported is listed in docs/DEPLOY.md (Metrics).
#ifndef DROVER_COORDINATOR_METRICS_H_
#define DROVER_COORDINATOR_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace drover {

class CoordinatorLoop;
class SchedulerCollectable;

// Start() and the destructor are called from one thread (main's); scrapes run
// on civetweb's threads and reach the scheduler only through the loop.
class MetricsServer {
 public:
  // Serves http://ADDRESS/metrics ("HOST:PORT"; port 0 picks a free one).
  // With a non-empty `token`, a scrape must give it as the HTTP Basic
  // password (any user name). `loop` must outlive the server. Errors:
  // kUnavailable (cannot listen on ADDRESS).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& address, CoordinatorLoop* loop,
                                                              const std::string& token);
  ~MetricsServer();

  // "HOST:PORT" as bound.
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;

  std::shared_ptr<SchedulerCollectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_METRICS_H_
