// Logging to stderr: one line per call, with time, program name and level.
// Thread-safe. (Debian's Abseil predates absl/log, so drover has this.)
#ifndef DROVER_COMMON_LOG_H_
#define DROVER_COMMON_LOG_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

// Like Log, but at most kRateLimitBurst lines per `key` (say, a kind of
// problem and the peer it came from) in each kRateLimitWindow; the lines over
// that are counted, and the next line of that key after the window says how
// many were suppressed. So a hostile or broken peer cannot flood the log.
inline constexpr int kRateLimitBurst = 5;
inline constexpr absl::Duration kRateLimitWindow = absl::Seconds(10);
void LogRateLimited(LogLevel level, absl::string_view key, absl::string_view message);

// Routes protobuf's own log lines (for example "String field contains invalid
// UTF-8 data", printed for every such message a peer sends) into Log,
// rate-limited by their source line. Call once from main().
void RouteProtobufLogs();

}  // namespace drover

#endif  // DROVER_COMMON_LOG_H_
