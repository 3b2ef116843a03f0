// The `drover` CLI's subcommands, each a function from parsed options to an
// exit code. cli.cc parses the command line and calls these.
#ifndef DROVER_CLIENT_COMMANDS_H_
#define DROVER_CLIENT_COMMANDS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"
#include "client/job_options.h"

namespace drover {

// Exit codes of `drover`.
enum ExitCode : int {
  kExitOk = 0,           // every task succeeded
  kExitTaskFailed = 1,   // some task failed, or the job was cancelled
  kExitUsage = 2,        // the command line (or the job it describes) is wrong
  kExitError = 3,        // the coordinator could not be reached, or another error
  kExitInterrupted = 130 // Ctrl-C
};

struct CommonOptions {
  std::string coordinator;  // client address of the coordinator
  std::string token;        // from --token-file or $DROVER_TOKEN
  std::string token_source; // where it came from (for errors)
  bool tls = false;         // --tls, or implied by --ca / --client-cert
  std::string ca_pem, client_cert_pem, client_key_pem;
  bool json = false;
};

struct RunOptions {
  JobOptions job;
  bool local = false;
  int local_workers = 0;               // 0: one per core
  std::vector<std::string> plugins;    // local mode: --plugin for every worker
  bool unordered = false;
  // The progress bar on stderr: kAuto draws it when stderr is a terminal
  // (clearing it around results when stdout is the same terminal).
  enum class Progress { kAuto, kAlways, kNever };
  Progress progress = Progress::kAuto;
  std::string joblog;  // --joblog FILE: GNU Parallel's joblog of the tasks
  std::string output_dir;           // --output-dir DIR: each task's stdout/stderr in files there
  std::string output_name = "{#}";  // --output-name: the files' name before .out/.err
};

int SubmitCommand(const CommonOptions& common, const JobOptions& job);
int StatusCommand(const CommonOptions& common, uint64_t job_id);
int WaitCommand(const CommonOptions& common, uint64_t job_id, bool quiet);
int ResultsCommand(const CommonOptions& common, uint64_t job_id, bool unordered);
int LogsCommand(const CommonOptions& common, uint64_t job_id, uint64_t task_number);
int CancelCommand(const CommonOptions& common, uint64_t job_id);
// `drover forget`: finished jobs by id, and those finished at least
// `finished_older_than` ago (a duration, or "" for none).
int ForgetCommand(const CommonOptions& common, const std::vector<uint64_t>& job_ids,
                  const std::string& finished_older_than);
int JobsCommand(const CommonOptions& common);
// Stops the coordinator after telling its workers to exit (they do not wait
// for a new one).
int ShutdownCommand(const CommonOptions& common);
int WorkersCommand(const CommonOptions& common);
// `drover top`: redraws a view of workers and jobs every `interval_seconds`
// until Ctrl-C; `once`: one frame.
int TopCommand(const CommonOptions& common, double interval_seconds, bool once);

// `drover retry JOB`: submits a job of JOB's failed and/or unfinished tasks
// and prints its id.
int RetryCommand(const CommonOptions& common, uint64_t job_id, bool failed, bool unfinished);

struct TasksOptions {
  std::string state;       // "" (all) or a TaskState's short name: failed, running...
  uint64_t from_task = 1;  // the first task number to list
  uint64_t limit = 0;      // at most this many tasks (0: all)
};
// `drover tasks JOB`: see tasks_command.cc.
int TasksCommand(const CommonOptions& common, uint64_t job_id, const TasksOptions& options);
int DrainCommand(const CommonOptions& common, const std::string& worker_id);
int RunCommand(const CommonOptions& common, const RunOptions& run);

// Shared by the commands.
// Prints "drover: MESSAGE" to stderr and returns the exit code for `status`
// (kExitUsage for kInvalidArgument/kNotFound/kFailedPrecondition, kExitInterrupted
// after Ctrl-C, else kExitError).
int Fail(const absl::Status& status);
// Connects and registers the client for Ctrl-C (held weakly: it may be destroyed at any time).
absl::StatusOr<std::shared_ptr<Client>> ConnectTo(const CommonOptions& common);
// Local mode: its own target and token, no TLS.
absl::StatusOr<std::shared_ptr<Client>> ConnectTo(const std::string& target, const std::string& token);

// Ctrl-C handling: a thread takes SIGINT/SIGTERM and cancels the calls of the
// registered client. Call InstallInterruptHandler() once at start-up, before
// other threads exist.
void InstallInterruptHandler();
void SetInterruptibleClient(const std::shared_ptr<Client>& client);  // nullptr to clear
bool Interrupted();

}  // namespace drover

#endif  // DROVER_CLIENT_COMMANDS_H_
