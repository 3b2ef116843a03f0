// Implements connect_probe.h with plain sockets.
#include "client/connect_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace drover {
namespace {

// Owns a socket descriptor.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

int RemainingMs(absl::Time deadline) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
}

// Waits for `events` on `fd` until `deadline`. True when they came.
bool WaitFor(int fd, short events, absl::Time deadline) {
  pollfd p{fd, events, 0};
  int n;
  do {
    n = poll(&p, 1, RemainingMs(deadline));
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

// A non-blocking connect. Returns the connected socket, or -1 with `refused`
// set when nothing listens there.
int Connect(const sockaddr* address, socklen_t length, int family, absl::Time deadline, bool* refused) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int result = connect(fd, address, length);
  if (result != 0 && errno == EINPROGRESS && WaitFor(fd, POLLOUT, deadline)) {
    int error = 0;
    socklen_t size = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
    errno = error;
    result = error == 0 ? 0 : -1;
  }
  if (result == 0) return fd;
  *refused = errno == ECONNREFUSED || errno == ENOENT;
  close(fd);
  return -1;
}

int ConnectTo(const std::string& target, absl::Time deadline, bool* refused) {
  absl::string_view path = target;
  if (absl::ConsumePrefix(&path, "unix:")) {
    absl::ConsumePrefix(&path, "//");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) return -1;
    std::memcpy(address.sun_path, path.data(), path.size());
    return Connect(reinterpret_cast<const sockaddr*>(&address), sizeof(address), AF_UNIX, deadline, refused);
  }
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos) return -1;
  std::string host = target.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), target.c_str() + colon + 1, &hints, &found) != 0) return -1;
  int fd = -1;
  bool all_refused = true;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    bool this_refused = false;
    fd = Connect(a->ai_addr, a->ai_addrlen, a->ai_family, deadline, &this_refused);
    all_refused = all_refused && this_refused;
  }
  freeaddrinfo(found);
  *refused = fd < 0 && all_refused;
  return fd;
}

}  // namespace

ProbeResult ProbeGrpcServer(const std::string& target, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  bool refused = false;
  Socket socket(ConnectTo(target, deadline, &refused));
  if (socket.fd() < 0) return refused ? ProbeResult::kNothingListens : ProbeResult::kUnknown;
  // HTTP/2's client connection preface, then an empty SETTINGS frame.
  static constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
  if (send(socket.fd(), kPreface, sizeof(kPreface) - 1, MSG_NOSIGNAL) != sizeof(kPreface) - 1) {
    return ProbeResult::kNotPlaintext;
  }
  // The server's first frame header: 3 bytes of length, then the type.
  unsigned char header[9];
  size_t got = 0;
  while (got < 4 && WaitFor(socket.fd(), POLLIN, deadline)) {
    ssize_t n = recv(socket.fd(), header + got, sizeof(header) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got >= 4 && header[3] == 0x04) return ProbeResult::kPlaintextGrpc;  // SETTINGS
  return got == 0 && absl::Now() >= deadline ? ProbeResult::kUnknown : ProbeResult::kNotPlaintext;
}

}  // namespace drover
