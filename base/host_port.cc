#include "base/host_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return ErrnoToStatus(
      EINVAL, absl::StrCat("address \"", absl::CHexEscape(text), "\": ", why));
}

}  // namespace

absl::StatusOr<HostPort> SplitHostPort(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return Bad(text, "want HOST:PORT (e.g. 127.0.0.1:9000 or [::1]:9000)");
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return Bad(text, "the port is not a number in 1-65535");
  }
  absl::string_view host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return Bad(text, "an IPv6 host needs brackets: [::1]:PORT");
    }
    host = host.substr(1, host.size() - 2);
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

absl::StatusOr<SocketAddress> ParseHostPort(absl::string_view text) {
  absl::StatusOr<HostPort> hp = SplitHostPort(text);
  if (!hp.ok()) return hp.status();
  if (hp->host.find('\0') != std::string::npos) {
    return Bad(text, "the host holds a NUL byte");
  }
  SocketAddress out;
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (::inet_pton(AF_INET6, hp->host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(hp->port);
    out.length = sizeof(*a6);
    return out;
  }
  out.storage = {};
  if (::inet_pton(AF_INET, hp->host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(hp->port);
    out.length = sizeof(*a4);
    return out;
  }
  return Bad(text, "the host is not a numeric IPv4 or IPv6 address");
}

absl::StatusOr<UniqueFd> ConnectTcp(const SocketAddress& addr) {
  UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return ErrnoStatus("socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage),
                addr.length) != 0) {
    return ErrnoStatus("connect");
  }
  return fd;
}

absl::StatusOr<UniqueFd> ConnectTcp(absl::string_view host_port) {
  absl::StatusOr<SocketAddress> addr = ParseHostPort(host_port);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<UniqueFd> fd = ConnectTcp(*addr);
  if (!fd.ok()) return WithContext(fd.status(), host_port);
  return fd;
}

}  // namespace devmem
