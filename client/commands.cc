// The simple subcommands (submit, status, wait, results, cancel, jobs,
// workers) and what the commands share. `run` is in run_command.cc.
#include "client/commands.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/plain_json.h"
#include "client/idle_job_notice.h"
#include "client/job_inputs.h"
#include "client/job_options.h"
#include "client/progress.h"
#include "client/results_printer.h"

namespace drover {
namespace {

absl::Mutex interrupt_mu;
std::weak_ptr<Client> interruptible ABSL_GUARDED_BY(interrupt_mu);
std::atomic<bool> interrupted{false};

std::string StatusLine(const v1::JobStatus& status) {
  std::string line = absl::StrCat("job ", status.job_id(), " ", StateName(status.state()), ": ",
                                  status.done_items(), "/", status.total_items(), " done, ",
                                  status.failed_items(), " failed");
  if (!status.name().empty()) line = absl::StrCat(line, " (", status.name(), ")");
  return line;
}

int ExitForState(const v1::JobStatus& status) {
  return status.state() == v1::JOB_STATE_SUCCEEDED ? kExitOk : kExitTaskFailed;
}

// Prints a finished reduction's value, or its error. Returns false on error.
bool PrintReduction(const v1::JobStatus& status) {
  if (status.reduce() == v1::REDUCE_NONE) return true;
  if (!status.reduction().error().empty()) {
    std::fprintf(stderr, "drover: the reduction failed: %s\n", status.reduction().error().c_str());
    return false;
  }
  std::printf("%s\n", status.reduction().value().empty() ? "(no values)" : status.reduction().value().c_str());
  return true;
}

}  // namespace

int Fail(const absl::Status& status) {
  if (Interrupted()) {
    std::fprintf(stderr, "drover: interrupted\n");
    return kExitInterrupted;
  }
  std::fprintf(stderr, "drover: %s\n", std::string(status.message()).c_str());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return kExitUsage;
    default:
      return kExitError;
  }
}

void InstallInterruptHandler() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int number = 0;
    while (sigwait(&signals, &number) == 0) {
      interrupted.store(true);
      std::shared_ptr<Client> client;
      {
        absl::MutexLock lock(&interrupt_mu);
        client = interruptible.lock();
      }
      if (client != nullptr) client->CancelAll();
    }
  }).detach();
}

void SetInterruptibleClient(const std::shared_ptr<Client>& client) {
  {
    absl::MutexLock lock(&interrupt_mu);
    interruptible = client;
  }
  if (client != nullptr && interrupted.load()) client->CancelAll();
}

bool Interrupted() { return interrupted.load(); }

absl::StatusOr<std::shared_ptr<Client>> ConnectTo(const CommonOptions& common) {
  ClientOptions options;
  options.target = common.coordinator;
  options.token = common.token;
  options.token_source = common.token_source;
  options.tls = common.tls;
  options.ca_pem = common.ca_pem;
  options.client_cert_pem = common.client_cert_pem;
  options.client_key_pem = common.client_key_pem;
  absl::StatusOr<std::unique_ptr<Client>> connected = Client::Connect(options);
  if (!connected.ok()) return connected.status();
  std::shared_ptr<Client> client = *std::move(connected);
  SetInterruptibleClient(client);
  return client;
}

absl::StatusOr<std::shared_ptr<Client>> ConnectTo(const std::string& target, const std::string& token) {
  ClientOptions options;
  options.target = target;
  options.token = token;
  absl::StatusOr<std::unique_ptr<Client>> connected = Client::Connect(options);
  if (!connected.ok()) return connected.status();
  std::shared_ptr<Client> client = *std::move(connected);
  SetInterruptibleClient(client);
  return client;
}

int SubmitCommand(const CommonOptions& common, const JobOptions& job) {
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(job, std::cin);
  if (!spec.ok()) return Fail(spec.status());
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  if (absl::Status prepared = PrepareJobSpec(job, client->get(), &*spec); !prepared.ok()) return Fail(prepared);
  absl::StatusOr<uint64_t> id = (*client)->Submit(*spec, job.idempotency_key);
  if (!id.ok()) return Fail(id.status());
  if (common.json) {
    v1::SubmitReply reply;
    reply.set_job_id(*id);
    std::printf("%s\n", PlainJson(reply).c_str());
  } else {
    std::printf("%llu\n", static_cast<unsigned long long>(*id));
  }
  return kExitOk;
}

int StatusCommand(const CommonOptions& common, uint64_t job_id) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::JobStatus> status = (*client)->GetJob(job_id);
  if (!status.ok()) return Fail(status.status());
  std::printf("%s\n", common.json ? PlainJson(*status).c_str() : StatusLine(*status).c_str());
  return kExitOk;
}

// The failed tasks of finished job `job_id` as `drover run` reports them
// (item, reason, the tail of stderr; the first few in full). Says nothing when
// the results cannot be read (a `run` job's results went to its reader).
void PrintFailures(Client* client, uint64_t job_id) {
  ResultsPrinter printer(ResultsPrinter::Format::kText, stdout, stderr, /*print_outputs=*/false);
  absl::Status streamed = client->StreamResults(
      job_id, /*ordered=*/true,
      [&](const v1::ChunkOutputs& c) {
        printer.Print(c);
        return true;
      },
      /*failed_only=*/true);
  printer.Finish();
  if (!streamed.ok() && streamed.code() != absl::StatusCode::kFailedPrecondition) {
    std::fprintf(stderr, "drover: cannot list the failed tasks: %s\n", std::string(streamed.message()).c_str());
  }
}

int WaitCommand(const CommonOptions& common, uint64_t job_id, bool quiet) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  IdleJobNotice notice(client->get(), job_id, stderr);
  ProgressReporter progress(stderr, isatty(STDERR_FILENO) != 0);
  // A coordinator restarting (with --state-dir) is waited for, up to a minute.
  constexpr absl::Duration kReconnectFor = absl::Seconds(60);
  absl::Time give_up = absl::InfiniteFuture();
  absl::StatusOr<v1::JobStatus> final_status;
  while (true) {
    final_status = (*client)->Watch(job_id, [&](const v1::JobStatus& s) {
      give_up = absl::InfiniteFuture();
      if (!quiet) progress.Update(s);
    });
    if (final_status.ok() || final_status.status().code() != absl::StatusCode::kUnavailable ||
        Interrupted()) {
      break;
    }
    if (give_up == absl::InfiniteFuture()) {
      give_up = absl::Now() + kReconnectFor;
      std::fprintf(stderr, "drover: lost the coordinator; trying again for %s\n",
                   absl::FormatDuration(kReconnectFor).c_str());
    }
    if (absl::Now() > give_up) break;
    absl::SleepFor(absl::Milliseconds(200));  // reconnection backoff
  }
  if (!final_status.ok()) return Fail(final_status.status());
  if (!quiet) progress.Finish(*final_status);
  if (common.json) std::printf("%s\n", PlainJson(*final_status).c_str());
  if (!common.json && final_status->failed_items() > 0) PrintFailures(client->get(), job_id);
  if (!PrintReduction(*final_status)) return kExitTaskFailed;
  return ExitForState(*final_status);
}

int ResultsCommand(const CommonOptions& common, uint64_t job_id, bool unordered) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::JobStatus> before = (*client)->GetJob(job_id);
  if (!before.ok()) return Fail(before.status());
  bool reduces = before->reduce() != v1::REDUCE_NONE;
  ResultsPrinter printer(common.json ? ResultsPrinter::Format::kJson : ResultsPrinter::Format::kText,
                         stdout, stderr, /*print_outputs=*/!reduces);
  absl::Status streamed = (*client)->StreamResults(job_id, !unordered, [&](const v1::ChunkOutputs& c) {
    printer.Print(c);
    return true;
  });
  printer.Finish();
  if (streamed.code() == absl::StatusCode::kAborted) {  // the job was cancelled
    std::fprintf(stderr, "drover: %s\n", std::string(streamed.message()).c_str());
    return kExitTaskFailed;
  }
  if (!streamed.ok()) return Fail(streamed);
  absl::StatusOr<v1::JobStatus> after = (*client)->GetJob(job_id);
  if (!after.ok()) return Fail(after.status());
  if (!PrintReduction(*after)) return kExitTaskFailed;
  return ExitForState(*after);
}

int LogsCommand(const CommonOptions& common, uint64_t job_id, uint64_t task_number) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::ChunkOutputs> chunk = (*client)->GetTask(job_id, task_number - 1);
  if (!chunk.ok()) return Fail(chunk.status());
  ResultsPrinter printer(common.json ? ResultsPrinter::Format::kJson : ResultsPrinter::Format::kText,
                         stdout, stderr);
  return printer.PrintLog(*chunk, task_number - 1) ? kExitOk : kExitTaskFailed;
}

int RetryCommand(const CommonOptions& common, uint64_t job_id, bool failed, bool unfinished) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<uint64_t> id = (*client)->Retry(job_id, failed, unfinished);
  if (!id.ok()) return Fail(id.status());
  if (common.json) {
    v1::SubmitReply reply;
    reply.set_job_id(*id);
    std::printf("%s\n", PlainJson(reply).c_str());
  } else {
    std::printf("%llu\n", static_cast<unsigned long long>(*id));
  }
  return kExitOk;
}

int CancelCommand(const CommonOptions& common, uint64_t job_id) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::JobStatus> status = (*client)->Cancel(job_id);
  if (!status.ok()) return Fail(status.status());
  std::printf("%s\n", common.json ? PlainJson(*status).c_str() : StatusLine(*status).c_str());
  return kExitOk;
}

int ForgetCommand(const CommonOptions& common, const std::vector<uint64_t>& job_ids,
                  const std::string& finished_older_than) {
  absl::Duration older_than = absl::ZeroDuration();
  if (!finished_older_than.empty()) {
    absl::StatusOr<absl::Duration> parsed = ParseTimeout(finished_older_than, "--finished-older-than");
    if (!parsed.ok()) return Fail(parsed.status());
    older_than = *parsed;
  }
  if (job_ids.empty() && older_than == absl::ZeroDuration()) {
    std::fprintf(stderr, "drover forget: name jobs (drover forget 3 4) or give --finished-older-than 1h\n");
    return kExitUsage;
  }
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<std::vector<uint64_t>> forgotten = (*client)->Forget(job_ids, older_than);
  if (!forgotten.ok()) return Fail(forgotten.status());
  if (forgotten->empty()) std::fprintf(stderr, "drover: no finished job to forget\n");
  for (uint64_t id : *forgotten) {
    if (common.json) {
      std::printf("{\"job_id\":%llu,\"forgotten\":true}\n", static_cast<unsigned long long>(id));
    } else {
      std::printf("forgot job %llu\n", static_cast<unsigned long long>(id));
    }
  }
  return kExitOk;
}

int ShutdownCommand(const CommonOptions& common) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  if (absl::Status stopped = (*client)->Shutdown("asked by `drover shutdown`"); !stopped.ok()) return Fail(stopped);
  return kExitOk;
}

int JobsCommand(const CommonOptions& common) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<std::vector<v1::JobStatus>> jobs = (*client)->ListJobs();
  if (!jobs.ok()) return Fail(jobs.status());
  if (!common.json) {
    std::printf("%-6s %-10s %21s %10s  %-14s %s\n", "ID", "STATE", "DONE/TOTAL", "FAILED", "KERNEL", "NAME");
  }
  for (const v1::JobStatus& job : *jobs) {
    if (common.json) {
      std::printf("%s\n", PlainJson(job).c_str());
      continue;
    }
    std::string progress = absl::StrCat(job.done_items(), "/", job.total_items());
    std::printf("%-6llu %-10s %21s %10llu  %-14s %s\n", static_cast<unsigned long long>(job.job_id()),
                StateName(job.state()), progress.c_str(),
                static_cast<unsigned long long>(job.failed_items()), job.runs().c_str(),
                job.name().c_str());
  }
  return kExitOk;
}

int WorkersCommand(const CommonOptions& common) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<std::vector<v1::WorkerInfo>> workers = (*client)->ListWorkers();
  if (!workers.ok()) return Fail(workers.status());
  // A worker's id is its name (made unique): the column is as wide as the longest.
  int id_width = 6;
  for (const v1::WorkerInfo& w : *workers) id_width = std::max(id_width, static_cast<int>(w.worker_id().size()));
  if (!common.json) {
    std::printf("%-*s %-16s %8s %5s %6s %10s  %-8s %s\n", id_width, "ID", "HOST", "PID", "SLOTS", "HELD", "DONE",
                "STATE", "LABELS");
  }
  for (const v1::WorkerInfo& w : *workers) {
    if (common.json) {
      std::printf("%s\n", PlainJson(w).c_str());
      continue;
    }
    std::string labels = absl::StrJoin(w.labels(), ",");
    std::printf("%-*s %-16s %8u %5u %6u %10llu  %-8s %s\n", id_width, w.worker_id().c_str(),
                w.host().c_str(), w.pid(), w.slots(), w.chunks_held(),
                static_cast<unsigned long long>(w.chunks_done()), w.draining() ? "draining" : "ready",
                labels.c_str());
  }
  return kExitOk;
}

int DrainCommand(const CommonOptions& common, const std::string& worker_id) {
  auto client = ConnectTo(common);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::WorkerInfo> info = (*client)->DrainWorker(worker_id);
  if (!info.ok()) return Fail(info.status());
  std::printf("worker %s is draining: %u chunk(s) to finish\n", info->worker_id().c_str(), info->chunks_held());
  return kExitOk;
}

}  // namespace drover
