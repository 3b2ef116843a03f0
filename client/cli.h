// The `drover` command line: parses arguments and runs a subcommand.
#ifndef DROVER_CLIENT_CLI_H_
#define DROVER_CLIENT_CLI_H_

namespace drover {

// Returns the process exit code (see ExitCode in commands.h).
int RunCli(int argc, char** argv);

}  // namespace drover

#endif  // DROVER_CLIENT_CLI_H_
