// Logging to stderr: one line per call, with time, program name and level.
// Thread-safe. (Debian's Abseil predates absl/log, so drover has this.)
#ifndef DROVER_COMMON_LOG_H_
#define DROVER_COMMON_LOG_H_

#include "absl/strings/string_view.h"

namespace drover {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Sets the name printed on every line (e.g. "coordinator") and the lowest level
// printed. Call once from main() before other threads start.
void InitLogging(absl::string_view program, LogLevel min_level = LogLevel::kInfo);

void Log(LogLevel level, absl::string_view message);

inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }
inline void LogDebug(absl::string_view m) { Log(LogLevel::kDebug, m); }

}  // namespace drover

#endif  // DROVER_COMMON_LOG_H_
