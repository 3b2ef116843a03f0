// worker/python_task_runner.py, compiled in (the interpreter runs it with -c):
// nothing to install beside drover-worker.
#ifndef DROVER_WORKER_PYTHON_TASK_RUNNER_SOURCE_H_
#define DROVER_WORKER_PYTHON_TASK_RUNNER_SOURCE_H_

namespace drover {

extern const char kPythonTaskRunner[];

}  // namespace drover

#endif  // DROVER_WORKER_PYTHON_TASK_RUNNER_SOURCE_H_
