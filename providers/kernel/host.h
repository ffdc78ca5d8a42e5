// HostOps: what the kernel provider learns about devices outside netlink:
// name <-> ifindex, the IFF_UP flag, and sysfs (queue directories, NUMA
// node). An interface so tests can describe devices that do not exist here.
//
// Thread safety: implementations are thread-safe. Names and indexes resolve
// in the calling thread's network namespace; sysfs reflects the namespace it
// was mounted in (`ip netns exec` and the live tests remount it).
#ifndef DEVMEM_PROVIDERS_KERNEL_HOST_H_
#define DEVMEM_PROVIDERS_KERNEL_HOST_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace devmem::kernel {

struct QueueCounts {
  uint32_t rx = 0;
  uint32_t tx = 0;
};

class HostOps {
 public:
  virtual ~HostOps() = default;
  // NotFound (ENODEV) for an unknown name.
  virtual absl::StatusOr<uint32_t> NameToIndex(const std::string& name) = 0;
  // NotFound (ENXIO/ENODEV) for an unknown index.
  virtual absl::StatusOr<std::string> IndexToName(uint32_t ifindex) = 0;
  virtual absl::StatusOr<bool> IsUp(const std::string& name) = 0;
  // <sysfs>/<name>/device/numa_node; nullopt when absent or -1.
  virtual std::optional<int32_t> NumaNode(const std::string& name) = 0;
  // Counts rx-N / tx-N entries of <sysfs>/<name>/queues.
  virtual absl::StatusOr<QueueCounts> SysfsQueueCounts(
      const std::string& name) = 0;
};

// if_nametoindex/if_indextoname, SIOCGIFFLAGS and files under `sysfs_net`
// (normally /sys/class/net).
std::unique_ptr<HostOps> CreateRealHostOps(
    std::string sysfs_net = "/sys/class/net");

}  // namespace devmem::kernel

#endif  // DEVMEM_PROVIDERS_KERNEL_HOST_H_
