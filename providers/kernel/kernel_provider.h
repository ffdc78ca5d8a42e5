// The `kernel` provider: real devmem bindings through the kernel's `netdev`
// generic-netlink family, NIC preparation through ethtool.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Provider> provider,
//                    CreateKernelProvider({}));
//   ASSIGN_OR_RETURN(auto prep, provider->PrepareDevice("eth1", {14, 15}));
//   ASSIGN_OR_RETURN(auto binding, provider->BindRx({.device = "eth1",
//                        .queue_ids = {14, 15}, .dmabuf = fd.borrow()}));
//   // The job now receives with recvmsg(MSG_SOCK_DEVMEM) on its own socket.
//
// What it does (shared/reference/kernel-devmem.md has the kernel facts):
//   * ListDevices: dev-get and queue-get dumps; names from the ifindex; queue
//     counts from sysfs for devices that are down (queue-get skips them);
//     NUMA node from sysfs; header split from ethtool rings-get (kUnknown when
//     the driver cannot say). Capability is kUnknown until a bind answered:
//     kUnsupported with the kernel's reason after EOPNOTSUPP.
//   * BindRx/BindTx: a new netlink socket per binding, held by the returned
//     ProviderBinding; destroying it closes the socket, which is the unbind.
//     chunk_size must be 4096 (kernel net_iovs are PAGE_SIZE). There is no
//     provider-made data path (TakeDataPath() is empty): the job receives on
//     its own socket with recvmsg(MSG_SOCK_DEVMEM) and returns tokens with
//     SO_DEVMEM_DONTNEED. region() is null.
//   * PrepareDevice: tcp-data-split on and hds-thresh 0 (where offered), RSS
//     indirection spread over the RX queues no preparation reserves. Prior
//     settings are recorded at the first preparation of a device and restored
//     when its last preparation is destroyed.
//   * AddFlow: an ntuple rule to the binding's first queue, removed when the
//     FlowRule is destroyed.
//   * Stats: page-pool-get (inflight, detach-time of pools whose dmabuf is
//     the binding) and qstats-get of the bound queues.
//
// Errors carry the kernel's errno (base/errno_status.h). Bindings, flow rules
// and preparations may outlive the provider object (they share its state).
//
// Thread safety: all methods are thread-safe. Sockets and device names live
// in the network namespace of the thread that calls (one provider per netns).
#ifndef DEVMEM_PROVIDERS_KERNEL_KERNEL_PROVIDER_H_
#define DEVMEM_PROVIDERS_KERNEL_KERNEL_PROVIDER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "providers/kernel/ethtool.h"
#include "providers/kernel/host.h"
#include "providers/kernel/netlink_transport.h"
#include "providers/provider.h"

namespace devmem {

struct KernelProviderOptions {
  // Seams for tests; null means the real kernel (AF_NETLINK sockets,
  // SIOCETHTOOL, if_nametoindex and /sys/class/net).
  std::shared_ptr<kernel::NetlinkTransport> transport;
  std::shared_ptr<kernel::EthtoolOps> ethtool;
  std::shared_ptr<kernel::HostOps> host;
};

// Resolves the netdev family (NotFound when the kernel lacks it, i.e. before
// 6.3) and checks that bind-rx exists (Unimplemented before 6.12).
absl::StatusOr<std::unique_ptr<Provider>> CreateKernelProvider(
    const KernelProviderOptions& options);

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_KERNEL_KERNEL_PROVIDER_H_
