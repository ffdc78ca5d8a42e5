// "HOST:PORT" text, split, parsed and connected in one place.
//
//   ASSIGN_OR_RETURN(SocketAddress peer, ParseHostPort("127.0.0.1:9000"));
//   ASSIGN_OR_RETURN(UniqueFd tcp, ConnectTcp(peer));
//
// Forms: "A.B.C.D:PORT" and "[v6]:PORT" (numeric; ParseHostPort), or any
// "NAME:PORT" for SplitHostPort (the caller resolves NAME). PORT is 1-65535.
// Errors are EINVAL-class (InvalidArgument, StatusErrno() == EINVAL) and
// quote the text; ConnectTcp's are connect()'s errno.
//
// Thread safety: stateless functions.
#ifndef DEVMEM_BASE_HOST_PORT_H_
#define DEVMEM_BASE_HOST_PORT_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace devmem {

struct HostPort {
  std::string host;  // without the brackets of "[v6]"
  uint16_t port = 0;
};

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
};

absl::StatusOr<HostPort> SplitHostPort(absl::string_view text);
absl::StatusOr<SocketAddress> ParseHostPort(absl::string_view text);

// A blocking TCP connection (SOCK_CLOEXEC) to `addr`.
absl::StatusOr<UniqueFd> ConnectTcp(const SocketAddress& addr);
absl::StatusOr<UniqueFd> ConnectTcp(absl::string_view host_port);

}  // namespace devmem

#endif  // DEVMEM_BASE_HOST_PORT_H_
