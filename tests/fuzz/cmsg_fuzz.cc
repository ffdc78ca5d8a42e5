// Fuzz target: the client's control-message walkers, run on a buffer the
// kernel (or a hostile peer on an emulated socket) filled: recvmsg's devmem
// cmsgs (SCM_DEVMEM_DMABUF / SCM_DEVMEM_LINEAR) and MSG_ERRQUEUE zerocopy
// completions. The first byte picks the walker; the rest is msg_control,
// copied into an aligned buffer as the kernel's would be.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/types/span.h"
#include "client/devmem_socket.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t which = data[0];
  // cmsghdr-aligned storage of exactly the input's length, so an overrun is
  // an ASan report rather than a read of slack.
  std::vector<std::byte> control(size - 1);
  if (!control.empty()) std::memcpy(control.data(), data + 1, size - 1);
  if (which & 1) {
    std::vector<devmem::ZerocopyRange> ranges;
    absl::Status s = devmem::ParseZerocopyControl(control, &ranges);
    if (!s.ok() && !ranges.empty() && (which & 2)) {
      // Appending on error is allowed for completions seen before it; read
      // them so a bogus entry is touched.
      for (const auto& r : ranges) (void)(r.hi - r.lo);
    }
  } else {
    devmem::ParsedControl out;
    absl::Status s = devmem::ParseDevmemControl(control, &out);
    if (!s.ok()) {
      // The contract: nothing is appended when parsing fails.
      if (!out.frags.empty() || out.dmabuf_bytes || out.linear_bytes) {
        __builtin_trap();
      }
    } else {
      uint64_t dmabuf = 0, linear = 0;
      for (const devmem::Frag& f : out.frags) {
        (f.is_dmabuf() ? dmabuf : linear) += f.size;
        if (f.is_dmabuf() && f.size == 0) __builtin_trap();
      }
      if (dmabuf != out.dmabuf_bytes || linear != out.linear_bytes) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
