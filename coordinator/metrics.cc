// Implements metrics.h: a prometheus::Collectable over a scheduler snapshot.
#include "coordinator/metrics.h"

#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "coordinator/coordinator_loop.h"
#include "drover/v1/service.pb.h"

namespace drover {
namespace {

// What one scrape reads from the scheduler, copied on the loop thread.
struct Snapshot {
  std::vector<v1::JobStatus> jobs;
  std::vector<v1::WorkerInfo> workers;
  Scheduler::Counters counters;
  uint64_t chunks_stolen = 0;
};

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

prometheus::ClientMetric Value(double value, prometheus::MetricType type,
                               std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

prometheus::MetricFamily Histogram(const char* name, const char* help, const LatencyHistogram& histogram) {
  prometheus::MetricFamily family = Family(name, help, prometheus::MetricType::Histogram);
  prometheus::ClientMetric metric;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::kUpperBounds.size(); ++i) {
    cumulative += histogram.counts()[i];
    metric.histogram.bucket.push_back({cumulative, LatencyHistogram::kUpperBounds[i]});
  }
  cumulative += histogram.counts().back();
  metric.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = histogram.sum_seconds();
  family.metric.push_back(std::move(metric));
  return family;
}

// "JOB_STATE_RUNNING" -> "running".
std::string StateLabel(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  absl::string_view short_name = name;
  absl::ConsumePrefix(&short_name, "JOB_STATE_");
  return absl::AsciiStrToLower(short_name);
}

}  // namespace

class SchedulerCollectable : public prometheus::Collectable {
 public:
  explicit SchedulerCollectable(CoordinatorLoop* loop) : loop_(loop) {}

  // Runs on a civetweb thread; blocks until the loop thread has taken the snapshot.
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::optional<Snapshot> snapshot = loop_->Call<Snapshot>([](Scheduler& s) {
      return Snapshot{s.ListJobs(), s.ListWorkers(), s.counters(), s.chunks_stolen()};
    });
    if (!snapshot) return {};  // the loop has stopped: the coordinator is exiting
    return Families(*snapshot);
  }

 private:
  static std::vector<prometheus::MetricFamily> Families(const Snapshot& snapshot) {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> families;

    prometheus::MetricFamily jobs = Family("drover_jobs", "Jobs the coordinator knows, by state", MetricType::Gauge);
    uint64_t pending = 0;
    for (v1::JobState state : {v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED,
                               v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
      uint64_t count = 0;
      for (const v1::JobStatus& job : snapshot.jobs) {
        if (job.state() != state) continue;
        ++count;
        if (state == v1::JOB_STATE_QUEUED || state == v1::JOB_STATE_RUNNING) {
          pending += job.total_items() - std::min(job.total_items(), job.done_items());
        }
      }
      jobs.metric.push_back(Value(static_cast<double>(count), MetricType::Gauge, {{"state", StateLabel(state)}}));
    }
    families.push_back(std::move(jobs));
    families.push_back(Family("drover_tasks_pending", "Tasks of queued and running jobs not finished yet (the queue)",
                              MetricType::Gauge));
    families.back().metric.push_back(Value(static_cast<double>(pending), MetricType::Gauge));

    const Scheduler::Counters& counters = snapshot.counters;
    const struct {
      const char* name;
      const char* help;
      uint64_t value;
    } totals[] = {
        {"drover_tasks_done_total", "Tasks finished since the coordinator started, successfully or not",
         counters.tasks_done},
        {"drover_tasks_failed_total", "Tasks that failed since the coordinator started", counters.tasks_failed},
        {"drover_chunks_retried_total", "Chunks sent again because their worker was lost or answered malformed",
         counters.chunks_retried},
        {"drover_chunks_stolen_total", "Unstarted chunks taken back from a worker for another's free slot",
         snapshot.chunks_stolen},
    };
    for (const auto& total : totals) {
      families.push_back(Family(total.name, total.help, MetricType::Counter));
      families.back().metric.push_back(Value(static_cast<double>(total.value), MetricType::Counter));
    }
    families.push_back(Histogram("drover_chunk_run_seconds", "How long chunks ran on their workers",
                                 counters.chunk_run_time));
    families.push_back(Histogram("drover_journal_sync_seconds",
                                 "How long making results and the journal durable took, per loop turn",
                                 counters.journal_sync_time));

    prometheus::MetricFamily workers =
        Family("drover_workers", "Registered workers, by state", MetricType::Gauge);
    uint64_t draining = 0;
    for (const v1::WorkerInfo& worker : snapshot.workers) draining += worker.draining() ? 1 : 0;
    workers.metric.push_back(Value(static_cast<double>(snapshot.workers.size() - draining), MetricType::Gauge,
                                   {{"state", "active"}}));
    workers.metric.push_back(Value(static_cast<double>(draining), MetricType::Gauge, {{"state", "draining"}}));
    families.push_back(std::move(workers));

    const struct {
      const char* name;
      const char* help;
      uint32_t (v1::WorkerInfo::*field)() const;
    } per_worker[] = {
        {"drover_worker_slots", "CPU slots of each worker", &v1::WorkerInfo::slots},
        {"drover_worker_slots_busy", "CPU slots running a chunk, per worker", &v1::WorkerInfo::slots_busy},
        {"drover_worker_chunks_held", "Chunks dispatched to each worker and not finished",
         &v1::WorkerInfo::chunks_held},
        {"drover_worker_io_calls_in_flight", "I/O calls (gRPC) each worker has in flight",
         &v1::WorkerInfo::io_calls_in_flight},
    };
    for (const auto& gauge : per_worker) {
      prometheus::MetricFamily family = Family(gauge.name, gauge.help, MetricType::Gauge);
      for (const v1::WorkerInfo& worker : snapshot.workers) {
        family.metric.push_back(Value(static_cast<double>((worker.*gauge.field)()), MetricType::Gauge,
                                      {{"worker", worker.worker_id()}, {"name", worker.name()}}));
      }
      families.push_back(std::move(family));
    }
    return families;
  }

  CoordinatorLoop* const loop_;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address,
                                                                    CoordinatorLoop* loop,
                                                                    const std::string& token) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->collectable_ = std::make_shared<SchedulerCollectable>(loop);
  try {  // civetweb reports a port it cannot bind by throwing
    server->exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, " (address in use or not valid): ", error.what()));
  }
  if (!token.empty()) {
    server->exposer_->RegisterAuth(
        [token](const std::string& /*user*/, const std::string& password) {
          // Compared in time independent of where they differ.
          if (password.size() != token.size()) return false;
          unsigned char differ = 0;
          for (size_t i = 0; i < token.size(); ++i) differ |= static_cast<unsigned char>(password[i] ^ token[i]);
          return differ == 0;
        },
        "drover");
  }
  server->exposer_->RegisterCollectable(server->collectable_);
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  const std::string host = address.substr(0, address.rfind(':'));
  server->address_ = ports.empty() ? address : absl::StrCat(host, ":", ports.front());
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace drover
