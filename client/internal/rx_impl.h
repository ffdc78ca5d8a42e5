// The two RxSocket implementations: KernelRx (recvmsg MSG_SOCK_DEVMEM on the
// job's TCP socket) and SimRx (frags over the daemon session). Internal.
#ifndef DEVMEM_CLIENT_INTERNAL_RX_IMPL_H_
#define DEVMEM_CLIENT_INTERNAL_RX_IMPL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/rx_socket.h"

namespace devmem {
namespace client_internal {
class ClientCore;
}  // namespace client_internal

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
  SimRx(std::shared_ptr<client_internal::ClientCore> core, uint32_t binding);
  absl::StatusOr<RxBatch> Receive(absl::Duration timeout) override;
  absl::Status ReturnTokens(std::vector<uint32_t> tokens) override;

 private:
  std::shared_ptr<client_internal::ClientCore> core_;
};

}  // namespace rx_internal
}  // namespace devmem

#endif  // DEVMEM_CLIENT_INTERNAL_RX_IMPL_H_
