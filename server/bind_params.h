// BindParams: a Bind request as the broker takes it, and the one place its
// shape is checked.
//
// ValidateBindParams holds every rule that needs no device and no state:
// device name length, ticket present, TX takes no queues or flows, RX takes
// exactly one of num_queues or queue_ids (at most kMaxBindQueues, no
// duplicates), at most kMaxBindFlows flows each passing CheckFlow
// (providers/flow.h), and a chunk size Region::ValidChunkSize accepts. What
// needs the device (queue ids in range, free queues) is the broker's queue
// choice; what needs the kernel is the provider's.
//
// Thread safety: plain values and a pure function.
#ifndef DEVMEM_SERVER_BIND_PARAMS_H_
#define DEVMEM_SERVER_BIND_PARAMS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "providers/provider.h"

namespace devmem::server {

inline constexpr size_t kMaxDeviceNameBytes = 64;
inline constexpr size_t kMaxBindQueues = 1024;
inline constexpr size_t kMaxBindFlows = 64;

struct BindParams {
  std::string ticket;
  std::string device;
  bool rx = true;
  uint32_t num_queues = 0;
  std::vector<uint32_t> queue_ids;
  std::vector<Flow> flows;
  uint32_t chunk_size = 0;  // 0: default
};

// InvalidArgument naming the field and the rule.
absl::Status ValidateBindParams(const BindParams& p);

}  // namespace devmem::server

#endif  // DEVMEM_SERVER_BIND_PARAMS_H_
