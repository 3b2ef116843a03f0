// drover-worker: parses flags, loads plugins and runs a Worker until told to stop.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "common/curve.h"
#include "common/endpoint.h"
#include "common/daemon_flags.h"
#include "common/log.h"
#include "worker/kernel_registry.h"
#include "worker/process_groups.h"
#include "worker/python_interpreter.h"
#include "worker/worker.h"

namespace {

drover::Worker* g_worker = nullptr;
std::atomic<int> g_terms{0};

// SIGTERM drains (finish what is held, then exit); a second SIGTERM, or
// SIGINT, stops at once (running tasks are killed, their chunks go elsewhere).
void OnSignal(int signal_number) {
  if (g_worker == nullptr) return;
  if (signal_number == SIGTERM && g_terms.fetch_add(1) == 0) {
    g_worker->Drain();
  } else {
    g_worker->Stop();
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Lock-order checking is for tests; it costs time on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{
      "drover-worker: runs chunks of drover jobs for a coordinator.\n"
      "It connects to the coordinator's worker port, registers its slots and kernels, and runs\n"
      "what it is given until the coordinator tells it to exit. SIGTERM drains it (it finishes\n"
      "what it holds, takes nothing new, then exits); SIGINT or a second SIGTERM stops it at once.\n"
      "If the coordinator is not up yet, it waits and keeps trying."};
  std::string coordinator = absl::StrCat("127.0.0.1:", drover::kDefaultWorkerPort);
  drover::WorkerOptions options;
  std::vector<std::string> plugins;
  bool list_kernels = false;
  bool allow_root = false;
  std::string curve_key_file;
  std::string coordinator_key_file;
  bool verbose = false;
  app.add_option("-c,--coordinator", coordinator,
                 "coordinator's worker address: HOST[:PORT] (default port 7341) or a ZeroMQ "
                 "endpoint such as tcp://HOST:PORT or ipc://PATH")
      ->capture_default_str();
  app.add_option("-s,--slots", options.slots, "CPU slots (threads running chunks); 0 = one per core")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--io-capacity", options.io_capacity,
                 "gRPC calls and HTTP requests (items of --grpc and --http jobs) this worker holds at once, "
                 "beside its CPU slots; 0: none")
      ->capture_default_str();
  std::string python = "python3";
  app.add_option("--python", python,
                 "the interpreter for Python calls (drover's Python package: Pool.map and the like), one "
                 "long-lived process per slot; offered when it imports cloudpickle (Debian's "
                 "python3-cloudpickle); 'none': this worker runs no Python calls")
      ->capture_default_str();
  app.add_option("--io-threads", options.io_threads, "threads driving those calls (fixed however many are in flight)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--health-file", options.health_file,
                 "touch FILE about every second while registered with the coordinator (for liveness "
                 "probes: e.g. find FILE -newermt '-30 seconds')");
  app.add_option("--name", options.name,
                 "this worker's id in `drover workers` and `drover workers drain ID` (default HOST-PID; a name "
                 "another connected worker has gets -2, -3...)");
  app.add_option("--label", options.labels,
                 "a label for jobs to --require: KEY=VALUE or KEY, e.g. gpu=a100 (one per --label, repeatable)")
      ->allow_extra_args(false);
  app.add_option("--plugin", plugins, "shared library with more kernels (repeatable); see "
                                      "worker/include/drover/kernel.h")
      ->check(CLI::ExistingFile);
  app.add_flag("--list-kernels", list_kernels, "print the kernels this worker offers and exit");
  app.add_option("--curve-key", curve_key_file,
                 "this worker's key pair (`drover keygen`) for a coordinator that requires CURVE")
      ->check(CLI::ExistingFile);
  app.add_option("--coordinator-key", coordinator_key_file,
                 "the coordinator's public key (.pub): the worker talks only to that coordinator")
      ->check(CLI::ExistingFile);
  app.add_flag("--allow-root", allow_root,
               "run even as root (a worker runs whatever commands its coordinator sends)");
  app.add_flag("-v,--verbose", verbose, "log debug messages");
  if (std::optional<int> exit_code = drover::ParseDaemonFlags(app, argc, argv)) return *exit_code;
  drover::InitLogging("worker", verbose ? drover::LogLevel::kDebug : drover::LogLevel::kInfo);
  drover::RouteProtobufLogs();

  drover::KernelRegistry registry = drover::KernelRegistry::WithBuiltins();
  for (const std::string& plugin : plugins) {
    absl::Status loaded = registry.LoadPlugin(plugin);
    if (!loaded.ok()) {
      drover::LogError(std::string(loaded.message()));
      return 1;
    }
  }
  if (list_kernels) {
    for (const std::string& name : registry.Names()) {
      std::printf("%-14s %s\n", name.c_str(), registry.Find(name)->help.c_str());
    }
    return 0;
  }
  if (geteuid() == 0 && !allow_root) {
    std::fprintf(stderr,
                 "drover-worker: refusing to run as root: a worker runs whatever commands its "
                 "coordinator sends. Run it as an ordinary user, or pass --allow-root if you mean it.\n");
    return 2;
  }
  absl::StatusOr<std::string> endpoint =
      drover::ToZmqEndpoint(coordinator, drover::kDefaultWorkerPort);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "drover-worker: --coordinator: %s\n",
                 std::string(endpoint.status().message()).c_str());
    return 2;
  }
  options.coordinator = *endpoint;
  if (curve_key_file.empty() != coordinator_key_file.empty()) {
    std::fprintf(stderr, "drover-worker: --curve-key and --coordinator-key go together\n");
    return 2;
  }
  if (!curve_key_file.empty()) {
    absl::StatusOr<drover::CurveKeyPair> pair = drover::ReadKeyPair(curve_key_file);
    absl::StatusOr<std::string> server = drover::ReadPublicKey(coordinator_key_file);
    if (!pair.ok() || !server.ok()) {
      std::fprintf(stderr, "drover-worker: %s\n",
                   std::string((pair.ok() ? server.status() : pair.status()).message()).c_str());
      return 2;
    }
    options.curve_public_key = pair->public_key;
    options.curve_secret_key = pair->secret_key;
    options.coordinator_public_key = *server;
  }

  // An I/O engine with thousands of HTTP requests in flight holds a socket
  // each: the soft limit on open files (often 1024) goes up to the hard one.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  if (python != "none") {
    if (drover::PythonRunsCalls(python)) {
      options.python = python;
    } else {
      drover::LogInfo(absl::StrCat("no Python calls: '", python,
                                   "' does not run or cannot import cloudpickle (install python3-cloudpickle, "
                                   "or give --python)"));
    }
  }

  // Before any thread starts: a reaper that kills running tasks if this worker dies.
  drover::ProcessGroups groups;
  if (absl::Status started = groups.Start(); !started.ok()) {
    drover::LogWarning(absl::StrCat("no task reaper (", started.message(),
                                    "): a crash of this worker could leave tasks running"));
  }
  drover::Worker worker(options, &registry, &groups);
  g_worker = &worker;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);  // a dead reaper must not take the worker with it
  absl::Status status = worker.Run();
  g_worker = nullptr;
  if (status.code() == absl::StatusCode::kInternal) {
    drover::LogError(std::string(status.message()));
    std::fflush(nullptr);
    _exit(1);  // kernels still running on detached threads
  }
  if (!status.ok()) {
    drover::LogError(std::string(status.message()));
    return 1;
  }
  return 0;
}
