// libFuzzer target: arbitrary bytes as a journal file, opened (cutting what is
// torn or corrupt) and replayed into a scheduler.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "coordinator/journal.h"
#include "coordinator/scheduler.h"
#include "tests/fuzz/quiet_logs.h"

namespace {

class NullOutbox : public drover::WorkerOutbox {
 public:
  void Send(const std::string&, drover::v1::CoordinatorMessage&) override {}
};

const std::string& Dir() {
  static const std::string* dir = [] {
    char path[] = "/tmp/drover-journal-fuzz-XXXXXX";
    return new std::string(mkdtemp(path));
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file = Dir() + "/journal";
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  ssize_t ignored = write(fd, data, size);
  (void)ignored;
  close(fd);
  std::vector<drover::v1::JournalRecord> records;
  auto journal = drover::Journal::Open(Dir(), &records);
  if (!journal.ok()) return 0;
  NullOutbox outbox;
  drover::Scheduler scheduler(drover::SchedulerOptions{}, &outbox, journal->get());
  scheduler.Restore(records, absl::FromUnixSeconds(1000));
  (void)scheduler.ListJobs();
  return 0;
}
