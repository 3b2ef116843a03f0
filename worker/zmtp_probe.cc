// Reads a ZeroMQ peer's security mechanism from its ZMTP 3 greeting.
#include "worker/zmtp_probe.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace drover {
namespace {

// ZMTP 3 greeting (RFC 23): signature (10), version (2), mechanism (20),
// as-server (1), filler (31).
constexpr size_t kGreetingSize = 64;
constexpr size_t kMechanismOffset = 12;
constexpr size_t kMechanismSize = 20;

// Waits until `fd` is ready for `events` or the deadline passes.
bool WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    int ready = poll(&p, 1, ms);
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

absl::StatusOr<int> Connect(absl::string_view endpoint, absl::Time deadline) {
  int fd = -1;
  int result = -1;
  if (absl::string_view path = endpoint; absl::ConsumePrefix(&path, "ipc://")) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) return absl::InvalidArgumentError("ipc path too long");
    std::memcpy(address.sun_path, path.data(), path.size());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::UnavailableError(std::strerror(errno));
    result = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  } else if (absl::string_view hostport = endpoint; absl::ConsumePrefix(&hostport, "tcp://")) {
    size_t colon = hostport.rfind(':');
    if (colon == absl::string_view::npos) return absl::InvalidArgumentError("no port");
    std::string host(absl::StripSuffix(absl::StripPrefix(hostport.substr(0, colon), "["), "]"));
    std::string port(hostport.substr(colon + 1));
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot resolve ", host));
    }
    absl::Cleanup free_found = [found] { freeaddrinfo(found); };
    fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::UnavailableError(std::strerror(errno));
    result = connect(fd, found->ai_addr, found->ai_addrlen);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("cannot probe ", endpoint));
  }
  if (result != 0 && errno != EINPROGRESS) {
    int error = errno;
    close(fd);
    return absl::UnavailableError(std::strerror(error));
  }
  if (result != 0) {
    int error = 0;
    socklen_t size = sizeof(error);
    if (!WaitFor(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 ||
        error != 0) {
      close(fd);
      return absl::UnavailableError(error != 0 ? std::strerror(error) : "connect timed out");
    }
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::string> PeerZmtpMechanism(absl::string_view endpoint, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<int> connected = Connect(endpoint, deadline);
  if (!connected.ok()) return connected.status();
  const int fd = *connected;
  absl::Cleanup close_fd = [fd] { close(fd); };
  // Signature and major version: enough for the peer to send its whole greeting.
  const unsigned char hello[11] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3};
  if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(hello))) {
    return absl::UnavailableError("the peer closed the connection");
  }
  unsigned char greeting[kGreetingSize];
  size_t have = 0;
  while (have < kGreetingSize) {
    if (!WaitFor(fd, POLLIN, deadline)) return absl::UnavailableError("no greeting from the peer");
    ssize_t n = recv(fd, greeting + have, kGreetingSize - have, 0);
    if (n == 0) return absl::UnavailableError("the peer closed the connection during its greeting");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(std::strerror(errno));
    }
    have += static_cast<size_t>(n);
  }
  if (greeting[0] != 0xFF || greeting[9] != 0x7F || greeting[10] < 3) {
    return absl::FailedPreconditionError("the peer does not speak ZMTP 3");
  }
  const char* mechanism = reinterpret_cast<const char*>(greeting + kMechanismOffset);
  return std::string(mechanism, strnlen(mechanism, kMechanismSize));
}

}  // namespace drover
