#include "client/demo/pattern.h"

#include <cstring>

namespace devmem::demo {
namespace {

inline uint64_t Word(uint64_t w, uint64_t seed) {
  // splitmix64's finaliser: cheap, and every word differs from its
  // neighbours, so a fragment at the wrong offset never verifies.
  uint64_t z = (w ^ seed) + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

inline uint8_t ByteOf(uint64_t word, uint64_t offset) {
  return static_cast<uint8_t>(word >> ((offset & 7) * 8));
}

}  // namespace

uint8_t PatternByte(uint64_t offset, uint64_t seed) {
  return ByteOf(Word(offset >> 3, seed), offset);
}

void FillPattern(uint64_t offset, absl::Span<std::byte> out, uint64_t seed) {
  size_t i = 0;
  const size_t n = out.size();
  for (; i < n && ((offset + i) & 7) != 0; ++i) {
    out[i] = std::byte{PatternByte(offset + i, seed)};
  }
  for (; i + 8 <= n; i += 8) {
    const uint64_t w = Word((offset + i) >> 3, seed);  // little endian
    std::memcpy(out.data() + i, &w, 8);
  }
  for (; i < n; ++i) out[i] = std::byte{PatternByte(offset + i, seed)};
}

std::optional<uint64_t> VerifyPattern(uint64_t offset,
                                      absl::Span<const std::byte> data,
                                      uint64_t seed) {
  size_t i = 0;
  const size_t n = data.size();
  for (; i < n && ((offset + i) & 7) != 0; ++i) {
    if (data[i] != std::byte{PatternByte(offset + i, seed)}) return offset + i;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t got;
    std::memcpy(&got, data.data() + i, 8);
    if (got != Word((offset + i) >> 3, seed)) {
      for (size_t j = i; j < i + 8; ++j) {
        if (data[j] != std::byte{PatternByte(offset + j, seed)}) {
          return offset + j;
        }
      }
    }
  }
  for (; i < n; ++i) {
    if (data[i] != std::byte{PatternByte(offset + i, seed)}) return offset + i;
  }
  return std::nullopt;
}

}  // namespace devmem::demo
