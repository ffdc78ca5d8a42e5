// The sim provider's bindings, preparations and flow rules: RAII objects
// over the simulated kernel (sim_kernel.h) and, for bindings, a data path
// (rx_path.h, tx_path.h) over the mapped dmabuf (base/mapping.h). Destroying
// one undoes it in the simulated kernel, as closing the netlink socket or
// deleting the rule does in the real one. See providers/sim/sim_provider.h
// for the behaviour; internal to providers/sim.
//
// Thread safety: thread-safe (the kernel and the paths are).
#ifndef DEVMEM_PROVIDERS_SIM_INTERNAL_SIM_BINDINGS_H_
#define DEVMEM_PROVIDERS_SIM_INTERNAL_SIM_BINDINGS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "providers/provider.h"
#include "providers/sim/internal/sim_kernel.h"

namespace devmem::sim_internal {

absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
    std::shared_ptr<SimKernel> kernel, const std::string& device,
    absl::Span<const uint32_t> rx_queues);

// bind-rx: the kernel's checks (SimKernel::ReserveRx), then the mapping, the
// Region (the binding's page pool) and the RX path with its data path.
absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
    std::shared_ptr<SimKernel> kernel, const RxBindSpec& spec);
// bind-tx: the checks, the mapping and the TX path with its data path.
absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
    std::shared_ptr<SimKernel> kernel, const TxBindSpec& spec);

}  // namespace devmem::sim_internal

#endif  // DEVMEM_PROVIDERS_SIM_INTERNAL_SIM_BINDINGS_H_
