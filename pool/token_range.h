// Token ranges: how borrowed chunks come back, as the kernel's
// SO_DEVMEM_DONTNEED takes them.
//
// A TokenRange has exactly the layout of the kernel's struct dmabuf_token
// (u32 token_start, u32 token_count), so an array of them can be handed to
// setsockopt(SO_DEVMEM_DONTNEED) or written to the sim's data-path socket
// as it is. One release takes at most kMaxTokenRanges ranges and at most
// kMaxTokensPerRelease tokens in all (the kernel's limits: optlen <= 128
// ranges, 1024 frags processed per call); CoalesceTokens cuts any list of
// tokens into releases that respect both.
//
// Thread safety: plain values and a pure function.
#ifndef DEVMEM_POOL_TOKEN_RANGE_H_
#define DEVMEM_POOL_TOKEN_RANGE_H_

#include <cstdint>
#include <vector>

#include "pool/chunk.h"

namespace devmem {

// A range of tokens [start, start + count), as struct dmabuf_token.
struct TokenRange {
  uint32_t start = 0;
  uint32_t count = 0;
};
static_assert(sizeof(TokenRange) == 8);

// Ranges per release (SO_DEVMEM_DONTNEED's MAX_DONTNEED_TOKENS).
inline constexpr uint32_t kMaxTokenRanges = 128;
// Tokens per release, over all its ranges (MAX_DONTNEED_FRAGS).
inline constexpr uint32_t kMaxTokensPerRelease = 1024;

// Cuts `tokens` into releases: sorted, strictly consecutive tokens
// coalesced into one range, each release at most `max_ranges` ranges and
// `max_tokens` tokens (a range is split when needed). Every token appears
// exactly once across the result; a duplicate stays a range of its own, so
// the receiver sees it twice and rejects the second. Limits below 1 count
// as 1.
std::vector<std::vector<TokenRange>> CoalesceTokens(
    std::vector<Token> tokens, uint32_t max_ranges = kMaxTokenRanges,
    uint32_t max_tokens = kMaxTokensPerRelease);

}  // namespace devmem

#endif  // DEVMEM_POOL_TOKEN_RANGE_H_
