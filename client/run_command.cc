// `drover run`: submit a job whose results stream back, print them as they
// arrive, and (with --local) bring up and tear down a private cluster.
#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/idle_job_notice.h"
#include "client/job_inputs.h"
#include "client/job_log.h"
#include "client/commands.h"
#include "client/local_cluster.h"
#include "client/output_files.h"
#include "client/progress.h"
#include "client/results_printer.h"

namespace drover {
namespace {

// The folder holding this program, where drover-coordinator and drover-worker are.
std::string ProgramDir() {
  if (const char* dir = getenv("DROVER_BIN_DIR"); dir != nullptr && *dir != '\0') return dir;
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  std::string exe(path, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

// Whether printing `chunk` writes to stderr (failures, truncation warnings).
bool WritesToStderr(const v1::ChunkOutputs& chunk) {
  if (chunk.errors_size() > 0) return true;
  for (const v1::TaskInfo& task : chunk.tasks()) {
    if (task.stdout_truncated() || task.stderr_truncated()) return true;
  }
  return false;
}

// Where a run's results go besides the terminal (each may be null).
struct RunSinks {
  JobLog* joblog = nullptr;     // --joblog
  OutputFiles* files = nullptr; // --output-dir: outputs go there instead of stdout
};

// Streams the job's results to stdout and returns the exit code.
int StreamAndReport(Client& client, uint64_t job_id, const CommonOptions& common,
                    const RunOptions& run, bool reduces, const RunSinks& sinks) {
  IdleJobNotice notice(&client, job_id, stderr);
  // The bar and the results (with their failure reports on stderr) take turns
  // on the terminal: results are printed with the bar erased, then it is redrawn.
  absl::Mutex terminal;
  std::optional<ProgressReporter> progress;
  const bool bar = run.progress == RunOptions::Progress::kAlways ||
                   (run.progress == RunOptions::Progress::kAuto && isatty(STDERR_FILENO));
  std::unique_ptr<std::thread> watcher;
  if (bar) {
    progress.emplace(stderr, /*terminal=*/true);
    watcher = std::make_unique<std::thread>([&] {
      absl::StatusOr<v1::JobStatus> last = client.Watch(job_id, [&](const v1::JobStatus& s) {
        absl::MutexLock lock(&terminal);
        progress->Update(s);
      });
      absl::MutexLock lock(&terminal);
      if (last.ok()) progress->Finish(*last);
    });
  }
  ResultsPrinter printer(common.json ? ResultsPrinter::Format::kJson : ResultsPrinter::Format::kText,
                         stdout, stderr, /*print_outputs=*/!reduces);
  if (sinks.files != nullptr) printer.WriteOutputsTo(sinks.files);
  const bool stdout_on_terminal = isatty(STDOUT_FILENO);
  absl::Status streamed = client.StreamResults(job_id, !run.unordered, [&](const v1::ChunkOutputs& c) {
    if (sinks.joblog != nullptr) sinks.joblog->Write(c);
    if (!progress) {
      printer.Print(c);
      return printer.files_status().ok();
    }
    absl::MutexLock lock(&terminal);
    if (stdout_on_terminal || WritesToStderr(c)) {
      progress->Clear();
      printer.Print(c);
      std::fflush(stdout);
      progress->Redraw();
    } else {
      printer.Print(c);
    }
    return printer.files_status().ok();
  });
  {
    absl::MutexLock lock(&terminal);
    if (progress) progress->Clear();
    printer.Finish();
    std::fflush(stdout);
  }
  if (watcher) watcher->join();
  if (!printer.files_status().ok()) return kExitTaskFailed;  // said on stderr; the job ends with this client
  if (streamed.code() == absl::StatusCode::kAborted) {  // the job was cancelled
    std::fprintf(stderr, "drover: %s\n", std::string(streamed.message()).c_str());
    return kExitTaskFailed;
  }
  if (!streamed.ok()) return Fail(streamed);
  absl::StatusOr<v1::JobStatus> status = client.GetJob(job_id);
  if (!status.ok()) return Fail(status.status());
  if (reduces) {
    if (!status->reduction().error().empty()) {
      std::fprintf(stderr, "drover: the reduction failed: %s\n", status->reduction().error().c_str());
      return kExitTaskFailed;
    }
    std::printf("%s\n", status->reduction().value().empty() ? "(no values)"
                                                            : status->reduction().value().c_str());
  }
  if (status->state() == v1::JOB_STATE_SUCCEEDED) return kExitOk;
  if (status->state() == v1::JOB_STATE_FAILED) {
    std::fprintf(stderr, "drover: %llu of %llu tasks failed\n",
                 static_cast<unsigned long long>(status->failed_items()),
                 static_cast<unsigned long long>(status->total_items()));
  } else {
    std::fprintf(stderr, "drover: job %llu was %s\n", static_cast<unsigned long long>(job_id),
                 StateName(status->state()));
  }
  return kExitTaskFailed;
}

int SubmitAndStream(Client& client, v1::JobSpec spec, const CommonOptions& common,
                    const RunOptions& run, const RunSinks& sinks) {
  bool reduces = spec.reduce() != v1::REDUCE_NONE;
  absl::StatusOr<uint64_t> job_id = client.Submit(spec, run.job.idempotency_key);
  if (!job_id.ok()) return Fail(job_id.status());
  return StreamAndReport(client, *job_id, common, run, reduces, sinks);
}

int RunLocal(v1::JobSpec spec, const CommonOptions& common, const RunOptions& run, const RunSinks& sinks) {
  int workers = run.local_workers > 0
                    ? run.local_workers
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<int> workers_lost{0};
  std::atomic<bool> coordinator_lost{false};
  std::atomic<Client*> client_for_monitor{nullptr};
  LocalClusterOptions options;
  options.workers = workers;
  options.bin_dir = ProgramDir();
  options.plugins = run.plugins;
  options.on_child_exit = [&](const std::string& what) {
    std::fprintf(stderr, "drover: %s\n", what.c_str());
    bool fatal = what.find("coordinator") != std::string::npos;
    if (fatal) coordinator_lost = true;
    if (!fatal && ++workers_lost < workers) return;  // the others take over its chunks
    if (Client* c = client_for_monitor.load()) c->CancelAll();
  };
  absl::StatusOr<std::unique_ptr<LocalCluster>> cluster = LocalCluster::Start(options);
  if (!cluster.ok()) return Fail(cluster.status());

  int code;
  {
    auto client = ConnectTo((*cluster)->client_target(), (*cluster)->token());
    if (!client.ok()) {
      code = Fail(client.status());
    } else {
      client_for_monitor = client->get();
      absl::Status ready = (*client)->WaitForWorkers(workers, absl::Seconds(30));
      code = ready.ok() ? SubmitAndStream(**client, std::move(spec), common, run, sinks) : Fail(ready);
      client_for_monitor = nullptr;
    }
  }  // The connection closes here: a stopping gRPC server waits for its clients to go (up to 2 s).
  bool trouble = coordinator_lost || workers_lost > 0 || code == kExitError;
  if (trouble) std::fprintf(stderr, "drover: logs of the local cluster are kept in %s\n", (*cluster)->log_dir().c_str());
  (*cluster)->Stop(/*keep_logs=*/trouble);
  return code;
}

// Runs `spec` (locally or on the coordinator) and prints its results.
int RunJob(v1::JobSpec spec, const CommonOptions& common, const RunOptions& run, const RunSinks& sinks) {
  if (run.local) {
    if (absl::Status prepared = PrepareJobSpec(run.job, nullptr, &spec); !prepared.ok()) return Fail(prepared);
    return RunLocal(std::move(spec), common, run, sinks);
  }
  if (!run.plugins.empty()) {
    return Fail(absl::InvalidArgumentError("--plugin goes with --local; remote workers load plugins themselves"));
  }
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  if (absl::Status prepared = PrepareJobSpec(run.job, client->get(), &spec); !prepared.ok()) return Fail(prepared);
  return SubmitAndStream(**client, std::move(spec), common, run, sinks);
}

}  // namespace

int RunCommand(const CommonOptions& common, const RunOptions& run) {
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(run.job, std::cin);
  if (!spec.ok()) return Fail(spec.status());
  spec->set_stream_results(true);
  if (spec->grpc().has_http() && !common.json && run.output_dir.empty()) {
    // Only status lines are printed: the bodies need not leave the workers.
    spec->mutable_grpc()->mutable_http()->set_discard_body(true);
  }
  std::unique_ptr<JobLog> joblog;
  if (!run.joblog.empty()) {
    std::vector<std::string> what_runs = run.job.command;
    if (!run.job.kernel.empty()) what_runs = {run.job.kernel};
    if (!run.job.method.empty()) what_runs = {run.job.method, "{}"};
    absl::StatusOr<std::unique_ptr<JobLog>> created = JobLog::Create(run.joblog, std::move(what_runs), run.job.items);
    if (!created.ok()) {
      std::fprintf(stderr, "drover: %s\n", std::string(created.status().message()).c_str());
      return kExitUsage;
    }
    joblog = *std::move(created);
  }
  std::optional<OutputFiles> files;
  if (!run.output_dir.empty()) {
    absl::StatusOr<OutputFiles> opened = OutputFiles::Open(run.output_dir, run.output_name);
    if (!opened.ok()) {
      std::fprintf(stderr, "drover: %s\n", std::string(opened.status().message()).c_str());
      return kExitUsage;
    }
    files = *std::move(opened);
  }
  RunSinks sinks;
  sinks.joblog = joblog.get();
  if (files) sinks.files = &*files;
  const int code = RunJob(*std::move(spec), common, run, sinks);
  if (joblog != nullptr && !joblog->Close()) {
    std::fprintf(stderr, "drover: --joblog: writing %s failed (disk full?)\n", run.joblog.c_str());
    return code == kExitOk ? kExitTaskFailed : code;
  }
  return code;
}


}  // namespace drover
