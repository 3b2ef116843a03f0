// Implements wakeup.h with a non-blocking eventfd.
#include "common/wakeup.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "common/log.h"

namespace drover {

Wakeup::Wakeup() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) {
    LogError("eventfd failed; cannot continue");
    std::abort();
  }
}

Wakeup::~Wakeup() { close(fd_); }

void Wakeup::Notify() {
  uint64_t one = 1;
  ssize_t ignored = write(fd_, &one, sizeof(one));
  (void)ignored;
}

void Wakeup::Clear() {
  uint64_t value;
  ssize_t ignored = read(fd_, &value, sizeof(value));
  (void)ignored;
}

}  // namespace drover
