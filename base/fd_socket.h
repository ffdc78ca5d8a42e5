// fd_socket: message framing with file descriptors over a Unix
// SOCK_SEQPACKET socket.
//
// One call sends or receives exactly one packet: its bytes and the fds it
// carries in SCM_RIGHTS control messages. Receiving enforces limits (bytes per
// frame, fds per frame) and never leaks a descriptor: every fd the kernel
// installs is wrapped in a UniqueFd before anything else happens, including
// on every error path, and fds are received with MSG_CMSG_CLOEXEC. A frame
// that breaks a limit is still returned, with `problem` set, so the caller
// can answer with a precise error and then drop (close) what came with it.
//
//   ASSIGN_OR_RETURN(UniqueFd sock, ConnectSeqPacket("/run/devmemd/fd.sock"));
//   RETURN_IF_ERROR(SendFrame(sock.borrow(), bytes, {dmabuf.borrow()}));
//   ASSIGN_OR_RETURN(ReceivedFrame f, RecvFrame(sock.borrow(), {}));
//
// Thread safety: functions are thread-safe; a SEQPACKET send is atomic, so
// several threads may send on one socket, but only one should receive.
#ifndef DEVMEM_BASE_FD_SOCKET_H_
#define DEVMEM_BASE_FD_SOCKET_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"

namespace devmem {

struct FdSocketLimits {
  size_t max_frame_bytes = 64 * 1024;  // larger frames are kTooLarge
  size_t max_fds = 1;                  // more fds are kTooManyFds
};

// Hard ceiling on fds any one frame may carry (SCM_MAX_FD is 253).
inline constexpr size_t kMaxFdsPerFrame = 16;

enum class FrameProblem {
  kNone = 0,
  kTooLarge,          // MSG_TRUNC, or more than max_frame_bytes
  kTooManyFds,        // more than max_fds fds
  kControlTruncated,  // MSG_CTRUNC: the kernel dropped fds that did not fit
};

// A short stable name: "none", "too_large", "too_many_fds", "ctrunc".
std::string_view FrameProblemName(FrameProblem p);

struct ReceivedFrame {
  bool eof = false;           // the peer closed; nothing else is set
                              // (a zero-length record is not eof: empty data)
  std::string data;           // the bytes (cut at max_frame_bytes if too large)
  std::vector<UniqueFd> fds;  // every fd received, owned
  FrameProblem problem = FrameProblem::kNone;
};

// Receives one packet. `flags` may add MSG_DONTWAIT. Errors: the errno of
// recvmsg as a Status (EAGAIN -> Unavailable); any fds received on an error
// path are closed before returning.
absl::StatusOr<ReceivedFrame> RecvFrame(BorrowedFd sock,
                                        const FdSocketLimits& limits,
                                        int flags = 0);

// Sends one packet carrying `fds` (at most kMaxFdsPerFrame) in one
// SCM_RIGHTS message; the caller keeps its fds. MSG_NOSIGNAL is always set;
// `flags` may add MSG_DONTWAIT. Errors: InvalidArgument for too many fds,
// the errno of sendmsg (EPIPE -> FailedPrecondition, EAGAIN -> Unavailable,
// EMSGSIZE -> InvalidArgument).
absl::Status SendFrame(BorrowedFd sock, std::string_view data,
                       absl::Span<const BorrowedFd> fds = {}, int flags = 0);

// A listening SOCK_SEQPACKET socket at `path` (an existing socket file there
// is replaced), chmod'ed to `mode`. SOCK_CLOEXEC | SOCK_NONBLOCK.
absl::StatusOr<UniqueFd> ListenSeqPacket(const std::string& path, mode_t mode,
                                         int backlog = 1024);

// A connected, blocking, close-on-exec SOCK_SEQPACKET socket to `path`.
absl::StatusOr<UniqueFd> ConnectSeqPacket(const std::string& path);

// The peer's credentials (SO_PEERCRED) of a connected Unix socket.
struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
absl::StatusOr<PeerCred> GetPeerCred(BorrowedFd sock);

}  // namespace devmem

#endif  // DEVMEM_BASE_FD_SOCKET_H_
