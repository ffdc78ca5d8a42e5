// fdsock_codec: FdMessage framing over base/fd_socket, shared by devmemd and
// the client library.
//
// One SEQPACKET packet carries one serialized devmem.v1.FdMessage (see
// fdsock.proto and docs/API.md).
//
// Thread safety: every function is thread-safe (stateless).
#ifndef DEVMEM_SESSION_FDSOCK_CODEC_H_
#define DEVMEM_SESSION_FDSOCK_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/fd_socket.h"
#include "base/unique_fd.h"
#include "devmem/v1/fdsock.pb.h"

namespace devmem::fdsock {

inline constexpr uint32_t kProtocolVersion = 1;
// Largest packet a job may send / the daemon sends.
inline constexpr size_t kMaxJobFrameBytes = 64 * 1024;
inline constexpr size_t kMaxDaemonFrameBytes = 256 * 1024;

// Serializes `m` and sends it as one packet with `fds`. Errors as SendFrame.
absl::Status SendMessage(BorrowedFd sock, const v1::FdMessage& m,
                         absl::Span<const BorrowedFd> fds = {}, int flags = 0);

struct ReceivedMessage {
  bool eof = false;
  v1::FdMessage message;
  std::vector<UniqueFd> fds;  // owned; closed with this object
};

// Receives and parses one packet of at most `max_bytes`. A packet that breaks
// a limit or does not parse is InvalidArgument naming the problem (its fds
// are closed); EOF is reported in `eof`. Syscall errors as RecvFrame.
absl::StatusOr<ReceivedMessage> RecvMessage(BorrowedFd sock, size_t max_bytes,
                                            size_t max_fds = 1, int flags = 0);

// The absl::Status an Error reply stands for.
absl::Status ErrorToStatus(const v1::Error& e);
// An Error reply for `status`, with a stable reason.
v1::Error StatusToError(const absl::Status& status, std::string_view reason);

}  // namespace devmem::fdsock

#endif  // DEVMEM_SESSION_FDSOCK_CODEC_H_
