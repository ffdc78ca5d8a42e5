// The FakeKernel's own netlink wire encoder and decoder: attributes, nests,
// message headers and a strict attribute decoder. Deliberately independent of
// the provider's codec (providers/kernel/netlink_message.h), so a bug there
// cannot hide behind the same bug here.
//
//   Bytes p = Genl(kNetdevCmdBindRx);
//   U32(p, kNetdevADmabufId, 7);
//   Bytes m = Msg(kNetdevFamilyId, 0, seq, p);
//
// Thread safety: stateless functions.
#ifndef DEVMEM_TESTS_PROVIDERS_KERNEL_FAKE_WIRE_H_
#define DEVMEM_TESTS_PROVIDERS_KERNEL_FAKE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devmem::testing::wire {

using Bytes = std::vector<uint8_t>;

// Appends n raw bytes.
void Raw(Bytes& b, const void* p, size_t n);
// Appends an attribute of `type` with an n-byte payload, padded to 4.
void Attr(Bytes& b, uint16_t type, const void* p, size_t n);
void U16(Bytes& b, uint16_t type, uint16_t v);
void U32(Bytes& b, uint16_t type, uint32_t v);
void U64(Bytes& b, uint16_t type, uint64_t v);
// A netlink `uint`: 4 bytes if it fits, else 8 (as nla_put_uint does).
void Uint(Bytes& b, uint16_t type, uint64_t v);
// A NUL-terminated string attribute.
void Str(Bytes& b, uint16_t type, const std::string& s);
// A nested attribute (NLA_F_NESTED): NestBegin returns where it starts,
// NestEnd writes its length once its members are appended.
size_t NestBegin(Bytes& b, uint16_t type);
void NestEnd(Bytes& b, size_t at);

// One netlink message (nlmsghdr with pid 0, then `payload`), padded to 4.
Bytes Msg(uint16_t type, uint16_t flags, uint32_t seq, const Bytes& payload);
// A genetlink header for `cmd` (version 1).
Bytes Genl(uint8_t cmd);

// One attribute of a request, pointing into the request's bytes.
struct InAttr {
  uint16_t type;  // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
  bool nested;
  size_t offset;  // from the request's nlmsghdr
  const uint8_t* data;
  size_t len;
};

// The attributes in [p, p + n), whose first byte is `base` bytes from the
// request's nlmsghdr. Strict: nullopt on any malformed attribute (a length
// below 4 or past the end, or trailing bytes).
std::optional<std::vector<InAttr>> Decode(const uint8_t* p, size_t n,
                                          size_t base);

// The attribute's first 4 bytes (fewer if it is shorter) as a u32.
uint32_t GetU32(const InAttr& a);

}  // namespace devmem::testing::wire

#endif  // DEVMEM_TESTS_PROVIDERS_KERNEL_FAKE_WIRE_H_
