// Implements endpoint.h.
#include "common/endpoint.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace drover {
namespace {

// Splits "HOST[:PORT]" ("[v6]:PORT" too) and fills in the default port.
absl::StatusOr<std::string> HostPort(absl::string_view address, int default_port) {
  if (address.empty()) return absl::InvalidArgumentError("empty address");
  absl::string_view host = address;
  absl::string_view port;
  size_t colon = address.rfind(':');
  bool bracketed = absl::StartsWith(address, "[");
  if (colon != absl::string_view::npos &&
      (!bracketed || address.find(']') < colon) &&
      (bracketed || address.find(':') == colon)) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError(absl::StrCat("no host in '", address, "'"));
  int port_number = default_port;
  if (!port.empty() && (!absl::SimpleAtoi(port, &port_number) || port_number < 0 ||
                        port_number > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port '", port, "' in '", address, "' (want 0-65535)"));
  }
  return absl::StrCat(host, ":", port_number);
}

}  // namespace

absl::StatusOr<std::string> ToZmqEndpoint(absl::string_view address, int default_port) {
  if (absl::StrContains(address, "://")) return std::string(address);
  absl::StatusOr<std::string> host_port = HostPort(address, default_port);
  if (!host_port.ok()) return host_port.status();
  return absl::StrCat("tcp://", *host_port);
}

absl::StatusOr<std::string> ToGrpcTarget(absl::string_view address, int default_port) {
  if (absl::StartsWith(address, "unix:")) return std::string(address);
  return HostPort(address, default_port);
}

bool IsLoopbackAddress(absl::string_view address) {
  absl::string_view a = address;
  if (absl::StartsWith(a, "ipc://") || absl::StartsWith(a, "inproc://") ||
      absl::StartsWith(a, "unix:")) {
    return true;
  }
  absl::ConsumePrefix(&a, "tcp://");
  return absl::StartsWith(a, "127.") || absl::StartsWith(a, "localhost") ||
         absl::StartsWith(a, "[::1]");
}

}  // namespace drover
