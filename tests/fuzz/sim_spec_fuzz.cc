// Fuzz target: the sim provider's device spec (--sim-devices), e.g.
// "sim0:rx=8,tx=8;sim1". Whatever parses must satisfy the documented limits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "providers/sim/sim_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view spec(reinterpret_cast<const char*>(data), size);
  auto devices = devmem::ParseSimSpec(spec);
  if (!devices.ok()) return 0;
  for (const devmem::SimDeviceSpec& d : *devices) {
    if (d.name.empty() || d.rx_queues > devmem::kSimMaxQueues ||
        d.tx_queues > devmem::kSimMaxQueues) {
      __builtin_trap();
    }
  }
  return 0;
}
