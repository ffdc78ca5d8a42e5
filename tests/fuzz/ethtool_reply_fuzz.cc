// Fuzz target: the attributes of an ETHTOOL_MSG_RINGS_GET_REPLY (header
// split, hds-thresh, ring sizes), as ethtool netlink would send them.
#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "providers/kernel/ethtool.h"
#include "providers/kernel/netlink_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto attrs = devmem::kernel::ParseAttrs(absl::MakeConstSpan(data, size));
  if (!attrs.ok()) return 0;
  (void)devmem::kernel::ParseRingsReply(*attrs);
  return 0;
}
