// The two RxSocket implementations: KernelRx (recvmsg MSG_SOCK_DEVMEM on the
// job's TCP socket) and SimRx (the sim binding's own data-path socket).
// Internal.
#ifndef DEVMEM_CLIENT_INTERNAL_RX_IMPL_H_
#define DEVMEM_CLIENT_INTERNAL_RX_IMPL_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/uapi.h"
#include "client/internal/sim_data_path.h"
#include "client/rx_socket.h"

namespace devmem {

namespace rx_internal {

class RxImpl {
 public:
  virtual ~RxImpl() = default;
  virtual absl::StatusOr<RxBatch> Receive(absl::Duration timeout) = 0;
  // Returns tokens (already collected from frags).
  virtual absl::Status ReturnTokens(std::vector<uint32_t> tokens) = 0;
  RxStats stats;
  uint32_t binding_id = 0;
};

class KernelRx : public RxImpl {
 public:
  KernelRx(UniqueFd tcp, uint32_t binding_id, RxSocket::KernelOptions options,
           RxSocket::KernelOps ops);
  absl::StatusOr<RxBatch> Receive(absl::Duration timeout) override;
  absl::Status ReturnTokens(std::vector<uint32_t> tokens) override;

 private:
  // Best effort, after an error: gives back what a failed call lent us.
  void GiveBack(const std::vector<Frag>& frags);

  UniqueFd tcp_;
  RxSocket::KernelOptions options_;
  RxSocket::KernelOps ops_;
  std::vector<std::byte> iov_;
  std::vector<std::byte> control_;
};

class SimRx : public RxImpl {
 public:
  SimRx(UniqueFd data_path, uint32_t binding);
  absl::StatusOr<RxBatch> Receive(absl::Duration timeout) override;
  absl::Status ReturnTokens(std::vector<uint32_t> tokens) override;

 private:
  // What came while a token return waited for its answer, in order: a
  // frag batch, or the end of a flow.
  struct Held {
    std::vector<uapi::DmabufCmsg> frags;
    absl::Status closed;
    bool is_close = false;
  };
  // Turns frag records (or a flow's end) into what Receive() returns.
  absl::StatusOr<RxBatch> Deliver(std::vector<uapi::DmabufCmsg> frags);
  absl::StatusOr<RxBatch> FlowEnded(const absl::Status& why);
  // Keeps what is not the awaited answer for Receive().
  absl::Status Hold(const simdp::Packet& p);

  client_internal::SimDataPath dp_;
  std::deque<Held> held_;
};

}  // namespace rx_internal
}  // namespace devmem

#endif  // DEVMEM_CLIENT_INTERNAL_RX_IMPL_H_
