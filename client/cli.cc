// Implements cli.h with CLI11: one subcommand per verb, shared job options.
#include "client/cli.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "common/curve.h"
#include "common/grpc_codec.h"
#include "common/endpoint.h"
#include "common/token.h"

namespace drover {
namespace {

void AddJobOptions(CLI::App* command, JobOptions* job) {
  command->add_option("-k,--kernel", job->kernel,
                      "kernel to run on each item (e.g. sum_squares, echo); or give a command after --");
  command->add_option("items", job->items,
                      "the items, one task each (after ::: they may start with a dash)");
  command->add_option("--items", job->items, "the items, as another way to give them");
  command->add_option("--range", job->range, "the integers A, A+1, ..., B-1 as items (lazily, any size)");
  command->add_option("--array", job->array, "the integers A, A+STEP, ... up to B as items (A-B[:STEP])");
  command->add_option("--each-line", job->each_line, "each line of FILE is an item ('-' reads stdin)");
  command->add_option("--colsep", job->colsep,
                      "commands: split each item into columns at SEP (a plain string; \\t is a tab): {1}, "
                      "{2}, ... are the columns, and without placeholders each is an argument");
  command->add_flag("-0,--null", job->null_separated,
                    "with --each-line: items end with a NUL byte, not a newline (find -print0, "
                    "parallel -0); they may then hold newlines");
  command->add_option("--chunk", job->chunk,
                      "items per chunk (a chunk goes to one worker at a time). 'auto', the default: the "
                      "coordinator measures the job's time per item and cuts chunks of about 25 ms, "
                      "smaller towards the end so the tail is short; a number K fixes it (gRPC jobs: "
                      "default --concurrency/16 within 1..16)")
      ->capture_default_str();
  command->add_option("--priority", job->priority,
                      "jobs with a higher priority get free slots first; jobs of equal priority share "
                      "the workers (default 0)");
  command->add_option("--max-parallel", job->max_parallel,
                      "at most N of this job's tasks run at once over the whole cluster (a fair neighbour "
                      "on a shared cluster; gRPC jobs have --concurrency and --rate); 0: no limit")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--reduce", job->reduce, "combine integer outputs: sum, min, max or count (exact)")
      ->check(CLI::IsMember({"sum", "min", "max", "count"}));
  command->add_option("--name", job->name, "a name for the job, shown by `drover jobs`");
  command->add_option("--idempotency-key", job->idempotency_key,
                      "submitting again with the same KEY (up to 128 bytes) gives the job the coordinator already "
                      "has for it, e.g. a batch script run again after a restart with --state-dir");
  command->add_option("--require", job->require,
                      "run only on workers with this label (KEY or KEY=VALUE; one per --require, "
                      "repeat it for more; see drover-worker --label); every worker also has worker=ID "
                      "and host=HOST")
      ->allow_extra_args(false);
  command->add_option("--retries", job->retries,
                      "run a failed task again up to N times, with backoff; a chunk whose worker is "
                      "lost is sent again at most 1+max(N,2) times in all (N at most 100)")
      ->check(CLI::Range(0, 100));
  command->add_option("--timeout", job->timeout,
                      "per-task limit (30s, 500ms, 2m): a command gets SIGTERM to its process group, "
                      "SIGKILL 2s later; a kernel that overruns is failed when it returns");
  command->add_option("--cwd", job->cwd,
                      "commands: the tasks' working directory (default: the directory you run drover in, which "
                      "workers on other machines need to see too; '-': the worker's own)");
  command->add_option("--env", job->env, "commands: K=V added to the environment (one per --env, repeatable)")
      ->allow_extra_args(false);
  command->add_option("--max-output", job->max_output,
                      "commands: bytes kept per stream and task (default 1M); the rest is dropped "
                      "and the task marked truncated");
  command->add_option("--cpus", job->cpus, "commands: slots one task needs (default 1)");
  command->add_option("--items-from", job->items_from,
                      "the items are the outputs of job JOB's successful tasks, in order (waits for it)");
  command->add_option("--grpc", job->grpc_target,
                      "gRPC jobs: call the server at HOST:PORT once per item (on the workers' I/O engines, "
                      "not their CPU slots)");
  command->add_flag("--http", job->http,
                    "HTTP jobs: each item is a URL to GET (or, with --url, a body to send there), on the workers' "
                    "I/O engines with libcurl; --concurrency, --rate, --retries (connection errors, 429, 5xx, "
                    "honouring Retry-After), --timeout (whole request, default 60s) and -H apply; a status "
                    "outside --accept-status fails the task");
  command->add_option("-X,--request", job->http_method, "HTTP: the method (GET; POST with --url)");
  command->add_option("--url", job->http_url, "HTTP: send each item as the body of a request to URL");
  command->add_option("--connect-timeout", job->connect_timeout, "HTTP: most time to connect (e.g. 3s)");
  command->add_option("--max-body", job->max_body,
                      "HTTP: largest response body (default 1M, as --max-output; at most 1G); a larger one fails the task");
  command->add_option("--accept-status", job->accept_status,
                      "HTTP: statuses that succeed, e.g. 200-299,404 (default 200-299)");
  command->add_option("--max-redirects", job->max_redirects, "HTTP: redirects followed (default 10; 0: none)");
  command->add_option("--http-ca", job->http_ca, "HTTP: trust this CA (PEM) instead of the system's");
  command->add_option("--method", job->method, "gRPC: the method, /package.Service/Method");
  command->add_option("--proto-set", job->proto_set,
                      "gRPC: the method's descriptors (protoc --include_imports --descriptor_set_out=FILE); "
                      "default: ask the server by reflection");
  command->add_flag("--raw", job->raw, "gRPC: items are serialized requests and outputs raw responses, not JSON");
  command->add_option("--deadline", job->deadline,
                      absl::StrCat("gRPC: per-call deadline (5s, 200ms; default ",
                                   absl::FormatDuration(kDefaultGrpcDeadline),
                                   "; 'none' lets a call wait for ever); a retry waits for the server "
                                   "to come back within it"));
  command->add_option("--concurrency", job->concurrency, absl::StrCat("gRPC and HTTP: calls (requests) in flight per worker (default ", kDefaultGrpcConcurrency, ")"))
      ->check(CLI::Range(1u, 1u << 20));
  command->add_option("--rate", job->rate, "gRPC and HTTP: calls (requests) per second for the whole job, over all workers")
      ->check(CLI::PositiveNumber);
  command->add_option("--max-response", job->max_response,
                      "gRPC: largest response of one call (a server-streaming call: all its responses), e.g. 64K; "
                      "default 16M, at most 1G. A larger one fails the call without a retry. Until the job's first "
                      "results show their size, it has at most 256 MiB / SIZE calls in flight (16 at 16M): a "
                      "smaller SIZE starts more at once");
  command->add_flag("--at-most-once", job->at_most_once,
                    "gRPC: never make a call twice (for methods that are not idempotent): a call that may have "
                    "reached the server and has no answer (its worker was lost, its deadline passed) fails as "
                    "'outcome unknown'. Default: at-least-once (retries and lost workers repeat calls; each call "
                    "carries drover-job, drover-task and drover-attempt metadata to deduplicate with)");
  command->add_option("--lb", job->lb,
                      "gRPC: spread calls over every address of the target (round_robin, e.g. with "
                      "ipv4:10.0.0.1:50051,10.0.0.2:50051 or a DNS name) or use the first that works (pick_first, "
                      "the default)");
  command->add_option("-H,--header", job->headers,
                      "gRPC: metadata key:value sent with every call; HTTP: a header (repeatable)")
      ->allow_extra_args(false);
  command->add_flag("--grpc-tls", job->grpc_tls, "gRPC: TLS to the target (system CAs unless --grpc-ca)");
  command->add_option("--grpc-ca", job->grpc_ca, "gRPC: trust this CA (PEM) for the target; implies --grpc-tls");
  command->footer(
      "Commands: drover run [ITEMS | ::: ITEMS | --range | --array | --each-line] [OPTIONS] -- CMD [ARGS]\n"
      "  In CMD and ARGS, {} is the item, {#} the task number (from 1), {%} the slot on its worker,\n"
      "  {.} {/} {//} {/.} the item without extension, its basename, directory, basename without\n"
      "  extension (as in GNU Parallel); without them the item is added as the last argument.\n"
      "  ::: A B ::: C D runs every combination ({1} {2} are the columns), :::+ pairs with the source\n"
      "  before, :::: FILE reads a source from FILE. No shell is involved (write sh -c '...' for one).\n"
      "  Tasks see DROVER_JOB_ID, DROVER_TASK_ID, DROVER_ITEM and DROVER_WORKER.\n"
      "gRPC calls: drover run --grpc HOST:PORT --method /pkg.Service/Method [--proto-set FILE] ITEMS...\n"
      "  Each item is one request in JSON (protobuf's JSON mapping); each result is the response as\n"
      "  JSON (a server-streaming method's responses as a JSON array). --retries N retries UNAVAILABLE,\n"
      "  DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED with jittered exponential backoff. --json adds the\n"
      "  gRPC code, message, latency, attempts and worker of each call.");
}

// Takes `-- COMMAND...` and `::: ITEMS...` out of the arguments before CLI11
// sees them, so items and commands may contain anything (dashes included).
// Reads FILE's lines as one input source (`:::: FILE`).
absl::StatusOr<std::vector<std::string>> ReadSourceFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(":::: ", path, ": cannot open it"));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

// Splits argv into options (returned reversed, for CLI11), the input sources
// (`::: ITEMS`, `:::+ ITEMS` linked to the source before, `:::: FILE...` and
// `::::+ FILE` a source per file) and the command after `--`.
absl::StatusOr<std::vector<std::string>> SplitCommandAndItems(int argc, char** argv,
                                                              std::vector<std::string>* command,
                                                              std::vector<JobOptions::Source>* sources,
                                                              bool* had_separator) {
  std::vector<std::string> rest;
  int i = 1;
  enum { kOptions, kItems, kFiles } reading = kOptions;
  bool next_linked = false;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      *had_separator = true;
      ++i;
      break;
    }
    if (arg == ":::" || arg == ":::+") {
      reading = kItems;
      sources->push_back({{}, arg == ":::+"});
      continue;
    }
    if (arg == "::::" || arg == "::::+") {
      reading = kFiles;
      next_linked = arg == "::::+";
      continue;
    }
    if (reading == kItems) {
      sources->back().items.push_back(std::move(arg));
    } else if (reading == kFiles) {
      absl::StatusOr<std::vector<std::string>> lines = ReadSourceFile(arg);
      if (!lines.ok()) return lines.status();
      sources->push_back({*std::move(lines), next_linked});
      next_linked = false;
    } else {
      rest.push_back(std::move(arg));
    }
  }
  for (; i < argc; ++i) command->push_back(argv[i]);
  std::reverse(rest.begin(), rest.end());  // CLI11 parses a reversed vector
  return rest;
}

CLI::Option* AddJobId(CLI::App* command, uint64_t* job_id) {
  return command->add_option("job", *job_id, "the job's id (printed by `drover submit`)")->required();
}

// After a failed parse: the first word that is neither an option, an
// option's value, nor a command, if it comes before any command.
std::string UnknownCommand(const CLI::App& app, const std::vector<std::string>& args) {
  static const auto* kTakesValue =
      new std::set<std::string>{"-c", "--coordinator", "--ca", "--client-cert", "--client-key", "--token-file"};
  std::string previous;
  // `args` is reversed (CLI11 parses from the back): walk it in the user's order.
  for (auto it = args.rbegin(); it != args.rend(); previous = *it++) {
    const std::string& word = *it;
    if (word.empty() || word[0] == '-' || kTakesValue->contains(previous)) continue;
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->check_name(word)) return "";
    }
    return word;
  }
  return "";
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "drover: run many small tasks in parallel on one machine or many.\n"
      "Like Python's multiprocessing.Pool.map, beyond one host: a coordinator splits jobs into\n"
      "chunks and workers run them. Try:\n"
      "  drover run --local -j 4 --kernel sum_squares 10000000 10000000 10000000 10000000\n"
      "  drover run --local ::: a.txt b.txt -- wc -l {}\n"
      "Exit codes: 0 all tasks succeeded, 1 some task failed (or the job was cancelled),\n"
      "2 usage error, 3 the coordinator could not be reached (or another error), 130 Ctrl-C.",
      "drover"};
  app.require_subcommand(1);
  app.fallthrough();
  CommonOptions common;
  const char* env = std::getenv("DROVER_COORDINATOR");
  common.coordinator = env != nullptr && *env != '\0' ? env : absl::StrCat("127.0.0.1:", kDefaultClientPort);
  app.add_option("-c,--coordinator", common.coordinator,
                 "the coordinator's client address HOST[:PORT] (default: $DROVER_COORDINATOR or "
                 "127.0.0.1:7340)");
  app.add_flag("--json", common.json, "print JSON (one object per line)");
  std::string ca_file, client_cert_file, client_key_file;
  app.add_flag("--tls", common.tls, "talk TLS to the coordinator (system CAs unless --ca)");
  app.add_option("--ca", ca_file, "trust this CA (PEM) for the coordinator's certificate; implies --tls")
      ->check(CLI::ExistingFile);
  app.add_option("--client-cert", client_cert_file, "mutual TLS: this client's certificate (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--client-key", client_key_file, "mutual TLS: this client's private key (PEM)")
      ->check(CLI::ExistingFile);
  std::string token_file;
  app.add_option("--token-file", token_file,
                 "send the token in FILE to the coordinator (default: $DROVER_TOKEN, if set)")
      ->check(CLI::ExistingFile);

  JobOptions submit_job;
  CLI::App* submit = app.add_subcommand("submit", "submit a job and print its id; results are kept");
  AddJobOptions(submit, &submit_job);

  uint64_t job_id = 0;
  CLI::App* status = app.add_subcommand("status", "show a job's state and progress");
  AddJobId(status, &job_id);

  bool quiet = false;
  CLI::App* wait = app.add_subcommand(
      "wait", "wait for a job to finish, with a progress bar on a terminal (plain lines otherwise); "
              "exit code as for run");
  AddJobId(wait, &job_id);
  wait->add_flag("-q,--quiet", quiet, "no progress output");

  bool unordered = false;
  CLI::App* results = app.add_subcommand(
      "results", "print a job's results in input order as they become ready (waits for the job)");
  AddJobId(results, &job_id);
  results->add_flag("--unordered", unordered, "print in completion order instead");

  uint64_t task_number = 0;
  CLI::App* logs = app.add_subcommand("logs", "print one task's stdout and stderr (kept results)");
  AddJobId(logs, &job_id);
  logs->add_option("task", task_number, "the task number ({#}, from 1)")
      ->required()
      ->check(CLI::Validator([](std::string& text) { return text == "0" ? "tasks are numbered from 1" : ""; },
                             "TASK >= 1"));

  bool retry_failed = false, retry_unfinished = false;
  CLI::App* retry = app.add_subcommand(
      "retry", "submit a new job of a finished job's failed tasks and the tasks it never finished (cancelled), "
               "with the same command and options; prints its id (its task numbers {#} start from 1 again)");
  AddJobId(retry, &job_id);
  retry->add_flag("--failed", retry_failed, "only the failed tasks");
  retry->add_flag("--unfinished", retry_unfinished, "only the tasks that never finished");

  TasksOptions tasks_options;
  CLI::App* tasks = app.add_subcommand(
      "tasks", "list a job's tasks: state, worker, start time, duration, exit code and item, or the reason a "
               "task failed (a page at a time from the coordinator; --json for scripts)");
  AddJobId(tasks, &job_id);
  tasks->add_option("--state", tasks_options.state,
                    "only tasks in this state: queued, assigned (on a worker, not started), running, succeeded, "
                    "failed, done (results streamed, not kept), cancelled");
  tasks->add_option("--from", tasks_options.from_task, "start at this task number (default 1)")
      ->check(CLI::PositiveNumber);
  tasks->add_option("--limit", tasks_options.limit, "list at most N tasks (default: all)");

  CLI::App* cancel = app.add_subcommand("cancel", "cancel a job; workers drop its chunks");
  AddJobId(cancel, &job_id);

  std::vector<uint64_t> forget_ids;
  std::string finished_older_than;
  CLI::App* forget = app.add_subcommand(
      "forget", "remove finished jobs and their results from the coordinator (memory and disk); "
                "the coordinator also forgets jobs by itself after its --keep-finished (7 days)");
  forget->add_option("jobs", forget_ids, "ids of finished jobs");
  forget->add_option("--finished-older-than", finished_older_than,
                     "also every job that finished at least this long ago (e.g. 1h, 30m, 90s)");

  CLI::App* jobs = app.add_subcommand("jobs", "list jobs");
  CLI::App* shutdown = app.add_subcommand(
      "shutdown", "stop the coordinator and its workers (workers exit instead of waiting for a new coordinator)");
  CLI::App* workers = app.add_subcommand("workers", "list connected workers and their load");
  std::string drain_id;
  CLI::App* drain = workers->add_subcommand(
      "drain", "ask a worker to finish what it holds, take nothing new, then exit");
  drain->add_option("worker", drain_id, "the worker's id (the ID column of `drover workers`)")->required();
  CLI::App* top = app.add_subcommand(
      "top", "watch the coordinator: workers (busy slots, held chunks, I/O calls), jobs (progress, rate, ETA), "
             "redrawn in place until Ctrl-C");
  double top_interval = 1;
  bool top_once = false;
  top->add_option("--interval", top_interval, "seconds between redraws")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  top->add_flag("--once", top_once, "print one frame (rates over one interval, at most a second) and exit");

  std::string key_prefix;
  CLI::App* keygen = app.add_subcommand(
      "keygen", "write a CURVE key pair for a coordinator or a worker: PREFIX.key (secret) and "
                "PREFIX.pub (public), mode 0600");
  keygen->add_option("prefix", key_prefix, "path and name without extension, e.g. keys/worker1")->required();

  RunOptions run_options;
  CLI::App* run = app.add_subcommand(
      "run", "submit a job, print its results in input order as they arrive, exit 0 if all succeeded");
  AddJobOptions(run, &run_options.job);
  run->add_flag("--local", run_options.local,
                "start a private coordinator and workers on this machine for this job, and stop them after");
  run->add_option("-j,--workers", run_options.local_workers,
                  "with --local: worker processes (default: one per core)")
      ->check(CLI::Range(1, 1024));
  run->add_option("--plugin", run_options.plugins, "with --local: a kernel plugin for the workers (repeatable)")
      ->check(CLI::ExistingFile);
  run->add_flag("--unordered", run_options.unordered, "print results in completion order");
  run->add_option("--joblog", run_options.joblog,
                  "write a line per finished task to FILE in GNU Parallel's joblog format (Seq, Host, "
                  "Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command)");
  run->add_option("--output-dir", run_options.output_dir,
                  "write each task's stdout to DIR/NAME.out and its stderr (if any) to DIR/NAME.err on this "
                  "machine instead of printing the outputs (failures are still reported); DIR is made if needed");
  run->add_option("--output-name", run_options.output_name,
                  "NAME for --output-dir: {#} is the task number, {} its item made a safe file name "
                  "(default {#})");
  bool no_progress = false, bar = false;
  run->add_flag("--no-progress", no_progress, "no progress bar");
  run->add_flag("--bar", bar,
                "draw the progress bar on stderr even when it is not a terminal (by default it is drawn "
                "when stderr is a terminal)");

  std::vector<std::string> command;
  std::vector<JobOptions::Source> sources;
  bool had_separator = false;
  absl::StatusOr<std::vector<std::string>> split = SplitCommandAndItems(argc, argv, &command, &sources, &had_separator);
  if (!split.ok()) {
    std::fprintf(stderr, "drover: %s\n", std::string(split.status().message()).c_str());
    return kExitUsage;
  }
  std::vector<std::string> args = *std::move(split);
  const std::vector<std::string> given = args;  // parse() consumes `args`
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (std::string unknown = UnknownCommand(app, given); !unknown.empty()) {
      std::fprintf(stderr, "drover: unknown command '%s'; `drover --help` lists the commands\n", unknown.c_str());
      return kExitUsage;
    }
    if (app.get_subcommands().empty() && dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      std::fprintf(stderr, "drover: give a command, e.g. drover run --local ::: a b -- echo {}; "
                           "`drover --help` lists them\n");
      return kExitUsage;
    }
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if ((had_separator || !sources.empty()) && !submit->parsed() && !run->parsed()) {
    std::fprintf(stderr, "drover: '--' COMMAND and '::: ITEMS' go with submit and run\n");
    return kExitUsage;
  }
  if (had_separator && command.empty()) {
    std::fprintf(stderr, "drover: nothing after '--': give the command to run\n");
    return kExitUsage;
  }
  // GNU Parallel's order (`parallel echo ::: a b`) written after `--`.
  for (const std::string& word : command) {
    if (word == ":::" || word == ":::+" || word == "::::" || word == "::::+") {
      std::fprintf(stderr,
                   "drover: '%s' comes before '--': everything after '--' is the command (drover run ::: a b "
                   "-- echo)\n",
                   word.c_str());
      return kExitUsage;
    }
  }
  // One of run's or submit's options written among the items would silently
  // become an item (other words that start with a dash, --help too, are items).
  CLI::App* job_command = run->parsed() ? run : submit;
  for (const JobOptions::Source& source : sources) {
    for (const std::string& item : source.items) {
      if (item.size() < 2 || item[0] != '-') continue;
      const std::string name = item.substr(0, item.find('='));
      const CLI::Option* option = job_command->get_option_no_throw(name);
      if (option != nullptr && option != job_command->get_help_ptr()) {
        std::fprintf(stderr,
                     "drover: '%s' after ':::' would be an item; options go before ':::' (drover run %s ::: "
                     "ITEMS -- CMD), or give items that look like options with --each-line\n",
                     item.c_str(), item.c_str());
        return kExitUsage;
      }
    }
  }
  for (JobOptions* job : {&submit_job, &run_options.job}) {
    job->command = command;
    if (!sources.empty()) {  // the first source adds to the items given as arguments
      job->items.insert(job->items.end(), sources[0].items.begin(), sources[0].items.end());
      job->more_sources.assign(sources.begin() + 1, sources.end());
    }
  }
  absl::StatusOr<std::string> target = ToGrpcTarget(common.coordinator, kDefaultClientPort);
  if (!target.ok()) {
    std::fprintf(stderr, "drover: --coordinator: %s\n", std::string(target.status().message()).c_str());
    return kExitUsage;
  }
  common.coordinator = *target;
  absl::StatusOr<std::string> token = ReadToken(token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "drover: %s\n", std::string(token.status().message()).c_str());
    return kExitUsage;
  }
  common.token = *token;
  common.token_source = token_file.empty() ? "DROVER_TOKEN" : absl::StrCat("--token-file ", token_file);
  if (common.token.empty() && !absl::StartsWith(common.coordinator, "unix:")) {
    // A coordinator on this machine may have made a token for its user (see drover-coordinator --no-auth).
    common.token = FindDefaultToken(common.coordinator);
    common.token_source = DefaultTokenPath(common.coordinator);
  }
  if (client_cert_file.empty() != client_key_file.empty()) {
    std::fprintf(stderr, "drover: --client-cert and --client-key go together\n");
    return kExitUsage;
  }
  for (auto [file, pem] : {std::pair{&ca_file, &common.ca_pem}, std::pair{&client_cert_file, &common.client_cert_pem},
                           std::pair{&client_key_file, &common.client_key_pem}}) {
    if (file->empty()) continue;
    absl::StatusOr<std::string> text = ReadWholeFile(*file);
    if (!text.ok()) {
      std::fprintf(stderr, "drover: %s\n", std::string(text.status().message()).c_str());
      return kExitUsage;
    }
    *pem = *text;
    common.tls = true;
  }
  InstallInterruptHandler();
  if (no_progress && bar) {
    std::fprintf(stderr, "drover: --bar and --no-progress contradict each other: give one\n");
    return kExitUsage;
  }
  run_options.progress = no_progress ? RunOptions::Progress::kNever
                         : bar       ? RunOptions::Progress::kAlways
                                     : RunOptions::Progress::kAuto;
  if (run->parsed() && !run_options.local && run_options.local_workers > 0) {
    std::fprintf(stderr, "drover: -j/--workers is the number of workers of --local's private cluster; without "
                         "--local, the job runs on the coordinator's workers (start more workers to go faster; "
                         "--max-parallel N limits how many of its tasks run at once)\n");
    return kExitUsage;
  }

  if (keygen->parsed()) {
    // A fresh directory for the keys is made private (0700), as `mkdir -m 700` would.
    const std::filesystem::path dir = std::filesystem::path(key_prefix).parent_path();
    std::error_code error;
    if (!dir.empty() && !std::filesystem::exists(dir, error)) {
      std::filesystem::create_directories(dir, error);
      if (!error) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
      if (error) {
        std::fprintf(stderr, "drover: cannot create %s: %s\n", dir.c_str(), error.message().c_str());
        return kExitUsage;
      }
    }
    absl::StatusOr<CurveKeyPair> pair = WriteNewKeyPair(key_prefix);
    if (!pair.ok()) return Fail(pair.status());
    std::printf("wrote %s.key (keep it secret) and %s.pub: %s\n", key_prefix.c_str(), key_prefix.c_str(),
                pair->public_key.c_str());
    return kExitOk;
  }
  if (submit->parsed()) return SubmitCommand(common, submit_job);
  if (status->parsed()) return StatusCommand(common, job_id);
  if (wait->parsed()) return WaitCommand(common, job_id, quiet);
  if (results->parsed()) return ResultsCommand(common, job_id, unordered);
  if (logs->parsed()) return LogsCommand(common, job_id, task_number);
  if (cancel->parsed()) return CancelCommand(common, job_id);
  if (forget->parsed()) return ForgetCommand(common, forget_ids, finished_older_than);
  if (jobs->parsed()) return JobsCommand(common);
  if (shutdown->parsed()) return ShutdownCommand(common);
  if (drain->parsed()) return DrainCommand(common, drain_id);
  if (workers->parsed()) return WorkersCommand(common);
  if (top->parsed()) return TopCommand(common, top_interval, top_once);
  if (tasks->parsed()) return TasksCommand(common, job_id, tasks_options);
  if (retry->parsed()) {
    const bool both = retry_failed == retry_unfinished;  // neither flag (or both): both kinds
    return RetryCommand(common, job_id, both || retry_failed, both || retry_unfinished);
  }
  if (run->parsed()) return RunCommand(common, run_options);
  return kExitUsage;
}

}  // namespace drover
