// What users type to describe a job (kernel, items, chunking, reduction),
// turned into a JobSpec. Shared by `drover submit` and `drover run`.
#ifndef DROVER_CLIENT_JOB_OPTIONS_H_
#define DROVER_CLIENT_JOB_OPTIONS_H_

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/service.pb.h"

namespace drover {

struct JobOptions {
  std::string kernel;                // a kernel job, or
  std::vector<std::string> command;  // a command job: what follows `--`
  std::vector<std::string> items;    // positional items (or after :::)
  // Further input sources (GNU Parallel's second and later `:::`, or `:::: FILE`):
  // a command's tasks are then every combination of one item from each source
  // (the last varying fastest); a source marked linked (`:::+`) goes in step
  // with the one before it instead. Each task's columns are {1}, {2}, ...
  struct Source {
    std::vector<std::string> items;
    bool linked = false;
  };
  std::vector<Source> more_sources;
  std::string colsep;                // --colsep: split each item into columns at this string
  std::string each_line;             // a file of items, one per line; "-" is stdin
  bool null_separated = false;       // --each-line items end with NUL, not newline
  std::string range;                 // "A:B"
  std::string array;                 // "A-B[:STEP]"
  // Items per chunk: "auto" (or empty) lets the coordinator size chunks from
  // measured run times; gRPC jobs then get concurrency/16 within [1, 16]
  // (calls of a chunk report together, so a chunk holds at most a sixteenth
  // of the job's concurrency while its slowest call runs). Or a number K.
  std::string chunk = "auto";
  int32_t priority = 0;              // higher first; equal priorities share workers
  uint32_t max_parallel = 0;         // tasks of the job running at once, cluster-wide; 0: no limit
  std::string reduce;                // "", sum, min, max, count
  std::string name;
  // Submitting again with the same key gives the job already submitted (a
  // batch script run again after a restart); empty: a fresh key per command.
  std::string idempotency_key;
  uint32_t retries = 0;              // runs again of a failed task
  std::vector<std::string> require;  // worker labels the job needs
  std::string timeout;               // "30s", "500ms", "2m", or seconds (kernels: reported, not stopped)
  // Command jobs only.
  std::string cwd;                   // commands: "": where the client runs; "-": the worker's own
  std::vector<std::string> env;      // K=V
  std::string max_output;            // bytes per stream: 1048576, 64K, 1M, 2G
  uint32_t cpus = 1;
  // gRPC jobs: each item is one call of `method` on `grpc_target`.
  std::string grpc_target;           // --grpc HOST:PORT
  std::string method;                // /package.Service/Method
  std::string proto_set;             // FileDescriptorSet file; empty: server reflection
  bool raw = false;                  // items and outputs are message bytes, not JSON
  std::string deadline;              // per call: 5s, 200ms
  uint32_t concurrency = 0;          // calls in flight per worker; 0 means 256
  double rate = 0;                   // calls per second for the whole job; 0: no limit
  std::string max_response;          // largest response (16M, 1G); empty: 16 MiB
  bool at_most_once = false;         // never repeat a call that may have reached the server
  std::string lb;                    // "pick_first" (default) or "round_robin"
  std::vector<std::string> headers;  // key:value metadata
  bool grpc_tls = false;
  std::string grpc_ca;               // PEM file; implies grpc_tls
  // HTTP jobs: each item is a URL (or, with http_url, a request body). They
  // share --concurrency, --rate, --retries, --at-most-once and -H with gRPC jobs.
  bool http = false;
  std::string http_method;           // -X/--request; empty: GET (POST with --url)
  std::string http_url;              // --url: items are bodies sent here
  std::string connect_timeout;       // --connect-timeout
  std::string max_body;              // --max-body (16M by default)
  std::string accept_status;         // --accept-status "200-299,404"
  uint32_t max_redirects = 10;       // --max-redirects
  std::string http_ca;               // --http-ca: PEM file of CAs to trust
  // The items are the outputs of this job's successful tasks (in order, one
  // trailing newline removed); filled in by PrepareJobSpec.
  uint64_t items_from = 0;
};

// Builds the spec. `stdin_stream` is read when each_line is "-".
// Errors: kInvalidArgument with a message telling the user what to fix
// (no kernel, not exactly one kind of input, a bad range or reduction);
// kNotFound when the items file cannot be opened.
absl::StatusOr<v1::JobSpec> BuildJobSpec(const JobOptions& options, std::istream& stdin_stream);

// "1.5s", "500ms", "2m", or a plain number of seconds; `flag` names the
// option in errors. Errors: kInvalidArgument.
absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text, absl::string_view flag = "--timeout");
// "1048576", "64K", "1M", "2G" (powers of 1024). Errors: kInvalidArgument.
absl::StatusOr<uint64_t> ParseBytes(const std::string& text, absl::string_view flag);

// "sum" -> REDUCE_SUM, ... Errors: kInvalidArgument.
absl::StatusOr<v1::Reduce> ParseReduce(const std::string& name);

}  // namespace drover

#endif  // DROVER_CLIENT_JOB_OPTIONS_H_
