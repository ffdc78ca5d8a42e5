// The simulated devmem NIC: a Provider that behaves like a devmem-capable NIC
// plus the kernel, with a real data path, on any Linux machine.
//
// Control path. Devices come from SimOptions::spec (see sim_spec.h). Each has
// a fake ifindex (1000 + position in the spec), RX/TX queues, a link state,
// tcp-data-split and hds-thresh settings, an RSS table and ntuple rules.
// bind-rx answers exactly as the kernel's 6.18 bind-rx does, in its order of
// checks, with the kernel's errno (StatusErrno() gives it back) and a message
// naming device, queue and reason:
//   queue list empty                         EINVAL  (missing queues attr)
//   chunk_size not a power of two in
//     [4 KiB, 2 MiB] (the sim's extension)    EINVAL
//   unknown device                           ENODEV
//   devmem=no (no queue API / ops lock)      EOPNOTSUPP
//   queue id >= rx queues                    EINVAL  "rx queue index out of
//                                                     range" (6.18; ERANGE
//                                                     before); duplicates
//                                                     collapse (6.18 bitmap)
//   link down                                ENETDOWN (see below)
//   fd not open                              EBADF   (dma_buf_get)
//   fd not a dma-buf/memfd, size 0, ...      EINVAL  (dma_buf_get;
//                                                     providers/common)
//   tcp-data-split not "on"                  EINVAL  "tcp-data-split is
//                                                     disabled"
//   hds-thresh != 0                          EINVAL  "hds-thresh is not zero"
//   queue already bound                      EEXIST  "designated queue
//                                                     already memory provider
//                                                     bound"
//   buffer smaller than one chunk            EINVAL
// Link down: the kernel has no explicit check (binding a down device's queue
// takes effect when it comes up; queue-get on a down device says ENOENT). The
// sim answers ENETDOWN (code Unavailable: retry when the link is up), after
// the request checks and before the fd checks, because a binding whose
// queues do not run could not deliver anything.
// bind-tx: unknown device ENODEV, devmem=no EOPNOTSUPP "Driver does not
// support netmem TX", then the fd checks. Binding ids are global to the
// simulated kernel (one per SimProvider), allocated cyclically from 1 and
// never reused while live, as the kernel's xarray does.
//
// PrepareDevice turns tcp-data-split on and hds-thresh to 0 and takes the
// given queues out of the RSS table, recording the previous settings; the
// preparations of a device stack, and when the last one is destroyed the
// recorded settings come back (tcp-data-split is left on, with a warning, if
// a queue is still bound: the kernel refuses to turn it off then). RSS
// always keeps at least one queue (EINVAL otherwise).
//
// Data path. Every binding has its own SOCK_SEQPACKET socketpair, the wire
// format of base/sim_datapath.h; TakeDataPath() hands out the job's end once
// (devmemd passes it to the owning session and never reads it). The sim's
// per-binding thread serves the other end directly.
//
// RX. Each RX binding maps the dmabuf, registers a Region (its page pool)
// over the mapping with the requested chunk size, and listens on
// 127.0.0.1:<ephemeral> (DataPath::rx_endpoint); that endpoint stands for
// the flows steered to the binding. The thread accepts one connection at a
// time and receives straight into chunks allocated from the Region (payload
// only, as with header split), lends each filled chunk as a token and sends
// kRxFrags records (up to 1024 a packet) on the data path; kDontneed ranges
// coming back are released as SO_DEVMEM_DONTNEED does (<= 128 ranges, 1024
// tokens) and answered with kDontneedDone. When the Region runs dry, or the
// job has not read what was sent, the binding stops reading the TCP socket,
// so the sender is held back by TCP flow control, and (dry) counts an
// allocation failure (the kernel's rx-alloc-fail); it resumes when tokens
// come back. Nothing is dropped or overwritten. Each connection's end is a
// kClosed: OK when the peer closed it, Unavailable (ENETDOWN) when the link
// went down, the socket's errno on an error. While the link is down
// connections wait in the listen backlog. If the job closes its end the sim
// releases every token it holds and closes the endpoint (new senders are
// refused). The destructor stops the thread, closes the endpoint and the
// data path (the job reads EOF), releases every token still lent
// (Region::ReleaseAllTokens) and retires the Region; the mapping is unmapped
// when the Region is released.
//
// TX. kTxConnect connects to a loopback TCP peer; each kTxSend(offset, len)
// is checked (EINVAL length 0, EFAULT beyond the buffer, as sendmsg with a
// devmem cmsg), answered with its notification id, queued (at most
// TxPath::kMaxQueuedSends; then the job is not read until some are
// written) and written without blocking; written sends are reported as
// kTxCompletion(lo, hi). Link down closes the connection: queued sends are
// completed (the buffer is free again) and a kClosed says ENETDOWN
// (Unavailable); later sends are refused with it.
//
// Thread safety: everything is thread-safe. The data-path threads never take
// the simulated kernel's lock.
//
// Ownership: bindings, preparations and flow rules share the simulated
// kernel's state, so they may outlive the provider.
#ifndef DEVMEM_PROVIDERS_SIM_SIM_PROVIDER_H_
#define DEVMEM_PROVIDERS_SIM_SIM_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "providers/provider.h"

namespace devmem {

namespace sim_internal {
class SimKernel;
}  // namespace sim_internal

struct SimOptions {
  std::string spec = "sim0:rx=16,tx=16";
};

// An ntuple rule as the simulated NIC holds it (for tests and devmemctl).
struct SimFlowRuleInfo {
  uint32_t rule_id = 0;
  uint32_t binding_id = 0;
  uint32_t queue = 0;
  Flow flow;
};

// The simulated NIC's knobs and views: what `ip link`, `ethtool -G/-X/-N`
// would do and show on a real machine. Every method fails with ENODEV
// (NotFound-class) for an unknown device. Thread-safe.
class SimNic {
 public:
  explicit SimNic(std::shared_ptr<sim_internal::SimKernel> kernel);

  // Link up/down. Down closes every RX connection and TX connection of the
  // device's bindings (their data paths get kClosed, Unavailable).
  absl::Status SetLinkUp(std::string_view device, bool up);
  // ethtool -G tcp-data-split. EOPNOTSUPP when the device cannot split;
  // EINVAL for anything but kEnabled while a queue is bound (6.14+).
  absl::Status SetHeaderSplit(std::string_view device, HeaderSplit value);
  // ethtool -G hds-thresh. EINVAL for non-zero while a queue is bound.
  absl::Status SetHdsThresh(std::string_view device, uint32_t bytes);
  // Whether the device can split headers at all. Turning support off also
  // sets tcp-data-split to kUnknown; EINVAL while a queue is bound.
  absl::Status SetHeaderSplitSupported(std::string_view device, bool supported);

  // The RX queues in the RSS indirection table.
  absl::StatusOr<std::vector<uint32_t>> RssQueues(
      std::string_view device) const;
  absl::StatusOr<std::vector<SimFlowRuleInfo>> FlowRules(
      std::string_view device) const;
  // Live DevicePreparation objects of the device.
  absl::StatusOr<uint32_t> Preparations(std::string_view device) const;

 private:
  std::shared_ptr<sim_internal::SimKernel> kernel_;
};

// Errors: InvalidArgument for a bad spec (sim_spec.h).
absl::StatusOr<std::unique_ptr<Provider>> CreateSimProvider(
    const SimOptions& options);

// The NIC controls of a provider made by CreateSimProvider; nullptr for any
// other provider. Valid as long as the provider.
SimNic* GetSimNic(Provider* provider);

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_SIM_SIM_PROVIDER_H_
