// Provider: the backend that makes bindings real on a device.
//
// A Provider lists devices and their queues, checks received dmabuf fds,
// prepares a device for devmem (header split, RSS away from bound queues),
// binds RX queues or TX to a dmabuf, and reports per-queue statistics. Two
// implementations exist: `sim` (a simulated devmem NIC with a real data path,
// the default; providers/sim) and `kernel` (the netdev generic-netlink family
// plus ethtool; providers/kernel). Only server/main.cc chooses between them.
//
// Both answer the same input with the same error: failures are the kernel's
// errno turned into a Status by base/errno_status.h (StatusErrno() gives the
// errno back), with a message naming the device, queue and reason, e.g.
//   "sim0: bind-rx queue 3: designated queue already memory provider bound
//    (EEXIST)".
//
// Ownership follows the kernel. There is no unbind command: a ProviderBinding
// object *is* the binding (the kernel provider holds the netlink socket that
// created it), and destroying it unbinds. A FlowRule and a DevicePreparation
// are RAII in the same way. Destroy them in reverse order of creation:
// flows, binding, preparation (members of one class, declared in that order
// of acquisition, do this by themselves).
//
// Thread safety: Provider and ProviderBinding methods are thread-safe.
#ifndef DEVMEM_PROVIDERS_PROVIDER_H_
#define DEVMEM_PROVIDERS_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"
#include "pool/chunk.h"
#include "pool/region.h"
#include "pool/stats.h"

namespace devmem {

enum class HeaderSplit { kUnknown = 0, kDisabled = 1, kEnabled = 2 };

// What is known about a device's devmem support. There is no "devmem capable"
// attribute in the kernel: kUnknown until a bind answered, kUnsupported with
// the kernel's reason after EOPNOTSUPP.
struct Capability {
  enum class State { kUnknown = 0, kSupported = 1, kUnsupported = 2 };
  State state = State::kUnknown;
  std::string reason;  // why unsupported / how it was learned
};

struct QueueInfo {
  uint32_t id = 0;
  bool rx = true;                      // queue-type rx (0) or tx (1)
  std::optional<uint32_t> binding_id;  // dmabuf id bound to this RX queue
  std::optional<uint32_t> napi_id;
};

struct DeviceInfo {
  std::string name;
  uint32_t ifindex = 0;
  uint32_t rx_queues = 0;  // real_num_rx_queues
  uint32_t tx_queues = 0;
  int32_t numa_node = -1;  // -1: unknown / no NUMA
  bool up = false;
  HeaderSplit header_split = HeaderSplit::kUnknown;
  uint32_t hds_thresh = 0;
  Capability rx_capability;
  Capability tx_capability;
  std::vector<QueueInfo> queues;  // RX queues first, then TX
};

// What CheckDmabuf learned about a received fd.
struct DmabufInfo {
  uint64_t size_bytes = 0;
  bool is_dmabuf = false;     // a real dma-buf (DMA_BUF_IOCTL_* works)
  bool cpu_mappable = false;  // the daemon could mmap it
  std::string exporter;       // "memfd", "udmabuf", the dma-buf exporter name
};

// A flow to steer to a binding's queues (an ntuple rule). Empty addresses and
// zero ports are wildcards; at least dst_port must be set.
struct Flow {
  bool ipv6 = false;
  std::string src_ip;
  std::string dst_ip;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
};

struct RxBindSpec {
  std::string device;
  std::vector<uint32_t> queue_ids;  // explicit, non-empty
  BorrowedFd dmabuf;                // the caller keeps ownership
  uint32_t chunk_size = 4096;       // kernel: PAGE_SIZE only
};

struct TxBindSpec {
  std::string device;
  BorrowedFd dmabuf;
};

struct QueueStats {
  uint32_t queue_id = 0;
  bool rx = true;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t alloc_fail = 0;  // rx-alloc-fail
  uint64_t hw_drops = 0;
};

struct BindingStats {
  uint32_t id = 0;
  uint64_t bytes_received = 0;  // RX payload written into the dmabuf
  uint64_t bytes_sent = 0;      // TX
  uint64_t frags = 0;           // dmabuf_cmsg records produced
  uint64_t alloc_fail = 0;      // RX stalls because the pool ran dry
  RegionStats pool;             // the binding's page pool
  // Kernel: page-pool-get inflight / detach-time of the bound queues' pools.
  std::optional<uint64_t> kernel_inflight;
  std::optional<uint64_t> kernel_detach_time;
};

// A data path a provider made for one binding, handed to the owning job
// and never read by the daemon. The sim provider makes one per binding: the
// job's end of a SOCK_SEQPACKET socket speaking base/sim_datapath.h. The
// kernel provider makes none: the job's own TCP socket is the data path.
struct DataPath {
  UniqueFd job_end;
  // RX: the loopback address ("127.0.0.1:PORT") standing for the flows
  // steered to the binding; a sender connects there. Empty for TX.
  std::string rx_endpoint;
};

// A rule steering one flow to a binding's queue; destroying it removes it.
class FlowRule {
 public:
  virtual ~FlowRule() = default;
  virtual uint32_t rule_id() const = 0;  // ntuple location / sim rule number
};

// One binding; destroying it unbinds (and, in sim mode, ends its data path:
// the job's end reads EOF and every token still lent is released; the region
// drains as chunks come back).
class ProviderBinding {
 public:
  virtual ~ProviderBinding() = default;

  virtual uint32_t id() const = 0;  // the kernel's dmabuf id, global
  virtual bool rx() const = 0;
  virtual const std::string& device() const = 0;
  virtual const std::vector<uint32_t>& queue_ids() const = 0;  // RX only

  // Steers `flow` to this binding's first queue. InvalidArgument for a bad
  // flow, FailedPrecondition for a TX binding.
  virtual absl::StatusOr<std::unique_ptr<FlowRule>> AddFlow(
      const Flow& flow) = 0;

  virtual BindingStats Stats() const = 0;

  // The provider-made data path, once: the first call moves it out; later
  // calls, and providers that make none (kernel), give nullopt.
  virtual std::optional<DataPath> TakeDataPath() { return std::nullopt; }

  // The region backing an RX binding's page pool (sim), for accounting and
  // drain tracking; null for kernel bindings.
  virtual std::shared_ptr<Region> region() const = 0;
};

// A device prepared for devmem on behalf of some queues; destroying the last
// preparation of a device restores every setting the provider changed.
class DevicePreparation {
 public:
  virtual ~DevicePreparation() = default;
  // What was changed, for logs ("tcp-data-split off->on; rss 0-15 -> 0-13").
  virtual std::string Describe() const = 0;
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view name() const = 0;  // "sim" or "kernel"

  // Devices with their queues. Kernel: netdev dev-get/queue-get dumps plus
  // sysfs/ethtool for names, NUMA node and header split.
  virtual absl::StatusOr<std::vector<DeviceInfo>> ListDevices() = 0;

  // Checks that `fd` can back a binding: size > 0, mappable or a real
  // dma-buf. EBADF/EINVAL-class errors otherwise, as bind-rx would give.
  virtual absl::StatusOr<DmabufInfo> CheckDmabuf(BorrowedFd fd) = 0;

  // Header split on, hds-thresh 0, RSS kept off `rx_queues`, recording prior
  // settings. Several preparations of one device stack; settings come back
  // when the last goes.
  virtual absl::StatusOr<std::unique_ptr<DevicePreparation>> PrepareDevice(
      std::string_view device, absl::Span<const uint32_t> rx_queues) = 0;

  // bind-rx / bind-tx. The device must be prepared (RX) or the kernel's
  // EINVAL "tcp-data-split is disabled" comes back.
  virtual absl::StatusOr<std::unique_ptr<ProviderBinding>> BindRx(
      const RxBindSpec& spec) = 0;
  virtual absl::StatusOr<std::unique_ptr<ProviderBinding>> BindTx(
      const TxBindSpec& spec) = 0;

  // qstats-get per queue of `device`.
  virtual absl::StatusOr<std::vector<QueueStats>> GetQueueStats(
      std::string_view device) = 0;

  // Pages of a released binding the device still holds: the kernel keeps a
  // detached page pool (and the binding's memory mapped) until every page
  // it handed out is back. Kernel: the `inflight` of the page-pool-get
  // records whose dmabuf is `binding_id` (0 once none lists it). A provider
  // whose bindings have a region (the sim) answers 0: the region tracks it.
  virtual absl::StatusOr<uint64_t> ReleasedInflight(uint32_t binding_id) {
    return 0;
  }
};

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_PROVIDER_H_
