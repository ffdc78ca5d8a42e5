// Fuzz target: a datagram as the kernel's netdev / nlctrl families would send
// it, through every reply parser the kernel provider runs on it (message
// split, genl header, NLMSG_ERROR / NLMSG_DONE with extended acks, the
// netdev records, the family lookup, nested attributes).
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "providers/kernel/genl_client.h"
#include "providers/kernel/netdev_family.h"
#include "providers/kernel/netlink_message.h"

namespace {

using namespace devmem::kernel;  // NOLINT(build/namespaces): fuzz target only

// Reads every typed view of every attribute, and recurses into nests up to a
// small depth (the parsers bound depth themselves; this bounds the fuzzer).
void Walk(absl::Span<const NlAttr> attrs, int depth) {
  for (const NlAttr& a : attrs) {
    (void)AttrU8(a);
    (void)AttrU16(a);
    (void)AttrU32(a);
    (void)AttrU64(a);
    (void)AttrS32(a);
    (void)AttrUint(a);
    (void)AttrString(a);
    if (depth < 4) {
      auto nested = AttrNested(a);
      if (nested.ok()) Walk(*nested, depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto msgs = SplitMessages(absl::MakeConstSpan(data, size));
  if (!msgs.ok()) return 0;
  for (const NlMsg& msg : *msgs) {
    if (msg.type == NLMSG_ERROR) {
      (void)ParseNlError(msg);
      continue;
    }
    if (msg.type == NLMSG_DONE) {
      (void)ParseNlDone(msg);
      continue;
    }
    auto genl = ParseGenl(msg);
    if (!genl.ok()) continue;
    (void)ParseFamily(*genl);
    (void)ParseDevRecord(genl->attrs);
    (void)ParseQueueRecord(genl->attrs);
    (void)ParseNapiRecord(genl->attrs);
    (void)ParsePagePoolRecord(genl->attrs);
    (void)ParseQstatsRecord(genl->attrs);
    Walk(genl->attrs, 0);
  }
  return 0;
}
