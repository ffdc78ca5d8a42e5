#include "tests/providers_kernel/fake_wire.h"

#include <linux/netlink.h>

#include <algorithm>
#include <cstring>

namespace devmem::testing::wire {
namespace {

void Pad(Bytes& b) {
  while (b.size() % 4 != 0) b.push_back(0);
}

}  // namespace

void Raw(Bytes& b, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  b.insert(b.end(), c, c + n);
}

void Attr(Bytes& b, uint16_t type, const void* p, size_t n) {
  const uint16_t len = static_cast<uint16_t>(4 + n);
  Raw(b, &len, 2);
  Raw(b, &type, 2);
  Raw(b, p, n);
  Pad(b);
}

void U16(Bytes& b, uint16_t type, uint16_t v) { Attr(b, type, &v, 2); }
void U32(Bytes& b, uint16_t type, uint32_t v) { Attr(b, type, &v, 4); }
void U64(Bytes& b, uint16_t type, uint64_t v) { Attr(b, type, &v, 8); }

void Uint(Bytes& b, uint16_t type, uint64_t v) {
  if (v <= UINT32_MAX) {
    U32(b, type, static_cast<uint32_t>(v));
  } else {
    U64(b, type, v);
  }
}

void Str(Bytes& b, uint16_t type, const std::string& s) {
  Attr(b, type, s.c_str(), s.size() + 1);
}

size_t NestBegin(Bytes& b, uint16_t type) {
  const size_t at = b.size();
  const uint16_t zero = 0, t = type | NLA_F_NESTED;
  Raw(b, &zero, 2);
  Raw(b, &t, 2);
  return at;
}

void NestEnd(Bytes& b, size_t at) {
  const uint16_t len = static_cast<uint16_t>(b.size() - at);
  std::memcpy(b.data() + at, &len, 2);
}

Bytes Msg(uint16_t type, uint16_t flags, uint32_t seq, const Bytes& payload) {
  Bytes b;
  const uint32_t len = static_cast<uint32_t>(16 + payload.size());
  const uint32_t pid = 0;
  Raw(b, &len, 4);
  Raw(b, &type, 2);
  Raw(b, &flags, 2);
  Raw(b, &seq, 4);
  Raw(b, &pid, 4);
  b.insert(b.end(), payload.begin(), payload.end());
  Pad(b);
  return b;
}

Bytes Genl(uint8_t cmd) { return Bytes{cmd, 1, 0, 0}; }

std::optional<std::vector<InAttr>> Decode(const uint8_t* p, size_t n,
                                          size_t base) {
  std::vector<InAttr> out;
  size_t pos = 0;
  while (pos + 4 <= n) {
    uint16_t len, type;
    std::memcpy(&len, p + pos, 2);
    std::memcpy(&type, p + pos + 2, 2);
    if (len < 4 || pos + len > n) return std::nullopt;
    out.push_back({static_cast<uint16_t>(type & 0x3fff),
                   (type & NLA_F_NESTED) != 0, base + pos, p + pos + 4,
                   static_cast<size_t>(len - 4)});
    pos += (len + 3) & ~3u;
  }
  if (pos < n) return std::nullopt;
  return out;
}

uint32_t GetU32(const InAttr& a) {
  uint32_t v = 0;
  std::memcpy(&v, a.data, std::min<size_t>(a.len, 4));
  return v;
}

}  // namespace devmem::testing::wire
