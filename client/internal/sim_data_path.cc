#include "client/internal/sim_data_path.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace devmem::client_internal {

int PollTimeoutMs(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return -1;
  if (timeout <= absl::ZeroDuration()) return 0;
  // Round up so a short timeout does not become a busy poll of 0 ms.
  return static_cast<int>(std::min<int64_t>(
      absl::ToInt64Milliseconds(timeout + absl::Microseconds(999)),
      int64_t{1} << 30));
}

std::string SimDataPath::Context() const {
  return absl::StrCat("binding ", binding_id_, ": ");
}

absl::Status SimDataPath::Released() const {
  return absl::UnavailableError(
      absl::StrCat(Context(),
                   "data path closed: the binding was released (unbound, "
                   "its session closed, or devmemd stopped)"));
}

absl::Status SimDataPath::Send(std::string_view packet) {
  if (eof_) return Released();
  for (;;) {
    const ssize_t n =
        ::send(fd_.get(), packet.data(), packet.size(), MSG_NOSIGNAL);
    if (n >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) {
      eof_ = true;
      return Released();
    }
    return ErrnoStatus(absl::StrCat(Context(), "data-path send"));
  }
}

absl::StatusOr<std::optional<simdp::Packet>> SimDataPath::Read(
    absl::Duration timeout) {
  if (eof_) return Released();
  const absl::Time deadline = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + timeout;
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, PollTimeoutMs(deadline - absl::Now()));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat(Context(), "poll data path"));
    }
    if (r == 0) return std::nullopt;
    buf_.resize(simdp::kMaxPacketBytes);
    const ssize_t n =
        ::recv(fd_.get(), buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (errno == ECONNRESET) {
        eof_ = true;
        return Released();
      }
      return ErrnoStatus(absl::StrCat(Context(), "data-path recv"));
    }
    if (n == 0) {
      eof_ = true;  // the sim sends no empty packets
      return Released();
    }
    if (static_cast<size_t>(n) > buf_.size()) {
      return absl::DataLossError(absl::StrCat(Context(), "data-path packet of ",
                                              n, " bytes, at most ",
                                              simdp::kMaxPacketBytes));
    }
    buf_.resize(static_cast<size_t>(n));
    absl::StatusOr<simdp::Packet> packet = simdp::Parse(buf_);
    if (!packet.ok()) {
      return absl::DataLossError(
          absl::StrCat(Context(), packet.status().message()));
    }
    return *packet;
  }
}

}  // namespace devmem::client_internal
