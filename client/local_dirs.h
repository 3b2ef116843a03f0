// The private directories of `drover run --local` (TMPDIR/drover-local-XXXXXX,
// mode 0700: sockets, token, logs) and how they are cleaned up when their
// owner could not do it (it was killed with SIGKILL): each holds an `owner`
// file naming the process that made it, and the next local run removes the
// directories whose owner is dead. A run that keeps its logs on purpose (a
// child failed) removes its token and sockets and is left alone. The functions
// touch only the file system and may be called from any thread.
#ifndef DROVER_CLIENT_LOCAL_DIRS_H_
#define DROVER_CLIENT_LOCAL_DIRS_H_

#include <string>

#include "absl/status/status.h"

namespace drover {

// Writes DIR/owner naming this process (pid and start time, so a reused pid
// is not taken for the owner). Errors: kUnavailable.
absl::Status ClaimLocalDir(const std::string& dir);

// Keeps DIR's logs for the user: removes the token, the sockets and the owner file.
void KeepLocalDirLogs(const std::string& dir);

// Removes TMP/drover-local-* directories of this user whose owner process is
// gone. Returns how many were removed. Never fails: what cannot be read is left.
int SweepStaleLocalDirs(const std::string& tmp);

}  // namespace drover

#endif  // DROVER_CLIENT_LOCAL_DIRS_H_
