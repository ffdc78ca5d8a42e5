#include "base/fd_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem {
namespace {

// Room for more fds than any limit allows, so "too many fds" is reported as
// such rather than as a truncated control message.
constexpr size_t kControlFds = kMaxFdsPerFrame + 8;

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path length ", path.size(), " not in [1, ",
                     sizeof(addr.sun_path) - 1, "]"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

std::string_view FrameProblemName(FrameProblem p) {
  switch (p) {
    case FrameProblem::kNone:
      return "none";
    case FrameProblem::kTooLarge:
      return "too_large";
    case FrameProblem::kTooManyFds:
      return "too_many_fds";
    case FrameProblem::kControlTruncated:
      return "ctrunc";
  }
  return "unknown";
}

absl::StatusOr<ReceivedFrame> RecvFrame(BorrowedFd sock,
                                        const FdSocketLimits& limits,
                                        int flags) {
  ReceivedFrame frame;
  // One byte more than allowed tells an oversized frame from a full one.
  frame.data.resize(limits.max_frame_bytes + 1);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kControlFds)];
  iovec iov{frame.data.data(), frame.data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);

  const ssize_t n = ::recvmsg(sock.get(), &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) return ErrnoStatus("recvmsg on fd socket");

  // Adopt every installed fd first, whatever else is wrong with the frame.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(c);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, p + i * sizeof(int), sizeof(int));
      frame.fds.emplace_back(fd);
    }
  }

  if (n == 0 && frame.fds.empty() && !(msg.msg_flags & MSG_TRUNC)) {
    // SEQPACKET: a zero-length read is either the peer's orderly close or a
    // zero-length record; only the close raises POLLHUP/POLLRDHUP.
    frame.data.clear();
    pollfd pfd{.fd = sock.get(), .events = POLLRDHUP, .revents = 0};
    if (::poll(&pfd, 1, 0) != 0 && (pfd.revents & (POLLHUP | POLLRDHUP))) {
      frame.eof = true;
    }
    return frame;
  }
  if ((msg.msg_flags & MSG_TRUNC) ||
      static_cast<size_t>(n) > limits.max_frame_bytes) {
    frame.problem = FrameProblem::kTooLarge;
    frame.data.resize(limits.max_frame_bytes);
  } else {
    frame.data.resize(static_cast<size_t>(n));
  }
  if (frame.problem == FrameProblem::kNone) {
    if (msg.msg_flags & MSG_CTRUNC) {
      frame.problem = FrameProblem::kControlTruncated;
    } else if (frame.fds.size() > limits.max_fds) {
      frame.problem = FrameProblem::kTooManyFds;
    }
  }
  return frame;
}

absl::Status SendFrame(BorrowedFd sock, std::string_view data,
                       absl::Span<const BorrowedFd> fds, int flags) {
  if (fds.size() > kMaxFdsPerFrame) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SendFrame: ", fds.size(), " fds, at most ", kMaxFdsPerFrame));
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerFrame)];
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    for (size_t i = 0; i < fds.size(); ++i) {
      const int fd = fds[i].get();
      std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
    }
  }
  for (;;) {
    const ssize_t n = ::sendmsg(sock.get(), &msg, flags | MSG_NOSIGNAL);
    if (n >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    return ErrnoStatus("sendmsg on fd socket");
  }
}

absl::StatusOr<UniqueFd> ListenSeqPacket(const std::string& path, mode_t mode,
                                         int backlog) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(
      ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.ok()) return ErrnoStatus("socket(AF_UNIX, SOCK_SEQPACKET)");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    ::unlink(path.c_str());  // a stale socket from an earlier run
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr),
             sizeof(*addr)) != 0) {
    return ErrnoStatus(absl::StrCat("bind ", path));
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return ErrnoStatus(absl::StrCat("chmod ", path));
  }
  if (::listen(fd.get(), backlog) != 0) {
    return ErrnoStatus(absl::StrCat("listen ", path));
  }
  return fd;
}

absl::StatusOr<UniqueFd> ConnectSeqPacket(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return ErrnoStatus("socket(AF_UNIX, SOCK_SEQPACKET)");
  // Not retried on EINTR: the connection would continue asynchronously.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr),
                sizeof(*addr)) != 0) {
    return ErrnoStatus(absl::StrCat("connect ", path));
  }
  return fd;
}

absl::StatusOr<PeerCred> GetPeerCred(BorrowedFd sock) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(sock.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoStatus("getsockopt(SO_PEERCRED)");
  }
  return PeerCred{cred.pid, cred.uid, cred.gid};
}

}  // namespace devmem
