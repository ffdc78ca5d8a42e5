#include "server/bind_params.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "pool/region.h"
#include "providers/flow.h"

namespace devmem::server {

absl::Status ValidateBindParams(const BindParams& p) {
  if (p.device.empty() || p.device.size() > kMaxDeviceNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device: a name of 1-", kMaxDeviceNameBytes, " bytes needed"));
  }
  if (p.ticket.empty()) return absl::InvalidArgumentError("ticket is empty");
  if (!p.rx) {
    if (p.num_queues != 0 || !p.queue_ids.empty() || !p.flows.empty()) {
      return absl::InvalidArgumentError(
          "a TX binding takes no queues and no flows");
    }
    return absl::OkStatus();
  }
  if ((p.num_queues == 0) == p.queue_ids.empty()) {
    return absl::InvalidArgumentError(
        "rx: give exactly one of num_queues (> 0) or queue_ids");
  }
  if (p.num_queues > kMaxBindQueues || p.queue_ids.size() > kMaxBindQueues) {
    return absl::InvalidArgumentError(
        absl::StrCat("rx: at most ", kMaxBindQueues, " queues"));
  }
  std::vector<uint32_t> q = p.queue_ids;
  std::sort(q.begin(), q.end());
  if (std::adjacent_find(q.begin(), q.end()) != q.end()) {
    return absl::InvalidArgumentError("rx: queue_ids has duplicates");
  }
  if (p.flows.size() > kMaxBindFlows) {
    return absl::InvalidArgumentError(
        absl::StrCat("rx: at most ", kMaxBindFlows, " flows"));
  }
  for (const Flow& f : p.flows) RETURN_IF_ERROR(CheckFlow(f));
  if (p.chunk_size != 0 && !Region::ValidChunkSize(p.chunk_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rx: chunk_size ", p.chunk_size, " is not a power of two in [",
        Region::kMinChunkSize, ", ", Region::kMaxChunkSize, "]"));
  }
  return absl::OkStatus();
}

}  // namespace devmem::server
