// RxSocket: a job's receive loop over an RX binding, the same API whether
// the NIC is real (kernel provider) or simulated (sim provider).
//
//   ASSIGN_OR_RETURN(RxSocket rx, client->OpenRx(binding));   // sim
//   // kernel: client->OpenRx(binding, std::move(accepted_tcp_socket))
//   // or, in a process that was handed the data-path fd:
//   //   RxSocket::ForSimDataPath(std::move(fd), binding_id)
//   for (;;) {
//     ASSIGN_OR_RETURN(RxBatch batch, rx.Receive(absl::Seconds(1)));
//     if (batch.end_of_stream) break;
//     for (const Frag& f : batch.frags) {
//       // f.is_dmabuf(): payload at dmabuf[f.offset, f.offset + f.size)
//       // else:          payload at batch.linear[f.offset, ... + f.size)
//     }
//     RETURN_IF_ERROR(rx.Return(batch.frags));   // give the chunks back
//   }
//
// Kernel mode: recvmsg(MSG_SOCK_DEVMEM) on the job's own TCP socket; the
// SCM_DEVMEM_DMABUF / SCM_DEVMEM_LINEAR control messages become frags;
// Return() is setsockopt(SO_DEVMEM_DONTNEED) with consecutive tokens
// coalesced, at most 128 ranges and 1024 tokens a call. A control buffer
// too small for the next cmsg (ETOOSMALL, errno 525) is grown and the call
// retried. Sim mode: the binding's own data-path socket (passed by devmemd
// at Bind; base/sim_datapath.h) carries the very same struct dmabuf_cmsg
// records and takes the same struct dmabuf_token ranges back; the daemon is
// not in the path. After one flow ends (end_of_stream) the next flow's
// frags follow on the same socket; once the binding is released it reads
// EOF (Unavailable) and the sim has taken back every token still held.
//
// Tokens: each dmabuf frag holds one chunk of the binding until returned.
// A job that never returns tokens runs its binding dry: the NIC (or sim)
// stops filling it and the sender is held back (TCP flow control). Return
// frags soon after reading them; any subset, in any order, any number of
// calls. Linear frags have no token and are skipped by Return().
//
// Ownership: the RxSocket owns its socket, the kernel-mode TCP socket or the
// sim data path (closing either frees every token still outstanding, as the
// kernel does). Move-only.
//
// Thread safety: not thread-safe; one thread receives and returns. Sockets
// of different bindings share nothing and run in parallel.
#ifndef DEVMEM_CLIENT_RX_SOCKET_H_
#define DEVMEM_CLIENT_RX_SOCKET_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"
#include "client/devmem_socket.h"

namespace devmem {

// What one Receive() returned.
struct RxBatch {
  // In stream order.
  std::vector<Frag> frags;
  // Host-memory payload of the kLinear frags; valid until the next
  // Receive() on the same socket.
  absl::Span<const std::byte> linear;
  // Payload bytes in `frags`.
  uint64_t bytes = 0;
  // The sender closed the connection (kernel: recvmsg returned 0; sim: the
  // binding's flow ended cleanly). `frags` is empty then.
  bool end_of_stream = false;

  // Nothing arrived before the timeout.
  bool empty() const { return frags.empty() && !end_of_stream; }
};

struct RxStats {
  uint64_t bytes = 0;
  uint64_t frags = 0;
  uint64_t batches = 0;
  uint64_t tokens_outstanding = 0;  // lent to us, not yet returned
  uint64_t tokens_returned = 0;
  uint64_t return_calls = 0;     // SO_DEVMEM_DONTNEED / ReturnTokens
  uint64_t tokens_rejected = 0;  // returned but unknown to the kernel/sim
  uint64_t control_grows = 0;    // ETOOSMALL: control buffer grown
};

namespace rx_internal {
class RxImpl;
}  // namespace rx_internal

// The syscalls kernel mode makes, and its buffer sizes (RxSocket::KernelOps
// and RxSocket::KernelOptions).
// The syscalls kernel mode makes, replaceable for tests (a fake kernel
// answering with synthetic control buffers). Each returns what the
// syscall returns and sets errno.
struct RxKernelOps {
  std::function<ssize_t(int fd, msghdr* msg, int flags)> recvmsg;
  std::function<int(int fd, const void* opt, socklen_t len)> dontneed;
  std::function<int(int fd, int timeout_ms)> poll_in;  // >0 readable
  static RxKernelOps Real();
};

struct RxKernelOptions {
  // Host buffer for linear payload; also bounds the bytes one recvmsg
  // returns (dmabuf bytes count against it too).
  size_t iov_bytes = 1 << 20;
  // Initial control buffer; grown on ETOOSMALL up to max_control_bytes.
  size_t control_bytes = 16 << 10;
  size_t max_control_bytes = 4 << 20;
  // Payload that arrived in host memory without any devmem cmsg (the flow
  // hit a queue that is not bound) is an error, as in ncdevmem. False:
  // deliver it as a kLinear frag.
  bool host_data_is_error = true;
};

class RxSocket {
 public:
  using KernelOps = RxKernelOps;
  using KernelOptions = RxKernelOptions;

  // Kernel mode over the job's connected TCP socket whose flow is steered
  // to binding `binding_id` (frags from another binding are an error:
  // FailedPrecondition, "flow steering"). Errors: InvalidArgument for a bad
  // fd or options.
  static absl::StatusOr<RxSocket> ForKernelSocket(
      UniqueFd tcp, uint32_t binding_id, KernelOptions options = {},
      KernelOps ops = KernelOps::Real());
  // Sim mode over a binding's data-path fd (Client::TakeDataPath, or one
  // received from the process that bound). InvalidArgument without an fd.
  static absl::StatusOr<RxSocket> ForSimDataPath(UniqueFd data_path,
                                                 uint32_t binding_id);

  RxSocket(RxSocket&&) noexcept;
  RxSocket& operator=(RxSocket&&) noexcept;
  ~RxSocket();

  // Waits up to `timeout` for payload. An empty batch means the timeout
  // passed. Errors: DataLoss (malformed control data, or MSG_CTRUNC on a
  // kernel without ETOOSMALL), FailedPrecondition (a frag of another
  // binding, or host data with host_data_is_error: the flow is not steered
  // to the binding), ResourceExhausted (control buffer at its maximum and
  // still too small), Unavailable (the binding was released, or the flow
  // ended because the link went down), the socket's errno. After an error
  // the tokens of that call were returned.
  absl::StatusOr<RxBatch> Receive(
      absl::Duration timeout = absl::InfiniteDuration());

  // Returns the tokens of the dmabuf frags in `frags` (linear frags are
  // skipped). Errors: InvalidArgument when some tokens were not outstanding
  // (counted in tokens_rejected; the others were returned); the syscall's or
  // session's error.
  absl::Status Return(absl::Span<const Frag> frags);

  RxStats stats() const;
  uint32_t binding_id() const;

  // For Client::OpenRx.
  explicit RxSocket(std::unique_ptr<rx_internal::RxImpl> impl);

 private:
  std::unique_ptr<rx_internal::RxImpl> impl_;
};

}  // namespace devmem

#endif  // DEVMEM_CLIENT_RX_SOCKET_H_
