// A level-triggered wake-up signal (Linux eventfd) that a thread owning a
// ZeroMQ poll loop adds to its poll set, so other threads can wake it.
#ifndef DROVER_COMMON_WAKEUP_H_
#define DROVER_COMMON_WAKEUP_H_

namespace drover {

// Notify() is thread-safe; Clear() and fd() belong to the polling thread.
class Wakeup {
 public:
  Wakeup();
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // Makes fd() readable until the next Clear(). Async-signal-safe.
  void Notify();
  // Makes fd() not readable.
  void Clear();
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace drover

#endif  // DROVER_COMMON_WAKEUP_H_
