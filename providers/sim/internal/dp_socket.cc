#include "providers/sim/internal/dp_socket.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/sim_datapath.h"

namespace devmem::sim_internal {
namespace {

// Enough for a few full frag packets in flight while the job works.
constexpr int kSendBufferBytes = 1 << 20;

}  // namespace

absl::StatusOr<DpSocket> DpSocket::Create(std::string_view name,
                                          UniqueFd* job_end) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(absl::StrCat(absl::string_view(name.data(), name.size()),
                                    ": data-path socketpair"));
  }
  DpSocket s;
  s.fd_ = UniqueFd(sv[0]);
  *job_end = UniqueFd(sv[1]);
  // Best effort: the system's limit caps it.
  (void)::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &kSendBufferBytes,
                     sizeof(kSendBufferBytes));
  const int flags = ::fcntl(sv[0], F_GETFL);
  if (flags < 0 || ::fcntl(sv[0], F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus(absl::StrCat(absl::string_view(name.data(), name.size()),
                                    ": data-path O_NONBLOCK"));
  }
  return s;
}

short DpSocket::events() const {
  short ev = POLLRDHUP;
  if (out_.size() < simdp::kMaxQueuedReplies) ev |= POLLIN;
  if (!out_.empty()) ev |= POLLOUT;
  return ev;
}

void DpSocket::Send(std::string packet) {
  if (!open()) return;
  out_.push_back(std::move(packet));
  Flush();
}

void DpSocket::Flush() {
  while (open() && !out_.empty()) {
    const std::string& p = out_.front();
    const ssize_t n =
        ::send(fd_.get(), p.data(), p.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      Close();  // EPIPE, ECONNRESET: the job closed its end
      return;
    }
    out_.pop_front();
  }
}

DpSocket::Read DpSocket::Recv(std::string* buf, size_t max_bytes,
                              bool* truncated) {
  if (!open()) return Read::kClosed;
  buf->resize(max_bytes);
  for (;;) {
    const ssize_t n =
        ::recv(fd_.get(), buf->data(), max_bytes, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Read::kNone;
      Close();
      return Read::kClosed;
    }
    if (n == 0) {
      // EOF, or a zero-length record: SEQPACKET tells them apart only by
      // the hang-up.
      pollfd p{fd_.get(), POLLRDHUP, 0};
      if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP)) != 0) {
        Close();
        return Read::kClosed;
      }
    }
    *truncated = static_cast<size_t>(n) > max_bytes;
    buf->resize(*truncated ? max_bytes : static_cast<size_t>(n));
    return Read::kPacket;
  }
}

void DpSocket::Close() {
  fd_.reset();
  out_.clear();
}

}  // namespace devmem::sim_internal
