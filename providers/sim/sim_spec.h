// The simulated NIC's device list, as written on the daemon's command line:
//
//   sim0:rx=16,tx=16;sim1:rx=8,tx=8,numa=1,hds=off
//
// Devices are separated by ';', a device is NAME[:KEY=VALUE,...]. Keys
// (all optional):
//   rx=N          RX queues, 1..1024 (default 16)
//   tx=N          TX queues, 1..1024 (default 16)
//   numa=N        NUMA node, -1..1023 (default -1: none)
//   hds=V         initial tcp-data-split: auto (the kernel's "unknown", 0,
//                 the usual default), off, on, or unsupported (the device
//                 cannot split headers: PrepareDevice fails with EOPNOTSUPP)
//   hds-thresh=N  initial hds-thresh in bytes, 0..65535 (default 0)
//   devmem=yes|no does the driver support memory providers (default yes);
//                 "no" answers bind-rx/bind-tx with EOPNOTSUPP as an ordinary
//                 NIC without the queue API does
//   link=up|down  initial link state (default up)
// Names follow IFNAMSIZ: 1..15 characters of [A-Za-z0-9_.-], unique.
//
// Errors are InvalidArgument naming the bad part, e.g.
//   sim spec device 2 "sim1:rx=0": rx=0 is not in [1, 1024]
#ifndef DEVMEM_PROVIDERS_SIM_SIM_SPEC_H_
#define DEVMEM_PROVIDERS_SIM_SIM_SPEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "providers/provider.h"

namespace devmem {

struct SimDeviceSpec {
  std::string name;
  uint32_t rx_queues = 16;
  uint32_t tx_queues = 16;
  int32_t numa_node = -1;
  HeaderSplit header_split = HeaderSplit::kUnknown;
  bool header_split_supported = true;
  uint32_t hds_thresh = 0;
  bool devmem = true;
  bool link_up = true;

  friend bool operator==(const SimDeviceSpec&, const SimDeviceSpec&) = default;
};

inline constexpr uint32_t kSimMaxQueues = 1024;

absl::StatusOr<std::vector<SimDeviceSpec>> ParseSimSpec(std::string_view spec);

}  // namespace devmem

#endif  // DEVMEM_PROVIDERS_SIM_SIM_SPEC_H_
