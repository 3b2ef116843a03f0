// Private temporary directories (mode 0700) that are cleaned up even when
// their owner could not do it (it was killed with SIGKILL): each holds an
// `owner` file naming the process that made it, and the next process of the
// same kind removes the directories whose owner is dead. Used by `drover run
// --local` (TMPDIR/drover-local-*) and the coordinator's private results
// directory (TMPDIR/drover-results-*); for single files, the coordinator's
// default token file. The functions touch only the file system and may be
// called from any thread.
#ifndef DROVER_COMMON_OWNED_DIRS_H_
#define DROVER_COMMON_OWNED_DIRS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace drover {

// The file ClaimDir writes; a directory without it is never swept.
inline constexpr char kOwnerFileName[] = "owner";

// Writes DIR/owner naming this process (pid and start time, so a reused pid
// is not taken for the owner). Errors: kUnavailable.
absl::Status ClaimDir(const std::string& dir);

// Removes TMP/PREFIX* directories of this user that have an owner file whose
// process is gone. Returns how many were removed. Never fails: what cannot be
// read is left.
int SweepStaleDirs(const std::string& tmp, absl::string_view prefix);

// The same for single files: FILE is owned by the process named in
// FILE.owner (the coordinator's default token file, for one).
inline constexpr char kOwnerSuffix[] = ".owner";
// Writes `owner_path` naming this process. Errors: kUnavailable.
absl::Status ClaimPath(const std::string& owner_path);
// Removes DIR/NAME and DIR/NAME.owner for every NAME.owner of this user whose
// process is gone. Returns how many were removed; never fails.
int SweepStaleOwnedFiles(const std::string& dir);

// An exclusive flock(2) on directory DIR while this object lives. Processes
// that sweep DIR and write owned files in it hold one around both, so a sweep
// never removes a file claimed again after its first owner died (a coordinator
// restarted on the same address, while another one starts and sweeps). A DIR
// that does not exist yet is not locked: it holds nothing to sweep.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_;
};

}  // namespace drover

#endif  // DROVER_COMMON_OWNED_DIRS_H_
