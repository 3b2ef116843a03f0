# Writes ${OUT}: worker/python_task_runner.py as a C++ string (see
# worker/python_task_runner_source.h). Run by the build when it changes.
file(READ "${IN}" script)
string(FIND "${script}" ")drover_python" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "python_task_runner.py contains the raw string's end marker")
endif()
file(WRITE "${OUT}" "// Generated from worker/python_task_runner.py by embed_python.cmake: do not edit.
#include \"worker/python_task_runner_source.h\"

namespace drover {

const char kPythonTaskRunner[] = R\"drover_python(${script})drover_python\";

}  // namespace drover
")
