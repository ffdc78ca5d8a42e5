// The netlink transport: the one seam between the kernel provider and the
// kernel, so tests can put a fake kernel behind it.
//
// A NetlinkTransport opens endpoints; a NetlinkEndpoint is one netlink socket
// (or its fake). An endpoint's lifetime matters: the kernel ties devmem
// bindings to the socket that created them and unbinds them when the socket
// is closed, so destroying an endpoint *is* the unbind for every binding made
// through it. A fake transport observes that destruction.
//
// Thread safety: a NetlinkTransport's Open() is thread-safe. One endpoint must
// be used by one thread at a time (callers serialise with their own lock).
#ifndef DEVMEM_PROVIDERS_KERNEL_NETLINK_TRANSPORT_H_
#define DEVMEM_PROVIDERS_KERNEL_NETLINK_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace devmem::kernel {

class NetlinkEndpoint {
 public:
  // Closes the socket (and with it every devmem binding made through it).
  virtual ~NetlinkEndpoint() = default;

  // Sends one complete message (or a batch of messages) as one datagram.
  virtual absl::Status Send(absl::Span<const uint8_t> datagram) = 0;

  // Receives one datagram into `buf` and returns its length. A datagram
  // larger than `buf` is an error (EMSGSIZE-class), never silently cut.
  // Unavailable (EAGAIN) when nothing arrives within the endpoint's timeout.
  virtual absl::StatusOr<size_t> Recv(absl::Span<uint8_t> buf) = 0;
};

class NetlinkTransport {
 public:
  virtual ~NetlinkTransport() = default;
  // Opens a socket of netlink `protocol` (NETLINK_GENERIC, NETLINK_ROUTE)
  // with NETLINK_EXT_ACK and NETLINK_CAP_ACK set, bound to a kernel-chosen
  // port. The socket lives in the calling thread's network namespace.
  virtual absl::StatusOr<std::unique_ptr<NetlinkEndpoint>> Open(
      int protocol) = 0;
};

// Real AF_NETLINK sockets. `recv_timeout` bounds each Recv.
std::shared_ptr<NetlinkTransport> RealNetlinkTransport(
    absl::Duration recv_timeout = absl::Seconds(10));

}  // namespace devmem::kernel

#endif  // DEVMEM_PROVIDERS_KERNEL_NETLINK_TRANSPORT_H_
