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
// Data path (RX). Each RX binding maps the dmabuf, registers a Region (its
// page pool) over the mapping with the requested chunk size, and listens on
// 127.0.0.1:<ephemeral> (RxEndpoint()); that endpoint stands for the flows
// steered to the binding. One thread per binding accepts one connection at a
// time and receives straight into chunks allocated from the Region (payload
// only, as with header split), lends each filled chunk as a token and hands
// the sink batches of struct dmabuf_cmsg records. Tokens come back through
// ReturnTokens (<= 128 ranges, as SO_DEVMEM_DONTNEED). When the Region runs
// dry the binding stops reading the socket, so the sender is held back by TCP
// flow control, and counts an allocation failure (the kernel's
// rx-alloc-fail); it resumes when tokens come back. Nothing is dropped or
// overwritten.
//
// RxSink::Closed is called on the binding's thread once per connection:
// OK when the peer closed it, Unavailable (ENETDOWN) when the link went down,
// the socket's errno on an error; and a last time, with Cancelled, when the
// binding is destroyed (after StartRx). While the link is down connections
// wait in the listen backlog. The destructor stops the thread, closes the
// endpoint, releases every token still lent (Region::ReleaseAllTokens) and
// retires the Region; the mapping is unmapped when the Region is released.
//
// Data path (TX). StartTx connects to a loopback TCP peer; Send(offset, len)
// queues that range of the mapped buffer and returns its notification id;
// a thread per TX binding writes it to the socket and then reports
// TxSink::Completed(lo, hi) for the sends written. A range beyond the buffer
// is EFAULT (InvalidArgument), as sendmsg with a devmem cmsg. Link down
// closes the connection: queued sends are completed (the buffer is free
// again) and TxSink::Closed gets Unavailable (ENETDOWN).
//
// Thread safety: everything is thread-safe. Sinks are called on the binding's
// own thread, never with a sim lock held, so they may call ReturnTokens() and
// the SimNic controls, but must not destroy the binding.
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
  // device's bindings (their sinks get Closed(Unavailable)).
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
