// Implements log.h: formats a line and writes it to stderr with one write(2).
#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace drover {
namespace {

std::string& ProgramName() {
  static std::string* name = new std::string("drover");
  return *name;
}
std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}

// Where each rate-limited key is in its window.
struct RateState {
  absl::Time window_start = absl::InfinitePast();
  int lines = 0;
  uint64_t suppressed = 0;
};
constexpr size_t kMaxRateKeys = 4096;  // bounded: keys may come from peers

absl::Mutex rate_mu;
absl::flat_hash_map<std::string, RateState>& RateStates() ABSL_EXCLUSIVE_LOCKS_REQUIRED(rate_mu) {
  static auto* states = new absl::flat_hash_map<std::string, RateState>();
  return *states;
}

void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                        const std::string& message) {
  LogLevel ours = level >= google::protobuf::LOGLEVEL_ERROR     ? LogLevel::kError
                  : level == google::protobuf::LOGLEVEL_WARNING ? LogLevel::kWarning
                                                                : LogLevel::kInfo;
  LogRateLimited(ours, absl::StrCat("protobuf:", filename, ":", line), absl::StrCat("protobuf: ", message));
}

}  // namespace

void LogRateLimited(LogLevel level, absl::string_view key, absl::string_view message) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed)) return;
  const absl::Time now = absl::Now();
  uint64_t suppressed = 0;
  {
    absl::MutexLock lock(&rate_mu);
    auto& states = RateStates();
    if (states.size() >= kMaxRateKeys && !states.contains(key)) states.clear();  // forget, never grow
    RateState& state = states[key];
    if (now - state.window_start >= kRateLimitWindow) {
      suppressed = state.suppressed;
      state = RateState{now, 0, 0};
    }
    if (state.lines >= kRateLimitBurst) {
      ++state.suppressed;
      return;
    }
    ++state.lines;
  }
  if (suppressed > 0) {
    Log(level, absl::StrCat(message, " (and ", suppressed, " more like this suppressed in the last ",
                            absl::FormatDuration(kRateLimitWindow), " or more)"));
  } else {
    Log(level, message);
  }
}

void RouteProtobufLogs() { google::protobuf::SetLogHandler(&ProtobufLogHandler); }

void InitLogging(absl::string_view program, LogLevel level) {
  ProgramName() = std::string(program);
  min_level.store(static_cast<int>(level));
}

void Log(LogLevel level, absl::string_view message) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrCat(
      absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::LocalTimeZone()), " ",
      ProgramName(), " ", LevelName(level), ": ", message, "\n");
  // One write per line keeps lines from different threads whole.
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace drover
