// One long-lived Python interpreter process that runs a slot's Python calls
// (jobs with a PythonSpec): functions and arguments arrive pickled, results
// and exceptions leave pickled, over two pipes (worker/python_task_runner.py
// is the other end). A crash or exit of the interpreter fails the call it was
// running and the next call starts a fresh one; the worker never goes down
// with it.
#ifndef DROVER_WORKER_PYTHON_INTERPRETER_H_
#define DROVER_WORKER_PYTHON_INTERPRETER_H_

#include <sys/types.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/process_groups.h"

namespace drover {

// Whether `python` (a program name or path) runs and imports cloudpickle.
bool PythonRunsCalls(const std::string& python);

struct PythonOutcome {
  bool ok = false;
  std::string output;  // the pickled return value, or the pickled exception
  std::string error;   // when !ok: "Type: message" and the traceback, or why the call could not run
};

// Not thread-safe: owned by one slot thread.
class PythonInterpreter {
 public:
  // `groups` (may have no reaper) must outlive the interpreter; its process
  // group is registered there, so it dies with the worker.
  PythonInterpreter(std::string python, ProcessGroups* groups);
  ~PythonInterpreter();  // stops the process
  PythonInterpreter(const PythonInterpreter&) = delete;
  PythonInterpreter& operator=(const PythonInterpreter&) = delete;

  // Calls `function` (cloudpickled; sent again only when it changes) with
  // `arguments` (a pickled (args, kwargs) tuple). The interpreter is started
  // first if none runs. Past `timeout`, or once `cancelled`, the interpreter is
  // killed and the call fails.
  PythonOutcome Call(const std::string& function, absl::string_view arguments, absl::Duration timeout,
                     const std::atomic<bool>& cancelled);
  // The calls of a chunk: sent in one frame, answered one by one (no round
  // trip per call). When the interpreter dies, the call it was making fails
  // and a fresh interpreter makes the rest; `timeout` is per call. Once
  // `cancelled`, the calls left fail with "cancelled".
  std::vector<PythonOutcome> CallAll(const std::string& function, const std::vector<absl::string_view>& arguments,
                                     absl::Duration timeout, const std::atomic<bool>& cancelled);

 private:
  bool Start(std::string* error);
  // Kills and reaps the process; returns how it ended ("killed by signal 11
  // (Segmentation fault)", "exited with status 3").
  std::string Stop();
  // Reads one frame; false on EOF, timeout or cancel (`*why` says which).
  bool Receive(char* kind, std::string* payload, absl::Time deadline, const std::atomic<bool>& cancelled,
               std::string* why);

  const std::string python_;
  ProcessGroups* const groups_;
  pid_t pid_ = -1;
  int requests_ = -1;  // write end: the interpreter's fd 0
  int replies_ = -1;   // read end: the interpreter's fd 3
  std::string loaded_function_;
  std::string inbox_;  // replies read and not yet taken
};

}  // namespace drover

#endif  // DROVER_WORKER_PYTHON_INTERPRETER_H_
