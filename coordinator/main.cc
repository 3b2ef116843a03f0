// drover-coordinator: parses flags, binds the worker (ZeroMQ) and client
// (gRPC) ports, and runs the loop until SIGTERM/SIGINT or a Shutdown call.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/mutex.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/curve.h"
#include "common/endpoint.h"
#include "common/daemon_flags.h"
#include "common/log.h"
#include "common/owned_dirs.h"
#include "common/token.h"
#include "coordinator/client_service.h"
#include "coordinator/coordinator_loop.h"
#include "coordinator/journal.h"
#include "coordinator/dashboard.h"
#include "coordinator/metrics.h"
#include "coordinator/result_store.h"

namespace {

std::atomic<bool> stop_requested{false};

// The first request wins; later ones (a second signal, another Shutdown call) are ignored.
void RequestStop(absl::Notification* stop) {
  if (!stop_requested.exchange(true)) stop->Notify();
}

// --keep-finished: absl's durations ("12h", "90s") plus days ("7d"); "0" is zero (keep).
std::optional<absl::Duration> ParseKeepFinished(const std::string& text) {
  absl::Duration duration;
  double days = 0;
  if (absl::EndsWith(text, "d") && absl::SimpleAtod(text.substr(0, text.size() - 1), &days) && days >= 0) {
    return absl::Hours(24 * days);
  }
  if (text == "0") return absl::ZeroDuration();
  if (absl::ParseDuration(text, &duration) && duration >= absl::ZeroDuration()) return duration;
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are taken by one thread with sigwait, so no handler runs inside
  // gRPC or ZeroMQ. Blocked first of all: every thread started later (gRPC
  // starts some as soon as credentials are made) inherits the mask, so a
  // SIGTERM is never delivered to one of them and its default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Lock-order checking is for tests; it costs time on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // One malloc arena, so malloc_trim (after a forget, a large submit or many
  // results) gives back everything freed: glibc trims only the main arena's
  // top, and a job's items freed into a thread's arena often end there and
  // stayed (up to 47 MB after forgetting 2 M items). Threads still cache small
  // blocks on their own (tcache); the throughput cost is in PERFORMANCE.md.
  mallopt(M_ARENA_MAX, 1);
  CLI::App app{
      "drover-coordinator: keeps drover's jobs, splits them into chunks and hands them to workers.\n"
      "Workers connect to the worker address (ZeroMQ); the `drover` CLI talks to the client\n"
      "address (gRPC). Both listen on loopback unless told otherwise."};
  std::string worker_address = absl::StrCat("127.0.0.1:", drover::kDefaultWorkerPort);
  std::string client_address = absl::StrCat("127.0.0.1:", drover::kDefaultClientPort);
  double heartbeat_seconds = 1.0;
  double worker_timeout_seconds = 5.0;
  int ready_fd = -1;
  int max_message_mib = 64;
  std::string state_dir;
  drover::SchedulerOptions options;
  std::string token_file;
  std::string curve_key_file;
  std::string authorized_keys_file;
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  bool insecure = false;
  bool no_auth = false;
  bool verbose = false;
  app.add_option("--listen-workers", worker_address,
                 "where workers connect: HOST:PORT or a ZeroMQ endpoint (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--listen-clients", client_address,
                 "where clients connect (gRPC): HOST:PORT or unix:PATH (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--heartbeat", heartbeat_seconds, "seconds between heartbeats to and from workers")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 60.0));
  app.add_option("--worker-timeout", worker_timeout_seconds,
                 "seconds of silence after which a worker is lost and its chunks move to others")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--state-dir", state_dir,
                 "keep a journal of jobs and the results of `drover submit` jobs in DIR and restore "
                 "them at start, so a restart (even after kill -9) loses nothing; without it jobs are "
                 "in memory and results in a private temporary directory removed at exit");
  std::string keep_finished = "7d";
  app.add_option("--keep-finished", keep_finished,
                 "forget a finished job (and its results) this long after it finished: 7d, 12h, 30m, "
                 "90s; 0 keeps jobs until `drover forget`")
      ->capture_default_str();
  app.add_option("--token-file", token_file,
                 "clients must send the token in FILE (or in $DROVER_TOKEN) with every call; "
                 "required to listen for clients beyond loopback")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", tls_cert_file, "serve clients over TLS with this certificate (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key_file, "the TLS certificate's private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", tls_client_ca_file,
                 "mutual TLS: clients must show a certificate signed by this CA (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--curve-key", curve_key_file,
                 "require workers to connect with CURVE (encrypted and authenticated): this "
                 "coordinator's key pair from `drover keygen`; needs --authorized-keys")
      ->check(CLI::ExistingFile);
  app.add_option("--authorized-keys", authorized_keys_file,
                 "the workers' public keys (.pub lines) this coordinator admits")
      ->check(CLI::ExistingFile);
  app.add_flag("--no-auth", no_auth,
               "on loopback with no --token-file: accept clients without a token (any local user could "
               "then run commands as the workers' user). By default such a coordinator makes a token and "
               "keeps it in ~/.local/state/drover/tokens/HOST:PORT (0600), where your `drover` finds it");
  app.add_flag("--insecure", insecure,
               "allow listening beyond loopback without credentials (anyone who reaches the "
               "ports can run commands here)");
  app.add_option("--max-items", options.item_limits.max_items, "most items a job may list (ranges are not counted)")
      ->capture_default_str();
  app.add_option("--max-item-bytes", options.item_limits.max_item_bytes, "largest item a job may list, in bytes")
      ->capture_default_str();
  app.add_option("--max-command-bytes", options.max_command_bytes,
                 "largest command (arguments and environment together), in bytes")
      ->capture_default_str();
  int max_worker_message_mib = 1024;
  app.add_option("--max-worker-message-mib", max_worker_message_mib,
                 "largest message accepted from a worker, in MiB (a peer sending more is disconnected)")
      ->capture_default_str()
      ->check(CLI::Range(1, 2047));
  app.add_option("--max-message-mib", max_message_mib, "largest client request accepted, in MiB")
      ->capture_default_str()
      ->check(CLI::Range(1, 2000));
  int submit_memory_mib = 1024;
  app.add_option("--submit-memory-mib", submit_memory_mib,
                 "memory the submits being read at one time may take together, in MiB (a submit is "
                 "measured before it is parsed: one needing more is refused, others wait for room)")
      ->capture_default_str()
      ->check(CLI::Range(16, 1 << 20));
  app.add_option("--ready-fd", ready_fd,
                 "once listening, write 'workers=ENDPOINT clients=ADDRESS' and a newline to this "
                 "file descriptor and close it (used by `drover run --local`)");
  std::string metrics_address;
  app.add_option("--metrics", metrics_address,
                 "serve Prometheus metrics on http://HOST:PORT/metrics (a PORT alone means 127.0.0.1:PORT); "
                 "scrapers give the client token as the HTTP Basic password (any user name), as clients do; "
                 "beyond loopback a token is required (or --insecure)");
  std::string dashboard_address;
  app.add_option("--dashboard", dashboard_address,
                 "serve a live web dashboard (workers, jobs, throughput, failed tasks) on http://HOST:PORT/ (a "
                 "PORT alone means 127.0.0.1:PORT); the browser asks for the client token as the password (any "
                 "user name); beyond loopback a token is required (or --insecure)");
  app.add_flag("-v,--verbose", verbose, "log debug messages");
  if (std::optional<int> exit_code = drover::ParseDaemonFlags(app, argc, argv)) return *exit_code;
  drover::InitLogging("coordinator", verbose ? drover::LogLevel::kDebug : drover::LogLevel::kInfo);
  drover::RouteProtobufLogs();
  if (worker_timeout_seconds < 3 * heartbeat_seconds) {
    std::fprintf(stderr, "drover-coordinator: --worker-timeout (%gs) must be at least 3 x --heartbeat (%gs)\n",
                 worker_timeout_seconds, heartbeat_seconds);
    return 2;
  }

  absl::StatusOr<std::string> zmq_endpoint =
      drover::ToZmqEndpoint(worker_address, drover::kDefaultWorkerPort);
  absl::StatusOr<std::string> grpc_address =
      drover::ToGrpcTarget(client_address, drover::kDefaultClientPort);
  if (!zmq_endpoint.ok() || !grpc_address.ok()) {
    std::fprintf(stderr, "drover-coordinator: %s\n",
                 std::string((zmq_endpoint.ok() ? grpc_address.status() : zmq_endpoint.status()).message()).c_str());
    return 2;
  }
  absl::StatusOr<std::string> token = drover::ReadToken(token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "drover-coordinator: %s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  if (curve_key_file.empty() != authorized_keys_file.empty()) {
    std::fprintf(stderr, "drover-coordinator: --curve-key and --authorized-keys go together\n");
    return 2;
  }
  std::optional<drover::CurveKeyPair> curve_key;
  std::set<std::string> authorized_keys;
  if (!curve_key_file.empty()) {
    absl::StatusOr<drover::CurveKeyPair> pair = drover::ReadKeyPair(curve_key_file);
    absl::StatusOr<std::set<std::string>> keys = drover::ReadAuthorizedKeys(authorized_keys_file);
    if (!pair.ok() || !keys.ok()) {
      std::fprintf(stderr, "drover-coordinator: %s\n",
                   std::string((pair.ok() ? keys.status() : pair.status()).message()).c_str());
      return 2;
    }
    curve_key = *pair;
    authorized_keys = *std::move(keys);
  }
  // drover runs commands: nothing beyond loopback without credentials, unless asked.
  std::vector<std::string> exposed;
  if (!drover::IsLoopbackAddress(*zmq_endpoint) && !curve_key) {
    exposed.push_back(absl::StrCat(*zmq_endpoint, " (workers: no --curve-key)"));
  }
  if (tls_cert_file.empty() != tls_key_file.empty() || (!tls_client_ca_file.empty() && tls_cert_file.empty())) {
    std::fprintf(stderr, "drover-coordinator: --tls-cert and --tls-key go together (and --tls-client-ca needs them)\n");
    return 2;
  }
  std::shared_ptr<grpc::ServerCredentials> client_credentials = grpc::InsecureServerCredentials();
  if (!tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = drover::ReadWholeFile(tls_cert_file);
    absl::StatusOr<std::string> key = drover::ReadWholeFile(tls_key_file);
    absl::StatusOr<std::string> client_ca =
        tls_client_ca_file.empty() ? absl::StatusOr<std::string>("") : drover::ReadWholeFile(tls_client_ca_file);
    for (const auto* read : {&cert, &key, &client_ca}) {
      if (!read->ok()) {
        std::fprintf(stderr, "drover-coordinator: %s\n", std::string(read->status().message()).c_str());
        return 2;
      }
    }
    grpc::SslServerCredentialsOptions tls(tls_client_ca_file.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = *client_ca;
    tls.pem_key_cert_pairs.push_back({*key, *cert});
    client_credentials = grpc::SslServerCredentials(tls);
  }
  for (auto [address, what] : {std::pair{&metrics_address, "metrics"}, std::pair{&dashboard_address, "dashboard"}}) {
    if (!address->empty() && address->find(':') == std::string::npos) *address = absl::StrCat("127.0.0.1:", *address);
    if (!address->empty() && !drover::IsLoopbackAddress(*address) && token->empty()) {
      exposed.push_back(absl::StrCat(*address, " (", what, ": no --token-file)"));
    }
  }
  // Clients prove who they are with a token or a client certificate (mutual TLS).
  if (!drover::IsLoopbackAddress(*grpc_address) && token->empty() && tls_client_ca_file.empty()) {
    exposed.push_back(absl::StrCat(*grpc_address, " (clients: no --token-file or --tls-client-ca)"));
  }
  if (!drover::IsLoopbackAddress(*grpc_address) && tls_cert_file.empty() && insecure == false && exposed.empty()) {
    drover::LogWarning(absl::StrCat("clients on ", *grpc_address,
                                    " are served without TLS: the token travels in clear text (--tls-cert)"));
  }
  if (!exposed.empty() && !insecure) {
    std::fprintf(stderr,
                 "drover-coordinator: refusing to listen beyond loopback without credentials on %s.\n"
                 "Anyone who reaches such a port could run commands here or join as a worker. Give "
                 "clients a token (--token-file) and workers CURVE keys (--curve-key, "
                 "--authorized-keys; see `drover keygen`), or pass --insecure on a network you trust.\n",
                 absl::StrJoin(exposed, ", ").c_str());
    return 2;
  }
  for (const std::string& what : exposed) {
    drover::LogWarning(absl::StrCat("--insecure: listening without credentials on ", what,
                                    "; anyone who reaches it can run commands here"));
  }

  if (std::optional<absl::Duration> kept = ParseKeepFinished(keep_finished)) {
    options.keep_finished = *kept;
  } else {
    std::fprintf(stderr, "--keep-finished: '%s' is not a duration (e.g. 7d, 12h, 30m, 90s, 0)\n",
                 keep_finished.c_str());
    return 2;
  }
  options.heartbeat_interval = absl::Seconds(heartbeat_seconds);
  options.max_worker_message_bytes = static_cast<int64_t>(max_worker_message_mib) << 20;
  options.worker_timeout = absl::Seconds(worker_timeout_seconds);
  std::unique_ptr<drover::Journal> journal;
  std::vector<drover::v1::JournalRecord> records;
  if (!state_dir.empty()) {
    absl::StatusOr<std::unique_ptr<drover::Journal>> opened = drover::Journal::Open(state_dir, &records);
    if (!opened.ok()) {
      drover::LogError(absl::StrCat("--state-dir: ", opened.status().message()));
      return 1;
    }
    journal = *std::move(opened);
    absl::StatusOr<uint64_t> instance = drover::LoadOrCreateInstance(state_dir);
    if (!instance.ok()) {
      drover::LogError(absl::StrCat("--state-dir: ", instance.status().message()));
      return 1;
    }
    options.instance = *instance;
  } else {
    options.instance = absl::Uniform<uint64_t>(absl::BitGen(), 1, UINT64_MAX);
  }
  // Kept results: in the state dir, or else in a private directory removed at exit.
  std::string private_results_dir;
  absl::Cleanup remove_private_results = [&private_results_dir] {
    std::error_code ignored;
    if (!private_results_dir.empty()) std::filesystem::remove_all(private_results_dir, ignored);
  };
  std::string results_dir = state_dir + "/results";
  if (state_dir.empty()) {
    const char* tmp_env = getenv("TMPDIR");
    const std::string tmp = tmp_env != nullptr && *tmp_env != '\0' ? tmp_env : "/tmp";
    drover::SweepStaleDirs(tmp, "drover-results-");  // of coordinators killed before they could clean up
    std::string pattern = tmp + "/drover-results-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      drover::LogError(absl::StrCat("cannot make a directory for results like ", pattern, ": ", strerror(errno)));
      return 1;
    }
    results_dir = private_results_dir = pattern;
    if (absl::Status claimed = drover::ClaimDir(results_dir); !claimed.ok()) {
      drover::LogError(claimed.ToString());
      return 1;
    }
  }
  absl::StatusOr<std::unique_ptr<drover::ResultStore>> results =
      drover::ResultStore::Open(results_dir, /*durable=*/!state_dir.empty());
  if (!results.ok()) {
    drover::LogError(absl::StrCat("--state-dir: ", results.status().message()));
    return 1;
  }
  drover::LogInfo(absl::StrCat("kept results go to ", results_dir,
                               private_results_dir.empty() ? "" : " (removed when this coordinator stops)"));
  drover::CoordinatorLoop loop(options, journal.get(), results->get());
  if (curve_key) {
    loop.RequireCurve(curve_key->secret_key, authorized_keys);
    drover::LogInfo(absl::StrCat("workers must use CURVE; ", authorized_keys.size(), " key(s) authorized"));
  }
  if (journal != nullptr) loop.Restore(records);
  records.clear();
  absl::StatusOr<std::string> bound = loop.Bind(*zmq_endpoint);
  if (!bound.ok()) {
    drover::LogError(std::string(bound.status().message()));
    return 1;
  }

  // Secure by default on one machine: with no token and no client certificates,
  // a loopback coordinator makes a token for the same user's clients.
  const bool default_token = token->empty() && tls_client_ca_file.empty() && !no_auth &&
                             !absl::StartsWith(*grpc_address, "unix:");
  if (default_token) {
    // With a state dir the token survives restarts (clients waiting on a job keep theirs).
    const std::string kept = state_dir.empty() ? "" : state_dir + "/client-token";
    absl::StatusOr<std::string> old = kept.empty() ? absl::NotFoundError("") : drover::ReadToken(kept);
    *token = old.ok() ? *old : drover::NewToken();
    if (!kept.empty() && !old.ok()) {
      if (absl::Status written = drover::WriteDefaultToken(kept, *token); !written.ok()) {
        drover::LogError(absl::StrCat("--state-dir: ", written.message()));
        return 1;
      }
    }
  }
  if (no_auth && token->empty()) {
    drover::LogWarning("--no-auth: any local user can submit jobs, which run as the workers' user");
  }

  absl::Notification stop;
  drover::ClientServiceOptions service_options;
  service_options.token = *token;
  service_options.item_limits = options.item_limits;
  service_options.submit_memory_bytes = static_cast<uint64_t>(submit_memory_mib) << 20;
  service_options.spool_dir = results_dir;
  drover::ClientService service(&loop, [&stop] { RequestStop(&stop); }, std::move(service_options));
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(*grpc_address, client_credentials, &grpc_port);
  builder.SetMaxReceiveMessageSize(max_message_mib << 20);
  // gRPC sets SO_REUSEPORT by default: a second coordinator on the same port
  // would then share it, each answering some calls. Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (grpc_port == 0 && !absl::StartsWith(*grpc_address, "unix:"))) {
    drover::LogError(absl::StrCat("cannot listen for clients on ", *grpc_address,
                                  " (address in use or not valid)"));
    return 1;
  }
  std::string client_listen = *grpc_address;
  if (!absl::StartsWith(client_listen, "unix:")) {
    client_listen = absl::StrCat(client_listen.substr(0, client_listen.rfind(':')), ":", grpc_port);
  }
  std::string default_token_path;
  if (default_token) {
    default_token_path = drover::DefaultTokenPath(client_listen);
    const std::string token_dir = std::filesystem::path(default_token_path).parent_path().string();
    drover::DirectoryLock sweeping(token_dir);
    // Token files of coordinators that died without removing theirs (SIGKILL).
    if (!default_token_path.empty()) drover::SweepStaleOwnedFiles(token_dir);
    absl::Status written = default_token_path.empty()
                               ? absl::UnavailableError("neither $XDG_STATE_HOME nor $HOME is set")
                               : drover::WriteDefaultToken(default_token_path, *token);
    if (written.ok()) {
      const std::string owner = default_token_path + drover::kOwnerSuffix;
      unlink(owner.c_str());  // a dead predecessor's on this address
      if (absl::Status claimed = drover::ClaimPath(owner); !claimed.ok()) drover::LogWarning(claimed.ToString());
    }
    if (!written.ok()) {
      drover::LogError(absl::StrCat("cannot keep a token for clients (", written.message(),
                                    "): give --token-file, or --no-auth to accept any local user"));
      return 2;
    }
    drover::LogInfo(absl::StrCat("clients need the token in ", default_token_path,
                                 " (this user's `drover` finds it; --no-auth turns this off)"));
  }
  std::unique_ptr<drover::MetricsServer> metrics;
  if (!metrics_address.empty()) {
    absl::StatusOr<std::unique_ptr<drover::MetricsServer>> started =
        drover::MetricsServer::Start(metrics_address, &loop, *token);
    if (!started.ok()) {
      drover::LogError(std::string(started.status().message()));
      return 1;
    }
    metrics = *std::move(started);
    drover::LogInfo(absl::StrCat("metrics on http://", metrics->address(), "/metrics",
                                 token->empty() ? "" : " (the client token is the HTTP Basic password)"));
  }
  std::unique_ptr<drover::DashboardServer> dashboard;
  if (!dashboard_address.empty()) {
    absl::StatusOr<std::unique_ptr<drover::DashboardServer>> started =
        drover::DashboardServer::Start(dashboard_address, &loop, *token);
    if (!started.ok()) {
      drover::LogError(std::string(started.status().message()));
      return 1;
    }
    dashboard = *std::move(started);
    drover::LogInfo(absl::StrCat("dashboard on http://", dashboard->address(), "/",
                                 token->empty() ? "" : " (the client token is the password)"));
  }
  drover::LogInfo(absl::StrCat("listening for workers on ", *bound, " and clients on ",
                               client_listen,
                               journal != nullptr ? absl::StrCat("; journal ", journal->path())
                                                  : std::string("; state is kept in memory only")));
  if (ready_fd >= 0) {
    std::string line = absl::StrCat("workers=", *bound, " clients=", client_listen, "\n");
    ssize_t ignored = write(ready_fd, line.data(), line.size());
    (void)ignored;
    close(ready_fd);
  }

  std::thread signal_thread([&] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    if (!stop.HasBeenNotified()) {
      drover::LogInfo(absl::StrCat("got signal ", signal_number, "; stopping"));
    }
    RequestStop(&stop);
  });
  std::thread loop_thread([&] { loop.Run(); });

  stop.WaitForNotification();
  metrics.reset();  // no scrape waits on a stopped loop
  dashboard.reset();
  loop.Stop();
  loop_thread.join();
  drover::LogDebug("loop stopped; stopping the gRPC server");
  // Calls in flight may finish: the reply to a Shutdown call goes out (were it
  // cancelled, its client would report an error for a shutdown that happened),
  // and streams (a watcher, results) end as they see the loop stopped. What is
  // still open after 2 s is cancelled.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  drover::LogDebug("gRPC server stopped");
  // Wake the signal thread if it is still waiting.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (!default_token_path.empty()) {  // it dies with this coordinator
    unlink(default_token_path.c_str());
    unlink((default_token_path + drover::kOwnerSuffix).c_str());
  }
  drover::LogInfo("stopped");
  return 0;
}
