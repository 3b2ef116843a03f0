// How drover's daemons (drover-coordinator, drover-worker) parse their flags
// with CLI11: --help prints and exits 0; a usage error prints what is wrong
// and exits 2.
#ifndef DROVER_COMMON_DAEMON_FLAGS_H_
#define DROVER_COMMON_DAEMON_FLAGS_H_

#include <optional>

#include <CLI/CLI.hpp>

namespace drover {

// Returns the exit code when the program should stop now, else nullopt.
inline std::optional<int> ParseDaemonFlags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace drover

#endif  // DROVER_COMMON_DAEMON_FLAGS_H_
