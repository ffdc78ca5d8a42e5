#include "pool/token_range.h"

#include <algorithm>
#include <utility>

namespace devmem {

std::vector<std::vector<TokenRange>> CoalesceTokens(std::vector<Token> tokens,
                                                    uint32_t max_ranges,
                                                    uint32_t max_tokens) {
  std::vector<std::vector<TokenRange>> calls;
  if (tokens.empty()) return calls;
  max_ranges = std::max<uint32_t>(max_ranges, 1);
  max_tokens = std::max<uint32_t>(max_tokens, 1);
  std::sort(tokens.begin(), tokens.end());
  std::vector<TokenRange> call;
  uint32_t in_call = 0;
  auto flush = [&] {
    if (!call.empty()) calls.push_back(std::move(call));
    call.clear();
    in_call = 0;
  };
  for (const Token t : tokens) {
    if (in_call == max_tokens) flush();
    if (!call.empty()) {
      TokenRange& last = call.back();
      // Only strictly consecutive tokens merge: a duplicate must reach the
      // receiver twice so that the second is rejected, not hidden.
      if (last.count > 0 && uint64_t{last.start} + last.count == t) {
        ++last.count;
        ++in_call;
        continue;
      }
      if (call.size() == max_ranges) flush();
    }
    call.push_back(TokenRange{t, 1});
    ++in_call;
  }
  flush();
  return calls;
}

}  // namespace devmem
