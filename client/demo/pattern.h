// The demo's verifiable byte stream: the byte at stream offset `o` is a pure
// function of `o` (and a seed), so any fragment can be checked knowing only
// where it sits in the stream. Used by devmem-demo-sender (to produce),
// devmem-demo-job (to verify what landed in the dmabuf), the tests and the
// end-to-end benchmark.
//
// The stream is a sequence of little-endian 64-bit words, word w =
// Mix(w ^ seed); bytes at any offset and length are slices of it.
//
// Thread safety: all functions are thread-safe (pure).
#ifndef DEVMEM_CLIENT_DEMO_PATTERN_H_
#define DEVMEM_CLIENT_DEMO_PATTERN_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/types/span.h"

namespace devmem::demo {

inline constexpr uint64_t kDefaultSeed = 0x6465766d656d3031;  // "devmem01"

// The pattern byte at stream offset `offset`.
uint8_t PatternByte(uint64_t offset, uint64_t seed = kDefaultSeed);

// Writes the pattern for [offset, offset + out.size()) into `out`.
void FillPattern(uint64_t offset, absl::Span<std::byte> out,
                 uint64_t seed = kDefaultSeed);

// Checks `data` against the pattern at [offset, offset + data.size()).
// Returns the stream offset of the first wrong byte, or nullopt if all match.
std::optional<uint64_t> VerifyPattern(uint64_t offset,
                                      absl::Span<const std::byte> data,
                                      uint64_t seed = kDefaultSeed);

}  // namespace devmem::demo

#endif  // DEVMEM_CLIENT_DEMO_PATTERN_H_
