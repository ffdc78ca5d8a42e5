#include "providers/kernel/netlink_transport.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace devmem::kernel {
namespace {

class SocketEndpoint final : public NetlinkEndpoint {
 public:
  explicit SocketEndpoint(UniqueFd fd) : fd_(std::move(fd)) {}

  absl::Status Send(absl::Span<const uint8_t> datagram) override {
    ssize_t n;
    do {
      n = ::send(fd_.get(), datagram.data(), datagram.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus("netlink send");
    if (static_cast<size_t>(n) != datagram.size()) {
      return ErrnoToStatus(EMSGSIZE, absl::StrCat("netlink send: ", n, " of ",
                                                  datagram.size(), " bytes"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Recv(absl::Span<uint8_t> buf) override {
    ssize_t n;
    do {
      // MSG_TRUNC: the real length comes back even when it did not fit.
      n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus("netlink recv");
    if (static_cast<size_t>(n) > buf.size()) {
      return ErrnoToStatus(EMSGSIZE, absl::StrCat("netlink recv: ", n,
                                                  "-byte reply does not fit ",
                                                  buf.size(), " bytes"));
    }
    return static_cast<size_t>(n);
  }

 private:
  UniqueFd fd_;
};

class RealTransport final : public NetlinkTransport {
 public:
  explicit RealTransport(absl::Duration timeout) : timeout_(timeout) {}

  absl::StatusOr<std::unique_ptr<NetlinkEndpoint>> Open(int protocol) override {
    UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
    if (!fd.ok()) return ErrnoStatus("netlink socket");
    const int one = 1;
    if (::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one,
                     sizeof(one)) != 0) {
      return ErrnoStatus("setsockopt(NETLINK_EXT_ACK)");
    }
    if (::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one,
                     sizeof(one)) != 0) {
      return ErrnoStatus("setsockopt(NETLINK_CAP_ACK)");
    }
    const timeval tv = absl::ToTimeval(timeout_);
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
      return ErrnoStatus("setsockopt(SO_RCVTIMEO)");
    }
    sockaddr_nl addr = {};
    addr.nl_family = AF_NETLINK;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr),
               sizeof(addr)) != 0) {
      return ErrnoStatus("netlink bind");
    }
    return std::make_unique<SocketEndpoint>(std::move(fd));
  }

 private:
  const absl::Duration timeout_;
};

}  // namespace

std::shared_ptr<NetlinkTransport> RealNetlinkTransport(
    absl::Duration recv_timeout) {
  return std::make_shared<RealTransport>(recv_timeout);
}

}  // namespace devmem::kernel
