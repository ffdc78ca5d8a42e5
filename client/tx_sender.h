// TxSender: sends ranges of a TX-bound dmabuf and tracks their completions,
// the same API for the kernel (devmem TX, 6.16+) and the sim provider.
//
//   ASSIGN_OR_RETURN(Binding tx, client->BindTx(buf.fd(), "sim0"));
//   ASSIGN_OR_RETURN(TxSender sender, client->OpenTx(tx, "127.0.0.1:9000"));
//   ASSIGN_OR_RETURN(TxRange r, sender.Allocate(64 << 10));
//   // ... write the payload into the dmabuf at [r.offset, r.offset+r.length)
//   RETURN_IF_ERROR(sender.Send(r));
//   RETURN_IF_ERROR(sender.Flush(absl::Seconds(5)));  // all completed
//
// Buffer space comes from a pool TxArena (ring-wise, chunk aligned): a range
// is reusable only after the NIC completed it. Allocate() answers
// Unavailable when the space is in flight: call PollCompletions() and retry.
//
// Kernel mode: sendmsg(MSG_ZEROCOPY) on the job's connected TCP socket with
// one SCM_DEVMEM_DMABUF cmsg holding the u32 binding id and iov_base = the
// offset in the dmabuf; SO_ZEROCOPY is turned on here. Completions are read
// from the socket's error queue (SO_EE_ORIGIN_ZEROCOPY ranges). Sim mode:
// the binding's own data-path socket (base/sim_datapath.h): kTxConnect,
// kTxSend, and kTxCompletion ranges with the same meaning; the daemon is
// not in the path. Once the binding is released, sends fail Unavailable.
//
// Ownership: owns its socket (kernel TCP socket or sim data path).
// Move-only.
// Thread safety: not thread-safe.
#ifndef DEVMEM_CLIENT_TX_SENDER_H_
#define DEVMEM_CLIENT_TX_SENDER_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/sim_datapath.h"
#include "base/unique_fd.h"
#include "pool/tx_arena.h"

namespace devmem {

namespace client_internal {
class SimDataPath;
}  // namespace client_internal

struct TxStats {
  uint64_t sends = 0;            // Send() calls
  uint64_t bytes = 0;            // bytes handed to Send()
  uint64_t completed = 0;        // sends completed
  uint64_t in_flight = 0;        // sends not yet completed
  uint64_t transport_calls = 0;  // sendmsg / TxSend calls
};

class TxSender {
 public:
  // The syscalls of kernel mode, replaceable in tests.
  struct KernelOps {
    std::function<ssize_t(int fd, const msghdr* msg, int flags)> sendmsg;
    std::function<ssize_t(int fd, msghdr* msg, int flags)> recvmsg;
    std::function<int(int fd, int level, int name, const void* v,
                      socklen_t len)>
        setsockopt;
    std::function<int(int fd, int timeout_ms)> poll_err;  // >0: readable
    static KernelOps Real();
  };

  // Kernel mode over the job's connected TCP socket (routed through the
  // binding's device); `size_bytes` and `chunk_size` describe the dmabuf.
  // Errors: InvalidArgument (bad socket or sizes), setsockopt(SO_ZEROCOPY)'s
  // errno.
  static absl::StatusOr<TxSender> ForKernelSocket(
      UniqueFd tcp, uint32_t binding_id, uint64_t size_bytes,
      uint32_t chunk_size, KernelOps ops = KernelOps::Real());
  // Sim mode over the binding's data-path fd: the simulated NIC connects the
  // binding to `peer` ("127.0.0.1:PORT"). Errors: InvalidArgument (no fd,
  // bad sizes, a bad peer), the connect's errno (ECONNREFUSED), ENETDOWN,
  // Unavailable (the binding is gone).
  static absl::StatusOr<TxSender> ForSimDataPath(UniqueFd data_path,
                                                 uint32_t binding_id,
                                                 std::string_view peer,
                                                 uint64_t size_bytes,
                                                 uint32_t chunk_size);

  TxSender(TxSender&&) noexcept;
  TxSender& operator=(TxSender&&) noexcept;
  ~TxSender();

  // Reserves `bytes` of the dmabuf to fill and send. Errors as
  // TxArena::Allocate (Unavailable: wait for completions).
  absl::StatusOr<TxRange> Allocate(uint64_t bytes);
  // Sends all of `range` (from Allocate, each exactly once).
  absl::Status Send(const TxRange& range);
  // Processes completions, waiting up to `timeout` for the first; returns
  // how many sends completed. Unavailable when the connection closed.
  absl::StatusOr<uint32_t> PollCompletions(absl::Duration timeout);
  // Waits until every send completed. DeadlineExceeded after `timeout`.
  absl::Status Flush(absl::Duration timeout);

  TxStats stats() const;
  uint32_t binding_id() const { return binding_id_; }

 private:
  TxSender(uint32_t binding_id, TxArena arena);
  absl::StatusOr<uint32_t> SendOnce(uint64_t offset, uint64_t length);
  // Marks transport ids [lo, hi] done and completes finished sends.
  uint32_t CompleteTransport(uint32_t lo, uint32_t hi);

  uint32_t binding_id_;
  std::unique_ptr<TxArena> arena_;
  // Kernel mode.
  UniqueFd tcp_;
  KernelOps ops_;
  uint32_t next_zc_id_ = 0;
  // Sim mode.
  std::unique_ptr<client_internal::SimDataPath> dp_;
  // Waits for the answer to a kTxConnect/kTxSend, applying completions that
  // come first; the send id on success.
  absl::StatusOr<uint32_t> AwaitAccepted();
  // Applies one sim packet that is not an answer (completions add to
  // `completed`); the connection's end as an error.
  absl::Status ApplySim(const simdp::Packet& p, uint32_t* completed);
  // transport id (zerocopy id / sim send id) -> arena send id, and how many
  // transport ids each arena send still waits for.
  std::map<uint32_t, uint32_t> transport_;
  std::map<uint32_t, uint32_t> pending_;
  TxStats stats_;
};

}  // namespace devmem

#endif  // DEVMEM_CLIENT_TX_SENDER_H_
